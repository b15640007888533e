"""The correlation primitives (plpython/correlation.py) on pairs whose relation is known."""
import math

import numpy as np
import pytest

from pganalytics.plpython import correlation

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def ar1(n, phi, rng, sd=1.0):
    e = rng.normal(0, sd, n)
    z = np.zeros(n)
    z[0] = e[0] / math.sqrt(max(1 - phi * phi, 1e-6))
    for t in range(1, n):
        z[t] = phi * z[t - 1] + e[t]
    return z


def pair(n, lag, rng, noise=0.5, phi=0.7, noise_phi=0.0, beta=1.0, trend=0.0):
    """x an AR(1); y[t] = beta x[t - lag] + AR(1) noise (lag > 0: x leads y); both with a trend."""
    pad = abs(lag) + 1
    base = ar1(n + 2 * pad, phi, rng)
    x = base[pad:pad + n]
    y = beta * base[pad - lag:pad - lag + n] + ar1(n, noise_phi, rng, noise)
    t = np.arange(n)
    return x + trend * t, y - 0.5 * trend * t


def times(n, step=1.0):
    return [T0 + i * step for i in range(n)]


@pytest.mark.parametrize("lag", [-45, -7, 0, 3, 30, 120])
@pytest.mark.parametrize("noise, noise_phi, beta", [(0.3, 0.0, 1.0), (1.0, 0.0, -1.0), (1.5, 0.8, 1.0)])
def test_known_lags_are_recovered_within_one_step(lag, noise, noise_phi, beta):
    rng = np.random.default_rng(1000 + lag + int(10 * noise))
    x, y = pair(1800, lag, rng, noise=noise, noise_phi=noise_phi, beta=beta, trend=0.01)
    lags, rs, info = correlation.lagged_correlation(times(1800), list(x), list(y), 150)
    best = info["best"]
    assert abs(best["lag"] - lag) <= 1, (best, lag)
    assert best["significant"]
    assert np.sign(best["r"]) == np.sign(beta)
    assert best["leader"] == (None if best["lag"] == 0 else ("x" if best["lag"] > 0 else "y"))
    assert lags == [float(k) for k in range(-150, 151)]
    assert info["prepared"] == "detrended", "an AR(1) with a trend is stationary around it"


def test_lag_convention_x_leading_is_positive_at_a_coarse_step():
    rng = np.random.default_rng(7)
    x, y = pair(600, 4, rng, noise=0.3)
    lags, rs, info = correlation.lagged_correlation(times(600, 60.0), list(x), list(y), "10 min")
    assert lags[0] == -600.0 and lags[-1] == 600.0 and len(lags) == 21
    assert info["step"] == 60.0
    assert info["best"]["lag"] == 4 and info["best"]["leader"] == "x"
    assert lags[int(np.nanargmax([abs(r) for r in rs]))] == 240.0
    # swapped: y leads x by the same amount
    _, _, swapped = correlation.lagged_correlation(times(600, 60.0), list(y), list(x), 600)
    assert swapped["best"]["lag"] == -4 and swapped["best"]["leader"] == "y"


def random_walks(seed, n=1000):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(size=n)), np.cumsum(rng.normal(size=n))


def test_independent_random_walks_correlate_as_given_and_not_once_prepared():
    raw, prepared, significant, differenced = [], [], 0, 0
    for seed in range(40):
        a, b = random_walks(seed)
        _, rs_none, _ = correlation.lagged_correlation(times(1000), list(a), list(b), 10, {"detrend": "none"})
        raw.append(abs(rs_none[10]))
        _, rs, info = correlation.lagged_correlation(times(1000), list(a), list(b), 10)
        if info["prepared"].startswith("differenced"):
            differenced += 1
            prepared.append(max(abs(r) for r in rs))
        significant += info["best"]["significant"]
    # the unit-root test misses both walks of a pair about 0.25 % of the time (5 % each); seed
    # 12 is one: then the chance bound (Bartlett's n_eff ~ 30) still calls it not significant
    assert differenced >= 38
    # as given, unrelated walks look related: that is the lie the preparation exists for
    assert np.median(raw) > 0.3 and np.mean(np.asarray(raw) > 0.5) > 0.25
    # differenced: white noise, the best of 21 lags stays within a few 1/sqrt(n)
    assert max(prepared) < 0.15
    assert significant <= 4, "Bonferroni at 5 %: about 2 of 40 by chance"


