-- Ids of the series named by (metric, labels) pairs, creating the missing ones.
-- The collector caches the answer, so this runs once per new series, not per sample.
CREATE OR REPLACE FUNCTION pganalytics.series_ids(
    p_instance_id int, p_metrics text[], p_labels jsonb[], p_kinds text[])
RETURNS TABLE (metric text, labels jsonb, series_id int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF cardinality(p_metrics) IS DISTINCT FROM cardinality(p_labels)
       OR cardinality(p_metrics) IS DISTINCT FROM cardinality(p_kinds) THEN
        RAISE EXCEPTION 'series_ids: metrics, labels and kinds must be arrays of the same length';
    END IF;
    INSERT INTO pganalytics.series (instance_id, metric, labels, kind)
    SELECT p_instance_id, m, l, k FROM unnest(p_metrics, p_labels, p_kinds) AS u(m, l, k)
    ON CONFLICT (instance_id, metric, labels) DO NOTHING;
    RETURN QUERY
    SELECT s.metric, s.labels, s.series_id
    FROM pganalytics.series s
    JOIN unnest(p_metrics, p_labels) AS u(m, l) ON s.metric = u.m AND s.labels = u.l
    WHERE s.instance_id = p_instance_id;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.series_ids(int, text[], jsonb[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.series_ids(int, text[], jsonb[], text[]) TO pganalytics_collector;
