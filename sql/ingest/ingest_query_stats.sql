-- depends: ingest/merge_query_stats.sql
-- depends: ingest/begin_snapshot.sql
-- Fold one staged pg_stat_statements snapshot into the store. The collector COPYs the
-- snapshot's entries into pganalytics.query_stats_stage under a batch_no (many snapshots of a
-- delivery group in one COPY, each under its own), then calls this once per snapshot in
-- collection order (deltas need it), with the texts of queryids not sent before. Only rows the
-- calling transaction staged are read (stage_xid), never a relation the caller made.
-- Validate, record the batch in the ledger, keep texts and pg_stat_statements_info, then
-- merge_query_stats() computes the deltas, then updates the counters (two statements).
--
-- Resets never produce negative or huge deltas: an entry counts as reset when its calls or
-- total time went down, its stats_since (PG 17+) changed, or pg_stat_statements_info's
-- stats_reset moved past the previous snapshot; its delta is then its whole current value
-- (everything since the reset happened inside this interval). A new entry seen after a
-- previous snapshot also contributes its whole value. A snapshot older than what is stored
-- (a late replay) updates nothing. Returns the entries merged (0 when already delivered).
CREATE OR REPLACE FUNCTION pganalytics.ingest_query_stats(
    p_batch_no      int,
    p_instance_id   int,
    p_collected_at  timestamptz,
    p_dealloc       bigint DEFAULT NULL,
    p_stats_reset   timestamptz DEFAULT NULL,
    p_text_queryids bigint[] DEFAULT '{}',
    p_texts         text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    my_xid     xid8 := pg_current_xact_id();  -- once: a volatile call per row could use no index
    prev_at    timestamptz;
    staged     bigint;
    distinct_keys bigint;
    merged     bigint;
BEGIN
    IF p_batch_no IS NULL OR p_instance_id IS NULL OR p_collected_at IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats: batch number, instance and collected_at must not be null';
    END IF;
    IF p_text_queryids IS NULL OR p_texts IS NULL
       OR cardinality(p_text_queryids) <> cardinality(p_texts)
       OR array_position(p_text_queryids, NULL) IS NOT NULL OR array_position(p_texts, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_query_stats: text queryids and texts must be arrays of the same length without nulls';
    END IF;
    -- One pass: the row count for the ledger, and whether an entry is there twice.
    SELECT count(*), count(DISTINCT (s.dbid, s.userid, s.queryid, s.toplevel)) INTO staged, distinct_keys
    FROM pganalytics.query_stats_stage s WHERE s.stage_xid = my_xid AND s.batch_no = p_batch_no;
    IF staged <> distinct_keys THEN
        RAISE EXCEPTION 'ingest_query_stats: staged snapshot % holds an entry twice', p_batch_no
            USING ERRCODE = 'cardinality_violation',
                  HINT = 'stage each (dbid, userid, queryid, toplevel) once per batch';
    END IF;

    IF pganalytics.begin_snapshot(p_instance_id, 'query_stats', p_collected_at, p_row_count => staged) THEN
        SELECT i.collected_at INTO prev_at
        FROM pganalytics.pgss_info i WHERE i.instance_id = p_instance_id FOR UPDATE;
        -- A late replay of an older snapshot keeps its ledger row and changes no counters.
        IF prev_at IS NULL OR p_collected_at > prev_at THEN
            INSERT INTO pganalytics.pgss_info AS i (instance_id, collected_at, dealloc, stats_reset)
            VALUES (p_instance_id, p_collected_at, coalesce(p_dealloc, 0), p_stats_reset)
            ON CONFLICT (instance_id) DO UPDATE
                SET collected_at = EXCLUDED.collected_at, dealloc = EXCLUDED.dealloc,
                    stats_reset = EXCLUDED.stats_reset;
            INSERT INTO pganalytics.query_texts (instance_id, queryid, query, first_seen_at)
            SELECT DISTINCT ON (t.queryid) p_instance_id, t.queryid, t.query, p_collected_at
            FROM unnest(p_text_queryids, p_texts) AS t(queryid, query)
            ON CONFLICT DO NOTHING;
            IF prev_at IS NOT NULL THEN
                PERFORM pganalytics.ensure_partitions('pganalytics.query_stat_deltas', p_collected_at, p_collected_at);
            END IF;
            merged := pganalytics.merge_query_stats(my_xid, p_batch_no, p_instance_id, p_collected_at,
                                                    prev_at, p_stats_reset);
            UPDATE pganalytics.pgss_info i
            SET query_entries = (SELECT count(*) FROM pganalytics.query_stats q WHERE q.instance_id = p_instance_id)
            WHERE i.instance_id = p_instance_id;
        END IF;
    END IF;
    -- Consume the staged rows: a later call in the same transaction must not see them.
    DELETE FROM pganalytics.query_stats_stage s WHERE s.stage_xid = my_xid AND s.batch_no = p_batch_no;
    RETURN coalesce(merged, 0);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_query_stats(int, int, timestamptz, bigint, timestamptz, bigint[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_query_stats(int, int, timestamptz, bigint, timestamptz, bigint[], text[]) TO pganalytics_collector;
