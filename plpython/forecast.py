"""Forecasts of one series with prediction intervals: exponential smoothing fitted on its history.

The models are the additive, error-correction forms of exponential smoothing (Hyndman et al.,
"Forecasting with Exponential Smoothing", 2008), with a damped trend by default:
- holt: level + damped trend (with beta = 0 in the search it is simple exponential smoothing);
- hw: Holt-Winters, level + damped trend + one additive season (a day, or a week);
- dshw: double-seasonal Holt-Winters (Taylor 2003): level + damped trend + a daily season of
  24 h and a weekly season of 168 h, both additive. The weekly component learns what the
  weekday (the weekend) changes in the daily shape;
- naive: seasonal naive (the value one season ago), the yardstick and a fallback.
A season is only offered when the history holds at least two whole cycles of it (two days for
the daily, two weeks for the weekly one); with less, "auto" falls back to holt (and, under ten
points, there is nothing to fit: an error).

Fitting: the smoothing parameters minimise the squared errors of the forecasts 1 to 24 steps
ahead (LOSS_HORIZON, at the steps of LOSS_STEPS; at most the shortest season) from every
origin of the history after the first cycles, which initialised the states. A one-step loss
rewards following the last point: on nyc_taxi it fits alpha = 0.999, gamma = 0 (a random walk
on a frozen season) and forecasts a day ahead worse than the weekly naive (bench MASE 1.52 ->
0.40 with the multi-step loss; synthetic 0.85 -> 0.68). The recursion is evaluated for a whole
grid of parameter sets at once, each numpy operation acting on a vector with one element per
set, so a pass over 4 weeks of hourly points costs the same few thousand numpy calls for 1 or
1,000 sets; a coarse grid is followed by a few rounds of local refinement around the best set.
The recursion is robust (Gelper et al. 2010): a one-step error beyond CLIP running scales is
clipped before it updates the states, and the h-step errors count in the loss up to LOSS_CLIP
x sqrt(h) scales, so a spike or an incident in the history does not bend the level, trend and
seasons, nor the parameters (with the multi-step loss, clipping helps every bench group: CLIP
3 against none, mean MASE on origins clear of incidents synthetic 0.71 -> 0.68, NAB two-week
series 0.79 -> 0.67).

Model choice ("auto"): every candidate the history allows is fitted (and the seasonal naive of
each season allowed joins them), then compared on the origins they all have, by its
in-sample multi-step errors (forecasts from every origin of the history over the horizon, at
most two days ahead, mean absolute error): the goal is the h-step forecast.

Intervals: empirical, from the same in-sample h-step errors. Each horizon h gets a scale (the
RMS of its errors, made non-decreasing in h); the errors divided by their horizon's scale are
pooled over all horizons, and the interval is yhat + scale_h * (the pooled quantiles of the
level). Beyond the horizons the history can check, the scale grows as the model's analytical
variance does (the sum of squared impulse responses). The pooled quantiles are widened by
1 + SHORT_HISTORY / (the origins checked) because in-sample errors of fitted parameters are
optimistic, the more so the fewer there are: a two-week history is widened by about a fifth,
eight weeks by 7 % (bench, origins clear of incidents, 95 % coverage of the two-week NAB series
86.8 % -> 92-93 %; on pure noise it over-covers a little: 88 % / 98 % in the unit test).

Input: epoch seconds, strictly increasing, with their values; the series is put on a regular
grid of its median step, ending at the last timestamp: points off the grid are interpolated
linearly from their neighbours, gaps up to `max_gap` steps are filled by linear interpolation,
a longer gap is refused (forecasting across it would invent the missing days). A constant
history gives a flat forecast with zero-width intervals. Only the last MAX_FIT_POINTS points are
fitted (older behaviour of an operational metric is stale, and fitting time is linear in it).
Runs on numpy 1.24 through 2.x, long-stable API only.
"""
import math

import numpy as np

