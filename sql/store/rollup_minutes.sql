-- depends: store/rollup_minute_groups.sql
-- The 1-minute rollups of the frames of each (instance, [from, to)) range passed, a row per
-- (instance, series, minute): rollup_minute_groups()' arrays unnested, the series ids taken
-- from the layout where the arrays follow one. bucket is epoch seconds. p_state_alpha: also
-- fold them into the series state (rollup_minute_groups()). PL/pgSQL joining
-- materialized results: Citus plans neither SQL-function parameters nor a distributed table
-- (sample_layouts) joined directly to a function's rows.
-- Internal to maintain(): runs as its caller.
CREATE OR REPLACE FUNCTION pganalytics.rollup_minutes(p_instance_ids int[], p_from timestamptz[], p_to timestamptz[],
                                                      p_state_alpha float8 DEFAULT NULL)
RETURNS TABLE (instance_id int, series_id int, bucket float8, n int, sum float8, min float8, max float8, last float8)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH g AS MATERIALIZED (
        SELECT * FROM pganalytics.rollup_minute_groups(p_instance_ids, p_from, p_to, p_state_alpha)),
    l AS MATERIALIZED (
        SELECT sl.instance_id, sl.layout_id, sl.series_ids FROM pganalytics.sample_layouts sl
        WHERE sl.instance_id = ANY (p_instance_ids) AND sl.layout_id IN (SELECT g.layout_id FROM g))
    SELECT g.instance_id, u.series_id, g.bucket, coalesce(u.n, g.n_all), u.sum, u.min, u.max, u.last
    FROM g
    LEFT JOIN l ON l.instance_id = g.instance_id AND l.layout_id = g.layout_id
    CROSS JOIN LATERAL unnest(coalesce(g.series_ids, l.series_ids), g.n, g.sum, g.min, g.max, g.last)
        AS u(series_id, n, sum, min, max, last);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.rollup_minutes(int[], timestamptz[], timestamptz[], float8) FROM PUBLIC;
