"""Correlation of metrics, at lag 0 and lagged: which metric leads which, by how much, and
whether it means anything.

Correlation lies in four well-known ways, and each step below exists to stop one of them:
- gaps: the series are put on a regular grid (`align`) and a grid point without a sample stays
  missing (NaN). Nothing is interpolated: a pair (x[t], y[t + lag]) with a missing side is
  dropped, so the r of every lag is Pearson's r over the pairs present ("pairwise complete").
  Interpolating would invent smooth stretches that correlate with anything smooth.
- trends: two series that both grow over the window correlate strongly whatever they are, and
  two independent random walks do as well (the classic "spurious regression", Granger and
  Newbold 1974; bench/correlation_eval.py and tests/unit/test_correlation_module.py show it).
  `prepare` with method "auto" removes each series' least-squares line and then asks whether
  what is left still has a unit root: an augmented Dickey-Fuller regression on it (with a
  constant, a trend and one lagged difference) whose t statistic is compared with the 5 %
  critical value, about -3.41 (MacKinnon's 1991 response surface for the constant + trend
  case, with its small-sample terms). When either series cannot be shown to be stationary
  around its trend, both are differenced (first differences): correlation of changes, which a
  random walk's wandering level does not fake. A fixed cut on the lag-1 autocorrelation (e.g.
  0.95) was the first idea, but a detrended random walk of n points has a lag-1
  autocorrelation of about 1 - 7.5/n (median of 300 walks: 0.85 at n = 60, 0.968 at 300, 0.994
  at 1440): below the cut in short windows, and many slow but stationary series are above it
  in long ones. No fixed cut works across window lengths; the test's critical value does (it
  calls a walk a walk 95 % of the time at every n; both walks of an unrelated pair escape it
  0.25 % of the time, and then the chance bound below, with its small n_eff, still rejects
  them). Low power cuts the safe way: a short window of a slow but stationary series gets
  differenced, which costs some r but never invents one. What was done is returned
  ("detrended", "differenced: x trends like a random walk"), and said in the words.
- constant and short windows: a series with no variance left after preparation has no
  correlation (a ValueError saying which one), and fewer than `min_pairs` (30) pairs present is
  refused; at a lag where fewer than `min_pairs` pairs remain, r is None.
- chance: the best of 2L + 1 lags of two unrelated series is never 0. `best_lag` calls a lag
  significant only when |r| exceeds the Bonferroni bound z(1 - alpha / (2 (2L + 1))) / sqrt(n_eff)
  for the number of lags looked at, with n_eff = n / (1 + 2 sum_k rho_x(k) rho_y(k)) (Bartlett
  1935: autocorrelated series carry fewer independent pairs), the sum over the prepared series'
  autocorrelations up to 10 log10(n) lags (R's acf default). It is Bonferroni over lags only, not
  over the pairs of a matrix: a matrix of 50 metrics looks at 1,225 pairs, which is why its
  report also asks for |r| > threshold (0.7).

Lag convention: lag k > 0 means x leads y by k steps, r(k) = corr(x[t], y[t + k]). The best lag
is the one of the largest |r|, but among lags whose |r| is within TIE (0.02) of it the one of
smallest |lag| wins: neighbouring lags of smooth series differ by less than the noise of r, and
"they move together" is the safer reading than a lead of a few steps.

Computation: for each lag, the six sums of pairwise-complete Pearson (count, sums, cross
products, squares) are contractions (np.einsum) of zero-filled columns and their presence masks,
so one lag of a whole matrix (50 metrics x 1440 points) is six small contractions, exact (no FFT
rounding) and in the calling thread (see lag_stats), and a pair's 601 lags are a few thousand
vector operations; the columns are standardised first so that the sums do not cancel.
Measured (bench/correlation_eval.py, 288 pairs of known lag and 288 independent pairs per
resolution): the lag is recovered within one step for 97.6 % of the pairs at 1 s and 99.0 % at
1 minute (46.5 % and 55.2 % without preparation); 0.3 % and 0.7 % of independent pairs get a
significant lead (20.1 % and 14.2 % without). Speed: the matrix of 50 metrics over a day at
1 minute with lags to 5 minutes takes 0.27 s in the module, 0.42 s through
correlation_matrix_values(); one pair of an hour at 1 s with 601 lags 28 ms (64 ms through
lagged_correlation()). Runs on numpy 1.24 through 2.x, long-stable API only; the normal
quantile comes from the standard library (statistics.NormalDist), not scipy.
"""
import math
import re
import statistics

