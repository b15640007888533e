-- Create the partitions of a time-partitioned table that cover [p_from, p_to]: a day each, a
-- month for rollups_1h (kept 400 days). Called before rows are stored; an existing partition
-- costs one catalog lookup. Partitions are named <parent>_pYYYYMMDD after their first day.
-- Runs as its caller: the ingest and maintenance functions, as the store's owner.
CREATE OR REPLACE FUNCTION pganalytics.ensure_partitions(p_parent regclass, p_from timestamptz, p_to timestamptz)
RETURNS int  -- partitions created (or found created meanwhile by a concurrent caller)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent    text := (SELECT relname FROM pg_class WHERE oid = p_parent);
    width     interval;
    day       date;
    last_day  date;
    part_name text;
    created   int := 0;
BEGIN
    IF p_parent IS NULL OR p_from IS NULL OR p_to IS NULL THEN
        RAISE EXCEPTION 'ensure_partitions: parent, from and to must not be null';
    END IF;
    IF p_parent NOT IN ('pganalytics.sample_frames'::regclass, 'pganalytics.snapshots'::regclass,
                        'pganalytics.query_stat_deltas'::regclass, 'pganalytics.wait_samples'::regclass,
                        'pganalytics.rollups_1m'::regclass, 'pganalytics.rollups_5m'::regclass,
                        'pganalytics.rollups_15m'::regclass, 'pganalytics.rollups_1h'::regclass) THEN
        RAISE EXCEPTION 'ensure_partitions: % is not a time-partitioned pganalytics table', p_parent;
    END IF;
    IF p_to < p_from OR p_to - p_from > interval '400 days' THEN
        RAISE EXCEPTION 'ensure_partitions: range % .. % is inverted or longer than 400 days', p_from, p_to;
    END IF;
    width := CASE parent WHEN 'rollups_1h' THEN interval '1 month' ELSE interval '1 day' END;
    -- Bounds are UTC days (or months) whatever the session's TimeZone.
    day := date_trunc(CASE parent WHEN 'rollups_1h' THEN 'month' ELSE 'day' END, p_from AT TIME ZONE 'UTC')::date;
    last_day := (p_to AT TIME ZONE 'UTC')::date;
    WHILE day <= last_day LOOP
        part_name := pg_catalog.format('%s_p%s', parent, to_char(day, 'YYYYMMDD'));
        IF to_regclass(pg_catalog.format('pganalytics.%I', part_name)) IS NULL THEN
            -- Serialise creators of the same partition. IF NOT EXISTS, not a re-check with
            -- to_regclass(): an advisory lock processes no catalog invalidations, so the
            -- re-check could miss the partition the lock holder just committed (two collectors'
            -- first batches of a day: "relation ... already exists"); CREATE's own namespace
            -- lock does process them.
            PERFORM pg_advisory_xact_lock(hashtext('pganalytics.partition.' || part_name));
            EXECUTE pg_catalog.format(
                'CREATE TABLE IF NOT EXISTS pganalytics.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)%s',
                part_name, p_parent,
                (day::timestamp AT TIME ZONE 'UTC'), ((day + width)::timestamp AT TIME ZONE 'UTC'),
                -- frames of up to 8 kB stay inline: moving a value array to TOAST doubles the writes
                CASE parent WHEN 'sample_frames' THEN ' WITH (toast_tuple_target = 8160)' ELSE '' END);
            created := created + 1;
        END IF;
        day := (day + width)::date;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ensure_partitions(regclass, timestamptz, timestamptz) FROM PUBLIC;
