-- Retention: drop the partitions of p_parent that end at or before p_before (dropping is
-- instant and leaves no bloat, unlike DELETE). Partitions are named <parent>_pYYYYMMDD after
-- their first day; rollups_1h's cover a month. Returns the dropped partitions' names.
-- Runs as its caller (maintain(), drop_old_partitions(), as the owner).
CREATE OR REPLACE FUNCTION pganalytics.retire_partitions(p_parent regclass, p_before timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width    interval := CASE p_parent WHEN 'pganalytics.rollups_1h'::regclass THEN interval '1 month' ELSE interval '1 day' END;
    old_part text;
BEGIN
    IF p_parent IS NULL OR p_before IS NULL THEN
        RAISE EXCEPTION 'retire_partitions: parent and cutoff must not be null';
    END IF;
    FOR old_part IN
        SELECT c.oid::regclass::text
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = p_parent AND c.relname ~ '_p\d{8}$'
          AND (to_date(right(c.relname, 8), 'YYYYMMDD') + width)::timestamp AT TIME ZONE 'UTC' <= p_before
        ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('DROP TABLE %s', old_part);
        RETURN NEXT old_part;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.retire_partitions(regclass, timestamptz) FROM PUBLIC;