import numpy as np

MIN_PAIRS = 30          # fewer pairs present: no correlation is worth reporting
TIE = 0.02              # |r| this close to the best: the smaller |lag| wins
ALPHA = 0.05            # significance level of best_lag's chance bound (Bonferroni over lags)
THRESHOLD = 0.7         # matrix(): pairs with |r| above this (at lag 0 or the best lag) get an insight
MAX_LAG_STEPS = 100_000 # more lags than this is a mistake, not a question
METHODS = ("auto", "none", "linear", "difference")
# Augmented Dickey-Fuller, constant + trend, 5 %: MacKinnon (1991) tau_ct(5 %) = -3.4126 - 4.039/n - 17.83/n^2
ADF_CRIT = (-3.4126, -4.039, -17.83)

DEFAULTS = {
    "step": None,         # seconds (or interval text); None: the median spacing of the timestamps
    "detrend": "auto",    # "auto" | "none" | "linear" | "difference"
    "min_pairs": MIN_PAIRS,
    "alpha": ALPHA,
}
MATRIX_DEFAULTS = dict(DEFAULTS, threshold=THRESHOLD, max_lag=300.0)

_UNITS = {"us": 1e-6, "microsecond": 1e-6, "ms": 1e-3, "millisecond": 1e-3, "msec": 1e-3,
          "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_TOKEN = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-z]+)\s*")
_CLOCK = re.compile(r"^\s*([0-9]+):([0-9]{2})(?::([0-9]{2}(?:\.[0-9]*)?))?\s*$")


def seconds(value, name):
    """A duration in seconds from a number or an interval text ("30 s", "1 min 30 s", "00:01:30")."""
    if isinstance(value, bool):
        raise ValueError(f"option {name} must be a number of seconds or an interval text, not {value!r}")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        clock = _CLOCK.match(text)
        if clock:
            out = int(clock.group(1)) * 3600.0 + int(clock.group(2)) * 60.0 + float(clock.group(3) or 0)
        else:
            out, pos = 0.0, 0
            for m in _TOKEN.finditer(text):
                if m.start() != pos:
                    break
                unit = m.group(2)
                unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNITS and unit != "ms" else unit
                if unit not in _UNITS:
                    raise ValueError(f"option {name}: unknown unit {m.group(2)!r} in {value!r}")
                out += float(m.group(1)) * _UNITS[unit]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError(f"option {name}: {value!r} is not an interval (e.g. '30 s', '1 min', '00:01:30')")
    else:
        raise ValueError(f"option {name} must be a number of seconds or an interval text, not {value!r}")
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"option {name} must be a finite duration >= 0, not {value!r}")
    return out


def check_options(options, defaults=None):
    """The options with defaults filled in; a clear error for an unknown key or a bad value."""
    defaults = DEFAULTS if defaults is None else defaults
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ValueError("options must be a JSON object")
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    out = dict(defaults)
    out.update(options)
    if out["step"] is not None:
        out["step"] = seconds(out["step"], "step")
        if out["step"] <= 0:
            raise ValueError("option step must be a positive duration")
    if out["detrend"] not in METHODS:
        raise ValueError(f"option detrend must be one of {', '.join(METHODS)}, not {out['detrend']!r}")
    mp = out["min_pairs"]
    if isinstance(mp, bool) or not isinstance(mp, int) or not 3 <= mp <= 1_000_000:
        raise ValueError(f"option min_pairs must be an integer in [3, 1000000], not {mp!r}")
    a = out["alpha"]
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 1:
        raise ValueError(f"option alpha must be a number in (0, 1), not {a!r}")
    if "threshold" in out:
        th = out["threshold"]
        if isinstance(th, bool) or not isinstance(th, (int, float)) or not 0 <= th < 1:
            raise ValueError(f"option threshold must be a number in [0, 1), not {th!r}")
        out["max_lag"] = seconds(out["max_lag"], "max_lag")
    return out


