-- Ids of the series named by (instance, metric, labels), creating the missing ones; element i
-- of the arrays is one series (of any instance: one call serves a whole delivery group).
-- The collector caches the answer, so this runs once per new series, not per sample.
CREATE OR REPLACE FUNCTION pganalytics.series_ids(
    p_instance_ids int[], p_metrics text[], p_labels jsonb[], p_kinds text[])
RETURNS TABLE (instance_id int, metric text, labels jsonb, series_id int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    missing int;
BEGIN
    IF cardinality(p_instance_ids) IS DISTINCT FROM cardinality(p_metrics)
       OR cardinality(p_metrics) IS DISTINCT FROM cardinality(p_labels)
       OR cardinality(p_metrics) IS DISTINCT FROM cardinality(p_kinds) THEN
        RAISE EXCEPTION 'series_ids: instance ids, metrics, labels and kinds must be arrays of the same length';
    END IF;
    SELECT u.i INTO missing FROM unnest(p_instance_ids) AS u(i)
    WHERE NOT EXISTS (SELECT FROM pganalytics.instances n WHERE n.instance_id = u.i) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'series_ids: no instance with id %', coalesce(missing::text, 'NULL')
            USING HINT = 'register it first with pganalytics.register_instance()';
    END IF;
    INSERT INTO pganalytics.series (instance_id, metric, labels, kind)
    SELECT i, m, l, k FROM unnest(p_instance_ids, p_metrics, p_labels, p_kinds) AS u(i, m, l, k)
    ORDER BY i, m, l  -- one lock order for concurrent callers
    ON CONFLICT (instance_id, metric, labels) DO NOTHING;
    RETURN QUERY
    SELECT s.instance_id, s.metric, s.labels, s.series_id
    FROM pganalytics.series s
    JOIN unnest(p_instance_ids, p_metrics, p_labels) AS u(i, m, l)
      ON s.instance_id = u.i AND s.metric = u.m AND s.labels = u.l;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.series_ids(int[], text[], jsonb[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.series_ids(int[], text[], jsonb[], text[]) TO pganalytics_collector;
