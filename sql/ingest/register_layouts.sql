-- The layout id of each (instance, series ids in value order) passed, registering the new
-- ones: what a frame names instead of its series ids. Layouts are flattened into one array
-- (p_series_ids) cut by p_lengths. A new layout is checked once: its ids must be distinct
-- series of that instance. Returns (ord, layout_id), ord counting the layouts passed from 1.
-- A series set has one id (the frames are unique by instance, time and layout: two ids would
-- let one snapshot be stored twice): a new layout is registered under a per-instance lock,
-- looked up again once it is held.
CREATE OR REPLACE FUNCTION pganalytics.register_layouts(p_instance_ids int[], p_lengths int[], p_series_ids int[])
RETURNS TABLE (ord int, layout_id int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lay  record;
    bad  record;
    pos  int := 1;
    id   int;
BEGIN
    IF p_instance_ids IS NULL OR p_lengths IS NULL OR p_series_ids IS NULL
       OR cardinality(p_instance_ids) IS DISTINCT FROM cardinality(p_lengths) THEN
        RAISE EXCEPTION 'register_layouts: instance ids and lengths must be arrays of the same length, series ids an array';
    END IF;
    IF (SELECT coalesce(sum(n), 0) FROM unnest(p_lengths) AS n) IS DISTINCT FROM cardinality(p_series_ids)::numeric
       OR EXISTS (SELECT FROM unnest(p_lengths) AS n WHERE n IS NULL OR n < 1) THEN
        RAISE EXCEPTION 'register_layouts: the lengths (each >= 1) must add up to the % series ids passed', cardinality(p_series_ids);
    END IF;
    FOR lay IN SELECT u.iid, u.n, u.k FROM unnest(p_instance_ids, p_lengths) WITH ORDINALITY AS u(iid, n, k) ORDER BY u.k LOOP
        ord := lay.k;
        SELECT min(l.layout_id) INTO id FROM pganalytics.sample_layouts l
        WHERE l.instance_id = lay.iid AND l.series_ids = p_series_ids[pos:pos + lay.n - 1];
        IF id IS NULL THEN
            -- Held to the end of the transaction; the lookup after it is a new statement, whose
            -- snapshot sees what a concurrent registration committed.
            PERFORM pg_advisory_xact_lock(hashtext('pganalytics.layouts'), lay.iid);
            SELECT min(l.layout_id) INTO id FROM pganalytics.sample_layouts l
            WHERE l.instance_id = lay.iid AND l.series_ids = p_series_ids[pos:pos + lay.n - 1];
        END IF;
        IF id IS NULL THEN
            IF NOT EXISTS (SELECT FROM pganalytics.instances i WHERE i.instance_id = lay.iid) THEN
                RAISE EXCEPTION 'register_layouts: no instance with id %', lay.iid
                    USING HINT = 'register it first with pganalytics.register_instance()';
            END IF;
            SELECT u.series_id INTO bad FROM unnest(p_series_ids[pos:pos + lay.n - 1]) AS u(series_id)
            WHERE u.series_id IS NULL
               OR NOT EXISTS (SELECT FROM pganalytics.series r WHERE r.instance_id = lay.iid AND r.series_id = u.series_id)
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'register_layouts: layout % names series %, which is not a series of instance %',
                    lay.k, coalesce(bad.series_id::text, 'NULL'), lay.iid
                    USING HINT = 'use ids from pganalytics.series_ids()';
            END IF;
            IF (SELECT count(DISTINCT u) FROM unnest(p_series_ids[pos:pos + lay.n - 1]) AS u) <> lay.n THEN
                RAISE EXCEPTION 'register_layouts: layout % of instance % names a series twice', lay.k, lay.iid;
            END IF;
            INSERT INTO pganalytics.sample_layouts (instance_id, series_ids)
            VALUES (lay.iid, p_series_ids[pos:pos + lay.n - 1]) RETURNING sample_layouts.layout_id INTO id;
        END IF;
        layout_id := id;
        RETURN NEXT;
        pos := pos + lay.n;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.register_layouts(int[], int[], int[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.register_layouts(int[], int[], int[]) TO pganalytics_collector;