def check_times(ts, what="timestamps"):
    """Epoch seconds, finite, strictly increasing; a clear error otherwise."""
    if ts is None:
        raise ValueError(f"{what} must not be NULL")
    for i, t in enumerate(ts):
        if t is None:
            raise ValueError(f"{what[:-1]} {i + 1} is NULL")
        if not math.isfinite(t):
            raise ValueError(f"{what[:-1]} {i + 1} is not finite")
        if i and t <= ts[i - 1]:
            word = "duplicates" if t == ts[i - 1] else "is earlier than"
            raise ValueError(f"{what[:-1]} {i + 1} {word} {what[:-1]} {i}: {what} must be strictly increasing")


def check_values(values, name, n, allow_null=False):
    """A finite float per timestamp (None = missing where allow_null); a clear error otherwise."""
    if values is None:
        raise ValueError(f"{name} must not be NULL")
    if len(values) != n:
        raise ValueError(f"{n} timestamps but {len(values)} values of {name}: the arrays must be as long as each other")
    for i, v in enumerate(values):
        if v is None:
            if not allow_null:
                raise ValueError(f"{name} element {i + 1} is NULL: leave a missing point out (with its timestamp)")
        elif not math.isfinite(v):
            raise ValueError(f"{name} value {i + 1} is {v}: values must be finite (no NaN or infinity)")
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def grid_step(ts):
    """The median spacing of strictly increasing timestamps."""
    if len(ts) < 2:
        raise ValueError(f"{len(ts)} timestamp(s): a correlation needs a window of points")
    return float(np.median(np.diff(np.asarray(ts, dtype=np.float64))))


