"""Per-series online statistics, one block per instance, folded a minute at a time with numpy.

A block holds, for every series of one instance (sorted by series id), what detectors know:
Welford's count, mean and M2 (variance = m2 / (n - 1)), an EWMA, the last value fed and the
minute it came from, and the counter's last raw value (to make the next rate). Each field is one
array stored as bytes (big-endian float8, as frames are): bytes cross between PostgreSQL and
PL/Python as one copy, where a row a series cost an index probe, a tuple lock and a heap update
each minute (~10 us a series), and a float8[] a conversion per value. NaN stands for SQL NULL
(no EWMA or last value yet); frame_value() reads it so.

The value fed is the minute's mean for a gauge and, for a counter, its per-second rate between
consecutive minute ends (none across a reset: the raw value went down). Used by
sql/store/rollup_minute_groups.sql; runs on numpy 1.24 through 2.x.
"""
import numpy as np

# The block's float fields, in the order the SQL (sql/store/rollup_minute_groups.sql) names them.
FIELDS = ("n", "mean", "m2", "ewma", "last_value", "last_bucket", "counter_last")


def decode(sent):
    return np.frombuffer(sent, dtype=">f8").astype(np.float64)


def encode(values):
    return np.asarray(values, dtype=">f8").tobytes()


def empty_block():
    block = {f: np.empty(0, dtype=np.float64) for f in FIELDS}
    block["series_ids"] = np.empty(0, dtype=np.int64)
    block["gauge"] = np.empty(0, dtype=bool)
    return block


def widen(block, ids, gauge):
    """The block with the series `ids` (not yet in it; `gauge` their kinds) added, still sorted,
    their fields as a series seen for the first time has them (set in fold())."""
    all_ids = np.concatenate([block["series_ids"], ids])
    order = np.argsort(all_ids, kind="stable")
    out = {"series_ids": all_ids[order], "gauge": np.concatenate([block["gauge"], gauge])[order]}
    fresh = np.full(ids.size, np.nan)
    for f in FIELDS:
        out[f] = np.concatenate([block[f], fresh])[order]
    return out


def fold(block, ids, n, total, last, bucket, alpha):
    """Fold one minute's rollups of some of the block's series (ids: every one of them already
    in the block; n, total, last: the minute's count, sum and last value; bucket: the minute's
    start, epoch seconds) into the block, in place. A series seen for the first time (its n
    NaN) starts: a gauge with n 1, its mean; a counter with n 0 and no rate yet."""
    pos = np.searchsorted(block["series_ids"], ids)
    if ids.size and (pos.max() >= block["series_ids"].size or (block["series_ids"][pos] != ids).any()):
        raise KeyError("fold(): a series is not in the block (widen() it first)")
    gauge = block["gauge"][pos]
    mean_of_minute = total / n
    old_n = block["n"][pos]
    new = np.isnan(old_n)
    # x: the value fed; NaN where none (a counter's first minute, a reset, a minute gone back)
    with np.errstate(invalid="ignore", divide="ignore"):
        elapsed = bucket - block["last_bucket"][pos]
        rate = (last - block["counter_last"][pos]) / elapsed
        rising = (last >= block["counter_last"][pos]) & (elapsed > 0)
    x = np.where(gauge, mean_of_minute, np.where(rising & ~new, rate, np.nan))
    fed = ~np.isnan(x)
    n0 = np.where(new, 0.0, old_n)
    mean0 = np.where(new, 0.0, block["mean"][pos])
    m20 = np.where(new, 0.0, block["m2"][pos])
    delta = np.where(fed, x - mean0, 0.0)
    block["n"][pos] = n0 + fed
    block["mean"][pos] = mean0 + np.where(fed, delta / (n0 + 1), 0.0)
    block["m2"][pos] = m20 + np.where(fed, delta * delta * n0 / (n0 + 1), 0.0)
    ewma = block["ewma"][pos]
    block["ewma"][pos] = np.where(fed, np.where(np.isnan(ewma), x, (1 - alpha) * ewma + alpha * x), ewma)
    block["last_value"][pos] = np.where(fed, x, block["last_value"][pos])
    block["last_bucket"][pos] = bucket
    block["counter_last"][pos] = last
    return block


def from_row(row, int4_array):
    """A block as stored (series_ids as array_send() bytes, decoded by int4_array; the fields
    as bytes) decoded."""
    block = {f: decode(row[f]) for f in FIELDS}
    block["series_ids"] = int4_array(row["series_ids"])
    block["gauge"] = np.frombuffer(row["gauge"], dtype=np.uint8).astype(bool)
    if any(block[f].size != block["series_ids"].size for f in (*FIELDS, "gauge")):
        raise ValueError(f"series_state_blocks of instance {row['instance_id']}: fields of different lengths")
    return block


def field_bytes(block):
    """The block's fields as stored, in FIELDS' order."""
    return [encode(block[f]) for f in FIELDS]


def gauge_bytes(block):
    return block["gauge"].astype(np.uint8).tobytes()


def unknown_series(blocks, aggregates):
    """(instance ids, series ids) of the rolled-up series that no block has yet: their kinds
    are needed (series.kind) before they can be folded."""
    wanted: dict = {}
    for instance_id, _, _, agg in aggregates:
        block = blocks.get(instance_id)
        ids = agg["series_id"]
        wanted.setdefault(instance_id, []).append(ids if block is None else ids[~np.isin(ids, block["series_ids"])])
    iids, sids = [], []
    for instance_id, parts in wanted.items():
        new = np.unique(np.concatenate(parts))
        iids.extend([instance_id] * new.size)
        sids.extend(new.tolist())
    return iids, sids


def fold_minutes(blocks, aggregates, kinds, alpha):
    """Fold rollup.minute_aggregates() entries into `blocks` (instance_id -> block; an instance
    without one gets one), each instance's minutes in time order. kinds: (instance_id,
    series_id) -> gauge? for every series unknown_series() named. Returns the instance ids
    whose series set changed (their series_ids and gauge must be written too)."""
    grown = set()
    for instance_id, bucket, _, agg in sorted(aggregates, key=lambda a: (a[0], a[1])):
        block = blocks.get(instance_id)
        if block is None:
            block = blocks[instance_id] = empty_block()
        ids = agg["series_id"]
        new = np.unique(ids[~np.isin(ids, block["series_ids"])])
        if new.size:
            missing = [int(s) for s in new if (instance_id, int(s)) not in kinds]
            if missing:
                raise KeyError(f"instance {instance_id}: series {missing[:5]} are not registered")
            gauge = np.array([kinds[(instance_id, int(s))] for s in new], dtype=bool)
            block = blocks[instance_id] = widen(block, new, gauge)
            grown.add(instance_id)
        fold(block, ids, agg["n"].astype(np.float64), agg["sum"], agg["last"], float(bucket), alpha)
    return grown