DAY, WEEK = 86400.0, 604800.0
MIN_POINTS = 10            # fewer points: nothing to fit
MAX_HORIZON = 10_000       # points ahead, and at most HORIZON_FACTOR x the history
HORIZON_FACTOR = 10
MAX_FIT_POINTS = 8 * 168   # eight weeks of hourly points
NAIVE_IN_AUTO = True       # "auto" also weighs the seasonal naive of each season allowed
CHECK_HORIZON = 48         # at most this many steps ahead in the in-sample multi-step errors
INTERVAL_INFLATION = 1.0   # pooled in-sample quantiles x this: fitted parameters are optimistic,
SHORT_HISTORY = 48.0       # ... and x (1 + this / the origins checked): the more so when few

DEFAULTS = {
    "level": 0.95,      # the interval's nominal coverage
    "season": "auto",   # "auto" | "none" | "day" | "week" | "day+week"
    "damped": True,     # damped trend (phi < 1): a trend is not extrapolated for ever
    "model": "auto",    # "auto" | "holt" | "hw" | "naive"
    "max_gap": 6,       # longest gap (in steps) filled by interpolation; longer is refused
}
SEASONS = ("auto", "none", "day", "week", "day+week")
MODELS = ("auto", "holt", "hw", "naive")


def check_options(options):
    """The options with defaults filled in; a clear error for an unknown key or a bad value."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ValueError("options must be a JSON object")
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    out = dict(DEFAULTS)
    out.update(options)
    level = out["level"]
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.5 <= level < 1:
        raise ValueError(f"option level must be a number in [0.5, 1), not {level!r}")
    if out["season"] not in SEASONS:
        raise ValueError(f"option season must be one of {', '.join(SEASONS)}, not {out['season']!r}")
    if out["model"] not in MODELS:
        raise ValueError(f"option model must be one of {', '.join(MODELS)}, not {out['model']!r}")
    if not isinstance(out["damped"], bool):
        raise ValueError(f"option damped must be true or false, not {out['damped']!r}")
    gap = out["max_gap"]
    if isinstance(gap, bool) or not isinstance(gap, int) or not 1 <= gap <= 10_000:
        raise ValueError(f"option max_gap must be an integer in [1, 10000], not {gap!r}")
    if out["model"] == "holt" and out["season"] not in ("auto", "none"):
        raise ValueError(f"model holt has no season: season {out['season']!r} needs model hw or auto")
    return out


def check_series(ts, values):
    """Refuse what cannot be forecast, saying why: lengths, NULLs, NaN/inf, time order."""
    if ts is None or values is None:
        raise ValueError("timestamps and values must not be NULL")
    if len(ts) != len(values):
        raise ValueError(f"{len(ts)} timestamps but {len(values)} values: the arrays must be as long as each other")
    for i, (t, v) in enumerate(zip(ts, values)):
        if t is None or v is None:
            raise ValueError(f"element {i + 1} is NULL: timestamps and values must not hold NULLs")
        if not math.isfinite(v):
            raise ValueError(f"value {i + 1} is {v}: values must be finite (no NaN or infinity)")
        if not math.isfinite(t):
            raise ValueError(f"timestamp {i + 1} is not finite")
        if i and t <= ts[i - 1]:
            word = "duplicates" if t == ts[i - 1] else "is earlier than"
            raise ValueError(f"timestamp {i + 1} {word} timestamp {i}: timestamps must be strictly increasing")
    if len(ts) < MIN_POINTS:
        raise ValueError(f"{len(ts)} points of history: a forecast needs at least {MIN_POINTS}")


def regular(ts, values, max_gap):
    """(step, grid times, values on the grid): the median step, a grid ending at the last
    timestamp, values interpolated linearly; a gap over max_gap steps is refused."""
    t = np.asarray(ts, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    steps = np.diff(t)
    step = float(np.median(steps))
    worst = int(np.argmax(steps))
    if steps[worst] > max_gap * step * 1.5:  # 1.5: a jittered clock is no gap
        raise ValueError(f"a gap of {steps[worst]:g} s between timestamps {worst + 1} and {worst + 2} "
                         f"is longer than max_gap ({max_gap}) steps of {step:g} s: "
                         f"too much to interpolate; forecast from the points after it")
    n = int(math.floor((t[-1] - t[0]) / step + 1e-9)) + 1
    grid = t[-1] - step * np.arange(n - 1, -1, -1, dtype=np.float64)
    return step, grid, np.interp(grid, t, y)


def damp_sums(phi, h):
    """phi + phi^2 + ... + phi^h for h = 1..h (phi: a scalar)."""
    return np.cumsum(phi ** np.arange(1, h + 1, dtype=np.float64))


def init_states(y, periods):
    """Initial level, trend and seasonal profiles from the first cycles of the history: a
    least-squares line, then each season's slot means of what the line (and the shorter
    seasons) leave. Returns (level, trend, [profile per period]), the states for time -1, and
    the number of points used (errors are counted after them)."""
    n = len(y)
    if periods:
        # at most half the history, so that the other half judges the model on points its
        # initial seasons did not see (in-sample errors of a season fitted to them lie)
        longest = max(periods)
        w = max(1, min((n // longest) // 2, 4)) * longest
    else:
        w = min(n, 10)
    t = np.arange(w, dtype=np.float64)
    slope, intercept = np.polyfit(t, y[:w], 1) if w > 2 else (0.0, float(y[0]))
    rest = y[:w] - (intercept + slope * t)
    profiles = []
    for m in sorted(periods):
        prof = np.array([rest[j::m].mean() for j in range(m)])
        prof -= prof.mean()
        profiles.append(prof)
        rest = rest - prof[np.arange(w) % m]
    return (intercept - slope, slope, profiles), w


CLIP = 3.0          # one-step errors beyond this many running scales are clipped ...
SCALE_RATE = 0.01   # ... the scale being an EWMA of the squared clipped errors


def init_scale(y, burn):
    """A starting scale of the one-step errors: the robust spread of the first differences
    in the initialisation window, never 0 (a clip at 0 would freeze every state)."""
    d = np.diff(y[:max(burn, 3)])
    mad = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    return max(mad, 0.5 * float(np.std(d)), 1e-9 * (1.0 + float(np.max(np.abs(y)))))


LOSS_HORIZON = 24   # the loss: squared errors of the forecasts 1..this many steps ahead ...
LOSS_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 20, 24)  # ... at these of the steps (time: a tenth each)
LOSS_CLIP = 4.0     # h-step errors in the loss clipped at this many running scales x sqrt(h)


def smooth(y, periods, params, init, burn, store=False, loss_h=1):
    """The additive damped-trend recursion for K parameter sets at once.

    params: (K, 3 + p) rows of (alpha, beta, phi, gamma per period); returns the loss of each
    set over points >= burn (with loss_h = 1 the one-step SSE; else the sum over h = 1..loss_h
    of the squared h-step errors (h in LOSS_STEPS), each clipped at LOSS_CLIP running scales x sqrt(h), from
    every origin whose h-step target is past burn + loss_h), and with store=True (K = 1) the
    states after every point: level, trend and each season's value written at that point.

    The h-step forecast of y[t] made at t - h is level[t-h] + (phi + ... + phi^h) trend[t-h]
    + the seasons' values for t, which (h <= the shortest period) were written at t - m and
    not changed since: the values the one-step forecast reads. So only the last loss_h levels
    and trends are kept, in a ring."""
    alpha, beta, phi = params[:, 0], params[:, 1], params[:, 2]
    gammas = [params[:, 3 + k] for k in range(len(periods))]
    level0, trend0, profiles = init
    k = params.shape[0]
    level = np.full(k, level0)
    trend = np.full(k, trend0)
    rings = [np.tile(p, (k, 1)) for p in profiles]
    sse = np.zeros(k)
    scale = np.full(k, init_scale(y, burn))
    n = len(y)
    if loss_h > 1:
        hs = np.array([h for h in LOSS_STEPS if h < loss_h] + [loss_h])
        damp = np.cumsum(phi[:, None] ** hs[None, :], axis=1)  # (K, H)
        widen = LOSS_CLIP * np.sqrt(hs)[None, :]
        past_l = np.tile(level[:, None], (1, loss_h))  # column j: the state after t = j mod H
        past_t = np.tile(trend[:, None], (1, loss_h))
        start = burn + loss_h
    if store:
        levels, trends = np.zeros(n), np.zeros(n)
        written = [np.zeros(n) for _ in periods]
    for t in range(n):
        pred = level + phi * trend
        seas = [r[:, t % m] for r, m in zip(rings, periods)]
        for s in seas:
            pred = pred + s
        e = y[t] - pred
        # A spike moves the states only up to CLIP scales: one bad hour must not bend the
        # level, trend and seasons (Gelper et al. 2010, robust HW).
        e = np.clip(e, -CLIP * scale, CLIP * scale)
        if loss_h > 1:
            if t >= start:
                cols = (t - hs) % loss_h
                eh = (y[t] - (pred - level - phi * trend))[:, None] - past_l[:, cols] - damp * past_t[:, cols]
                lim = widen * scale[:, None]
                eh = np.clip(eh, -lim, lim)
                sse += np.einsum("kh,kh->k", eh, eh)
        elif t >= burn:
            sse += e * e
        scale = np.sqrt((1 - SCALE_RATE) * scale * scale + SCALE_RATE * e * e)
        level = level + phi * trend + alpha * e
        trend = phi * trend + beta * e
        for r, m, s, g in zip(rings, periods, seas, gammas):
            r[:, t % m] = s + g * e
        if loss_h > 1:
            past_l[:, t % loss_h] = level
            past_t[:, t % loss_h] = trend
        if store:
            levels[t], trends[t] = level[0], trend[0]
            for w, r, m in zip(written, rings, periods):
                w[t] = r[0, t % m]
    if store:
        return sse, (levels, trends, written, rings)
    return sse, None


# The search space, in fractions each in [0, 1]: alpha; beta / alpha; phi mapped from
# [PHI_LO, PHI_HI]; each gamma / (1 - alpha). Every point of it is an admissible-ish model
# (beta <= alpha, gamma <= 1 - alpha: the usual "usual region" of Hyndman et al.).
PHI_LO, PHI_HI = 0.8, 0.995
GRID = {
    "alpha": (0.02, 0.08, 0.2, 0.4, 0.65, 0.9),
    "beta": (0.0, 0.03, 0.15),
    "phi": (0.0, 0.5, 0.85, 1.0),
    "gamma": (0.0, 0.05, 0.15, 0.35),
}


def to_params(frac, n_periods, damped):
    """Fractions (K, 3 + p) -> (alpha, beta, phi, gammas) rows."""
    f = np.clip(frac, 0.0, 1.0)
    alpha = 0.001 + 0.998 * f[:, 0]
    out = np.empty_like(f)
    out[:, 0] = alpha
    out[:, 1] = alpha * f[:, 1]
    out[:, 2] = PHI_LO + (PHI_HI - PHI_LO) * f[:, 2] if damped else 1.0
    for j in range(n_periods):
        out[:, 3 + j] = (1.0 - alpha) * f[:, 3 + j]
    return out


def loss_horizon(n, periods, burn):
    """How many steps ahead the parameters' loss looks: LOSS_HORIZON, at most the shortest
    season (see smooth()) and a quarter of the points after the initialisation."""
    return int(max(1, min([LOSS_HORIZON, (n - burn) // 4] + list(periods))))


def fit(y, periods, damped):
    """The parameter set of least one-step SSE: a coarse grid, then local refinement."""
    p = len(periods)
    init, burn = init_states(y, periods)
    axes = [GRID["alpha"], GRID["beta"], GRID["phi"] if damped else (1.0,)] + [GRID["gamma"]] * p
    frac = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(axes), -1).T
    loss_h = loss_horizon(len(y), periods, burn)
    sse, _ = smooth(y, periods, to_params(frac, p, damped), init, burn, loss_h=loss_h)
    best = frac[int(np.argmin(sse))]
    best_sse = float(sse.min())
    # Local refinement: every combination of -d, 0, +d on each fraction, d halving each round.
    moves = np.array(np.meshgrid(*[(-1.0, 0.0, 1.0)] * len(axes), indexing="ij")).reshape(len(axes), -1).T
    if not damped:
        moves = moves[moves[:, 2] == 0]
    d = 0.08
    for _ in range(4):
        cand = np.clip(best + d * moves, 0.0, 1.0)
        sse, _ = smooth(y, periods, to_params(cand, p, damped), init, burn, loss_h=loss_h)
        i = int(np.argmin(sse))
        if sse[i] < best_sse:
            best, best_sse = cand[i], float(sse[i])
        d /= 2
    return to_params(best[None, :], p, damped)[0], init, burn


def multi_step_errors(y, periods, params, init, burn, horizon, states=None):
    """In-sample h-step errors from every origin after the first cycle: e[o, h-1] = y[t+h] - the
    forecast made at t, h = 1..horizon. Built from the stored states (smooth(store=True), or
    `states`): the season a forecast of t+h reads was written at t + h - m*ceil(h/m) and not
    changed since."""
    if states is None:
        states = smooth(y, periods, params[None, :], init, burn, store=True)[1]
    levels, trends, written, _ = states
    n = len(y)
    origins = np.arange(max(burn, 1) - 1, n - 1)
    hs = np.arange(1, horizon + 1)
    target = origins[:, None] + hs[None, :]
    ok = target < n
    target_c = np.minimum(target, n - 1)
    pred = levels[origins][:, None] + damp_sums(params[2], horizon)[None, :] * trends[origins][:, None]
    for w, m in zip(written, periods):
        src = target - m * np.ceil(hs / m).astype(np.int64)[None, :]
        pred = pred + w[np.maximum(src, 0)]
    err = np.where(ok, y[target_c] - pred, np.nan)
    return err


def naive_errors(y, m, horizon):
    """In-sample h-step errors of the seasonal naive forecast with period m (1: the last value)."""
    n = len(y)
    hs = np.arange(1, horizon + 1)
    origins = np.arange(m - 1, n - 1)
    target = origins[:, None] + hs[None, :]
    src = target - m * np.ceil(hs / m).astype(np.int64)[None, :]
    ok = target < n
    return np.where(ok, y[np.minimum(target, n - 1)] - y[np.minimum(src, n - 1)], np.nan)


def forecast_model(y, periods, params, init, burn, horizon, states=None):
    """Point forecasts 1..horizon steps past the history (from `states` if given)."""
    if states is None:
        states = smooth(y, periods, params[None, :], init, burn, store=True)[1]
    levels, trends, _, rings = states
    n = len(y)
    yhat = levels[-1] + damp_sums(params[2], horizon) * trends[-1]
    steps = np.arange(n, n + horizon)
    for r, m in zip(rings, periods):
        yhat = yhat + r[0, steps % m]
    return yhat


def naive_forecast(y, m, horizon):
    hs = np.arange(1, horizon + 1)
    return y[len(y) - 1 + hs - m * np.ceil(hs / m).astype(np.int64)]


def impulse_variance(params, periods, horizon):
    """The analytical h-step variance of the model in units of the one-step variance:
    1 + sum_{j<h} c_j^2, c_j = alpha + beta (phi + ... + phi^j) + gamma_k [j divisible by m_k]."""
    alpha, beta, phi = params[0], params[1], params[2]
    j = np.arange(1, horizon, dtype=np.float64)
    c = alpha + beta * damp_sums(phi, horizon - 1) if horizon > 1 else np.zeros(0)
    for g, m in zip(params[3:], periods):
        c = c + g * (j % m == 0)
    return np.concatenate([[1.0], 1.0 + np.cumsum(c * c)])


def interval(yhat, err, level, growth):
    """Lower and upper bounds: per-horizon scales (non-decreasing) times pooled standardised
    error quantiles; horizons past the checked ones scale with `growth` (variance ratios)."""
    horizon = len(yhat)
    checked = err.shape[1]
    scale = np.zeros(horizon)
    counts = np.sum(np.isfinite(err), axis=0)
    rms = np.sqrt(np.nansum(err * err, axis=0) / np.maximum(counts, 1))
    rms = np.maximum.accumulate(np.where(counts > 0, rms, 0.0))
    # the last checked horizon with errors is where extrapolation starts
    last = int(np.flatnonzero(counts > 0)[-1]) if np.any(counts > 0) else 0
    scale[:last + 1] = rms[:last + 1]
    if horizon > last + 1:
        scale[last + 1:] = rms[last] * np.sqrt(growth[last + 1:] / growth[last])
    used = err[:, :min(checked, last + 1)]
    z = (used / np.where(rms[:used.shape[1]] > 0, rms[:used.shape[1]], 1.0)[None, :])[np.isfinite(used)]
    if z.size == 0 or not np.any(scale > 0):
        return yhat.copy(), yhat.copy()
    tail = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(z, [tail, 1.0 - tail])
    widen = INTERVAL_INFLATION * (1.0 + SHORT_HISTORY / max(err.shape[0], 1))
    q_lo, q_hi = min(q_lo, 0.0) * widen, max(q_hi, 0.0) * widen
    return yhat + q_lo * scale, yhat + q_hi * scale


def candidates(n, step, opt):
    """The (name, periods) the options and the history allow, each season only with two whole
    cycles of history; a season asked for explicitly without them is an error."""
    day = int(round(DAY / step)) if step <= DAY / 4 else 0
    week = int(round(WEEK / step)) if step <= WEEK / 4 else 0
    have = {"day": day >= 2 and n >= 2 * day, "week": week >= 2 and n >= 2 * week}
    want = opt["season"]
    for name, period, need in (("day", day, "two days"), ("week", week, "two weeks")):
        if want in (name, "day+week") and not have[name]:
            raise ValueError(f"season {want!r} needs at least {need} of history "
                             f"({2 * period if period else 'a step of at most a quarter of that'} "
                             f"points at a step of {step:g} s); got {n} points")
    asked: dict[str, list[tuple[int, ...]]] = {"none": [], "day": [(day,)], "week": [(week,)],
                                               "day+week": [(day, week)]}
    seasonal: list[tuple[int, ...]]
    if want == "auto":
        seasonal = [p for p, ok in (((day,), have["day"]), ((week,), have["week"]),
                                    ((day, week), have["day"] and have["week"])) if ok]
    else:
        seasonal = asked[want]
    out: list[tuple[str, tuple[int, ...]]] = []
    if opt["model"] in ("auto", "holt") and want in ("auto", "none"):
        out.append(("holt", ()))
    if opt["model"] in ("auto", "hw"):
        out += [("dshw" if len(p) == 2 else "hw", p) for p in seasonal]
    if opt["model"] == "hw" and not out:
        raise ValueError(f"model hw needs a season with two whole cycles of history; got {n} points")
    if opt["model"] == "naive":
        m = max(seasonal[-1]) if seasonal else 1
        out.append(("naive", (m,)))
    return out


def forecast_grid(y, step, horizon, opt):
    """Forecast of a regular series: (yhat, lo, hi, info) with info naming the model chosen."""
    yhat, bounds, info = forecast_levels(y, step, horizon, opt, (float(opt["level"]),))
    lo, hi = bounds[0]
    return yhat, lo, hi, info


def forecast_levels(y, step, horizon, opt, levels):
    """forecast_grid() with one fit for several interval levels: (yhat, [(lo, hi) per level], info)."""
    n = len(y)
    y = y[-MAX_FIT_POINTS:]
    models = candidates(len(y), step, opt)  # first: a season asked for is checked even here
    if np.ptp(y) == 0:  # constant: nothing to fit, nothing uncertain, and no 0/0 below
        flat = np.full(horizon, float(y[-1]))
        return flat, [(flat.copy(), flat.copy()) for _ in levels], {"model": "constant", "periods": [], "points": n}
    check = min(horizon, CHECK_HORIZON)
    if opt["model"] == "auto" and NAIVE_IN_AUTO:
        # the seasonal naive of each season the history allows competes too: where a season
        # repeats more faithfully than any smoothing follows it (nyc_taxi's week), it wins
        models = models + [("naive", p) for name, p in models if name == "hw"]
    fitted = []
    for name, periods in models:
        if name == "naive":
            err = naive_errors(y, periods[0], check)
            yhat = naive_forecast(y, periods[0], horizon)
            growth = np.arange(1, horizon + 1, dtype=np.float64)  # a random walk's variance
        else:
            params, init, burn = fit(y, periods, opt["damped"])
            states = smooth(y, periods, params[None, :], init, burn, store=True)[1]
            err = multi_step_errors(y, periods, params, init, burn, check, states)
            yhat = forecast_model(y, periods, params, init, burn, horizon, states)
            growth = impulse_variance(params, periods, horizon)
        fitted.append((name, periods, yhat, err, growth))
    # compared on the origins every candidate has (the longest season's model starts latest)
    rows = min(f[3].shape[0] for f in fitted)
    scores = [float(np.nanmean(np.abs(f[3][-rows:]))) for f in fitted]
    name, periods, yhat, err, growth = fitted[int(np.argmin(scores))]
    bounds = [interval(yhat, err, float(level), growth) for level in levels]
    return yhat, bounds, {"model": name, "periods": list(periods), "points": n}


def forecast(ts, values, horizon, options=None):
    """Forecast `horizon` steps past the last of `ts` (epoch seconds, strictly increasing) with
    `values` (finite floats). Returns four lists: the forecast's epoch seconds (on the series'
    median step), the point forecast, and the interval's lower and upper bound (option level)."""
    opt = check_options(options)
    check_series(ts, values)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive number of steps, not {horizon!r}")
    step, grid, y = regular(ts, values, opt["max_gap"])
    limit = min(MAX_HORIZON, HORIZON_FACTOR * len(y))
    if horizon > limit:
        raise ValueError(f"horizon {horizon} is too far: at most {limit} steps "
                         f"(10 x the {len(y)} points of history, and never over {MAX_HORIZON})")
    yhat, lo, hi, _ = forecast_grid(y, step, horizon, opt)
    times = grid[-1] + step * np.arange(1, horizon + 1, dtype=np.float64)
    return times.tolist(), yhat.tolist(), lo.tolist(), hi.tolist()


