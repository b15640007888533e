-- Say what is wrong with the frames transaction p_xid staged for the batches p_first_batch_no ..
-- p_first_batch_no + p_batches - 1, and raise it: ingest_samples() calls this once its counts
-- show a problem (the slow path; the fast one only counts). The first problem by batch number,
-- in this order: a frame beyond the call's batches, two frames of one batch, a layout that is
-- not the instance's (or an unregistered instance), values not matching the layout, a time more
-- than a day ahead of the store's clock, then batches without a frame. Returns only when it
-- finds nothing wrong. Internal: runs as its caller.
CREATE OR REPLACE FUNCTION pganalytics.explain_bad_frames(p_xid xid8, p_first_batch_no int, p_batches int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last_no int := p_first_batch_no + p_batches - 1;
    bad     record;
    frames  bigint;
BEGIN
    SELECT s.batch_no INTO bad FROM pganalytics.sample_frames_stage s
    WHERE s.stage_xid = p_xid AND s.batch_no > last_no ORDER BY s.batch_no LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ingest_samples: a frame was staged for batch %, beyond this call''s batches % .. %',
            bad.batch_no, p_first_batch_no, last_no
            USING HINT = 'number the staged batches from the first batch number, without gaps';
    END IF;
    SELECT s.batch_no, count(*) AS copies INTO bad FROM pganalytics.sample_frames_stage s
    WHERE s.stage_xid = p_xid AND s.batch_no BETWEEN p_first_batch_no AND last_no
    GROUP BY s.batch_no HAVING count(*) > 1 ORDER BY s.batch_no LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ingest_samples: % frames were staged for batch % (one per batch)', bad.copies, bad.batch_no;
    END IF;
    -- Materialized, not joined directly: Citus joins no local table (staging) to a distributed one.
    WITH staged AS MATERIALIZED (
        SELECT s.batch_no, s.instance_id, s.layout_id, s.collected_at, octet_length(s.vals) AS bytes
        FROM pganalytics.sample_frames_stage s
        WHERE s.stage_xid = p_xid AND s.batch_no BETWEEN p_first_batch_no AND last_no),
    layouts AS MATERIALIZED (
        SELECT l.instance_id, l.layout_id, cardinality(l.series_ids) AS n FROM pganalytics.sample_layouts l
        WHERE l.instance_id = ANY (ARRAY(SELECT DISTINCT st.instance_id FROM staged st))),
    known AS MATERIALIZED (
        SELECT i.instance_id FROM pganalytics.instances i
        WHERE i.instance_id = ANY (ARRAY(SELECT DISTINCT st.instance_id FROM staged st)))
    SELECT st.*, l.n, k.instance_id IS NOT NULL AS registered
    INTO bad
    FROM staged st
    LEFT JOIN layouts l ON l.instance_id = st.instance_id AND l.layout_id = st.layout_id
    LEFT JOIN known k ON k.instance_id = st.instance_id
    WHERE l.n IS NULL OR st.bytes <> 8 * l.n OR st.collected_at > now() + interval '1 day'
    ORDER BY st.batch_no LIMIT 1;
    IF FOUND AND NOT bad.registered THEN
        RAISE EXCEPTION 'ingest_samples: the frame of batch % names instance %, which is not registered', bad.batch_no, bad.instance_id
            USING HINT = 'register it first with pganalytics.register_instance()';
    ELSIF FOUND AND bad.n IS NULL THEN
        RAISE EXCEPTION 'ingest_samples: the frame of batch % names layout %, which is not a layout of instance %',
            bad.batch_no, bad.layout_id, bad.instance_id
            USING HINT = 'stage only layout ids from pganalytics.register_layouts() for that instance';
    ELSIF FOUND AND bad.bytes <> 8 * bad.n THEN
        RAISE EXCEPTION 'ingest_samples: the frame of batch % has % bytes of values for the % series of its layout (8 a value)',
            bad.batch_no, bad.bytes, bad.n;
    ELSIF FOUND THEN
        RAISE EXCEPTION 'ingest_samples: batch % was collected at %, more than a day ahead of the store''s clock (%)',
            bad.batch_no, bad.collected_at, now()
            USING HINT = 'check the collector host''s clock';
    END IF;
    SELECT count(*) INTO frames FROM pganalytics.sample_frames_stage s
    WHERE s.stage_xid = p_xid AND s.batch_no BETWEEN p_first_batch_no AND last_no;
    IF frames <> p_batches THEN
        RAISE EXCEPTION 'ingest_samples: % batches were announced from batch number %, but % frames were staged for them',
            p_batches, p_first_batch_no, frames
            USING HINT = 'COPY one frame per batch into pganalytics.sample_frames_stage before the call';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.explain_bad_frames(xid8, int, int) FROM PUBLIC;
