"""The forecaster (plpython/forecast.py) on series whose future is known."""

import numpy as np
import pytest

from pganalytics.plpython import forecast

HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def hours(n, step=HOUR):
    return [T0 + i * step for i in range(n)]


def seasonal(n, seed=1, sd=1.0, slope=0.1, amp=10.0, weekend=0.0):
    """Level 100, a linear trend, a daily sine, an optional weekend drop, Gaussian noise; and the
    noiseless truth, for n + 200 hours (the part after n is the future)."""
    h = np.arange(n + 200)
    truth = 100 + slope * h + amp * np.sin(2 * np.pi * h / 24) - weekend * ((h // 24) % 7 >= 5)
    y = truth + np.random.default_rng(seed).normal(0, sd, len(h))
    return y[:n], truth[n:], y[n:]


def test_recovers_a_known_trend_and_daily_season():
    y, truth, _ = seasonal(21 * 24, sd=1.0)
    ts, yhat, lo, hi = forecast.forecast(hours(len(y)), list(y), 48, {"damped": False})
    err = np.asarray(yhat) - truth[:48]
    assert np.sqrt(np.mean(err ** 2)) < 1.0, "within one noise standard deviation of the truth"
    # damped (the default), the trend is followed less far: still within 2 sd over a day
    damped = forecast.forecast(hours(len(y)), list(y), 24)[1]
    assert np.sqrt(np.mean((np.asarray(damped) - truth[:24]) ** 2)) < 2.0
    assert ts == [T0 + (len(y) - 1 + h) * HOUR for h in range(1, 49)]
    assert all(a <= b <= c for a, b, c in zip(lo, yhat, hi))


def test_weekly_season_is_used_when_the_history_has_two_weeks():
    y, truth, _ = seasonal(4 * 168, sd=1.0, slope=0.0, weekend=15.0)
    step, grid, values = forecast.regular(hours(len(y)), list(y), 6)
    _, _, _, info = forecast.forecast_grid(values, step, 72, forecast.check_options({}))
    assert info["model"] in ("dshw", "hw") and 168 in info["periods"]
    yhat = forecast.forecast(hours(len(y)), list(y), 168)[1]
    daily = forecast.forecast(hours(len(y)), list(y), 168, {"season": "day"})[1]
    rmse = np.sqrt(np.mean((np.asarray(yhat) - truth[:168]) ** 2))
    assert rmse < 0.5 * np.sqrt(np.mean((np.asarray(daily) - truth[:168]) ** 2)), "the weekend is forecast"
    assert rmse < 3.5


def test_damped_trend_flattens_and_undamped_does_not():
    y = 50 + 0.5 * np.arange(200) + np.random.default_rng(3).normal(0, 0.5, 200)
    damped = np.diff(forecast.forecast(hours(200), list(y), 200, {"season": "none"})[1])
    straight = np.diff(forecast.forecast(hours(200), list(y), 200, {"season": "none", "damped": False})[1])
    assert damped[-1] < 0.5 * damped[0], "a damped trend's increments shrink"
    assert damped[0] == pytest.approx(0.5, abs=0.1)
    assert straight == pytest.approx(np.full(len(straight), straight[0]), rel=1e-9)


def test_intervals_widen_with_the_horizon():
    rng = np.random.default_rng(4)
    y = 100 + np.cumsum(rng.normal(0, 1, 400))  # a random walk: uncertainty grows with h
    _, yhat, lo, hi = forecast.forecast(hours(400), list(y), 100)
    width = np.asarray(hi) - np.asarray(lo)
    assert np.all(np.diff(width) >= -1e-9)
    assert width[-1] > 3 * width[0]


def test_coverage_on_known_noise_is_near_nominal():
    inside = {0.8: [], 0.95: []}
    for seed in range(24):
        y, _, future = seasonal(14 * 24, seed=100 + seed, sd=2.0)
        for level in inside:
            _, _, lo, hi = forecast.forecast(hours(len(y)), list(y), 24, {"level": level})
            inside[level] += list((future[:24] >= lo) & (future[:24] <= hi))
    assert 0.74 <= np.mean(inside[0.8]) <= 0.88
    assert 0.91 <= np.mean(inside[0.95]) <= 0.99


def test_constant_series_is_a_flat_forecast_with_zero_width():
    ts, yhat, lo, hi = forecast.forecast(hours(100), [7.5] * 100, 30)
    assert yhat == lo == hi == [7.5] * 30


def test_the_forecast_uses_only_the_history_given():
    y, _, future = seasonal(10 * 24, seed=5)
    full = np.concatenate([y, future])
    a = forecast.forecast(hours(len(y)), list(full[:len(y)]), 24)
    changed = full.copy()
    changed[len(y):] += 1000  # what comes after the history cannot matter
    b = forecast.forecast(hours(len(y)), list(changed[:len(y)]), 24)
    assert a == b
    # ... while the newest point does (no wrap-around read of an earlier or later element)
    newest = list(y)
    newest[-1] += 50
    assert forecast.forecast(hours(len(y)), newest, 24)[1] != a[1]


def test_shifting_the_series_shifts_the_forecast():
    y, _, _ = seasonal(10 * 24, seed=6)
    a = forecast.forecast(hours(len(y)), list(y), 24)
    b = forecast.forecast(hours(len(y)), list(y + 1000.0), 24)
    for u, v in zip(a[1:], b[1:]):
        assert np.asarray(v) - 1000.0 == pytest.approx(u, abs=1e-6)


def test_short_history_falls_back_and_an_explicit_season_is_refused():
    y = 10 + np.random.default_rng(7).normal(0, 1, 30)  # 30 hours: not two days
    step, grid, values = forecast.regular(hours(30), list(y), 6)
    assert forecast.forecast_grid(values, step, 5, forecast.check_options({}))[3]["model"] == "holt"
    with pytest.raises(ValueError, match="season 'day' needs at least two days of history"):
        forecast.forecast(hours(30), list(y), 5, {"season": "day"})
    naive = forecast.forecast(hours(30), list(y), 3, {"model": "naive"})[1]
    assert naive == [y[-1]] * 3  # no season: the last value


def test_seasonal_naive_repeats_the_last_day():
    y, _, _ = seasonal(3 * 24, seed=8)
    yhat = forecast.forecast(hours(len(y)), list(y), 30, {"model": "naive", "season": "day"})[1]
    assert yhat == list(y[-24:]) + list(y[-24:-18])


def test_jittered_timestamps_and_short_gaps_are_regularised_long_gaps_refused():
    y, truth, _ = seasonal(14 * 24, seed=9)
    ts = np.asarray(hours(len(y))) + np.random.default_rng(9).uniform(-60, 60, len(y))
    ts[-1] = hours(len(y))[-1]
    keep = np.ones(len(y), dtype=bool)
    keep[100:103] = False  # three hours missing
    out_ts, yhat, _, _ = forecast.forecast(list(ts[keep]), list(y[keep]), 24)
    assert out_ts[0] == pytest.approx(ts[-1] + HOUR)
    assert np.sqrt(np.mean((np.asarray(yhat) - truth[:24]) ** 2)) < 1.5
    keep[200:220] = False
    with pytest.raises(ValueError, match="gap of .* longer than max_gap"):
        forecast.forecast(list(ts[keep]), list(y[keep]), 24)
    forecast.forecast(list(ts[keep]), list(y[keep]), 24, {"max_gap": 30})  # allowed when asked


@pytest.mark.parametrize("ts, values, horizon, options, message", [
    (hours(12), [1.0] * 11, 5, {}, "12 timestamps but 11 values"),
    (hours(11) + [None], [1.0] * 12, 5, {}, "element 12 is NULL"),
    (hours(12), [1.0] * 11 + [None], 5, {}, "element 12 is NULL"),
    (hours(12), [1.0] * 11 + [float("nan")], 5, {}, "value 12 is nan"),
    (hours(12), [1.0] * 11 + [float("inf")], 5, {}, "value 12 is inf"),
    (hours(11) + [hours(11)[-1]], [1.0] * 12, 5, {}, "timestamp 12 duplicates timestamp 11"),
    (hours(11) + [T0 - HOUR], [1.0] * 12, 5, {}, "timestamp 12 is earlier than"),
    (hours(9), [1.0] * 9, 5, {}, "9 points of history: a forecast needs at least 10"),
    (hours(12), [1.0] * 12, 0, {}, "horizon must be a positive number"),
    (hours(12), [1.0] * 12, -3, {}, "horizon must be a positive number"),
    (hours(12), [1.0] * 12, 121, {}, "horizon 121 is too far: at most 120"),
    (hours(2000), [1.0] * 2000, 10_001, {}, "horizon 10001 is too far: at most 10000"),
    (hours(12), [1.0] * 12, 5, {"alpha": 0.3}, "unknown option"),
    (hours(12), [1.0] * 12, 5, {"level": 95}, "level must be a number in"),
    (hours(12), [1.0] * 12, 5, {"season": "month"}, "season must be one of"),
    (hours(12), [1.0] * 12, 5, {"model": "arima"}, "model must be one of"),
    (hours(12), [1.0] * 12, 5, {"damped": "yes"}, "damped must be true or false"),
    (hours(12), [1.0] * 12, 5, {"model": "holt", "season": "day"}, "model holt has no season"),
])
def test_bad_input_gets_a_clear_error(ts, values, horizon, options, message):
    with pytest.raises(ValueError, match=message):
        forecast.forecast(ts, values, horizon, options)


def test_four_weeks_of_hourly_points_give_a_full_finite_forecast():
    # speed: bench/forecast_accuracy.py reports the fit time (fit_seconds_median); a timed
    # unit test would only measure how busy the machine is
    y, _, _ = seasonal(4 * 168, seed=10, weekend=10.0)
    ts, yhat, lo, hi = (np.array(v) for v in forecast.forecast(hours(len(y)), list(y), 48))
    assert len(ts) == 48 and np.all(np.diff(ts) == 3600)
    assert np.isfinite(yhat).all() and np.all(lo <= yhat) and np.all(yhat <= hi)


def test_smooth_multi_step_loss_matches_the_stored_states():
    # the ring of past levels and trends in smooth() gives the h-step errors that
    # multi_step_errors() builds from the stored states (unclipped: a huge LOSS_CLIP)
    y, _, _ = seasonal(10 * 24, seed=11)
    params = np.array([0.3, 0.05, 0.9, 0.2])
    init, burn = forecast.init_states(y, (24,))
    loss_h = 6
    saved = forecast.LOSS_CLIP, forecast.LOSS_STEPS
    try:
        forecast.LOSS_CLIP, forecast.LOSS_STEPS = 1e12, (1, 2, 3, 4, 5, 6)
        sse, _ = forecast.smooth(y, (24,), params[None, :], init, burn, loss_h=loss_h)
    finally:
        forecast.LOSS_CLIP, forecast.LOSS_STEPS = saved
    err = forecast.multi_step_errors(y, (24,), params, init, burn, loss_h)
    # err[o, h-1] is the error at target (burn - 1 + o) + h; the loss counts targets >= burn + loss_h
    first_origin = max(burn, 1) - 1
    want = 0.0
    for h in range(1, loss_h + 1):
        for o in range(err.shape[0]):
            target = first_origin + o + h
            if burn + loss_h <= target < len(y):
                want += err[o, h - 1] ** 2
    assert sse[0] == pytest.approx(want, rel=1e-9)


def test_a_strong_season_is_not_fitted_as_a_random_walk():
    # a faithful daily shape with persistent (AR) deviations: a one-step loss follows the last
    # point (alpha near 1, the season frozen); the multi-step loss keeps the season learning
    rng = np.random.default_rng(12)
    n = 21 * 24
    h = np.arange(n)
    ar = np.zeros(n)
    for i in range(1, n):
        ar[i] = 0.9 * ar[i - 1] + rng.normal(0, 2)
    y = 100 + 40 * np.sin(2 * np.pi * h / 24) + ar
    params, _, _ = forecast.fit(y, (24,), True)
    assert params[0] < 0.9
    yhat = forecast.forecast(hours(n - 24), list(y[:-24]), 24)[1]
    naive = forecast.naive_forecast(y[:-24], 24, 24)
    assert np.mean(np.abs(y[-24:] - yhat)) < np.mean(np.abs(y[-24:] - naive))


def test_auto_picks_the_weekly_naive_when_the_week_repeats_exactly():
    rng = np.random.default_rng(13)
    week = rng.uniform(10, 100, 168)  # an arbitrary weekly shape, repeated exactly
    y = np.tile(week, 4)
    step, grid, values = forecast.regular(hours(len(y)), list(y), 6)
    yhat, _, _, info = forecast.forecast_grid(values, step, 24, forecast.check_options({}))
    assert info["model"] == "naive" and info["periods"] == [168]
    assert yhat == pytest.approx(week[:24])


def test_forecast_levels_gives_what_forecast_grid_gives_per_level():
    y, _, _ = seasonal(14 * 24, seed=14)
    opt = forecast.check_options({})
    yhat, bounds, info = forecast.forecast_levels(y, HOUR, 24, opt, (0.8, 0.95))
    for level, (lo, hi) in zip((0.8, 0.95), bounds):
        one = forecast.forecast_grid(y, HOUR, 24, forecast.check_options({"level": level}))
        assert list(one[0]) == list(yhat) and list(one[1]) == list(lo) and list(one[2]) == list(hi)
        assert one[3] == info
    assert np.all(bounds[1][0] <= bounds[0][0]) and np.all(bounds[0][1] <= bounds[1][1])


def test_intervals_from_few_origins_are_widened_more():
    rng = np.random.default_rng(15)
    yhat, growth = np.zeros(4), np.ones(4)
    many = rng.normal(0, 1, (2000, 4))
    few = many[:200]
    w_many = np.subtract(*forecast.interval(yhat, many, 0.9, growth)[::-1])
    w_few = np.subtract(*forecast.interval(yhat, few, 0.9, growth)[::-1])
    ratio = (1 + forecast.SHORT_HISTORY / 200) / (1 + forecast.SHORT_HISTORY / 2000)
    assert np.mean(w_few / w_many) == pytest.approx(ratio, rel=0.15)
    assert np.all(w_few > w_many)