def normal_cdf(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def normal_quantile(p):
    """The standard normal quantile, by bisection on erf (exact to 1e-12; math has no inverse)."""
    lo, hi = -40.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def crossing(ts, values, horizon, limit, options=None):
    """When a rising series reaches `limit` (days-to-threshold alerts): the forecast `horizon`
    steps ahead (at most 10 x the history: a shorter horizon than asked is used, and said) and

      predicted   the first time the point forecast is at or past the limit (None: not within)
      earliest    the first time the interval's upper bound is (the date it could come first)
      confidence  the highest probability, over the horizon, that the value is past the limit at
                  that time, reading each step's interval as a normal one (sd = width / 2z); 1
                  when the series is past the limit already
      current     the last value; horizon and model: what was used.

    Returns a dict; ValueError for bad input as forecast() gives it."""
    opt = check_options(options)
    check_series(ts, values)
    if limit is None or not math.isfinite(limit):
        raise ValueError(f"limit must be a finite number, not {limit!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive number of steps, not {horizon!r}")
    step, grid, y = regular(ts, values, opt["max_gap"])
    used = min(horizon, MAX_HORIZON, HORIZON_FACTOR * len(y))
    yhat, lo, hi, info = forecast_grid(y, step, used, opt)
    times = grid[-1] + step * np.arange(1, used + 1, dtype=np.float64)
    current = float(y[-1])
    z = normal_quantile(0.5 + float(opt["level"]) / 2.0)
    sd = (hi - lo) / (2.0 * z)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(sd > 0, (yhat - limit) / np.where(sd > 0, sd, 1.0), np.where(yhat >= limit, np.inf, -np.inf))
    confidence = 1.0 if current >= limit else max(normal_cdf(float(v)) if math.isfinite(v) else float(v > 0)
                                                  for v in zs)
    at = np.flatnonzero(yhat >= limit)
    first = np.flatnonzero(hi >= limit)
    return {"predicted": float(times[at[0]]) if at.size else None,
            "earliest": float(times[first[0]]) if first.size else None,
            "confidence": confidence, "current": current, "last": float(grid[-1]),
            "horizon": used, "step": step, "model": info["model"],
            "yhat_end": float(yhat[-1]), "hi_end": float(hi[-1])}
