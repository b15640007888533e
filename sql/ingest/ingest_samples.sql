-- depends: ingest/register_databases.sql
-- depends: ingest/ensure_partitions.sql
-- depends: ingest/explain_bad_frames.sql
-- Store the samples of many batches at once (one delivery group): the collector COPYs one
-- frame per batch into pganalytics.sample_frames_stage (batch_no, instance_id, collected_at,
-- layout_id from register_layouts(), vals: float8 values, big-endian, 8 bytes each) in its
-- transaction, numbering the batches p_first_batch_no .. p_first_batch_no + p_batches - 1, then
-- calls this once, with the databases the batches saw (pg_stat_database: batch_no, datid,
-- datname). Only rows staged by the calling transaction are read (stage_xid), never a relation
-- the caller made.
--
-- The frames are the ledger: a snapshot is (instance, collected_at, layout), unique in
-- sample_frames, so a batch delivered before is skipped and the same snapshot twice in one
-- group is stored once (its lowest batch number). Also keeps the day partitions,
-- instance_seen and the databases current for the frames stored, consumes the staged
-- rows and returns the samples stored.
CREATE OR REPLACE FUNCTION pganalytics.ingest_samples(
    p_first_batch_no int,
    p_batches        int,
    p_db_batch_nos   int[] DEFAULT '{}',
    p_datids         oid[] DEFAULT '{}',
    p_datnames       text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The staging table is analyzed empty (estimated at 1 row): a nested loop would re-read the
-- other side of a join per staged frame, quadratic in the group. Hash joins are linear.
SET enable_nestloop = off
-- Its lookups are by arrays of keys (`instance_id = ANY (ids)`): on a small table the planner
-- prefers a scan testing every row against the whole array (a parameter, so not hashed:
-- 1,000 rows x 200 ids cost 1.5 ms a call, measured); an index probe per key is linear.
SET enable_seqscan = off
AS $$
DECLARE
    my_xid  xid8 := pg_current_xact_id();  -- once: a volatile call per row could use no index
    last_no int := p_first_batch_no + p_batches - 1;
    got     record;
    day     date;
    stored  bigint;
    new_ids int[];  -- (instance, time, layout) of the frames stored by this call
    new_ats timestamptz[];
    new_lay int[];
BEGIN
    IF p_first_batch_no IS NULL OR p_batches IS NULL OR p_batches < 0
       OR p_db_batch_nos IS NULL OR p_datids IS NULL OR p_datnames IS NULL THEN
        RAISE EXCEPTION 'ingest_samples: the first batch number and a count of batches >= 0 are required, and the database arrays must not be null (pass empty arrays instead)';
    END IF;
    IF cardinality(p_db_batch_nos) IS DISTINCT FROM cardinality(p_datids)
       OR cardinality(p_db_batch_nos) IS DISTINCT FROM cardinality(p_datnames) THEN
        RAISE EXCEPTION 'ingest_samples: database batch numbers, datids and datnames must be arrays of the same length';
    END IF;
    -- Every frame this transaction staged from p_first_batch_no on is one of the call's batches
    -- (rows left over would never be stored), one per batch, names a layout of its instance
    -- (so a registered one) and holds one value per series of it. Lower numbers are earlier
    -- calls' (consumed) rows: the collector numbers batches upwards within a transaction, and
    -- the index range skips them. One pass over the staged rows' fixed-size columns, counting;
    -- what is wrong is looked for only when something is (pganalytics.explain_bad_frames()).
    WITH staged AS MATERIALIZED (
        SELECT s.batch_no, s.instance_id, s.collected_at, s.layout_id, octet_length(s.vals) AS bytes
        FROM pganalytics.sample_frames_stage s
        WHERE s.stage_xid = my_xid AND s.batch_no >= p_first_batch_no),
    -- Looked up by an array of the instances (index scans: a semi-join would read every layout
    -- of the fleet; a second array, of layout ids, would probe every pair), materialized:
    -- Citus joins no local table (staging) to a distributed one.
    layouts AS MATERIALIZED (
        SELECT l.instance_id, l.layout_id, cardinality(l.series_ids) AS n FROM pganalytics.sample_layouts l
        WHERE l.instance_id = ANY (ARRAY(SELECT DISTINCT st.instance_id FROM staged st))
          AND l.layout_id IN (SELECT st.layout_id FROM staged st))
    SELECT count(*) AS frames, count(DISTINCT st.batch_no) AS numbers, max(st.batch_no) AS last_staged,
           count(*) FILTER (WHERE l.n IS NULL OR st.bytes <> 8 * l.n) AS misfits,
           min(st.collected_at) AS first_at, max(st.collected_at) AS last_at
    INTO got
    FROM staged st LEFT JOIN layouts l ON l.instance_id = st.instance_id AND l.layout_id = st.layout_id;
    IF got.frames <> p_batches OR got.numbers <> got.frames OR got.last_staged > last_no OR got.misfits > 0
       OR got.last_at > now() + interval '1 day' THEN
        PERFORM pganalytics.explain_bad_frames(my_xid, p_first_batch_no, p_batches);
    END IF;
    IF p_batches = 0 THEN
        RETURN 0;
    END IF;

    FOR day IN SELECT d::date FROM generate_series((got.first_at AT TIME ZONE 'UTC')::date,
                                                   (got.last_at AT TIME ZONE 'UTC')::date, interval '1 day') AS d LOOP
        PERFORM pganalytics.ensure_partitions('pganalytics.sample_frames',
            day::timestamp AT TIME ZONE 'UTC', day::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    -- Lowest batch number first: of two copies of a snapshot in the group, that one is stored.
    WITH stored_rows AS (
        INSERT INTO pganalytics.sample_frames AS f (instance_id, ts, layout_id, vals)
        SELECT s.instance_id, s.collected_at, s.layout_id, s.vals
        FROM pganalytics.sample_frames_stage s
        WHERE s.stage_xid = my_xid AND s.batch_no BETWEEN p_first_batch_no AND last_no
        ORDER BY s.batch_no
        ON CONFLICT (instance_id, ts, layout_id) DO NOTHING
        RETURNING f.instance_id, f.ts, f.layout_id, octet_length(f.vals) / 8 AS n)
    SELECT sum(r.n), array_agg(r.instance_id), array_agg(r.ts), array_agg(r.layout_id)
    INTO stored, new_ids, new_ats, new_lay
    FROM stored_rows r;

    IF new_ids IS NOT NULL THEN
        -- last_seen_at moves in steps of at least 10 s: a move per instance and call cost as
        -- much as storing its frame, and what reads it (maintain()'s complete minutes, the
        -- API's "seen") needs no finer time. Read first, written only where it moves (an
        -- upsert would lock every row it meets); materialized for Citus, as above.
        WITH newest AS (
            SELECT u.instance_id, max(u.collected_at) AS collected_at
            FROM unnest(new_ids, new_ats) AS u(instance_id, collected_at) GROUP BY u.instance_id),
        seen AS MATERIALIZED (
            SELECT s.instance_id, s.last_seen_at FROM pganalytics.instance_seen s WHERE s.instance_id = ANY (new_ids))
        INSERT INTO pganalytics.instance_seen AS s (instance_id, last_seen_at)
        SELECT n.instance_id, n.collected_at
        FROM newest n LEFT JOIN seen o ON o.instance_id = n.instance_id
        WHERE o.instance_id IS NULL OR n.collected_at - o.last_seen_at >= interval '10 seconds'  -- immutable (Citus)
        ON CONFLICT (instance_id) DO UPDATE SET last_seen_at = greatest(s.last_seen_at, EXCLUDED.last_seen_at);

        -- Databases of the frames stored (not of a copy of an older one: it would bring back an
        -- old name), in group order, so the newest name of a renamed database wins.
        IF cardinality(p_db_batch_nos) > 0 THEN
            PERFORM pganalytics.register_databases(array_agg(s.instance_id ORDER BY d.ord),
                                                   array_agg(d.datid ORDER BY d.ord),
                                                   array_agg(d.datname ORDER BY d.ord))
            FROM unnest(p_db_batch_nos, p_datids, p_datnames) WITH ORDINALITY AS d(batch_no, datid, datname, ord)
            JOIN (SELECT DISTINCT ON (f.instance_id, f.collected_at, f.layout_id)  -- the copy stored
                         f.batch_no, f.instance_id, f.collected_at, f.layout_id
                  FROM pganalytics.sample_frames_stage f
                  WHERE f.stage_xid = my_xid AND f.batch_no BETWEEN p_first_batch_no AND last_no
                  ORDER BY f.instance_id, f.collected_at, f.layout_id, f.batch_no) s ON s.batch_no = d.batch_no
            JOIN unnest(new_ids, new_ats, new_lay) AS n(instance_id, ts, layout_id)
              ON n.instance_id = s.instance_id AND n.ts = s.collected_at AND n.layout_id = s.layout_id
            HAVING count(*) > 0;
        END IF;
    END IF;
    -- Consume the staged rows: a later call in the same transaction must not see them.
    DELETE FROM pganalytics.sample_frames_stage s
    WHERE s.stage_xid = my_xid AND s.batch_no BETWEEN p_first_batch_no AND last_no;
    RETURN coalesce(stored, 0);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_samples(int, int, int[], oid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_samples(int, int, int[], oid[], text[]) TO pganalytics_collector;
