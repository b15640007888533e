"""Lag recovery, false leads and speed of plpython/correlation.py (pganalytics.lagged_correlation()
and correlation_matrix_values()).

    .venv/bin/python bench/correlation_eval.py [--pairs 4] [--no-sql] [--json OUT]

(1) Synthetic evaluation, seeded (every number below comes back the same on a rerun). Pairs
x, y with a known lag L (x leads y by L seconds; negative: y leads), y = beta x(t - L) + noise,
over a grid of conditions, `--pairs` pairs each:
- x: "ar" (AR(1), phi 0.7 per second), "smooth" (AR(1), phi 0.97), "walk" (a random walk);
- noise of sd 0.5, 1 or 2 (x has unit variance, a walk unit steps: for the stationary kinds a
  signal-to-noise of 4, 1, 1/4 in variance), white or AR(1) with phi 0.8;
- opposite linear trends added to x and y (each moving 3 sd of x over the window) or none;
- beta +1 or -1 (an inverse relation must be found as well).
At two resolutions: "1 s" (30 minutes at 1 s steps, L uniform in -300..300 s, lags searched
to 5 min: 601 lags), and "1 min" (the same processes at 10 s steps over a day, averaged into
1440 minutes, L uniform in -300..300 s, lags to 5 min: 11 lags). A lag is recovered when the
best lag is within one step of L (1 s; 60 s). Independent pairs (y's own process of the same
kind, the same trends) measure false leads: the share called significant at any lag, and at a
lag other than 0 ("a false lead"), with the default preparation ("auto") and with none.

(2) Speed: the matrix of 50 metrics over one day at 1-minute resolution (1440 points, lags to
5 min), in the module and through pganalytics.correlation_matrix_values() on a throwaway
server (first call of a session, which also loads the module, and the median of 5 more);
plus one pair of an hour at 1 s (3600 points, 601 lags) through lagged_correlation().
Results: bench/results/correlation-eval.json (or --json).
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from plpython import correlation  # noqa: E402 - importable only after the sys.path line above

RESULTS = ROOT / "bench" / "results" / "correlation-eval.json"
T0 = 1_793_613_600.0  # 2026-11-02 10:00 UTC


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) of unit variance (phi < 1), or a random walk of unit steps (phi = 1)."""
    e = rng.normal(0.0, 1.0, n)
    z = np.empty(n)
    z[0] = e[0] if phi >= 1 else e[0] / np.sqrt(1 - phi * phi)
    scale = 1.0 if phi >= 1 else np.sqrt(1 - phi * phi)
    for t in range(1, n):
        z[t] = phi * z[t - 1] + scale * e[t]
    return z


KINDS = {"ar": 0.7, "smooth": 0.97, "walk": 1.0}


