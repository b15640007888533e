"""plpython/state.py on its own (numpy only): folding minutes into an instance's block agrees
with a plain per-series Welford/EWMA loop (gauges fed their minute's mean, counters their rate,
none across a reset), whatever subset of series a minute holds and when series first appear."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from pganalytics.plpython import rollup, state

ALPHA = 0.2


def naive(minutes, kinds):
    """(instance, series) -> dict of the state, one value fed a minute, the slow obvious way."""
    out: dict = {}
    for inst, bucket, ids, n, total, last in sorted(minutes, key=lambda m: (m[0], m[1])):
        for sid, cnt, tot, lst in zip(ids, n, total, last):
            s = out.get((inst, sid))
            gauge = kinds[(inst, sid)]
            if s is None:
                x = tot / cnt if gauge else None
                s = out[(inst, sid)] = {"n": 0, "mean": 0.0, "m2": 0.0, "ewma": None, "last_value": None}
            elif gauge:
                x = tot / cnt
            else:
                x = (lst - s["counter_last"]) / (bucket - s["last_bucket"]) \
                    if lst >= s["counter_last"] and bucket > s["last_bucket"] else None
            if x is not None:
                delta = x - s["mean"]
                s["mean"] += delta / (s["n"] + 1)
                s["m2"] += delta * delta * s["n"] / (s["n"] + 1)
                s["n"] += 1
                s["ewma"] = x if s["ewma"] is None else (1 - ALPHA) * s["ewma"] + ALPHA * x
                s["last_value"] = x
            s["last_bucket"], s["counter_last"] = bucket, lst
    return out


def random_minutes(seed):
    rng = random.Random(seed)
    kinds = {}
    minutes = []
    counters: dict = {}
    for inst in (1, 2, 3):
        pool = list(range(100, 100 + rng.randint(3, 12)))
        for sid in pool:
            kinds[(inst, sid)] = rng.random() < 0.5
        for k in range(rng.randint(1, 8)):
            ids = sorted(rng.sample(pool, rng.randint(1, len(pool))), key=lambda _: rng.random())
            n = [rng.randint(1, 60) for _ in ids]
            total = [rng.gauss(50, 20) * c for c in n]
            last = []
            for sid in ids:
                step = rng.choice([0, 5, 30, -1000]) if rng.random() < 0.2 else rng.uniform(0, 100)
                counters[(inst, sid)] = max(0.0, counters.get((inst, sid), 0.0) + step)
                last.append(counters[(inst, sid)])
            minutes.append((inst, 1_800_000_000.0 + 60 * k, ids, n, total, last))
    return minutes, kinds


def as_aggregates(minutes):
    return [(inst, bucket, None, {"series_id": np.asarray(ids, dtype=np.int64), "n": np.asarray(n),
                                  "sum": np.asarray(total, dtype=float), "last": np.asarray(last, dtype=float)})
            for inst, bucket, ids, n, total, last in minutes]


def close(a, b):
    if b is None:
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_folded_blocks_match_a_per_series_loop(seed):
    minutes, kinds = random_minutes(seed)
    expected = naive(minutes, kinds)
    aggregates = as_aggregates(minutes)
    rng = random.Random(seed)
    rng.shuffle(aggregates)  # fold_minutes() puts each instance's minutes in time order itself
    blocks: dict = {}
    need = state.unknown_series(blocks, aggregates)
    assert sorted(zip(*need)) == sorted({(m[0], s) for m in minutes for s in m[2]})
    grown = state.fold_minutes(blocks, aggregates, kinds, ALPHA)
    assert grown == {m[0] for m in minutes}
    for inst, block in blocks.items():
        assert list(block["series_ids"]) == sorted(block["series_ids"])
        for k, sid in enumerate(block["series_ids"]):
            want = expected[(inst, int(sid))]
            assert block["gauge"][k] == kinds[(inst, int(sid))]
            for f in ("n", "mean", "m2", "ewma", "last_value", "last_bucket", "counter_last"):
                assert close(block[f][k], want[f]), (inst, sid, f, block[f][k], want[f])


def test_folding_in_two_calls_equals_one_and_blocks_survive_their_bytes():
    minutes, kinds = random_minutes(11)
    aggregates = sorted(as_aggregates(minutes), key=lambda a: a[1])
    once: dict = {}
    state.fold_minutes(once, aggregates, kinds, ALPHA)
    twice: dict = {}
    half = len(aggregates) // 2
    state.fold_minutes(twice, aggregates[:half], kinds, ALPHA)
    # what the store keeps between calls: bytes (series_ids as array_send() does it)
    stored = {}
    for inst, b in twice.items():
        ids = b["series_ids"]
        sent = np.zeros(ids.size, dtype=[("len", ">i4"), ("v", ">i4")])
        sent["len"], sent["v"] = 4, ids
        row = dict(zip(state.FIELDS, state.field_bytes(b)), instance_id=inst, gauge=state.gauge_bytes(b),
                   series_ids=bytes(20) + sent.tobytes())
        stored[inst] = state.from_row(row, rollup.int4_array)
    state.fold_minutes(stored, aggregates[half:], kinds, ALPHA)
    assert stored.keys() == once.keys()
    for inst in once:
        for f in (*state.FIELDS, "series_ids", "gauge"):
            np.testing.assert_array_equal(stored[inst][f], once[inst][f])


def test_an_unregistered_series_is_refused():
    aggregates = as_aggregates([(1, 0.0, [5], [1], [1.0], [1.0])])
    with pytest.raises(KeyError, match="not registered"):
        state.fold_minutes({}, aggregates, {}, ALPHA)


def test_a_block_whose_fields_disagree_is_refused():
    block = state.empty_block()
    row = dict(zip(state.FIELDS, state.field_bytes(block)), instance_id=7, gauge=b"\x01", series_ids=bytes(20))
    with pytest.raises(ValueError, match="instance 7"):
        state.from_row(row, rollup.int4_array)