def test_detrending_alone_does_not_fix_random_walks():
    big = 0
    for seed in range(40):
        a, b = random_walks(seed)
        _, rs, _ = correlation.lagged_correlation(times(1000), list(a), list(b), 0, {"detrend": "linear"})
        big += abs(rs[0]) > 0.3
    assert big >= 10


def test_auto_detrends_trend_plus_noise_and_differences_walks():
    rng = np.random.default_rng(3)
    n = 800
    trend_x = 5 + 0.05 * np.arange(n) + ar1(n, 0.6, rng)
    trend_y = 2 - 0.03 * np.arange(n) + ar1(n, 0.6, rng)
    assert correlation.prepare(trend_x, trend_y, "auto")[2] == "detrended"
    walk = np.cumsum(rng.normal(size=n))
    assert correlation.prepare(walk, trend_y, "auto")[2] == "differenced: x trends like a random walk"
    assert correlation.prepare(trend_x, walk, "auto")[2] == "differenced: y trends like a random walk"
    # two trends but unrelated noise: as given they correlate (-1 x trend), prepared they do not
    r_none = correlation.lagged(*correlation.prepare(trend_x, trend_y, "none")[:2], 0)[1][0]
    r_auto = correlation.lagged(*correlation.prepare(trend_x, trend_y, "auto")[:2], 0)[1][0]
    assert r_none is not None and r_none < -0.9
    assert r_auto is not None and abs(r_auto) < 0.15


def test_unit_root_rule_has_about_its_size_on_walks_and_power_on_stationary_series():
    rng = np.random.default_rng(11)
    walks = [correlation.unit_root(correlation.detrend(np.cumsum(rng.normal(size=300)))) for _ in range(200)]
    stationary = [correlation.unit_root(correlation.detrend(ar1(300, 0.7, rng))) for _ in range(200)]
    assert 0.88 <= np.mean(walks) <= 0.99, "5 % test: a walk is called stationary about 1 time in 20"
    assert np.mean(stationary) < 0.05


def reference_r(x, y, k):
    """Pearson r of (x[t], y[t + k]) over the pairs where both are present, the slow way."""
    n = len(x)
    a = x[max(0, -k):n - max(0, k)]
    b = y[max(0, k):n - max(0, -k)]
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]), int(ok.sum())


def test_lagged_matches_pairwise_complete_pearson_at_every_lag():
    rng = np.random.default_rng(5)
    x, y = pair(400, 6, rng, noise=1.0)
    x = 1e6 + x  # a large level: the sums must not cancel
    x[rng.choice(400, 40, replace=False)] = np.nan
    y[50:70] = np.nan
    lags, rs, counts = correlation.lagged(x, y, 25, 30)
    for k, r, c in zip(lags, rs, counts):
        ref, pairs = reference_r(x, y, k)
        assert c == pairs
        assert r == pytest.approx(ref, abs=1e-9)


def test_lags_with_too_few_pairs_have_no_r():
    rng = np.random.default_rng(6)
    x, y = pair(40, 0, rng)
    lags, rs, counts = correlation.lagged(x, y, 20, 30)
    for k, r, c in zip(lags, rs, counts):
        assert (r is None) == (c < 30)
        assert c == 40 - abs(k)
    assert rs[20] is not None and rs[0] is None


