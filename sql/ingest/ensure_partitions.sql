-- Create the daily partitions of a time-partitioned table that cover [p_from, p_to].
-- Called before each batch is loaded; existing partitions cost one catalog lookup each.
-- Runs as its caller: the ingest and retention functions, as the store's owner.
CREATE OR REPLACE FUNCTION pganalytics.ensure_partitions(p_parent regclass, p_from timestamptz, p_to timestamptz)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    day       date;
    last_day  date;
    part_name text;
    created   int := 0;
BEGIN
    IF p_parent IS NULL OR p_from IS NULL OR p_to IS NULL THEN
        RAISE EXCEPTION 'ensure_partitions: parent, from and to must not be null';
    END IF;
    IF p_parent NOT IN ('pganalytics.samples'::regclass, 'pganalytics.query_stat_deltas'::regclass,
                     'pganalytics.wait_samples'::regclass) THEN
        RAISE EXCEPTION 'ensure_partitions: % is not a time-partitioned pganalytics table', p_parent;
    END IF;
    IF p_to < p_from OR p_to - p_from > interval '400 days' THEN
        RAISE EXCEPTION 'ensure_partitions: range % .. % is inverted or longer than 400 days', p_from, p_to;
    END IF;
    -- Days are UTC days whatever the session's TimeZone, so partition bounds never depend on it.
    day := (p_from AT TIME ZONE 'UTC')::date;
    last_day := (p_to AT TIME ZONE 'UTC')::date;
    WHILE day <= last_day LOOP
        part_name := pg_catalog.format('%s_p%s', (SELECT relname FROM pg_class WHERE oid = p_parent),
                                       to_char(day, 'YYYYMMDD'));
        IF to_regclass(pg_catalog.format('pganalytics.%I', part_name)) IS NULL THEN
            -- Serialise creators of the same partition; re-check after the lock.
            PERFORM pg_advisory_xact_lock(hashtext('pganalytics.partition.' || part_name));
            IF to_regclass(pg_catalog.format('pganalytics.%I', part_name)) IS NULL THEN
                EXECUTE pg_catalog.format(
                    'CREATE TABLE pganalytics.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                    part_name, p_parent,
                    (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
                created := created + 1;
            END IF;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ensure_partitions(regclass, timestamptz, timestamptz) FROM PUBLIC;
