"""The anomaly detector (plpython/anomaly.py) on series whose answer is known."""
import csv
import math
from pathlib import Path

import numpy as np
import pytest

from pganalytics.plpython import anomaly

MIN = 60.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % 86400)  # a midnight, UTC


def noise(n, seed=1, level=100.0, sd=5.0):
    return list(np.random.default_rng(seed).normal(level, sd, n))


def minutes(n, step=MIN):
    return [T0 + i * step for i in range(n)]


def test_online_a_points_score_depends_only_on_earlier_points():
    values = noise(1500, seed=3)
    values[900] += 80
    values[1200:] = [v + 40 for v in values[1200:]]
    ts = minutes(len(values))
    full = anomaly.score(ts, values)
    for cut in (101, 650, 900, 901, 1250):
        part = anomaly.score(ts[:cut], values[:cut])
        for a, b in zip(full, part):
            assert a[:cut] == b


def test_a_spike_is_flagged_and_the_noise_around_it_is_not():
    values = noise(2000, seed=4)
    values[1500] += 60  # 12 standard deviations
    _, scores, flags = anomaly.score(minutes(2000), values)
    assert flags[1500]
    assert scores[1500] > 0.6
    assert scores[1500] > max(scores[100:1500])  # above everything the noise scored


def test_gaussian_noise_raises_few_false_alerts():
    total = 0
    for seed in range(5):
        values = noise(3000, seed=10 + seed)
        total += sum(anomaly.score(minutes(3000), values)[2])
    assert total <= 5, f"{total} alerts on 15,000 points of pure noise"


def test_warmup_points_are_neutral():
    values = noise(300, seed=5)
    values[50] += 500
    _, scores, flags = anomaly.score(minutes(300), values)
    assert scores[:100] == [0.0] * 100 and not any(flags[:100])


def test_a_new_level_alerts_then_is_learnt_as_normal():
    values = noise(4000, seed=6)
    values[2000:] = [v + 50 for v in values[2000:]]
    expected, _, flags = anomaly.score(minutes(4000), values)
    assert any(flags[2000:2010])
    assert sum(flags[2600:]) == 0
    assert abs(expected[-1] - 150) < 5  # the expected value followed the level


def test_a_change_of_variance_alerts():
    values = noise(3000, seed=7, sd=1.0)
    rng = np.random.default_rng(8)
    values[2000:] = list(100 + rng.normal(0, 8.0, 1000))
    flags = anomaly.score(minutes(3000), values)[2]
    assert any(flags[2000:2050])


def test_a_known_daily_peak_stops_alerting_once_the_profile_is_learnt():
    """An hourly series with a batch peak at 02:00 every day: alerts on the first days at most,
    none once seasonal_min_cycles days are learnt, and a peak at an unusual hour still alerts."""
    days = 20
    rng = np.random.default_rng(9)
    ts = minutes(days * 288, step=300.0)  # 5-minute points
    hours = [(t % 86400) / 3600 for t in ts]
    values = [50 + rng.normal(0, 2) + (60 if 2 <= h < 3 else 0) for h in hours]
    peak_at_noon = 17 * 288 + 12 * 12  # day 17, 12:00
    for k in range(6):
        values[peak_at_noon + k] += 60
    expected, _, flags = anomaly.score(ts, values)
    later = [i for i in range(5 * 288, days * 288) if not peak_at_noon <= i < peak_at_noon + 6]
    assert sum(flags[i] for i in later) == 0
    assert any(flags[peak_at_noon:peak_at_noon + 6])
    two_am_day_10 = 10 * 288 + 2 * 12 + 6
    assert abs(expected[two_am_day_10] - 110) < 10  # the profile expects the peak
    unseasoned = anomaly.score(ts, values, {"seasonal": False})
    assert abs(unseasoned[0][two_am_day_10] - 110) > 40  # without profiles, nothing expects it


def test_welford_statistics_are_the_exact_mean_and_variance():
    values = noise(500, seed=11, level=1e6, sd=3.0)
    bank = anomaly.Bank(1)
    for t, v in zip(minutes(500), values):
        bank.step([t], [v])
    s = bank.state
    assert s["w_n"][0] == 500
    assert math.isclose(s["w_mean"][0], float(np.mean(values)), rel_tol=1e-12)
    assert math.isclose(s["w_m2"][0] / 499, float(np.var(values, ddof=1)), rel_tol=1e-9)


