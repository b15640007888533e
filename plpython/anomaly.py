"""Online anomaly detection for many series at once: one bank of detectors, one state per series.

The same code serves both ways a series is scored (sql/analytics/anomaly_scores.sql for an array
of points, and the live path folding each new minute into per-series state): `Bank.step()` takes
one point of every series (a vector) and returns each point's expected value, score in [0, 1] and
whether it is an anomaly, from earlier points only. All state is O(1) floats a series (plus the
seasonal profiles), so scoring the newest point of 10,000 series is a few dozen numpy operations
over 10,000-element vectors, and the state fits the store's per-instance blocks.

The detectors, each fed the point after the seasonal profile is taken off (once it has learnt
enough cycles and explains the series better than its level alone):
- robust: distance from a streaming median in streaming MADs (a spike);
- gaussian: distance from an EWMA mean in EWMA standard deviations, smoothed (a drift);
- level: a short EWMA of the value against the median (a change of level, learnt as normal
  as the median follows it);
- variance: a short EWMA of absolute deviations against the MAD (a change of variance);
- range: a value, or its short level (the level detector's EWMA), beyond everything seen so far
  by more than `range_margin` of the seen range. The level's own record matters for a sustained
  shift at 1-minute resolution: one earlier spike may hold the values' record, but a drop that
  lasts moves the level past anything the level did before within a few points, where the
  likelihoods (smoothed, and used to their own history) take many more.
Each raw measure goes through its own anomaly likelihood (Numenta's idea, Ahmad et al. 2017:
how unusual is this measure given its own recent distribution, as -log10 of a normal tail
probability / 10, so 0.5 is p = 1e-5); the point's score is the highest of them.

Welford's count/mean/M2 are kept as the series' exact running statistics (the seed's
`mean = (mean + value) / 2` is not a mean). Runs on numpy 1.24 through 2.x, long-stable API only.
"""
import math

import numpy as np

DEFAULTS = {
    "threshold": 0.5,          # is_anomaly: score >= threshold
    "warmup_points": 100,      # points scored 0 (neutral) while every statistic settles
    "median_rate": 0.02,       # streaming median/MAD step, in MADs a point
    "ewma_alpha": 0.01,        # the gaussian detector's EWMA mean/variance
    "level_alpha": 0.3,        # the level detector's short EWMA
    "spread_alpha": 0.1,       # the variance detector's short EWMA of |deviation|
    "smooth_alpha": 0.1,       # each likelihood's moving average of its raw measure (~20 points)
    "likelihood_points": 1000, # memory of each likelihood's mean and variance
    "range_margin": 0.05,      # range detector: beyond the seen range by this share of it,
    "range_sigmas": 1.0,       # and by this many robust standard deviations
    "seasonal_min_cycles": 3,  # days (weeks) of history before the hour-of-day (week) profile is used
    "profile_alpha": 0.1,      # a profile slot's EWMA across cycles
    "suppress_points": 100,    # after an anomaly, the next points' scores are damped (x 0.1)
    "detectors": ["robust", "gaussian", "level", "variance", "range"],
    "seasonal": True,          # take the hour-of-day/week profile off before the detectors
}
DETECTORS = ("robust", "gaussian", "level", "variance", "range")
LIKELIHOOD_DETECTORS = ("robust", "gaussian", "level", "variance")
DAY, WEEK = 86400.0, 604800.0
# The Unix epoch was a Thursday: shift by 3 days so slot 0 of the week is Monday 00:00 UTC.
WEEK_SHIFT = 3 * DAY

