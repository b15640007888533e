-- The 1-minute rollups of the frames of each (instance, [from, to)) range passed, computed in
-- numpy (plpython/rollup.py), one row per (instance, minute): sum/min/max/last as arrays in
-- the order of the layout named (series ids and counts then come from it: every series of it
-- counted n_all values), or, where NaN/inf were left out or a series was merged from two
-- layouts, with explicit series ids and counts (layout_id NULL). Values leave PL/Python as
-- arrays, not as a row a series: PL/Python converts every value it returns through its text
-- form (~2 us each), and a row a series cost 8 of them. SQL's unnest() of the frame values
-- would cost ~0.4 us a sample; stacking a minute's frames into a matrix costs ~0.03 us. Frame
-- values are bytes numpy reads as they are; layouts' int4[] travel as array_send() bytes.
-- bucket is epoch seconds (cheaper out of Python than a timestamptz).
-- Internal to maintain() (through rollup_minutes()): runs as its caller.
CREATE OR REPLACE FUNCTION pganalytics.rollup_minute_groups(p_instance_ids int[], p_from timestamptz[], p_to timestamptz[])
RETURNS TABLE (instance_id int, bucket float8, layout_id int, series_ids int[], n_all int, n int[],
               sum float8[], min float8[], max float8[], last float8[])
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module rollup
if "rollup_minutes.groups" not in SD:
    # one row per (instance, minute, layout): its frames' values concatenated in time order
    SD["rollup_minutes.groups"] = plpy.prepare(
        "SELECT f.instance_id, (floor(extract(epoch FROM f.ts) / 60) * 60)::float8 AS bucket, f.layout_id,"
        "       array_agg(extract(epoch FROM f.ts)::float8 ORDER BY f.ts) AS epochs,"
        "       string_agg(f.vals, ''::bytea ORDER BY f.ts) AS vals"
        " FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) AS r(instance_id, t0, t1)"
        " JOIN pganalytics.sample_frames f ON f.instance_id = r.instance_id AND f.ts >= r.t0 AND f.ts < r.t1"
        " GROUP BY 1, 2, 3",
        ["int[]", "timestamptz[]", "timestamptz[]"])
    SD["rollup_minutes.layouts"] = plpy.prepare(
        "SELECT l.layout_id, array_send(l.series_ids) AS series_ids FROM pganalytics.sample_layouts l"
        " WHERE l.instance_id = ANY ($1::int[]) AND l.layout_id = ANY ($2::int[])",
        ["int[]", "int[]"])
rows = SD["rollup_minutes.groups"].execute([p_instance_ids, p_from, p_to])
groups = [(r["instance_id"], r["bucket"], r["layout_id"], r["epochs"], r["vals"]) for r in rows]
del rows
used = sorted({g[2] for g in groups})
layouts = {r["layout_id"]: rollup.int4_array(r["series_ids"])
           for r in SD["rollup_minutes.layouts"].execute([sorted({g[0] for g in groups}), used])} if used else {}
return rollup.minute_groups(groups, layouts)
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.rollup_minute_groups(int[], timestamptz[], timestamptz[]) FROM PUBLIC;