def test_a_bank_scores_many_series_as_each_alone():
    """The live path steps many series at once; each gets what it gets alone, and a series
    without a point in a step (NaN) is left as it was."""
    series = [noise(400, seed=20 + k) for k in range(3)]
    series[1][300] += 100
    ts = minutes(400)
    bank = anomaly.Bank(3)
    together = [[] for _ in series]
    for i, t in enumerate(ts):
        x = [s[i] for s in series]
        if i % 7 == 0:
            x[2] = math.nan  # series 2 misses every 7th point
        _, sc, _ = bank.step([t] * 3, x)
        for k in range(3):
            together[k].append(sc[k])
    for k in (0, 1):
        assert together[k] == anomaly.score(ts, series[k])[1]
    kept = [i for i in range(400) if i % 7]
    alone = anomaly.score([ts[i] for i in kept], [series[2][i] for i in kept])[1]
    assert [together[2][i] for i in kept] == alone
    assert all(math.isnan(together[2][i]) for i in range(0, 400, 7))


def test_state_round_trips_through_a_matrix():
    bank = anomaly.Bank(2)
    for i, t in enumerate(minutes(300)):
        bank.step([t, t], [float(i), float(i % 13)])
    sent = {part: anomaly.encode(anomaly.pack(bank.state, part)) for part in anomaly.PARTS}  # as a block stores it
    copy = anomaly.Bank(2, state=anomaly.unpack({part: anomaly.decode(b, 2, part) for part, b in sent.items()}))
    for t in minutes(50):
        t += 300 * MIN
        a = bank.step([t, t], [5.0, 7.0])
        b = copy.step([t, t], [5.0, 7.0])
        for u, v in zip(a, b):
            assert np.array_equal(u, v)


@pytest.mark.parametrize("ts, values, message", [
    ([1.0, 2.0], [1.0], "2 timestamps but 1 values"),
    ([1.0, None], [1.0, 2.0], "element 2 is NULL"),
    ([1.0, 2.0], [1.0, None], "element 2 is NULL"),
    ([1.0, 2.0], [1.0, math.nan], "value 2 is nan"),
    ([1.0, 2.0], [1.0, math.inf], "value 2 is inf"),
    ([1.0, 1.0], [1.0, 2.0], "timestamp 2 duplicates timestamp 1"),
    ([2.0, 1.0], [1.0, 2.0], "timestamp 2 is earlier than timestamp 1"),
])
def test_bad_series_are_refused_saying_why(ts, values, message):
    with pytest.raises(ValueError, match=message):
        anomaly.score(ts, values)