# Per-series scalar state, in storage order (pack()).
SCALARS = (
    "n", "t_first", "t_last", "w_n", "w_mean", "w_m2", "med", "mad", "ew_mean", "ew_var",
    "short", "spread", "hi", "lo", "raw_var", "resid_var", "last_alert",
    "hour", "hour_sum", "hour_n",  # the hour being accumulated (epoch hours) for the profiles
    "lik_n", "seasoned",           # points the likelihoods have learnt since they (re)started; profile in use
)
# Each likelihood detector's (LIKELIHOOD_DETECTORS order) smoothed raw measure and that
# average's running mean and variance: a column a detector, so the four likelihoods are one
# set of numpy operations.
LIKELIHOODS = (("lik_avg", 4), ("lik_mean", 4), ("lik_var", 4))
# Online profiles: hour of day and hour of week, each slot's EWMA of the hour's mean deviation
# from the level, and how many hours (cycles) it has folded. They change once an hour, so the
# live path stores them apart from the rest (which changes every point): 384 of a series'
# 415 floats are written once an hour, not once a minute. A trained model's hour-of-week
# profile (train_anomaly_model()) takes precedence.
PROFILES = (("day_mean", 24), ("day_n", 24), ("week_mean", 168), ("week_n", 168))
# State added after a release goes at the end of its part, with the value a series that has seen
# nothing has: a block stored before it decodes with that value filled in (decode()).
GROWN = {"hot": (("short_hi", math.nan), ("short_lo", math.nan)), "profiles": ()}
PARTS = {"hot": tuple((k, 0) for k in SCALARS) + LIKELIHOODS + tuple((k, 0) for k, _ in GROWN["hot"]),
         "profiles": PROFILES}


RELEARN_POINTS = 30  # likelihood points re-learnt before they score again after a restart


class OptionError(ValueError):
    pass


def check_options(options):
    """The options with defaults filled in; a clear error for an unknown key or a bad value."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OptionError("options must be a JSON object")
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    out = dict(DEFAULTS)
    out.update(options)
    for key in ("threshold", "median_rate", "ewma_alpha", "level_alpha", "spread_alpha", "smooth_alpha",
                "profile_alpha"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise OptionError(f"option {key} must be a number in (0, 1], not {v!r}")
    for key in ("range_margin", "range_sigmas"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 10:
            raise OptionError(f"option {key} must be a number in [0, 10], not {v!r}")
    for key, low in (("warmup_points", 0), ("likelihood_points", 2), ("seasonal_min_cycles", 1),
                     ("suppress_points", 0)):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 10_000_000:
            raise OptionError(f"option {key} must be an integer >= {low}, not {v!r}")
    if not isinstance(out["seasonal"], bool):
        raise OptionError(f"option seasonal must be true or false, not {out['seasonal']!r}")
    dets = out["detectors"]
    if not isinstance(dets, list) or not dets or any(d not in DETECTORS for d in dets):
        raise OptionError(f"option detectors must be a non-empty list of {', '.join(DETECTORS)}, not {dets!r}")
    return out


def new_state(size):
    """The state of `size` series that have seen nothing."""
    state = {k: np.zeros(size) for k in SCALARS}
    for k in ("t_first", "t_last", "hi", "lo", "last_alert", "hour"):
        state[k][:] = np.nan
    for name, width in LIKELIHOODS + PROFILES:
        state[name] = np.zeros((size, width))
    for part in GROWN.values():
        for name, initial in part:
            state[name] = np.full(size, initial)
    return state


def state_width(part):
    """Floats a series of one part of the state ("hot" or "profiles")."""
    return sum(max(w, 1) for _, w in PARTS[part])


def pack(state, part):
    """One part of the state as a (series, state_width(part)) matrix, to store as bytes."""
    return np.hstack([state[k][:, None] if w == 0 else state[k] for k, w in PARTS[part]])


def unpack(matrices):
    """The state from its parts' matrices ({"hot": ..., "profiles": ...})."""
    state = {}
    for part, matrix in matrices.items():
        matrix = np.asarray(matrix, dtype=np.float64).reshape(-1, state_width(part))
        at = 0
        for k, w in PARTS[part]:
            state[k] = matrix[:, at].copy() if w == 0 else matrix[:, at:at + w].copy()
            at += max(w, 1)
    return state


# log(erfc(x)) for x >= 0 without underflow: Numerical Recipes' erfcc Chebyshev fit, fractional
# error < 1.2e-7 everywhere, written as a logarithm so a z of 40 still has a finite tail.
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
         1.48851587, -0.82215223, 0.17087277)


def log10_normal_tail(z):
    """log10 P(Z > z) for a standard normal Z, elementwise; z <= 0 gives log10(0.5) or more."""
    x = np.maximum(z, 0.0) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * x)
    poly = np.zeros_like(x)
    for c in reversed(_ERFC):
        poly = poly * t + c
    ln_erfc = np.log(t) - x * x + poly
    return (ln_erfc + math.log(0.5)) / math.log(10.0)