def test_align_keeps_gaps_missing_and_snaps_jitter():
    ts = [T0, T0 + 10, T0 + 19.6, T0 + 30.3, T0 + 70, T0 + 80]
    step, grid, v = correlation.align(ts, [1.0, 2.0, 3.0, 4.0, 8.0, 9.0])
    assert step == 10.0
    assert list(grid) == [T0 + 10 * i for i in range(9)]
    assert v[:4].tolist() == [1.0, 2.0, 3.0, 4.0] and v[7:].tolist() == [8.0, 9.0]
    assert np.isnan(v[4:7]).all(), "a gap stays missing: nothing is interpolated across it"
    # a coarser step buckets: the samples sharing a grid point are averaged
    _, _, coarse = correlation.align(ts, [1.0, 2.0, 3.0, 4.0, 8.0, 9.0], 20.0)
    assert coarse[0] == 1.0 and coarse[1] == 2.5 and coarse[2] == 4.0 and np.isnan(coarse[3]) and coarse[4] == 8.5


def test_gaps_drop_pairs_instead_of_inventing_them():
    rng = np.random.default_rng(8)
    x, y = pair(600, 5, rng, noise=0.5)
    keep = np.ones(600, bool)
    keep[100:250] = False  # a long hole: both series lack those minutes
    ts = np.asarray(times(600, 60.0))[keep]
    lags, rs, info = correlation.lagged_correlation(list(ts), list(x[keep]), list(y[keep]), 600)
    assert info["best"]["lag"] == 5 and info["best"]["pairs"] < 450


def test_tie_rule_prefers_the_smaller_lag_and_a_clear_peak_wins():
    assert correlation.pick([-2, -1, 0, 1, 2], [0.1, 0.5, 0.79, 0.80, 0.3]) == (0, 0.79)
    assert correlation.pick([-2, -1, 0, 1, 2], [0.1, 0.5, 0.70, 0.80, 0.3]) == (1, 0.80)
    assert correlation.pick([-1, 0, 1], [-0.9, 0.2, 0.895]) == (-1, -0.9)
    assert correlation.pick([-1, 0, 1], [None, None, None]) == (None, None)


def test_chance_bound_shrinks_with_points_and_grows_with_lags():
    assert correlation.chance_bound(1000, 1) == pytest.approx(1.96 / math.sqrt(997), rel=1e-3)
    assert correlation.chance_bound(1000, 601) > correlation.chance_bound(1000, 11) > correlation.chance_bound(4000, 11)
    # autocorrelated series carry fewer independent pairs (Bartlett)
    rho = 0.9 ** np.arange(1, 30)
    assert correlation.n_effective(rho, rho, 1000) == pytest.approx(1000 / (1 + 2 * np.sum(rho * rho)), rel=1e-9)
    assert correlation.n_effective(np.zeros(5), np.zeros(5), 1000) == 1000


def test_independent_autocorrelated_pairs_are_rarely_significant():
    false = 0
    for seed in range(60):
        rng = np.random.default_rng(500 + seed)
        a, b = ar1(1000, 0.9, rng), ar1(1000, 0.9, rng)
        _, _, info = correlation.lagged_correlation(times(1000), list(a), list(b), 30)
        false += info["best"]["significant"]
    assert false <= 6, "about 5 % expected; without Bartlett's n_eff it is most of them"


