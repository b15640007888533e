"""One-minute rollups of sample frames, vectorised with numpy.

A frame is one snapshot of one instance: the values of a fixed list of series (its layout) at
one time. Frames of the same (instance, minute, layout) stack into a matrix whose columns are
series, so count/sum/min/max/last are column reductions: no per-sample Python and no sort.
A series that appears in two layouts within one minute (its source's series set changed) is
merged afterwards, on the far smaller aggregated rows. The frames come grouped by SQL
(sql/store/rollup_minutes.sql), their values concatenated: one numpy view a group.

Runs inside PostgreSQL (sql/store/rollup_minutes.sql) on numpy 1.24 through 2.x: only
long-stable numpy API is used. Non-finite values (NaN, +/-inf) are stored raw but left out of
the rollups, so one bad reading cannot poison a minute's min, max or mean.
"""
import numpy as np

COLUMNS = ("instance_id", "series_id", "bucket", "n", "sum", "min", "max", "last")

# array_send() of a one-dimensional array without NULLs: a 20-byte header (ndim, has-nulls,
# element type, length, lower bound), then each element as a big-endian length and value.
_HEADER = 20
_INT4 = np.dtype([("len", ">i4"), ("v", ">i4")])


def frame_values(vals):
    """A frame's values (big-endian float8s, as float8send() writes them) as float64."""
    return np.frombuffer(vals, dtype=">f8").astype(np.float64)


def int4_array(sent):
    return np.frombuffer(sent, dtype=_INT4, offset=_HEADER)["v"].astype(np.int64)


def _empty():
    ints = np.empty(0, dtype=np.int64)
    floats = np.empty(0, dtype=np.float64)
    return {"instance_id": ints, "series_id": ints, "bucket": floats, "n": ints,
            "sum": floats, "min": floats, "max": floats, "last": floats, "last_at": floats}


def _reduce_group(instance_id, bucket, ids, epochs, matrix):
    """Aggregates of one (instance, minute, layout) group: matrix is frames x series, in time order."""
    if matrix.ndim != 2 or matrix.shape[1] != ids.size:
        raise ValueError(f"instance {instance_id}: a frame's values do not match its layout "
                         f"({matrix.shape[-1] if matrix.ndim else 0} values, {ids.size} series)")
    finite = np.isfinite(matrix)
    if finite.all():  # the usual case: plain column reductions
        return {
            "instance_id": np.full(ids.size, instance_id, dtype=np.int64),
            "series_id": ids.astype(np.int64, copy=False),
            "bucket": np.full(ids.size, bucket, dtype=np.float64),
            "n": np.full(ids.size, matrix.shape[0], dtype=np.int64),
            "sum": matrix.sum(axis=0), "min": matrix.min(axis=0), "max": matrix.max(axis=0),
            "last": matrix[-1].copy(),
            "last_at": np.full(ids.size, epochs[-1], dtype=np.float64),
        }
    n = finite.sum(axis=0)
    keep = n > 0
    if not keep.all():
        matrix, finite, n, ids = matrix[:, keep], finite[:, keep], n[keep], ids[keep]
    zeroed = np.where(finite, matrix, 0.0)
    # The last finite value of each column: its row counted from the end.
    from_end = np.argmax(finite[::-1], axis=0)
    last_row = matrix.shape[0] - 1 - from_end
    cols = np.arange(ids.size)
    return {
        "instance_id": np.full(ids.size, instance_id, dtype=np.int64),
        "series_id": ids.astype(np.int64, copy=False),
        "bucket": np.full(ids.size, bucket, dtype=np.float64),
        "n": n.astype(np.int64),
        "sum": zeroed.sum(axis=0),
        "min": np.where(finite, matrix, np.inf).min(axis=0),
        "max": np.where(finite, matrix, -np.inf).max(axis=0),
        "last": matrix[last_row, cols],
        "last_at": np.asarray(epochs, dtype=np.float64)[last_row],
    }