def surprise_score(bits):
    """A score in [0, 1) from -log10 p: 0.5 at p = 1e-5, never saturating (so a threshold can
    still tell p = 1e-12 from p = 1e-30)."""
    bits = np.maximum(bits, 0.0)
    return bits / (bits + 5.0)


class Bank:
    """Detectors for `size` series; step() scores one point of each and learns it."""

    def __init__(self, size, options=None, state=None, model=None):
        """model (optional, from train_anomaly_model()): "week_profile", a (size, 168) array of
        each hour of the week's offset from the series' level (NaN where not fitted),
        "threshold", a (size,) array of per-series thresholds (NaN: the option's), and
        "weights", a (size, len(DETECTORS)) array each detector's score is multiplied by."""
        self.opt = check_options(options)
        self.size = size
        self.state = new_state(size) if state is None else state
        model = model or {}
        self.week_profile = np.asarray(model.get("week_profile", np.full((size, 168), np.nan)), dtype=np.float64)
        threshold = np.asarray(model.get("threshold", np.full(size, np.nan)), dtype=np.float64)
        self.threshold = np.where(np.isfinite(threshold), threshold, self.opt["threshold"])
        weights = np.asarray(model.get("weights", np.ones((size, len(DETECTORS)))), dtype=np.float64)
        self.weights = np.where(np.isfinite(weights), weights, 1.0).reshape(size, len(DETECTORS))
        self.use = np.array([d in self.opt["detectors"] for d in DETECTORS], dtype=np.float64)
        # which series' profiles changed since the Bank was made: the live path stores only those
        self.profile_rows_changed = np.zeros(size, dtype=bool)

    def _likelihoods(self, raw, learn):
        """Numenta's anomaly likelihood of each raw measure (raw: series x LIKELIHOOD_DETECTORS):
        its short moving average (EWMA, smooth_alpha) against the running mean and variance of
        that average (EWMA over likelihood_points), as a normal tail probability; then learn it."""
        s, o = self.state, self.opt
        lm = learn[:, None]
        avg = s["lik_avg"]
        avg = np.where(lm, avg + o["smooth_alpha"] * (raw - avg), avg)
        mean, var = s["lik_mean"], s["lik_var"]
        # A measure that has been constant (variance 0) still needs a scale: a tenth of its
        # mean, and never below 0.05 (the raw measures are in deviations or log ratios).
        std = np.maximum(np.sqrt(np.maximum(var, 0.0)), np.maximum(0.1 * np.abs(mean), 0.05))
        score = surprise_score(-log10_normal_tail((avg - mean) / std))
        a = np.maximum(1.0 / np.maximum(s["lik_n"], 1.0), 1.0 / o["likelihood_points"])[:, None]
        s["lik_n"] = s["lik_n"] + learn
        delta = np.where(lm, avg - mean, 0.0)
        s["lik_avg"] = avg
        s["lik_mean"] = mean + a * delta
        s["lik_var"] = np.where(lm, (1 - a) * (var + a * delta * delta), var)
        # re-learning after a restart: neutral until the statistics have some points again
        return np.where(lm & (s["lik_n"] > RELEARN_POINTS)[:, None], score, 0.0)

    def _fold_hour(self, done):
        """Fold the finished hour of the series in `done` into their day and week profiles."""
        s = self.state
        rows = np.flatnonzero(done)
        hour = s["hour"][rows]
        deviation = s["hour_sum"][rows] / s["hour_n"][rows]
        for name, slot in (("day", (hour % 24).astype(np.int64)),
                           ("week", ((hour + WEEK_SHIFT / 3600.0) % 168).astype(np.int64))):
            cnt = s[f"{name}_n"][rows, slot]
            m = s[f"{name}_mean"][rows, slot]
            w = np.maximum(1.0 / (cnt + 1.0), self.opt["profile_alpha"])
            s[f"{name}_mean"][rows, slot] = m + w * (deviation - m)
            s[f"{name}_n"][rows, slot] = cnt + 1
        s["hour_sum"][rows] = 0.0
        s["hour_n"][rows] = 0.0
        self.profile_rows_changed[rows] = True

    def run(self, times, grid):
        """Step every series through `times` (ascending epoch seconds); grid[i, j] is series i's
        value at times[j], NaN where it has none (its state is left as it was). Returns the
        (expected, score, is_anomaly) arrays, each series x times."""
        out = np.full((3, self.size, len(times)), np.nan)
        for j, t in enumerate(times):
            out[0, :, j], out[1, :, j], out[2, :, j] = self.step(np.full(self.size, t), grid[:, j])
        return out[0], out[1], out[2] == 1

    def step(self, t, x):
        """Score x (one value of each series, NaN where a series has no point) at times t (epoch
        seconds); returns (expected, score, is_anomaly) arrays. A NaN point is skipped: its score
        is NaN and the state is unchanged."""
        o, s = self.opt, self.state
        t = np.asarray(t, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(t)
        xv = np.where(ok, x, 0.0)
        first = ok & (s["n"] == 0)
        s["t_first"] = np.where(first, t, s["t_first"])
        s["med"] = np.where(first, xv, s["med"])
        s["hi"] = np.where(first, xv, s["hi"])
        s["lo"] = np.where(first, xv, s["lo"])
        s["ew_mean"] = np.where(first, xv, s["ew_mean"])
        s["short"] = np.where(first, xv, s["short"])

        # An hour is over: fold its mean deviation into the profiles before this point is scored.
        hour = np.floor(t / 3600.0)
        done = ok & (s["hour_n"] > 0) & (hour != s["hour"])
        if done.any():
            self._fold_hour(done)

        # Seasonal offset: the slot's learnt mean deviation from the level, once the series has
        # min_cycles cycles of history and the profile explains it better than the level alone.
        history = np.where(ok, t - s["t_first"], 0.0)
        day_slot = np.where(ok, (np.floor(t / 3600.0) % 24), 0).astype(np.int64)
        week_slot = np.where(ok, (np.floor((t + WEEK_SHIFT) / 3600.0) % 168), 0).astype(np.int64)
        rows = np.arange(self.size)
        day_off = s["day_mean"][rows, day_slot]
        trained = self.week_profile[rows, week_slot]
        fitted = np.isfinite(trained)  # a trained profile is used as soon as it exists
        cycles = o["seasonal_min_cycles"]
        weekly = fitted | ((history >= cycles * WEEK) & (s["week_n"][rows, week_slot] >= cycles))
        week_off = np.where(fitted, trained, s["week_mean"][rows, week_slot])
        daily = (history >= cycles * DAY) & (s["day_n"][rows, day_slot] >= cycles)
        seasonal = fitted | ((weekly | daily) & (s["resid_var"] < 0.8 * s["raw_var"]))
        # A profile taken into use changes what the detectors see (the daily swing is gone):
        # what the likelihoods learnt of the measures before is stale, so they start again.
        started = ok & seasonal & (s["seasoned"] == 0)
        s["lik_n"] = np.where(started, 0.0, s["lik_n"])
        s["seasoned"] = np.where(started, 1.0, s["seasoned"])  # once: a flapping profile restarts nothing
        offset = np.where(seasonal & o["seasonal"], np.where(weekly, week_off, day_off), 0.0)
        y = xv - offset

        med = s["med"]
        n = s["n"]
        # The MAD's floor: a series that mostly repeats one value (MAD 0) is scaled by a
        # thousandth of its level, or of its seen range, instead.
        span = np.where(np.isfinite(s["hi"] - s["lo"]), s["hi"] - s["lo"], 0.0)
        floor = np.maximum(np.maximum(1e-3 * np.abs(med), 1e-2 * span), 1e-9)
        mad = np.maximum(s["mad"], floor)
        sigma = 1.4826 * mad
        expected = med + offset
        learn = ok & (n >= 1)

        short = np.where(learn, s["short"] + o["level_alpha"] * (y - s["short"]), s["short"])
        spread = np.where(learn, s["spread"] + o["spread_alpha"] * (np.abs(y - med) - s["spread"]), s["spread"])
        ew_std = np.sqrt(np.maximum(s["ew_var"], (0.5 * sigma) ** 2))
        raw = np.stack([
            np.abs(y - med) / sigma,                    # robust
            np.abs(y - s["ew_mean"]) / ew_std,          # gaussian
            np.abs(short - med) / sigma,                # level
            # variance: E|y - med| = 1.1926 MAD for normal data
            np.abs(np.log(np.maximum(spread, 1e-12) / (1.1926 * mad))),
        ], axis=1)
        detector = np.empty((self.size, len(DETECTORS)))
        # log1p: deviations of real series are heavy-tailed, and the likelihood's normal model
        # of them (mean, variance) then sees "rare" far too often; on a log scale it holds.
        detector[:, :4] = self._likelihoods(np.log1p(raw), learn)
        width = np.maximum(span, floor)
        past = np.maximum(np.maximum(xv - s["hi"], s["lo"] - xv), 0.0)
        beyond = past / width
        # Range: noise sets new records now and then (by a little): a record counts when it is
        # also range_sigmas robust standard deviations past the old one; as surprising as
        # p = 1e-5 at the margin, ten times less likely for each further margin.
        hit = learn & (beyond > o["range_margin"]) & (past > o["range_sigmas"] * sigma)
        # The same for the short level against the level's own record (sustained shifts).
        level_past = np.maximum(np.maximum(short - s["short_hi"], s["short_lo"] - short), 0.0)
        level_past = np.where(np.isfinite(level_past), level_past, 0.0)  # the first point: no record
        level_hit = learn & (level_past / width > o["range_margin"]) & (level_past > o["range_sigmas"] * sigma)
        beyond = np.where(level_hit, np.maximum(beyond, level_past / width), beyond)
        hit = hit | level_hit
        detector[:, 4] = np.where(hit, surprise_score(5.0 * beyond / max(o["range_margin"], 1e-3)), 0.0)
        detector *= self.weights * self.use
        self.detector_scores = detector  # for training: series x DETECTORS
        score = detector.max(axis=1)

        score = np.where(ok & (n >= o["warmup_points"]), score, 0.0)
        if o["suppress_points"]:
            quiet = (n - s["last_alert"]) <= o["suppress_points"]
            score = np.where(quiet, 0.1 * score, score)  # ranked below fresh surprises
        alert = ok & (score >= self.threshold)
        s["last_alert"] = np.where(alert, n, s["last_alert"])

        # Learn the point.
        s["short"], s["spread"] = short, spread
        s["short_hi"] = np.where(learn, np.fmax(s["short_hi"], short), s["short_hi"])
        s["short_lo"] = np.where(learn, np.fmin(s["short_lo"], short), s["short_lo"])
        dev = y - med
        rate = np.where(n < 20, 0.2, o["median_rate"])
        s["med"] = np.where(learn, med + rate * mad * np.sign(dev), s["med"])
        s["mad"] = np.where(learn & (n < 20), s["mad"] + (np.abs(dev) - s["mad"]) / np.maximum(n, 1.0),
                            np.where(learn, s["mad"] * (1.0 + rate * np.sign(np.abs(dev) - s["mad"])), s["mad"]))
        a = o["ewma_alpha"]
        ed = y - s["ew_mean"]
        s["ew_mean"] = np.where(learn, s["ew_mean"] + a * ed, s["ew_mean"])
        s["ew_var"] = np.where(learn, (1 - a) * (s["ew_var"] + a * ed * ed), s["ew_var"])
        s["raw_var"] = np.where(learn, s["raw_var"] + a * ((xv - med) ** 2 - s["raw_var"]), s["raw_var"])
        s["resid_var"] = np.where(learn, s["resid_var"] + a * ((xv - med - np.where(weekly, week_off, day_off)) ** 2
                                                                  - s["resid_var"]), s["resid_var"])
        s["hour"] = np.where(ok, hour, s["hour"])
        s["hour_sum"] = s["hour_sum"] + np.where(ok, xv - med, 0.0)
        s["hour_n"] = s["hour_n"] + ok
        s["hi"] = np.where(ok, np.maximum(s["hi"], xv), s["hi"])
        s["lo"] = np.where(ok, np.minimum(s["lo"], xv), s["lo"])
        wn = s["w_n"] + ok
        wd = xv - s["w_mean"]
        s["w_mean"] = np.where(ok, s["w_mean"] + wd / np.maximum(wn, 1.0), s["w_mean"])
        s["w_m2"] = np.where(ok, s["w_m2"] + wd * (xv - s["w_mean"]), s["w_m2"])
        s["w_n"] = wn
        s["n"] = n + ok
        s["t_last"] = np.where(ok, t, s["t_last"])
        nan = np.full(self.size, np.nan)
        return (np.where(ok, expected, nan), np.where(ok, score, nan), alert)


def check_series(ts, values):
    """Refuse what cannot be scored, saying why: lengths, NULLs, NaN/inf, time order."""
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


def score(ts, values, options=None):
    """Score one series (ts: epoch seconds, increasing; values: finite floats) point by point,
    online. Returns three lists: expected, score, is_anomaly."""
    check_series(ts, values)
    expected, scores, flags = Bank(1, options).run(ts, np.asarray([values], dtype=np.float64).reshape(1, -1))
    return expected[0].tolist(), scores[0].tolist(), flags[0].tolist()


def decode(sent, rows, part):
    """A block's bytes (big-endian float8s) of one part as a (rows, state_width(part)) matrix.
    A block stored before the part grew (GROWN) gets the added columns' initial values."""
    width = state_width(part)
    if not rows:
        return np.zeros((0, width))
    floats = np.frombuffer(sent, dtype=">f8").astype(np.float64)
    grown = GROWN[part]
    if floats.size == rows * (width - len(grown)) and grown:
        old = floats.reshape(rows, width - len(grown))
        return np.hstack([old, np.tile([v for _, v in grown], (rows, 1))])
    if floats.size != rows * width:
        raise ValueError(f"a stored {part} state of {floats.size} floats does not hold {rows} series of {width}")
    return floats.reshape(rows, width)


def encode(matrix):
    return np.ascontiguousarray(matrix, dtype=">f8").tobytes()


def live_fold(keys, sent, point_keys, buckets, values, options=None, model=None):
    """The live path: score an instance's new minutes against its stored state, in time order.

    keys / sent: the block's keys and its state as bytes, {"hot": ..., "profiles": ...} (None
    for a new instance); point_keys, buckets (epoch seconds), values: the new points, any order
    (one per key and minute). Returns (keys, sent, scored): keys now every key seen; sent the
    new bytes of each part, profiles None when unchanged (they change once an hour);
    scored a list of (key, bucket, value, expected, score, is_anomaly) in (key, bucket) order:
    exactly what score() gives for each key's series, as the Bank and the points are the same.
    model: {"keys": [...], "week_profile": ..., "threshold": ..., "weights": ..., "warm": ...}
    rows by key, and "fresh": True the first time it is used, when each of its keys' hot state
    is replaced by the model's warm state (fit_model())."""
    return live_fold_many([(keys, sent, point_keys, buckets, values, model)], options)[0]


def live_fold_many(blocks, options=None):
    """live_fold() of many instances' blocks at once: every block's series in one Bank, stepped
    through the union of their minutes (a series without a point in a minute is left as it
    was, so each gets exactly what live_fold() gives it alone), then split back. blocks: a list
    of (keys, sent, point_keys, buckets, values, model); returns a list of (keys, sent, scored)."""
    prepared, hot, profiles, models = [], [], [], []
    for keys, sent, point_keys, buckets, values, model in blocks:
        keys = list(keys or [])
        new_keys = sorted(set(point_keys) - set(keys))
        all_keys = keys + new_keys
        order = None
        if new_keys:
            order = np.argsort(np.array(all_keys, dtype=object), kind="stable")
            all_keys = [all_keys[i] for i in order]
        fresh = new_state(len(new_keys))
        parts = {}
        for part in PARTS:
            old = decode(sent[part], len(keys), part) if keys else np.zeros((0, state_width(part)))
            matrix = np.vstack([old, pack(fresh, part)]) if new_keys else old
            parts[part] = matrix[order] if order is not None else matrix
        if model and model.get("fresh") and model.get("warm") is not None:
            at = {k: i for i, k in enumerate(all_keys)}
            warm = np.asarray(model["warm"], dtype=np.float64).reshape(len(model["keys"]), state_width("hot"))
            for m, k in enumerate(model["keys"]):
                if k in at:
                    parts["hot"][at[k]] = warm[m]
        hot.append(parts["hot"])
        profiles.append(parts["profiles"])
        models.append(_model_rows(model, all_keys))
        prepared.append((all_keys, bool(new_keys) or not keys, point_keys, buckets, values))
    size = sum(len(p[0]) for p in prepared)
    state = unpack({"hot": np.vstack(hot) if hot else np.zeros((0, state_width("hot"))),
                    "profiles": np.vstack(profiles) if profiles else np.zeros((0, state_width("profiles")))})
    model = {k: np.concatenate([m[k] for m in models]) if models else None
             for k in ("week_profile", "threshold", "weights")} if models else None
    bank = Bank(size, options, state=state, model=model)
    times = sorted({t for p in prepared for t in p[3]})
    col = {t: j for j, t in enumerate(times)}
    grid = np.full((size, len(times)), np.nan)
    first = 0
    for all_keys, _, point_keys, buckets, values in prepared:
        where = {k: first + i for i, k in enumerate(all_keys)}
        rows = np.fromiter((where[k] for k in point_keys), dtype=np.int64, count=len(point_keys))
        cols = np.fromiter((col[t] for t in buckets), dtype=np.int64, count=len(buckets))
        grid[rows, cols] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        first += len(all_keys)
    expected, scores, flags = bank.run(times, grid)
    hot_all, profiles_all = pack(bank.state, "hot"), pack(bank.state, "profiles")
    results, first = [], 0
    for all_keys, new, _, _, _ in prepared:
        span = slice(first, first + len(all_keys))
        ki, ti = np.nonzero(np.isfinite(grid[span]))  # row-major: by key, then time
        ri = ki + first
        scored = list(zip([all_keys[k] for k in ki], [times[k] for k in ti], grid[ri, ti].tolist(),
                          expected[ri, ti].tolist(), scores[ri, ti].tolist(), flags[ri, ti].tolist()))
        changed = new or bool(bank.profile_rows_changed[span].any())
        results.append((all_keys, {"hot": encode(hot_all[span]),
                                   "profiles": encode(profiles_all[span]) if changed else None}, scored))
        first += len(all_keys)
    return results


def model_from_row(keys, week_profile, thresholds, weights, detectors, warm_state=None):
    """A trained model as anomaly_models stores it (bytes, big-endian float8s, row i for keys[i])
    as the dict live_fold() and Bank take. Weights are matched by detector name: a model trained
    before a detector existed gives it weight 1."""
    k = len(keys)
    trained = np.frombuffer(weights, dtype=">f8").astype(np.float64).reshape(k, len(detectors))
    by_name = np.ones((k, len(DETECTORS)))
    for j, d in enumerate(detectors):
        if d in DETECTORS:
            by_name[:, DETECTORS.index(d)] = trained[:, j]
    model = {"keys": list(keys),
             "week_profile": np.frombuffer(week_profile, dtype=">f8").astype(np.float64).reshape(k, 168),
             "threshold": np.frombuffer(thresholds, dtype=">f8").astype(np.float64), "weights": by_name}
    if warm_state is not None:
        model["warm"] = decode(warm_state, k, "hot")
    return model


def _model_rows(model, keys):
    """A trained model's parameters laid out for `keys` (rows of keys it lacks, or all rows when
    there is no model: not fitted)."""
    model = model or {"keys": [], "week_profile": [], "threshold": [], "weights": []}
    at = {k: i for i, k in enumerate(model["keys"])}
    pick = np.array([at.get(k, -1) for k in keys], dtype=np.int64)
    have = pick >= 0

    def rows(a, width):
        a = np.asarray(a, dtype=np.float64).reshape(len(model["keys"]), width) if width else \
            np.asarray(a, dtype=np.float64)
        out = np.full((len(keys), width) if width else len(keys), np.nan)
        out[have] = a[pick[have]]
        return out
    return {"week_profile": rows(model["week_profile"], 168), "threshold": rows(model["threshold"], 0),
            "weights": rows(model["weights"], len(DETECTORS))}


def fit_model(series, options=None, allowed_alerts_per_week=1.0):
    """Fit per-series parameters from history assumed mostly normal (train_anomaly_model()).

    series: {key: (ts epoch seconds, values)}. For each key:
    - week_profile: each hour of the week's median deviation from the series' median when every
      hour of the week has points from two weeks or more, else each hour of the day's (every
      hour from two days or more) repeated over the week; kept only when it explains the
      series (residual variance under 0.8 of the raw), else NaN (not fitted);
    - warm: the detector's state ("hot" part) after replaying the history with that profile:
      the live path starts from it when the model is new, so what the detector learnt about
      the series' variability is not inflated by the peaks the profile now expects;
    - weights: a detector that alerted on this history more often than allowed_alerts_per_week
      (at least once) is scaled down until it would not have (a benign batch job, a noisy
      sensor), never below 0.5: it still speaks for what is far stronger;
    - threshold: the production threshold (the weights do the fitting).
    Deterministic: the same history and options fit the same parameters."""
    opt = check_options(options)
    keys = sorted(series)
    profile = np.full((len(keys), 168), np.nan)
    weights = np.ones((len(keys), len(DETECTORS)))
    warm = np.zeros((len(keys), state_width("hot")))
    summary = {}
    for i, key in enumerate(keys):
        ts, values = (np.asarray(a, dtype=np.float64) for a in series[key])
        check_series(list(ts), list(values))
        span = float(ts[-1] - ts[0]) if len(ts) > 1 else 0.0
        level = float(np.median(values)) if len(values) else 0.0
        raw_var = float(np.mean((values - level) ** 2)) if len(values) else 0.0
        week_slot = (np.floor((ts + WEEK_SHIFT) / 3600.0) % 168).astype(np.int64)
        day_slot = (np.floor(ts / 3600.0) % 24).astype(np.int64)
        fitted, kind = None, None
        if _cycles_per_slot(ts, week_slot, WEEK, 168) >= 2:
            fitted = np.array([np.median(values[week_slot == k]) - level for k in range(168)])
            kind = "hour_of_week"
        elif _cycles_per_slot(ts, day_slot, DAY, 24) >= 2:
            by_hour = np.array([np.median(values[day_slot == k]) - level for k in range(24)])
            fitted = by_hour[np.arange(168) % 24]  # WEEK_SHIFT is whole days: week hour k is day hour k % 24
            kind = "hour_of_day"
        explained = False
        if fitted is not None and raw_var > 0:
            resid = float(np.mean((values - level - fitted[week_slot]) ** 2))
            explained = resid < 0.8 * raw_var
        if explained:
            profile[i] = fitted
        # Replay the history with the fitted profile: which detectors alerted how often.
        bank = Bank(1, opt, model={"week_profile": profile[i:i + 1]})
        peaks: dict[str, list[float]] = {d: [] for d in DETECTORS}
        for t, v in zip(ts, values):
            bank.step((t,), (v,))
            for j, d in enumerate(DETECTORS):
                peaks[d].append(float(bank.detector_scores[0, j]))
        warm[i] = pack(bank.state, "hot")[0]
        allowed = max(1, int(allowed_alerts_per_week * span / WEEK))
        muted = {}
        for j, d in enumerate(DETECTORS):
            scores = np.sort(np.asarray(peaks[d]))[::-1]
            if len(scores) > allowed and scores[allowed] >= opt["threshold"]:
                # scaled so that the (allowed + 1)-th highest score falls just under the threshold
                weights[i, j] = max(0.5, 0.99 * opt["threshold"] / scores[allowed])
                muted[d] = round(float(weights[i, j]), 4)
        summary[key] = {"points": int(len(values)), "profile": kind if explained else None,
                        "weights": muted}
    hot = unpack({"hot": warm})
    hot["last_alert"][:] = np.nan  # the replay's alerts were not the live path's
    return {"keys": keys, "week_profile": profile, "threshold": np.full(len(keys), opt["threshold"]),
            "weights": weights, "warm": pack(hot, "hot"), "summary": summary}


def _cycles_per_slot(ts, slot, cycle, width):
    """The fewest distinct cycles (days, weeks) any of the `width` slots has points from."""
    seen = np.zeros(width, dtype=np.int64)
    for k in np.unique(slot):
        seen[k] = np.unique(np.floor((ts[slot == k] + WEEK_SHIFT) / cycle)).size
    return int(seen.min()) if width else 0