@pytest.mark.parametrize("ts, x, y, max_lag, options, message", [
    (times(50), [1.0] * 50, list(range(50)), 5, {}, "x is constant over the window"),
    (times(50), list(range(50)), [2.0] * 50, 5, {}, "y is constant over the window"),
    (times(50), list(range(50)), list(np.sin(np.arange(50))), 5, {}, "x is a straight line over the window"),
    (times(20), list(range(20)), list(range(20)), 5, {}, "20 points: a correlation needs at least 30"),
    (times(50), list(np.sin(np.arange(50))), list(np.cos(np.arange(50))), 5, {"min_pairs": 60}, "at least 60"),
    (times(50), [1.0] * 49, [1.0] * 50, 5, {}, "50 timestamps but 49 values of x"),
    (times(50), [1.0] * 49 + [None], [1.0] * 50, 5, {}, "x element 50 is NULL"),
    (times(50), [1.0] * 50, [1.0] * 49 + [math.nan], 5, {}, "y value 50 is nan"),
    (times(50), [1.0] * 50, [1.0] * 49 + [math.inf], 5, {}, "y value 50 is inf"),
    (times(49) + [T0 + 48], [1.0] * 50, [1.0] * 50, 5, {}, "timestamp 50 duplicates timestamp 49"),
    (times(49) + [T0], [1.0] * 50, [1.0] * 50, 5, {}, "timestamp 50 is earlier than timestamp 49"),
    (times(49) + [None], [1.0] * 50, [1.0] * 50, 5, {}, "timestamp 50 is NULL"),
    (times(50), [1.0] * 50, [1.0] * 50, -5, {}, "max_lag must be a finite duration >= 0"),
    (times(50), [1.0] * 50, [1.0] * 50, 5, {"lag": 3}, "unknown option"),
    (times(50), [1.0] * 50, [1.0] * 50, 5, {"detrend": "loess"}, "detrend must be one of"),
    (times(50), [1.0] * 50, [1.0] * 50, 5, {"step": "fortnight"}, "not an interval"),
    (times(50), [1.0] * 50, [1.0] * 50, 5, {"min_pairs": 2}, "min_pairs must be an integer"),
])
def test_bad_input_is_refused_saying_why(ts, x, y, max_lag, options, message):
    with pytest.raises(ValueError, match=message):
        correlation.lagged_correlation(ts, x, y, max_lag, options)


def test_too_few_pairs_once_gridded():
    # 40 points 1 s apart on a 2 s grid: pairs of them share a grid point (averaged), 21 remain
    ts = times(40)
    x = list(np.sin(np.arange(40.0)))
    with pytest.raises(ValueError, match="only 21 points where both x and y are present"):
        correlation.lagged_correlation(ts, x, x, 0, {"step": 2, "detrend": "none"})


def test_durations():
    assert correlation.seconds("1 min 30 s", "step") == 90.0
    assert correlation.seconds("00:05:00", "step") == 300.0
    assert correlation.seconds("2 minutes", "step") == 120.0
    assert correlation.seconds("250 ms", "step") == 0.25
    assert correlation.seconds(7, "step") == 7.0
    assert correlation.duration_words(40) == "40 s"
    assert correlation.duration_words(-90) == "1 min 30 s"
    assert correlation.duration_words(7200) == "2 h"


def metrics(n=1440, seed=2):
    """Four metrics a minute apart: lock waits lead latency by 3 minutes, cpu is unrelated, and
    connections is constant; latency also trends."""
    rng = np.random.default_rng(seed)
    locks, latency = pair(n, 3, rng, noise=0.4, phi=0.6)
    latency = latency + 0.01 * np.arange(n)
    return ["lock_waits", "latency", "cpu", "connections"], [locks, latency, ar1(n, 0.5, rng), np.full(n, 10.0)]


def test_matrix_reports_the_leader_in_words_and_what_cannot_be_correlated():
    names, cols = metrics()
    rows = {(r["x"], r["y"]): r for r in correlation.matrix(names, cols, step=60.0)}
    assert len(rows) == 6
    lead = rows[("lock_waits", "latency")]
    assert lead["leader"] == "lock_waits" and lead["lag"] == 180.0 and lead["significant"]
    assert lead["r_at_lag"] > 0.85 and abs(lead["r"]) < 0.5
    assert lead["insight"] == f"lock_waits leads latency by 3 min, r = {lead['r_at_lag']:.2f} (both detrended)"
    assert lead["prepared"] == "detrended"
    unrelated = rows[("lock_waits", "cpu")]
    assert abs(unrelated["r_at_lag"]) < 0.15 and unrelated["insight"] is None
    flat = rows[("latency", "connections")]
    assert flat["r"] is None and flat["insight"] == "cannot correlate: connections is constant over the window"


