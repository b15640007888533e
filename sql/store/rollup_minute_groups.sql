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
-- With p_state_alpha (new minutes, each range one minute after the state's last) the same
-- aggregates are also folded into series_state_blocks (plpython/state.py: Welford, EWMA with
-- that alpha, counters' rates): one read and one write of a row per instance, no second pass
-- over the frames.
-- Internal to maintain() (through rollup_minutes()): runs as its caller.
CREATE OR REPLACE FUNCTION pganalytics.rollup_minute_groups(p_instance_ids int[], p_from timestamptz[], p_to timestamptz[],
                                                            p_state_alpha float8 DEFAULT NULL)
RETURNS TABLE (instance_id int, bucket float8, layout_id int, series_ids int[], n_all int, n int[],
               sum float8[], min float8[], max float8[], last float8[])
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module rollup
#pganalytics:module state
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
aggregates = rollup.minute_aggregates(groups, layouts)
del groups
if p_state_alpha is not None:
    if not 0 < p_state_alpha <= 1:
        plpy.error("rollup_minute_groups: the EWMA alpha must be in (0, 1], not %r" % p_state_alpha)
    if "state.read" not in SD:
        fields = ", ".join(state.FIELDS)
        SD["state.read"] = plpy.prepare(
            "SELECT b.instance_id, array_send(b.series_ids) AS series_ids, b.gauge, " + fields +
            " FROM pganalytics.series_state_blocks b WHERE b.instance_id = ANY ($1::int[])", ["int[]"])
        SD["state.kinds"] = plpy.prepare(
            "SELECT s.instance_id, s.series_id, s.kind = 'gauge' AS gauge FROM pganalytics.series s"
            " JOIN unnest($1::int[], $2::int[]) AS k(instance_id, series_id)"
            "   ON s.instance_id = k.instance_id AND s.series_id = k.series_id", ["int[]", "int[]"])
        params = ", ".join("$%d" % (k + 2) for k in range(len(state.FIELDS)))
        SD["state.update"] = plpy.prepare(
            "UPDATE pganalytics.series_state_blocks SET (" + fields + ", updated_at) = (" + params + ", now())"
            " WHERE instance_id = $1", ["int"] + ["bytea"] * len(state.FIELDS))
        n = len(state.FIELDS)
        # EXCLUDED.updated_at (the column's default), not now(): Citus takes only IMMUTABLE
        # functions in an ON CONFLICT DO UPDATE on a distributed table
        SD["state.upsert"] = plpy.prepare(
            "INSERT INTO pganalytics.series_state_blocks (instance_id, " + fields + ", series_ids, gauge)"
            " VALUES ($1, " + params + ", $%d, $%d)" % (n + 2, n + 3) +
            " ON CONFLICT (instance_id) DO UPDATE SET (" + fields + ", series_ids, gauge, updated_at) ="
            " (" + ", ".join("EXCLUDED." + f for f in state.FIELDS) + ", EXCLUDED.series_ids, EXCLUDED.gauge, EXCLUDED.updated_at)",
            ["int"] + ["bytea"] * n + ["int[]", "bytea"])
    iids = sorted({a[0] for a in aggregates})
    blocks = {r["instance_id"]: state.from_row(r, rollup.int4_array) for r in SD["state.read"].execute([iids])} if iids else {}
    need_iids, need_sids = state.unknown_series(blocks, aggregates)
    kinds = {(r["instance_id"], r["series_id"]): r["gauge"]
             for r in SD["state.kinds"].execute([need_iids, need_sids])} if need_iids else {}
    grown = state.fold_minutes(blocks, aggregates, kinds, p_state_alpha)
    for iid in iids:
        block = blocks[iid]
        if iid in grown:
            SD["state.upsert"].execute([iid, *state.field_bytes(block), block["series_ids"].tolist(), state.gauge_bytes(block)])
        else:
            SD["state.update"].execute([iid, *state.field_bytes(block)])
return rollup.minute_rows(aggregates)
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.rollup_minute_groups(int[], timestamptz[], timestamptz[], float8) FROM PUBLIC;