def align(ts, values, step=None):
    """(step, grid, values on the grid): a grid of `step` seconds (default: the median spacing)
    from the first timestamp to the last; each sample goes to its nearest grid point, samples
    sharing one are averaged (a step coarser than the data buckets it), a grid point without a
    sample (or with only NaN) is NaN: missing, never interpolated."""
    t = np.asarray(ts, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if step is None:
        step = grid_step(t)
    idx = np.floor((t - t[0]) / step + 0.5).astype(np.int64)  # nearest, a half step up
    n = int(idx[-1]) + 1
    if n > 10_000_000:
        raise ValueError(f"the timestamps span {n - 1} steps of {step:g} s: too long a window for "
                         f"this step (at most 10,000,000 grid points)")
    ok = np.isfinite(v)
    total = np.bincount(idx[ok], weights=v[ok], minlength=n)
    count = np.bincount(idx[ok], minlength=n)
    out = np.full(n, np.nan)
    have = count > 0
    out[have] = total[have] / count[have]
    return float(step), t[0] + step * np.arange(n, dtype=np.float64), out


def detrend(z):
    """z minus its least-squares line over the points present (NaN stays NaN)."""
    t = np.arange(len(z), dtype=np.float64)
    ok = np.isfinite(z)
    if ok.sum() < 3:
        return z - np.nanmean(z) if ok.any() else z.copy()
    slope, intercept = np.polyfit(t[ok], z[ok], 1)
    return z - (intercept + slope * t)


def difference(z):
    """First differences z[t] - z[t-1] (NaN where either is missing), as long as z: the first is NaN."""
    out = np.full(len(z), np.nan)
    out[1:] = z[1:] - z[:-1]
    return out


def adf_t(z):
    """The t statistic of rho in dz[t] = a + b t + rho z[t-1] + g dz[t-1] + e (rows with a
    missing value dropped), and the number of rows; (nan, rows) when it cannot be fitted."""
    dz = difference(z)
    n = len(z)
    if n < 4:
        return math.nan, 0
    y = dz[2:]
    lag = z[1:-1]
    ddz = dz[1:-1]
    t = np.arange(2, n, dtype=np.float64)
    X = np.column_stack([np.ones(n - 2), t / n, lag, ddz])
    ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    rows = int(ok.sum())
    if rows < 10:
        return math.nan, rows
    X, y = X[ok], y[ok]
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    if rank < X.shape[1]:
        return math.nan, rows
    resid = y - X @ beta
    s2 = float(resid @ resid) / (rows - X.shape[1])
    cov = s2 * np.linalg.inv(X.T @ X)
    se = math.sqrt(max(float(cov[2, 2]), 0.0))
    if se == 0.0:
        return math.nan, rows
    return float(beta[2]) / se, rows


def unit_root(z):
    """True when an ADF test (constant + trend, 5 %) cannot reject a unit root in z: it may be a
    random walk (or too short a window to tell, which is treated alike)."""
    stat, rows = adf_t(z)
    if not math.isfinite(stat):
        return True
    a, b, c = ADF_CRIT
    return stat > a + b / rows + c / rows ** 2


def _constant(z, raw_scale):
    """No variance left (relative to the raw series' scale)."""
    ok = z[np.isfinite(z)]
    return ok.size < 2 or float(np.std(ok)) <= 1e-12 * max(raw_scale, 1e-300)


def _scale(z):
    ok = z[np.isfinite(z)]
    return float(np.max(np.abs(ok))) if ok.size else 0.0


def prepare(x, y, method="auto"):
    """(x', y', what was done): the two gridded series made fit to correlate (module docstring).
    method: "none" (as they are), "linear" (each minus its least-squares line), "difference"
    (first differences of both), "auto" (detrended, and differenced when either still has a
    unit root). A series constant as given, or with nothing left after preparation, is a
    ValueError naming it."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    for name, z in (("x", x), ("y", y)):
        if _constant(z, _scale(z)):
            raise ValueError(f"{name} is constant over the window: a constant has no correlation")
    if method == "none":
        return x, y, "as given"
    if method == "difference":
        px, py, what = difference(x), difference(y), "differenced"
    else:
        px, py, what = detrend(x), detrend(y), "detrended"
    for name, z, raw in (("x", px, x), ("y", py, y)):
        if _constant(z, _scale(raw)):  # what differencing leaves constant is a line as well
            raise ValueError(f"{name} is a straight line over the window: nothing is left once its trend is removed")
    if method == "auto":
        walks = [name for name, z in (("x", px), ("y", py)) if unit_root(z)]
        if walks:
            px, py = difference(x), difference(y)
        what = _what(walks)
        for name, z, raw in (("x", px, x), ("y", py, y)):
            if _constant(z, _scale(raw)):
                raise ValueError(f"{name} has nothing left once differenced")
    return px, py, what


def _standardise(A):
    """Columns minus their mean over the points present, divided by their spread (so that the
    sums of lag_stats do not cancel); NaN stays NaN. A constant column stays 0."""
    mean = np.nanmean(A, axis=0)
    sd = np.nanstd(A, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (A - mean) / sd


def lag_stats(A, B, lags, diagonal=False):
    """Pairwise-complete Pearson r and pair counts of every column of A (n x p) with every column
    of B (n x q) at each lag: r[i, a, b] = corr(A[t, a], B[t + lags[i], b]) over the t where both
    are present; with diagonal=True (p = q) only column a with column a: r[i, a]. r is NaN where
    fewer than 2 pairs or a side has no variance in the pairs.

    The sums are einsum contractions, not matrix products: numpy's einsum runs in the calling
    thread, while a BLAS matmul may start threads that spin against the server's other work (on
    a loaded 2-core machine the same matrix took 100 x longer through OpenBLAS's threads)."""
    A = _standardise(np.asarray(A, dtype=np.float64))
    B = _standardise(np.asarray(B, dtype=np.float64))
    n = A.shape[0]
    spec = "ta,ta->a" if diagonal else "ta,tb->ab"
    shape = (len(lags), A.shape[1]) if diagonal else (len(lags), A.shape[1], B.shape[1])
    ma, mb = np.isfinite(A).astype(np.float64), np.isfinite(B).astype(np.float64)
    a0, b0 = np.where(ma > 0, A, 0.0), np.where(mb > 0, B, 0.0)
    a2, b2 = a0 * a0, b0 * b0
    r = np.full(shape, np.nan)
    count = np.zeros(shape, dtype=np.int64)
    for i, k in enumerate(lags):
        k = int(k)
        if abs(k) >= n:
            continue
        sa = slice(0, n - k) if k >= 0 else slice(-k, n)
        sb = slice(k, n) if k >= 0 else slice(0, n + k)
        MA, MB, XA, XB = ma[sa], mb[sb], a0[sa], b0[sb]
        N = np.einsum(spec, MA, MB)
        Sa, Sb = np.einsum(spec, XA, MB), np.einsum(spec, MA, XB)
        Sab = np.einsum(spec, XA, XB)
        Saa, Sbb = np.einsum(spec, a2[sa], MB), np.einsum(spec, MA, b2[sb])
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = Sab - Sa * Sb / N
            va = Saa - Sa * Sa / N
            vb = Sbb - Sb * Sb / N
            rr = cov / np.sqrt(va * vb)
        bad = (N < 2) | ~(va > 1e-10 * N) | ~(vb > 1e-10 * N)
        r[i] = np.where(bad, np.nan, np.clip(rr, -1.0, 1.0))
        count[i] = np.rint(N).astype(np.int64)
    return r, count


def _pairs_present(x, y):
    return int(np.sum(np.isfinite(x) & np.isfinite(y)))


def lagged(x, y, max_lag_steps, min_pairs=MIN_PAIRS):
    """(lags, r, pairs): Pearson r of prepared, gridded x and y at every lag -L..L (lag > 0: x
    leads y, r = corr(x[t], y[t + lag])), None where fewer than min_pairs pairs are present.
    Fewer than min_pairs pairs at lag 0, or a side without variance, is a ValueError."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} points and y {len(y)}: they must be on one grid")
    if isinstance(max_lag_steps, bool) or not isinstance(max_lag_steps, (int, np.integer)) \
            or not 0 <= max_lag_steps <= MAX_LAG_STEPS:
        raise ValueError(f"max lag must be 0 to {MAX_LAG_STEPS} steps, not {max_lag_steps!r}")
    present = _pairs_present(x, y)
    if present < min_pairs:
        raise ValueError(f"only {present} points where both x and y are present: "
                         f"a correlation needs at least {min_pairs} (option min_pairs)")
    for name, z in (("x", x), ("y", y)):
        if _constant(z, _scale(z)):
            raise ValueError(f"{name} is constant over the window: a constant has no correlation")
    lags = np.arange(-int(max_lag_steps), int(max_lag_steps) + 1)
    r, count = lag_stats(x[:, None], y[:, None], lags)
    rs = [None if c < min_pairs or not math.isfinite(v) else float(v) for v, c in zip(r[:, 0, 0], count[:, 0, 0])]
    return lags.tolist(), rs, count[:, 0, 0].tolist()


def acf_lags(n):
    """How many autocorrelations enter n_eff: 10 log10(n) (R's acf default), at most n / 4."""
    return int(min(n / 4, 10 * math.log10(max(n, 10))))


def acf(Z, max_lag):
    """Autocorrelations rho(1..max_lag) of each column of Z (n x p; NaN-aware), (max_lag, p);
    0 where not computable."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim == 1:
        Z = Z[:, None]
    if max_lag < 1:
        return np.zeros((0, Z.shape[1]))
    r, _ = lag_stats(Z, Z, np.arange(1, max_lag + 1), diagonal=True)
    return np.nan_to_num(r)


def n_effective(acf_x, acf_y, n):
    """Bartlett's effective number of pairs for the correlation of two series with these
    autocorrelations (1-D, the same lags) over n pairs: n / (1 + 2 sum rho_x rho_y), in [2, n]."""
    s = float(np.sum(np.asarray(acf_x) * np.asarray(acf_y)))
    return float(min(n, max(2.0, n / max(1.0 + 2.0 * s, 1e-9))))


def chance_bound(n_eff, lags_tested, alpha=ALPHA):
    """|r| that the best of `lags_tested` lags of unrelated series exceeds with probability ~alpha."""
    z = statistics.NormalDist().inv_cdf(1.0 - alpha / (2.0 * max(lags_tested, 1)))
    return min(1.0, z / math.sqrt(max(n_eff - 3.0, 1.0)))


def pick(lags, rs):
    """(lag, r) of the largest |r|, preferring the smallest |lag| among |r| within TIE of it (and
    at equal |lag|, the larger |r|); (None, None) when no r is known."""
    known = [(k, v) for k, v in zip(lags, rs) if v is not None and math.isfinite(v)]
    if not known:
        return None, None
    top = max(abs(v) for _, v in known)
    near = [(abs(k), -abs(v), k, v) for k, v in known if abs(v) >= top - TIE]
    _, _, k, v = min(near)
    return int(k), float(v)


def best_lag(x, y, max_lag_steps, min_pairs=MIN_PAIRS, alpha=ALPHA, lagged_result=None, acfs=None):
    """The lead of prepared, gridded x and y: a dict with lag (steps; > 0: x leads), r, leader
    ("x", "y", or None at lag 0), significant (|r| above the chance bound), bound, n_eff and
    pairs (at that lag). lagged_result: lagged()'s answer, acfs: (acf of x, acf of y), when
    the caller has them already (matrix() computes them once per metric)."""
    lags, rs, counts = lagged_result if lagged_result is not None else lagged(x, y, max_lag_steps, min_pairs)
    lag, r = pick(lags, rs)
    if lag is None or r is None:
        raise ValueError(f"no lag has {min_pairs} pairs present (option min_pairs)")
    pairs = counts[lags.index(lag)]
    if acfs is None:
        k = acf_lags(pairs)
        acfs = (acf(x, k)[:, 0], acf(y, k)[:, 0])
    neff = n_effective(acfs[0], acfs[1], pairs)
    tested = sum(v is not None for v in rs)
    bound = chance_bound(neff, tested, alpha)
    leader = None if lag == 0 else ("x" if lag > 0 else "y")
    return {"lag": lag, "r": r, "leader": leader, "significant": abs(r) > bound, "bound": bound,
            "n_eff": neff, "pairs": int(pairs)}


def lagged_correlation(ts, x, y, max_lag, options=None):
    """What pganalytics.lagged_correlation() returns: (lag seconds, r or None) for every lag
    -max_lag..max_lag in steps of the grid, after align and prepare; plus an info dict (step,
    prepared, best lag)."""
    opt = check_options(options)
    check_times(ts)
    n = len(ts)
    xv = check_values(x, "x", n)
    yv = check_values(y, "y", n)
    if max_lag is None:
        raise ValueError("max_lag must not be NULL")
    max_lag = seconds(max_lag, "max_lag")
    if n < opt["min_pairs"]:
        raise ValueError(f"{n} points: a correlation needs at least {opt['min_pairs']} (option min_pairs)")
    step, _, gx = align(ts, xv, opt["step"])
    _, _, gy = align(ts, yv, step)
    px, py, what = prepare(gx, gy, opt["detrend"])
    steps = int(math.floor(max_lag / step + 1e-9))
    if steps > MAX_LAG_STEPS:
        raise ValueError(f"max_lag {max_lag:g} s is {steps} steps of {step:g} s: at most {MAX_LAG_STEPS}")
    present = _pairs_present(px, py)
    if present < opt["min_pairs"]:
        raise ValueError(f"only {present} points where both x and y are present once {what.split(':')[0]}: "
                         f"a correlation needs at least {opt['min_pairs']} (option min_pairs)")
    result = lagged(px, py, steps, opt["min_pairs"])
    lags, rs, _ = result
    info = {"step": step, "prepared": what,
            "best": best_lag(px, py, steps, opt["min_pairs"], opt["alpha"], result)}
    return [k * step for k in lags], rs, info


def duration_words(s):
    """40 -> '40 s', 90 -> '1 min 30 s', 7200 -> '2 h'."""
    s = abs(float(s))
    if s < 60:
        return f"{s:g} s"
    parts = []
    for unit, size in (("h", 3600), ("min", 60)):
        if s >= size:
            q = int(s // size)
            parts.append(f"{q} {unit}")
            s -= q * size
    if s >= 0.5:
        parts.append(f"{s:.0f} s")
    return " ".join(parts)


def insight(xname, yname, lag_s, r, prepared, significant):
    """The sentence of a correlated pair, e.g. 'lock waits lead query latency by 40 s, r = 0.86
    (both differenced: lock waits trends like a random walk)'."""
    how = "" if r >= 0 else "inversely "
    if lag_s == 0:
        head = f"{xname} and {yname} move {'together' if r >= 0 else 'in opposite directions'}"
    elif lag_s > 0:
        head = f"{xname} leads {yname} {how}by {duration_words(lag_s)}"
    else:
        head = f"{yname} leads {xname} {how}by {duration_words(lag_s)}"
    note = prepared if prepared != "as given" else "not detrended"
    if prepared.startswith("differenced"):
        note = "both " + prepared
    elif prepared == "detrended":
        note = "both detrended"
    text = f"{head}, r = {r:.2f} ({note})"
    if not significant:
        text += "; within what chance gives at this many points and lags: not significant"
    return text


def _what(walks):
    if not walks:
        return "detrended"
    return "differenced: " + " and ".join(walks) + (" trend" if len(walks) == 2 else " trends") + " like a random walk"


def matrix(names, columns, threshold=THRESHOLD, max_lag_steps=5, step=1.0, method="auto",
           min_pairs=MIN_PAIRS, alpha=ALPHA):
    """Long-form correlation matrix of columns on one regular grid of `step` seconds (one column
    per name, NaN = missing): one dict per pair (i < j, in the order given) with x, y, r (at lag
    0, prepared), lag (seconds of the best lag; > 0: x leads), r_at_lag, leader (a name, None at
    lag 0), prepared (what was done to the pair), significant and insight. A pair with |r| or
    |r_at_lag| above `threshold` gets an insight sentence, the others None; a pair that cannot
    be correlated (a constant metric, too few points present) has r None and the reason as its
    insight. Preparation is per pair, as prepare() does it, from each metric's detrended and
    differenced versions and unit-root verdict, computed once."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    cols = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])  # n x p
    n, p = cols.shape
    if len(names) != p:
        raise ValueError(f"{len(names)} names but {p} columns")
    bad = [f"{names[j]} is constant over the window" if _constant(cols[:, j], _scale(cols[:, j])) else None
           for j in range(p)]
    versions = {"none": cols}
    if method in ("auto", "linear"):
        versions["linear"] = np.column_stack([detrend(cols[:, j]) for j in range(p)])
    if method in ("auto", "difference"):
        versions["difference"] = np.column_stack([difference(cols[:, j]) for j in range(p)])
    if method != "none":
        lines = versions["linear" if method == "auto" else method]
        for j in range(p):
            if bad[j] is None and _constant(lines[:, j], _scale(cols[:, j])):
                bad[j] = f"{names[j]} is a straight line over the window"
    walk = [method == "auto" and bad[j] is None and unit_root(versions["linear"][:, j]) for j in range(p)]
    lags = np.arange(-max_lag_steps, max_lag_steps + 1)
    k0 = max_lag_steps
    kacf = acf_lags(n)
    needed = ("linear", "difference") if method == "auto" else (method,)
    stats = {v: lag_stats(versions[v], versions[v], lags) for v in needed}
    acfs = {v: acf(versions[v], kacf) for v in needed}
    words = {"none": "as given", "linear": "detrended", "difference": "differenced"}
    rows = []
    for i in range(p):
        for j in range(i + 1, p):
            row = {"x": names[i], "y": names[j], "r": None, "lag": None, "r_at_lag": None, "leader": None,
                   "prepared": None, "significant": None, "insight": None}
            rows.append(row)
            if bad[i] or bad[j]:
                row["insight"] = "cannot correlate: " + str(bad[i] or bad[j])
                continue
            if method == "auto":
                version = "difference" if walk[i] or walk[j] else "linear"
                what = _what([names[m] for m in (i, j) if walk[m]])
            else:
                version, what = method, words[method]
            flat = [names[m] for m in (i, j) if _constant(versions[version][:, m], _scale(cols[:, m]))]
            if flat:
                row["insight"] = f"cannot correlate: {flat[0]} has nothing left once {what.split(':')[0]}"
                continue
            r, count = stats[version]
            rij, cij = r[:, i, j], count[:, i, j]
            row["prepared"] = what
            if cij[k0] < min_pairs:
                row["insight"] = (f"cannot correlate: only {int(cij[k0])} points where both are present, "
                                  f"at least {min_pairs} needed (option min_pairs)")
                continue
            rs = [None if c < min_pairs or not math.isfinite(v) else float(v) for v, c in zip(rij, cij)]
            best = best_lag(None, None, max_lag_steps, min_pairs, alpha, (lags.tolist(), rs, cij.tolist()),
                            (acfs[version][:, i], acfs[version][:, j]))
            r0 = rs[k0]
            leader = None if best["leader"] is None else (names[i] if best["leader"] == "x" else names[j])
            row.update(r=r0, lag=best["lag"] * step, r_at_lag=best["r"], leader=leader,
                       significant=bool(best["significant"]))
            if max(abs(r0 if r0 is not None else 0.0), abs(best["r"])) > threshold:
                row["insight"] = insight(names[i], names[j], best["lag"] * step, best["r"], what,
                                         bool(best["significant"]))
    return rows


def correlation_matrix(names, ts, columns, options=None):
    """What pganalytics.correlation_matrix_values() returns, with the input checked: names (text,
    unique), one grid of epoch seconds (strictly increasing, regular but for missing points),
    a column of values per name as long as the grid (None = missing)."""
    opt = check_options(options, MATRIX_DEFAULTS)
    if names is None or columns is None:
        raise ValueError("names and columns must not be NULL")
    check_times(ts, "grid timestamps")
    if len(names) < 2:
        raise ValueError(f"{len(names)} metric name(s): a matrix needs at least two")
    for i, name in enumerate(names):
        if name is None or not str(name).strip():
            raise ValueError(f"metric name {i + 1} is NULL or empty")
    dup = sorted({m for m in names if names.count(m) > 1})
    if dup:
        raise ValueError(f"metric name(s) {', '.join(dup)} appear more than once")
    if len(columns) != len(names):
        raise ValueError(f"{len(names)} names but {len(columns)} columns: one column per name")
    n = len(ts)
    if n < opt["min_pairs"]:
        raise ValueError(f"{n} grid points: a correlation needs at least {opt['min_pairs']} (option min_pairs)")
    step = opt["step"] if opt["step"] is not None else grid_step(ts)
    offsets = (np.asarray(ts, dtype=np.float64) - ts[0]) / step
    if opt["step"] is None and np.max(np.abs(offsets - np.rint(offsets))) > 0.25:
        raise ValueError(f"the grid is not regular: timestamps must be the first plus whole steps of {step:g} s "
                         "(missing points are NULL or left out)")
    grid_cols = [align(ts, check_values(col, f"column {name}", n, allow_null=True), step)[2]
                 for name, col in zip(names, columns)]
    steps = int(math.floor(opt["max_lag"] / step + 1e-9))
    if steps > MAX_LAG_STEPS:
        raise ValueError(f"max_lag {opt['max_lag']:g} s is {steps} steps of {step:g} s: at most {MAX_LAG_STEPS}")
    return matrix(list(names), grid_cols, opt["threshold"], steps, step, opt["detrend"], opt["min_pairs"],
                  opt["alpha"])