def test_matrix_agrees_with_the_pair_primitive():
    names, cols = metrics()
    rows = correlation.matrix(names[:3], cols[:3], step=60.0, max_lag_steps=5)
    for row in rows:
        x, y = cols[names.index(row["x"])], cols[names.index(row["y"])]
        _, rs, info = correlation.lagged_correlation(times(1440, 60.0), list(x), list(y), 300)
        assert row["r"] == pytest.approx(rs[5], abs=1e-12)
        assert row["r_at_lag"] == pytest.approx(info["best"]["r"], abs=1e-12)
        assert row["lag"] == info["best"]["lag"] * 60.0
        assert row["prepared"] == info["prepared"] and row["significant"] == info["best"]["significant"]


def test_matrix_differences_a_pair_with_a_walk_and_says_so():
    rng = np.random.default_rng(4)
    walk = np.cumsum(rng.normal(size=600))
    follower = np.roll(walk, 2) + rng.normal(0, 0.2, 600)
    follower[:2] = walk[0]
    rows = correlation.matrix(["queue", "latency"], [walk, follower], step=1.0)
    (row,) = rows
    assert row["prepared"] == "differenced: queue and latency trend like a random walk"
    assert row["lag"] == 2.0 and row["leader"] == "queue"
    assert row["insight"].startswith("queue leads latency by 2 s, r = ")
    assert row["insight"].endswith("(both differenced: queue and latency trend like a random walk)")


def test_correlation_matrix_input_checks():
    ts = times(60, 60.0)
    good = [list(np.sin(np.arange(60.0))), list(np.cos(np.arange(60.0)))]
    for names, grid, cols, message in [
        (["a"], ts, good[:1], "a matrix needs at least two"),
        (["a", "a"], ts, good, "metric name.s. a appear more than once"),
        (["a", None], ts, good, "metric name 2 is NULL or empty"),
        (["a", "b", "c"], ts, good, "3 names but 2 columns"),
        (["a", "b"], ts[:-1] + [ts[-1] + 30], good, "the grid is not regular"),
        (["a", "b"], ts, [good[0], good[1][:-1]], "60 timestamps but 59 values of column b"),
        (["a", "b"], ts, [good[0], good[1][:-1] + [math.nan]], "column b value 60 is nan"),
        (["a", "b"], ts[:20], [good[0][:20], good[1][:20]], "20 grid points"),
    ]:
        with pytest.raises(ValueError, match=message):
            correlation.correlation_matrix(names, grid, cols)
    with pytest.raises(ValueError, match="option threshold must be a number in"):
        correlation.correlation_matrix(["a", "b"], ts, good, {"threshold": 1.5})
    # NULL = missing in a matrix column
    cols = [good[0], [None] * 10 + good[1][10:]]
    (row,) = correlation.correlation_matrix(["a", "b"], ts, cols, {"max_lag": "2 min"})
    assert row["r"] is not None and row["prepared"] is not None
    (short,) = correlation.correlation_matrix(["a", "b"], ts, [good[0], [None] * 40 + good[1][40:]])
    assert short["r"] is None and short["insight"].startswith("cannot correlate: only 20 points")


def test_matrix_of_fifty_independent_metrics_a_day_at_one_minute_finds_few_pairs():
    # speed: bench/correlations_speed.py (a timed unit test would measure the machine's load)
    rng = np.random.default_rng(9)
    cols = [ar1(1440, 0.8, rng) for _ in range(50)]
    rows = correlation.correlation_matrix([f"m{i}" for i in range(50)], times(1440, 60.0), [list(c) for c in cols])
    assert len(rows) == 1225
    assert sum(bool(r["significant"]) for r in rows) < 0.05 * 1225
