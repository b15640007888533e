"""plpython/rollup.py on its own (numpy only): rollups of frames grouped as SQL groups them
agree with a plain per-series computation, NaN/inf are left out, and a series seen in two
layouts within a minute is merged into one row."""
from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

from pganalytics.plpython import rollup


def frames_of(seed: int):
    rng = random.Random(seed)
    layouts = {1: [10, 11, 12], 2: [12, 13]}  # series 12 is in both layouts
    frames = []
    for inst in (1, 2):
        for t in range(0, 180, 10):
            for layout in (1, 2):
                vals = [rng.gauss(50, 10) for _ in layouts[layout]]
                if rng.random() < 0.1:
                    vals[0] = rng.choice([math.nan, math.inf])
                frames.append((inst, 1_800_000_000.0 + t + layout, layout, np.asarray(vals)))
    return frames, layouts


def naive(frames, layouts):
    out: dict = {}
    for inst, epoch, layout, vals in sorted(frames, key=lambda f: f[1]):
        for sid, v in zip(layouts[layout], vals):
            if math.isfinite(v):
                key = (inst, sid, math.floor(epoch / 60) * 60)
                out.setdefault(key, []).append(v)
    return {k: (len(v), sum(v), min(v), max(v), v[-1]) for k, v in out.items()}


def as_dict(out):
    return {(int(i), int(s), float(b)): (int(n), float(t), float(lo), float(hi), float(last))
            for i, s, b, n, t, lo, hi, last in zip(*(out[c] for c in rollup.COLUMNS))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grouped_frames_match_a_plain_computation(seed):
    frames, layouts = frames_of(seed)
    expect = naive(frames, layouts)
    groups: dict = {}
    for inst, epoch, layout, vals in sorted(frames, key=lambda f: f[1]):
        g = groups.setdefault((inst, math.floor(epoch / 60) * 60, layout), ([], []))
        g[0].append(epoch)
        g[1].append(struct.pack(f">{len(vals)}d", *vals))
    grouped = as_dict(rollup.grouped_rollups(
        [(i, b, lay, e, b"".join(v)) for (i, b, lay), (e, v) in groups.items()], layouts))
    assert grouped.keys() == expect.keys()
    for key, (n, total, lo, hi, last) in expect.items():
        assert grouped[key][0] == n and grouped[key][2:] == (lo, hi, last)
        assert grouped[key][1] == pytest.approx(total)


def test_values_not_matching_their_layout_are_refused():
    with pytest.raises(ValueError, match="do not match its layout"):
        rollup.grouped_rollups([(1, 0.0, 1, [0.0], struct.pack(">2d", 1, 2))], {1: [10]})
    with pytest.raises(KeyError, match="layout 9"):
        rollup.grouped_rollups([(1, 0.0, 9, [0.0], struct.pack(">d", 1))], {})


def expand(rows, layouts):
    """minute_groups() rows as the plain rows rollup_minutes() makes of them in SQL."""
    out = {}
    for inst, bucket, layout_id, series_ids, n_all, n, total, lo, hi, last in rows:
        ids = layouts[layout_id] if layout_id is not None else series_ids
        assert (layout_id is None) == (n_all is None) == (series_ids is not None) == (n is not None)
        assert len(ids) == len(total) == len(lo) == len(hi) == len(last)
        for k, sid in enumerate(ids):
            out[(inst, sid, bucket)] = (n_all if n is None else n[k], total[k], lo[k], hi[k], last[k])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_minute_groups_hold_the_same_rollups_as_arrays(seed):
    frames, layouts = frames_of(seed)
    groups: dict = {}
    for inst, epoch, layout, vals in sorted(frames, key=lambda f: f[1]):
        g = groups.setdefault((inst, math.floor(epoch / 60) * 60, layout), ([], []))
        g[0].append(epoch)
        g[1].append(struct.pack(f">{len(vals)}d", *vals))
    flat = [(i, b, lay, e, b"".join(v)) for (i, b, lay), (e, v) in groups.items()]
    rows = rollup.minute_groups(flat, layouts)
    assert expand(rows, layouts) == as_dict(rollup.grouped_rollups(flat, layouts))
    # one layout a minute, all finite: the compact form (the layout's order, one count)
    clean = [g for g in flat if g[2] == 1 and all(math.isfinite(v) for v in np.frombuffer(g[4], ">f8"))]
    compact = rollup.minute_groups(clean, layouts)
    assert compact and all(r[2] == 1 and r[3] is None and r[4] == len(g[3]) for r, g in zip(compact, clean))
    assert expand(compact, layouts) == as_dict(rollup.grouped_rollups(clean, layouts))
