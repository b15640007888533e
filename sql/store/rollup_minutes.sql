-- The 1-minute rollups of the frames of each (instance, [from, to)) range passed, computed in
-- numpy (plpython/rollup.py): SQL's unnest() of the value arrays costs ~0.4 us a sample, a
-- fifth of the ingest budget; stacking a minute's frames into a matrix costs ~0.03 us. Frame
-- values are bytes numpy reads as they are; layouts' int4[] travel as array_send() bytes
-- (PL/Python's own array -> list conversion costs ~0.15 us a value).
-- bucket is returned as epoch seconds (cheaper out of Python than a timestamptz).
-- Internal to maintain(): runs as its caller.
CREATE OR REPLACE FUNCTION pganalytics.rollup_minutes(p_instance_ids int[], p_from timestamptz[], p_to timestamptz[])
RETURNS TABLE (instance_id int, series_id int, bucket float8, n int, sum float8, min float8, max float8, last float8)
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
out = rollup.grouped_rollups(groups, layouts)
del groups
return zip(*(out[c].tolist() for c in rollup.COLUMNS))
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.rollup_minutes(int[], timestamptz[], timestamptz[]) FROM PUBLIC;