@pytest.mark.parametrize("options, message", [
    ({"threshold": 0}, "threshold must be a number in"),
    ({"threshold": "high"}, "threshold must be a number in"),
    ({"warmup_points": -1}, "warmup_points must be an integer"),
    ({"warmup_points": 2.5}, "warmup_points must be an integer"),
    ({"detectors": ["robust", "magic"]}, "detectors must be a non-empty list"),
    ({"detectors": []}, "detectors must be a non-empty list"),
    ({"treshold": 0.4}, "unknown option"),
    ({"seasonal": "yes"}, "seasonal must be true or false"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_options_are_refused_saying_why(options, message):
    with pytest.raises(anomaly.OptionError, match=message):
        anomaly.check_options(options)


def test_short_series_score_neutral_and_empty_is_empty():
    assert anomaly.score([], []) == ([], [], [])
    _, scores, flags = anomaly.score([1.0, 2.0, 3.0], [1.0, 100.0, -50.0])
    assert scores == [0.0, 0.0, 0.0] and flags == [False] * 3


def test_normal_tail_matches_the_exact_erfc():
    for z in (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 20.0):
        exact = math.log10(0.5 * math.erfc(z / math.sqrt(2)))
        assert abs(anomaly.log10_normal_tail(np.array([z]))[0] - exact) < 1e-6 * max(1.0, abs(exact))


def test_live_fold_in_chunks_scores_as_the_whole_series_does():
    """The live path folds a few minutes at a time into stored state bytes; every key's points
    score exactly as anomaly_scores() scores its whole series, and a key first seen late joins."""
    rng = np.random.default_rng(12)
    n = 700
    ts = minutes(n)
    a = list(rng.normal(50, 3, n))
    a[500] += 40
    b = list(rng.normal(10, 1, n))
    keys, sent, got = [], None, {"x/": [], "y/db1": []}
    at, profile_writes = 0, 0
    for size in [1, 5, 60, 2, 200, 3, 429]:
        chunk = range(at, at + size)
        pk, bk, vv = [], [], []
        for i in chunk:
            points = [("x/", a[i])] + ([("y/db1", b[i])] if i >= 300 else [])  # y first seen at 300
            for key, v in points:
                pk.append(key)
                bk.append(ts[i])
                vv.append(v)
        keys, new, scored = anomaly.live_fold(keys, sent, pk, bk, vv)
        profile_writes += new["profiles"] is not None
        sent = {"hot": new["hot"], "profiles": new["profiles"] or sent["profiles"]}
        for key, _, _, _, score, _ in scored:
            got[key].append(score)
        at += size
    assert at == n and keys == ["x/", "y/db1"]
    assert profile_writes < 7  # the 1-minute chunks within an hour left the profiles alone
    assert got["x/"] == anomaly.score(ts, a)[1]
    assert got["y/db1"] == anomaly.score(ts[300:], b[300:])[1]
    assert got["x/"][500] >= 0.5


def test_a_trained_model_overrides_threshold_weights_and_weekly_profile():
    values = noise(400, seed=13)
    values[300] += 60
    ts = minutes(400)
    plain = anomaly.score(ts, values)
    assert plain[2][300]
    high = anomaly.Bank(1, model={"threshold": [0.99]})
    muted = anomaly.Bank(1, model={"weights": [[0.0] * len(anomaly.DETECTORS)]})
    shaped = anomaly.Bank(1, model={"week_profile": [[0.0] * 168]})
    flags = {"high": [], "muted": [], "shaped": []}
    for t, v in zip(ts, values):
        flags["high"].append(bool(high.step([t], [v])[2][0]))
        flags["muted"].append(bool(muted.step([t], [v])[2][0]))
        flags["shaped"].append(bool(shaped.step([t], [v])[2][0]))
    assert not any(flags["high"]) and not any(flags["muted"])
    assert flags["shaped"][300]  # a flat fitted profile changes nothing about a spike


def batch_day(days, seed, peak=60.0, step=300.0):
    rng = np.random.default_rng(seed)
    ts = [T0 + i * step for i in range(int(days * 86400 / step))]
    values = [50 + rng.normal(0, 2) + (peak if 2 <= (t % 86400) / 3600 < 3 else 0.0) for t in ts]
    return ts, values


def test_training_on_two_days_stops_the_next_daily_batch_peak_alerting():
    """Without a model the third day's 02:00 batch peak alerts (the online profile needs three
    days); fitted on the first two days, it does not, and a peak at noon still does."""
    ts, values = batch_day(4, seed=14)
    day = 288
    noon_day3 = 3 * day + 12 * 12
    for k in range(6):
        values[noon_day3 + k] += 60
    model = anomaly.fit_model({"m/": (ts[:2 * day], values[:2 * day])})
    assert model["summary"]["m/"]["profile"] == "hour_of_day"
    peak_day2 = range(2 * day + 24, 2 * day + 36)
    plain = anomaly.score(ts, values)[2]
    assert any(plain[i] for i in peak_day2)
    bank = anomaly.Bank(1, model=anomaly._model_rows({**model, "threshold": model["threshold"]}, ["m/"]))
    flags = [bool(bank.step([t], [v])[2][0]) for t, v in zip(ts, values)]
    assert not any(flags[2 * day:noon_day3]), [i for i in range(2 * day, noon_day3) if flags[i]]
    assert any(flags[noon_day3:noon_day3 + 6])


def test_training_is_deterministic_and_mutes_a_detector_that_cries_wolf():
    ts, values = batch_day(3, seed=15, peak=0.0)
    ts2, values2 = list(ts), list(values)
    a = anomaly.fit_model({"m/": (ts, values)})
    b = anomaly.fit_model({"m/": (ts2, values2)})
    for k in ("week_profile", "threshold", "weights"):
        assert np.array_equal(a[k], b[k], equal_nan=True)
    assert a["summary"]["m/"]["profile"] is None  # no daily shape to fit
    # a sensor that steps up and down every few hours: the level detector would alert each time
    rng = np.random.default_rng(16)
    noisy = [50 + rng.normal(0, 1) + (20 if (i // 37) % 2 else 0) for i in range(len(ts))]
    fitted = anomaly.fit_model({"m/": (ts, noisy)})
    assert fitted["summary"]["m/"]["weights"], "some detector should have been scaled down"
    assert (fitted["weights"] <= 1).all() and (fitted["weights"] > 0).all()


def test_live_fold_many_gives_each_block_what_live_fold_gives_it_alone():
    """The live path folds a chunk of instances in one Bank; minutes that only some blocks
    have leave the others' series as they were, and profiles are stored only where they changed."""
    rng = np.random.default_rng(17)
    ts = minutes(400)
    blocks = []
    for b in range(3):
        series = {f"t/{k}": list(rng.normal(10 * (b + 1), 1 + k, 400)) for k in range(b + 1)}
        series[f"t/{b}"][350] += 50
        blocks.append(series)
    state = [([], None) for _ in blocks]
    for lo, hi in ((0, 150), (150, 151), (151, 400)):
        chunk = []
        for b, series in enumerate(blocks):
            # block 1 has no points in the single-minute call; block 2 skips every 5th minute
            mins = [i for i in range(lo, hi) if not (b == 1 and hi - lo == 1) and not (b == 2 and i % 5 == 0)]
            pk = [k for i in mins for k in series]
            bk = [ts[i] for i in mins for _ in series]
            vv = [series[k][i] for i in mins for k in series]
            chunk.append((state[b][0], state[b][1], pk, bk, vv, None))
        together = anomaly.live_fold_many(chunk)
        alone = [anomaly.live_fold(*c[:5]) for c in chunk]
        for b, (t, a) in enumerate(zip(together, alone)):
            assert t[0] == a[0] and t[2] == a[2] and t[1]["hot"] == a[1]["hot"], b
            assert t[1]["profiles"] == a[1]["profiles"], b
            state[b] = (t[0], {"hot": t[1]["hot"], "profiles": t[1]["profiles"] or state[b][1]["profiles"]})
    assert any(p[5] for p in together[2][2])  # block 2's spike at 350 alerted


def test_a_short_sustained_drop_is_flagged_even_when_a_spike_set_the_record_before():
    """A cache hit ratio around 93 % that fell once to 44 % for one minute (an autovacuum scan)
    and later sits at 45 % for 8 minutes: the values' record is the earlier dip, but the level
    has never been that low, and the episode must alert within a few minutes."""
    rng = np.random.default_rng(7)
    values = list(0.93 + rng.normal(0, 0.005, 300))
    values[80] = 0.44
    values[200:208] = [0.45 + rng.normal(0, 0.003) for _ in range(8)]
    _, score, flags = anomaly.score(minutes(len(values)), values)
    assert any(flags[200:204]), [round(s, 2) for s in score[198:210]]
    assert not any(flags[100:200]) and not any(flags[215:])


def test_the_level_record_catches_a_real_cache_drop_the_likelihoods_miss():
    """Collected by bench/anomaly_injection.py (pgbench, a table scan loop for 9 minutes, one
    poll a minute): the hit ratio drifts 95 -> 91 %, dips once to 44 % at minute 80, then sits
    at 45 % from minute 150 for 9 minutes. The likelihoods alone never reach the threshold."""
    with open(Path(__file__).parent / "data" / "pgbench_hit_ratio_drop.csv") as f:
        rows = list(csv.DictReader(f))
    ts = [float(r["offset_s"]) * MIN for r in rows]
    values = [float(r["hit_ratio"]) for r in rows]
    drop = [i for i, v in enumerate(values) if i > 100 and v < 0.6]
    assert len(drop) == 9
    _, _, flags = anomaly.score(ts, values)
    assert any(flags[drop[0]:drop[0] + 4]) and sum(flags) == 1
    _, _, slow = anomaly.score(ts, values, {"detectors": ["robust", "gaussian", "level", "variance"]})
    assert not any(slow)


def test_a_state_stored_before_the_level_record_decodes_with_no_record():
    """Blocks written before the hot state grew (GROWN) are read with the added columns at
    their initial value, and scoring goes on from them."""
    values = noise(300, seed=4)
    bank = anomaly.Bank(1)
    for t, x in zip(minutes(250), values[:250]):
        bank.step(np.array([t]), np.array([x]))
    old_width = anomaly.state_width("hot") - len(anomaly.GROWN["hot"])
    stored = anomaly.encode(anomaly.pack(bank.state, "hot")[:, :old_width])
    hot = anomaly.decode(stored, 1, "hot")
    assert hot.shape == (1, anomaly.state_width("hot")) and np.isnan(hot[0, old_width:]).all()
    assert np.array_equal(hot[0, :old_width], anomaly.pack(bank.state, "hot")[0, :old_width], equal_nan=True)
    with pytest.raises(ValueError, match="does not hold"):
        anomaly.decode(stored[:-8], 1, "hot")
    profiles = anomaly.decode(anomaly.encode(anomaly.pack(bank.state, "profiles")), 1, "profiles")
    resumed = anomaly.Bank(1, state=anomaly.unpack({"hot": hot, "profiles": profiles}))
    for t, x in zip(minutes(300)[250:], values[250:]):
        _, score, _ = resumed.step(np.array([t]), np.array([x]))
        assert np.isfinite(score).all()
