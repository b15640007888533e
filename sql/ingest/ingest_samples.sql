-- depends: ingest/register_databases.sql
-- depends: ingest/ensure_ledger_partitions.sql
-- Store the samples of many batches at once (one delivery group): the collector COPYs one
-- frame per batch into pganalytics.sample_frames_stage (batch_no, layout_id from
-- register_layouts(), vals: float8 values, big-endian, 8 bytes each) in its transaction, then
-- calls this once with one array element per batch (batch_no, instance, source, collected_at)
-- and the databases the batches saw (pg_stat_database: batch_no, datid, datname). Only rows
-- staged by the calling transaction are read (stage_xid), never a relation the caller made.
--
-- Each distinct (instance, source, collected_at) is recorded in the snapshots ledger; only
-- the samples of snapshots recorded by THIS call are stored, so a batch delivered before is
-- skipped and the same snapshot twice in one group is stored once (its lowest batch_no).
-- Also keeps the day partitions, instances.last_seen_at and the databases current for those
-- batches, consumes the staged rows of the listed batches and returns the samples stored.
CREATE OR REPLACE FUNCTION pganalytics.ingest_samples(
    p_batch_nos    int[],
    p_instance_ids int[],
    p_sources      text[],
    p_collected_at timestamptz[],
    p_db_batch_nos int[] DEFAULT '{}',
    p_datids       oid[] DEFAULT '{}',
    p_datnames     text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Its joins are of the call's arrays (estimated at 10 rows) with the staging table (analyzed
-- empty, estimated at 1): a nested loop re-reads one side per row of the other, quadratic in
-- the group (200 batches: 40,000 rows, and it grew the call 5x). Hash joins are linear; the
-- instance lookup is a subquery, which this does not touch.
SET enable_nestloop = off
AS $$
DECLARE
    my_xid   xid8 := pg_current_xact_id();  -- once: a volatile call per row could use no index
    min_no   int;
    bad      record;
    new_nos  int[];
    new_iids int[];
    new_ats  timestamptz[];
    day      date;
    stored   bigint;
