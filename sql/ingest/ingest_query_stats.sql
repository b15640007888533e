-- depends: ingest/merge_query_stats.sql
-- Fold one staged pg_stat_statements snapshot (pg_temp.stage_query_stats) into the store:
-- validate, record the batch in the ledger, keep texts and pg_stat_statements_info, then
-- merge_query_stats() computes deltas and updates counters in ONE statement.
--
-- Resets never produce negative or huge deltas: an entry counts as reset when its calls or
-- total time went down, its stats_since (PG 17+) changed, or pg_stat_statements_info's
-- stats_reset moved past the previous snapshot; its delta is then its whole current value
-- (everything since the reset happened inside this interval). A new entry seen after a
-- previous snapshot also contributes its whole value. A snapshot older than what is stored
-- (a late replay) updates nothing.
CREATE OR REPLACE FUNCTION pganalytics.ingest_query_stats(
    p_instance_id  int,
    p_collected_at timestamptz,
    p_dealloc      bigint DEFAULT NULL,
    p_stats_reset  timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev_at    timestamptz;
    prev_reset timestamptz;
    merged     bigint;
BEGIN
    IF p_instance_id IS NULL OR p_collected_at IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats: instance and collected_at must not be null';
    END IF;
    IF to_regclass('pg_temp.stage_query_stats') IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats: no staged snapshot in this session'
            USING HINT = 'call pganalytics.open_staging() and COPY into stage_query_stats first';
    END IF;
    IF EXISTS (SELECT FROM pg_temp.stage_query_stats
               GROUP BY dbid, userid, queryid, toplevel HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'ingest_query_stats: the staged snapshot holds an entry twice'
            USING ERRCODE = 'cardinality_violation',
                  HINT = 'stage each (dbid, userid, queryid, toplevel) once';
    END IF;
    IF NOT pganalytics.begin_snapshot(p_instance_id, 'query_stats', p_collected_at) THEN
        DELETE FROM pg_temp.stage_query_stats;
        RETURN 0;  -- already delivered
    END IF;

    SELECT collected_at, stats_reset INTO prev_at, prev_reset
    FROM pganalytics.pgss_info WHERE instance_id = p_instance_id FOR UPDATE;
    IF prev_at IS NOT NULL AND p_collected_at <= prev_at THEN
        -- A late replay of an older snapshot: keep the ledger row, change no counters.
        DELETE FROM pg_temp.stage_query_stats;
        RETURN 0;
    END IF;
    INSERT INTO pganalytics.pgss_info AS i (instance_id, collected_at, dealloc, stats_reset)
    VALUES (p_instance_id, p_collected_at, coalesce(p_dealloc, 0), p_stats_reset)
    ON CONFLICT (instance_id) DO UPDATE
        SET collected_at = EXCLUDED.collected_at, dealloc = EXCLUDED.dealloc, stats_reset = EXCLUDED.stats_reset;

    INSERT INTO pganalytics.query_texts (instance_id, queryid, query, first_seen_at)
    SELECT DISTINCT ON (queryid) p_instance_id, queryid, query, p_collected_at
    FROM pg_temp.stage_query_stats WHERE query IS NOT NULL
    ON CONFLICT DO NOTHING;

    IF prev_at IS NOT NULL THEN
        PERFORM pganalytics.ensure_partitions('pganalytics.query_stat_deltas', p_collected_at, p_collected_at);
    END IF;

    merged := pganalytics.merge_query_stats(p_instance_id, p_collected_at, prev_at, p_stats_reset);
    -- Consume the staged rows: a later snapshot staged in the same transaction (grouped
    -- delivery) must not see this one's rows.
    DELETE FROM pg_temp.stage_query_stats;
    UPDATE pganalytics.snapshots SET row_count = merged
    WHERE instance_id = p_instance_id AND source = 'query_stats' AND collected_at = p_collected_at;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_query_stats(int, timestamptz, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_query_stats(int, timestamptz, bigint, timestamptz) TO pganalytics_collector;
