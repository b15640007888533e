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