BEGIN
    IF p_batch_nos IS NULL OR p_instance_ids IS NULL OR p_sources IS NULL OR p_collected_at IS NULL
       OR p_db_batch_nos IS NULL OR p_datids IS NULL OR p_datnames IS NULL THEN
        RAISE EXCEPTION 'ingest_samples: the arrays must not be null (pass empty arrays instead)';
    END IF;
    IF cardinality(p_batch_nos) IS DISTINCT FROM cardinality(p_instance_ids)
       OR cardinality(p_batch_nos) IS DISTINCT FROM cardinality(p_sources)
       OR cardinality(p_batch_nos) IS DISTINCT FROM cardinality(p_collected_at) THEN
        RAISE EXCEPTION 'ingest_samples: batch numbers, instance ids, sources and collected_at must be arrays of the same length';
    END IF;
    IF cardinality(p_db_batch_nos) IS DISTINCT FROM cardinality(p_datids)
       OR cardinality(p_db_batch_nos) IS DISTINCT FROM cardinality(p_datnames) THEN
        RAISE EXCEPTION 'ingest_samples: database batch numbers, datids and datnames must be arrays of the same length';
    END IF;
    SELECT b.* INTO bad
    FROM unnest(p_batch_nos, p_instance_ids, p_sources, p_collected_at) AS b(batch_no, instance_id, source, collected_at)
    WHERE b.batch_no IS NULL OR b.instance_id IS NULL OR b.collected_at IS NULL
       OR b.source IS NULL OR b.source !~ '^[a-z][a-z0-9_]{0,62}$'
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ingest_samples: batch % (instance %, source %, collected_at %): batch number, instance and collected_at must not be null and the source must be a lower-case identifier',
            bad.batch_no, bad.instance_id, pg_catalog.quote_nullable(bad.source), bad.collected_at;
    END IF;
    SELECT b.batch_no INTO bad FROM unnest(p_batch_nos) AS b(batch_no)
    GROUP BY b.batch_no HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ingest_samples: batch number % is listed twice', bad.batch_no
            USING ERRCODE = 'cardinality_violation';
    END IF;
    SELECT b.instance_id INTO bad FROM unnest(p_instance_ids) AS b(instance_id)
    WHERE NOT EXISTS (SELECT FROM pganalytics.instances i WHERE i.instance_id = b.instance_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ingest_samples: no instance with id %', bad.instance_id
            USING HINT = 'register it first with pganalytics.register_instance()';
    END IF;
    PERFORM pganalytics.ensure_ledger_partitions('ingest_samples', min(a), max(a)) FROM unnest(p_collected_at) AS a
        HAVING count(*) > 0;
    SELECT min(n) INTO min_no FROM unnest(p_batch_nos) AS n;
    -- Every frame this transaction staged from the lowest listed batch number on belongs to a
    -- listed batch (rows left over would never be stored), one per batch, names a layout of
    -- that batch's instance and holds one value per series of it. Lower numbers are earlier
    -- calls' (consumed) rows: the collector numbers batches upwards within a transaction, and
    -- the index range skips them. Layouts are a materialized result, not a correlated
    -- subquery: Citus joins no local table (the staging one) to a distributed one directly.
    WITH staged AS MATERIALIZED (
        SELECT s.batch_no, s.layout_id, octet_length(s.vals) AS bytes, b.instance_id, b.batch_no AS listed,
               count(*) OVER (PARTITION BY s.batch_no) AS copies
        FROM pganalytics.sample_frames_stage s
        LEFT JOIN unnest(p_batch_nos, p_instance_ids) AS b(batch_no, instance_id) ON b.batch_no = s.batch_no
        WHERE s.stage_xid = my_xid AND s.batch_no >= min_no),
    layouts AS MATERIALIZED (
        SELECT l.instance_id, l.layout_id, cardinality(l.series_ids) AS n FROM pganalytics.sample_layouts l
        WHERE l.instance_id = ANY (p_instance_ids) AND l.layout_id IN (SELECT st.layout_id FROM staged st))
    SELECT st.batch_no, st.layout_id, st.instance_id, st.bytes, l.n, st.copies,
           CASE WHEN st.listed IS NULL THEN 'unlisted' WHEN st.copies > 1 THEN 'copies'
                WHEN l.n IS NULL THEN 'layout' WHEN st.bytes <> 8 * l.n THEN 'shape' END AS problem
    INTO bad
    FROM staged st LEFT JOIN layouts l ON l.instance_id = st.instance_id AND l.layout_id = st.layout_id
    WHERE st.listed IS NULL OR st.copies > 1 OR l.n IS NULL OR st.bytes <> 8 * l.n
    LIMIT 1;
    IF bad.problem = 'unlisted' THEN
        RAISE EXCEPTION 'ingest_samples: a frame was staged for batch %, which is not listed', bad.batch_no
            USING HINT = 'pass every staged batch number, once';
    ELSIF bad.problem = 'copies' THEN
        RAISE EXCEPTION 'ingest_samples: % frames were staged for batch % (one per batch)', bad.copies, bad.batch_no;
    ELSIF bad.problem = 'layout' THEN
        RAISE EXCEPTION 'ingest_samples: the frame of batch % names layout %, which is not a layout of instance %',
            bad.batch_no, bad.layout_id, bad.instance_id
            USING HINT = 'stage only layout ids from pganalytics.register_layouts() for that instance';
    ELSIF bad.problem = 'shape' THEN
        RAISE EXCEPTION 'ingest_samples: the frame of batch % has % bytes of values for the % series of its layout (8 a value)',
            bad.batch_no, bad.bytes, bad.n;
    END IF;

    -- The ledger: one row per distinct snapshot (its first batch in the group); the batches
    -- whose row is new here are the ones to store.
    WITH batches AS (
        SELECT b.*, octet_length(s.vals) / 8 AS n
        FROM unnest(p_batch_nos, p_instance_ids, p_sources, p_collected_at)
             AS b(batch_no, instance_id, source, collected_at)
        JOIN pganalytics.sample_frames_stage s ON s.batch_no = b.batch_no AND s.stage_xid = my_xid),
    firsts AS (
        SELECT DISTINCT ON (b.instance_id, b.source, b.collected_at) b.*
        FROM batches b ORDER BY b.instance_id, b.source, b.collected_at, b.batch_no),
    recorded AS (
        INSERT INTO pganalytics.snapshots (instance_id, source, collected_at, row_count)
        SELECT f.instance_id, f.source, f.collected_at, f.n
        FROM firsts f ORDER BY f.instance_id, f.source, f.collected_at
        ON CONFLICT DO NOTHING
        RETURNING instance_id, source, collected_at)
    SELECT array_agg(f.batch_no), array_agg(f.instance_id), array_agg(f.collected_at)
    INTO new_nos, new_iids, new_ats
    FROM recorded r JOIN firsts f USING (instance_id, source, collected_at);

    IF new_nos IS NOT NULL THEN
        FOR day IN SELECT DISTINCT (a AT TIME ZONE 'UTC')::date FROM unnest(new_ats) AS a LOOP
            PERFORM pganalytics.ensure_partitions('pganalytics.sample_frames',
                day::timestamp AT TIME ZONE 'UTC', day::timestamp AT TIME ZONE 'UTC');
        END LOOP;
        WITH stored_rows AS (
            INSERT INTO pganalytics.sample_frames (instance_id, ts, layout_id, vals)
            SELECT n.instance_id, n.collected_at, s.layout_id, s.vals
            FROM pganalytics.sample_frames_stage s
            JOIN unnest(new_nos, new_iids, new_ats) AS n(batch_no, instance_id, collected_at) USING (batch_no)
            WHERE s.stage_xid = my_xid AND s.batch_no = ANY (new_nos)
            RETURNING octet_length(vals) / 8 AS n)
        SELECT sum(r.n) INTO stored FROM stored_rows r;

        -- last_seen_at moves in steps of at least 10 s: an update per instance and call cost
        -- as much as storing its frame, and what reads it (maintain()'s complete minutes,
        -- the API's "seen") needs no finer time.
        UPDATE pganalytics.instances i SET last_seen_at = n.collected_at
        FROM (SELECT u.instance_id, max(u.collected_at) AS collected_at
              FROM unnest(new_iids, new_ats) AS u(instance_id, collected_at) GROUP BY u.instance_id) n
        WHERE i.instance_id = n.instance_id AND i.instance_id = ANY (new_iids)  -- an index scan, then a hash join
          AND (i.last_seen_at IS NULL OR n.collected_at - i.last_seen_at >= interval '10 seconds');  -- immutable (Citus)

        -- In group order, so the newest name of a renamed database wins.
        PERFORM pganalytics.register_databases(array_agg(n.instance_id ORDER BY d.ord),
                                               array_agg(d.datid ORDER BY d.ord),
                                               array_agg(d.datname ORDER BY d.ord))
        FROM unnest(p_db_batch_nos, p_datids, p_datnames) WITH ORDINALITY AS d(batch_no, datid, datname, ord)
        JOIN unnest(new_nos, new_iids) AS n(batch_no, instance_id) USING (batch_no)
        HAVING count(*) > 0;
    END IF;
    -- Consume the staged rows: a later call in the same transaction must not see them.
    DELETE FROM pganalytics.sample_frames_stage s WHERE s.stage_xid = my_xid AND s.batch_no = ANY (p_batch_nos);
    RETURN coalesce(stored, 0);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_samples(int[], int[], text[], timestamptz[], int[], oid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_samples(int[], int[], text[], timestamptz[], int[], oid[], text[]) TO pganalytics_collector;