def _merge_duplicates(out):
    """Fold rows with the same (instance, series, bucket) into one."""
    key = np.stack([out["instance_id"], out["series_id"], out["bucket"].astype(np.int64)])
    order = np.lexsort(key[::-1])
    sorted_key = key[:, order]
    starts = np.flatnonzero(np.concatenate(([True], (np.diff(sorted_key, axis=1) != 0).any(axis=0))))
    if starts.size == order.size:
        return out
    merged = {}
    for col in ("instance_id", "series_id", "bucket"):
        merged[col] = out[col][order][starts]
    merged["n"] = np.add.reduceat(out["n"][order], starts)
    merged["sum"] = np.add.reduceat(out["sum"][order], starts)
    merged["min"] = np.minimum.reduceat(out["min"][order], starts)
    merged["max"] = np.maximum.reduceat(out["max"][order], starts)
    # last: the value seen latest within each group of duplicates
    last_at = out["last_at"][order]
    group = np.repeat(np.arange(starts.size), np.diff(np.append(starts, order.size)))
    latest = np.lexsort((last_at, group))  # by group, then time: a group's latest comes last
    ends = np.append(starts[1:], order.size) - 1
    merged["last"] = out["last"][order][latest][ends]
    merged["last_at"] = last_at[latest][ends]
    return merged


def grouped_rollups(groups, layouts):
    """Rollups of frames already grouped by (instance, minute, layout) in SQL: `groups` yields
    (instance_id, bucket_epoch, layout_id, epochs in time order, the frames' vals concatenated
    in that order). One numpy view a group instead of one Python object a frame. Columns of
    one row per (instance, series, minute): the plain form of minute_groups()."""
    parts = [agg for minute in _reduced_parts(groups, layouts).values() for _, _, agg in minute]
    if not parts:
        return _empty()
    out = {col: np.concatenate([p[col] for p in parts]) for col in parts[0]}
    return _merge_duplicates(out)


def _reduced_parts(groups, layouts):
    """(instance_id, bucket) -> [(layout_id, layout size, aggregates)], in first-seen order."""
    by_minute: dict = {}
    id_arrays: dict = {}
    for instance_id, bucket, layout_id, epochs, vals in groups:
        ids = id_arrays.get(layout_id)
        if ids is None:
            if layout_id not in layouts:
                raise KeyError(f"frames name layout {layout_id}, which was not passed")
            ids = id_arrays[layout_id] = np.asarray(layouts[layout_id], dtype=np.int64)
        if len(vals) != 8 * ids.size * len(epochs):
            raise ValueError(f"instance {instance_id}: a frame's values do not match its layout ({ids.size} series)")
        matrix = frame_values(vals).reshape(len(epochs), ids.size)
        part = _reduce_group(instance_id, float(bucket), ids, epochs, matrix)
        by_minute.setdefault((instance_id, float(bucket)), []).append((layout_id, ids.size, part))
    return by_minute


def minute_aggregates(groups, layouts):
    """The rollups of frames grouped by (instance, minute, layout) in SQL (as grouped_rollups()
    takes them), one entry per (instance, minute): (instance_id, bucket, layout_id, aggregates).
    layout_id is set when the aggregates are in that layout's order with one count for all
    (the usual case), None where NaN/inf were left out or a series was merged from two layouts."""
    out = []
    for (instance_id, bucket), parts in _reduced_parts(groups, layouts).items():
        if len(parts) == 1:
            layout_id, size, agg = parts[0]
            n = agg["n"]
            if n.size == size and size and (n == n[0]).all():
                out.append((instance_id, bucket, layout_id, agg))
                continue
        else:
            agg = _merge_duplicates({c: np.concatenate([p[2][c] for p in parts]) for c in parts[0][2]})
        out.append((instance_id, bucket, None, agg))
    return out


def minute_rows(aggregates):
    """minute_aggregates() as the rows rollup_minute_groups() returns: (instance_id, bucket,
    layout_id, series_ids, n_all, n, sum, min, max, last), the last four arrays in the layout's
    order when layout_id is set (series_ids and n then None, every count n_all), else with
    explicit series ids and counts. Values leave PL/Python as four float arrays, not eight
    values a series (PL/Python converts each value it returns through its text form, ~2 us;
    the series ids come from the layout, in SQL)."""
    out = []
    for instance_id, bucket, layout_id, agg in aggregates:
        values = [agg[c].tolist() for c in ("sum", "min", "max", "last")]
        if layout_id is not None:
            out.append((instance_id, bucket, layout_id, None, int(agg["n"][0]), None, *values))
        else:
            out.append((instance_id, bucket, None, agg["series_id"].tolist(), None, agg["n"].tolist(), *values))
    return out


def minute_groups(groups, layouts):
    """minute_rows() of minute_aggregates(): the rollups of frames grouped in SQL, one row per
    (instance, minute)."""
    return minute_rows(minute_aggregates(groups, layouts))