def make_pair(kind: str, n: int, lag: int, noise: float, noise_phi: float, trend: bool, beta: float,
              rng: np.random.Generator, related: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """x, y on a grid of n base steps; y[t] = beta x[t - lag] + noise (related) or y's own process."""
    pad = abs(lag) + 1
    base = ar1(n + 2 * pad, KINDS[kind], rng)
    x = base[pad:pad + n]
    own = ar1(n + 2 * pad, KINDS[kind], rng)[pad:pad + n]
    signal = beta * base[pad - lag:pad - lag + n] if related else own
    y = signal + noise * ar1(n, noise_phi, rng)
    if trend:
        spread = 3.0 * float(np.std(x))
        t = np.linspace(0.0, 1.0, n)
        x = x + spread * t
        y = y - spread * t
    return x, y


def minutes(z: np.ndarray, per: int) -> np.ndarray:
    return z[:len(z) // per * per].reshape(-1, per).mean(axis=1)


CONDITIONS = list(itertools.product(KINDS, (0.5, 1.0, 2.0), (0.0, 0.8), (False, True), (1.0, -1.0)))


def evaluate(resolution: str, pairs: int, seed: int) -> dict:
    """Lag recovery and false leads at one resolution over every condition."""
    rng = np.random.default_rng(seed)
    if resolution == "1 s":
        n, per, base_step, step = 1800, 1, 1.0, 1.0
    else:
        n, per, base_step, step = 8640, 6, 10.0, 60.0
    max_lag = 300.0
    out: list[dict] = []
    for kind, noise, noise_phi, trend, beta in CONDITIONS:
        for _ in range(pairs):
            lag_s = float(rng.integers(-300, 301))
            lag_base = int(round(lag_s / base_step))
            for related in (True, False):
                x, y = make_pair(kind, n, lag_base, noise, noise_phi, trend, beta, rng, related)
                if per > 1:
                    x, y = minutes(x, per), minutes(y, per)
                ts = list(T0 + step * np.arange(len(x)))
                row = {"kind": kind, "noise": noise, "noise_phi": noise_phi, "trend": trend, "beta": beta,
                       "lag_s": lag_s if related else None, "related": related}
                for method in ("auto", "none"):
                    _, _, info = correlation.lagged_correlation(ts, list(x), list(y), max_lag, {"detrend": method})
                    b = info["best"]
                    row[method] = {"lag_s": b["lag"] * step, "r": b["r"], "significant": bool(b["significant"]),
                                   "prepared": info["prepared"]}
                out.append(row)
    return summarise(out, step)


def summarise(rows: list[dict], step: float) -> dict:
    def recovered(r: dict, method: str) -> bool:
        return abs(r[method]["lag_s"] - r["lag_s"]) <= step + 1e-9

    rel = [r for r in rows if r["related"]]
    ind = [r for r in rows if not r["related"]]
    res: dict = {"step_s": step, "related_pairs": len(rel), "independent_pairs": len(ind)}
    for method in ("auto", "none"):
        res[method] = {
            "recovered": float(np.mean([recovered(r, method) for r in rel])),
            "recovered_and_significant": float(np.mean([recovered(r, method) and r[method]["significant"]
                                                        for r in rel])),
            "false_significant": float(np.mean([r[method]["significant"] for r in ind])),
            "false_lead": float(np.mean([r[method]["significant"] and r[method]["lag_s"] != 0 for r in ind])),
            "independent_abs_r_median": float(np.median([abs(r[method]["r"]) for r in ind])),
            "independent_abs_r_over_0.7": float(np.mean([abs(r[method]["r"]) > 0.7 for r in ind])),
        }
    by: dict = {}
    for key in ("kind", "noise", "noise_phi", "trend"):
        for value in sorted({r[key] for r in rel}, key=str):
            sub = [r for r in rel if r[key] == value]
            subi = [r for r in ind if r[key] == value]
            by[f"{key}={value}"] = {
                "recovered": float(np.mean([recovered(r, "auto") for r in sub])),
                "recovered_none": float(np.mean([recovered(r, "none") for r in sub])),
                "false_lead": float(np.mean([r["auto"]["significant"] and r["auto"]["lag_s"] != 0 for r in subi])),
                "false_lead_none": float(np.mean([r["none"]["significant"] and r["none"]["lag_s"] != 0
                                                  for r in subi])),
                "independent_abs_r_over_0.7_none": float(np.mean([abs(r["none"]["r"]) > 0.7 for r in subi])),
            }
    res["by"] = by
    res["prepared"] = {p: sum(r["auto"]["prepared"] == p for r in rows)
                       for p in sorted({r["auto"]["prepared"] for r in rows})}
    return res


def fifty_metrics(seed: int = 42) -> tuple[list[str], list[float], list[list[float]]]:
    """50 metrics over a day at 1 minute: AR(1) kinds, walks, trends, and a few leading pairs."""
    rng = np.random.default_rng(seed)
    n = 1440
    cols = []
    for j in range(50):
        kind = ("ar", "smooth", "walk")[j % 3]
        z = ar1(n, {"ar": 0.5, "smooth": 0.9, "walk": 1.0}[kind], rng)
        if j % 5 == 4:  # follows the metric before it by 1-5 minutes
            prev, k = np.asarray(cols[-1]), 1 + (j // 5) % 5
            z = np.concatenate([np.full(k, prev[0]), prev[:-k]]) + 0.5 * rng.normal(size=n)
        cols.append(list(z + (0.002 * j * np.arange(n) if j % 7 == 0 else 0.0)))
    return [f"metric_{j:02d}" for j in range(50)], list(T0 + 60.0 * np.arange(n)), cols


def time_module() -> dict:
    names, ts, cols = fifty_metrics()
    times = []
    rows: list[dict] = []
    for _ in range(5):
        start = time.perf_counter()
        rows = correlation.correlation_matrix(names, ts, cols)
        times.append(time.perf_counter() - start)
    rng = np.random.default_rng(7)
    x = ar1(3600, 0.7, rng)
    y = np.roll(x, 40) + rng.normal(0, 0.5, 3600)
    ts1 = list(T0 + np.arange(3600.0))
    ptimes = []
    for _ in range(5):
        start = time.perf_counter()
        correlation.lagged_correlation(ts1, list(x), list(y), 300)
        ptimes.append(time.perf_counter() - start)
    return {"matrix_seconds_median": statistics.median(times), "pairs": len(rows),
            "reported": sum(r["insight"] is not None and r["r"] is not None for r in rows),
            "significant": sum(bool(r["significant"]) for r in rows),
            "pair_1h_1s_seconds_median": statistics.median(ptimes)}


def time_sql() -> dict:
    """The same matrix and pair through SQL on a throwaway server."""
    import psycopg

    from pganalytics import localpg, store

    names, ts, cols = fifty_metrics()
    tstz = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in ts]
    expected = correlation.correlation_matrix(names, ts, cols)
    rng = np.random.default_rng(7)
    x = ar1(3600, 0.7, rng)
    y = np.roll(x, 40) + rng.normal(0, 0.5, 3600)
    ts1 = [dt.datetime.fromtimestamp(T0 + i, dt.timezone.utc) for i in range(3600)]
    base = Path(tempfile.mkdtemp(prefix="pganalytics-correlation-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir())
    try:
        cluster.init({})
        cluster.start()
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn) as conn:
            sql = ("SELECT x, y, r, r_at_lag FROM pganalytics.correlation_matrix_values(%s, %s, %s::float8[])")
            start = time.perf_counter()
            rows = conn.execute(sql, (names, tstz, cols)).fetchall()
            first = time.perf_counter() - start
            times = []
            for _ in range(5):
                start = time.perf_counter()
                rows = conn.execute(sql, (names, tstz, cols)).fetchall()
                times.append(time.perf_counter() - start)
            worst = max(abs(a - b["r"]) for (_, _, a, _), b in zip(rows, expected)
                        if a is not None and b["r"] is not None)
            ptimes = []
            for _ in range(5):
                start = time.perf_counter()
                conn.execute("SELECT * FROM pganalytics.lagged_correlation(%s, %s, %s, '5 min')",
                             (ts1, list(x), list(y))).fetchall()
                ptimes.append(time.perf_counter() - start)
            version = conn.execute("SHOW server_version").fetchone()
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return {"server_version": version[0] if version else None, "matrix_first_call_seconds": first,
            "matrix_seconds_median": statistics.median(times), "rows": len(rows),
            "max_abs_difference_from_module": worst,
            "pair_1h_1s_seconds_median": statistics.median(ptimes)}


def pct(v: float) -> str:
    return f"{100 * v:5.1f} %"


def print_eval(name: str, s: dict) -> None:
    print(f"\n{name}: {s['related_pairs']} pairs with a known lag, {s['independent_pairs']} independent pairs, "
          f"step {s['step_s']:g} s, lags to 300 s")
    print(f"{'':<22}{'recovered':>10} {'+signif.':>9} {'false sig.':>11} {'false lead':>11} "
          f"{'|r| indep.':>11} {'|r|>0.7':>8}")
    for method in ("auto", "none"):
        m = s[method]
        print(f"{'detrend ' + method:<22}{pct(m['recovered']):>10} {pct(m['recovered_and_significant']):>9} "
              f"{pct(m['false_significant']):>11} {pct(m['false_lead']):>11} "
              f"{m['independent_abs_r_median']:>11.3f} {pct(m['independent_abs_r_over_0.7']):>8}")
    print(f"{'by condition':<22}{'recovered':>10} {'(none)':>9} {'false lead':>11} {'(none)':>11} "
          f"{'|r|>0.7 none':>13}")
    for key, v in s["by"].items():
        print(f"  {key:<20}{pct(v['recovered']):>10} {pct(v['recovered_none']):>9} {pct(v['false_lead']):>11} "
              f"{pct(v['false_lead_none']):>11} {pct(v['independent_abs_r_over_0.7_none']):>13}")
    print("  auto prepared: " + ", ".join(f"{k} {v}" for k, v in s["prepared"].items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4, help="pairs per condition (72 conditions)")
    ap.add_argument("--no-sql", action="store_true", help="skip the throwaway server")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()
    report: dict = {"numpy": np.__version__, "conditions": len(CONDITIONS), "pairs_per_condition": args.pairs}
    for i, resolution in enumerate(("1 s", "1 min")):
        start = time.perf_counter()
        report[resolution] = evaluate(resolution, args.pairs, seed=100 + i)
        report[resolution]["seconds"] = time.perf_counter() - start
        print_eval(resolution, report[resolution])
    report["speed_module"] = time_module()
    m = report["speed_module"]
    print(f"\nspeed, module: 50 metrics x 1440 points, lags to 5 min ({m['pairs']} pairs): "
          f"{m['matrix_seconds_median']:.3f} s (median of 5); {m['reported']} pairs over 0.7, "
          f"{m['significant']} significant; one pair of 3600 points at 1 s, 601 lags: "
          f"{1000 * m['pair_1h_1s_seconds_median']:.1f} ms")
    if not args.no_sql:
        report["speed_sql"] = time_sql()
        q = report["speed_sql"]
        print(f"speed, SQL (PostgreSQL {q['server_version']}): correlation_matrix_values() first call "
              f"{q['matrix_first_call_seconds']:.3f} s, then {q['matrix_seconds_median']:.3f} s (median of 5), "
              f"{q['rows']} rows, largest |r| difference from the module {q['max_abs_difference_from_module']:.1e}; "
              f"lagged_correlation() of the pair: {1000 * q['pair_1h_1s_seconds_median']:.1f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
