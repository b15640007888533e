"""Forecast accuracy of plpython/forecast.py (pganalytics.forecast_series()) on held-out tails.

    .venv/bin/python bench/forecast_accuracy.py [--horizon 24] [--origins 5] [--series-detail]
                                                [--via-sql] [--groups G,...] [--json OUT]
                                                [--nab-dir DIR] [--pgbench-dir DIR]

Series, all hourly (the resolution of the store's rollups a forecast reads):
- synthetic: DB-like series from `synthetic()` (seeds 0-7, six weeks each): a level, a linear
  growth or decline, a business-hours bump that is smaller at weekends, a nightly batch job,
  AR(1) noise proportional to the level and a few spikes (see its docstring);
- pgbench: PostgreSQL metrics collected by the real collector from a real server under a
  pgbench load with a daily and weekly profile, in compressed time (bench/pgbench_series.py
  wrote them to bench/data/pgbench/*.csv; read from there, not collected again);
- nab_weekly: NAB series with at least four weeks of hourly history (nyc_taxi, the machine
  temperature, the autoscaling group's CPU, the ten Twitter volumes), averaged into hours;
- nab_2weeks: NAB series of about two weeks (AWS CloudWatch EC2/RDS/ELB metrics, the EC2
  latency, the artificial daily ones), averaged into hours: daily seasonality can be learnt,
  weekly cannot.
At each origin, every method is fitted on the history before it (at most eight weeks) and
forecasts the next `--horizon` hours:
- ours: forecast.forecast() with default options (model chosen automatically), 80 % and 95 %
  (one fit, both intervals: forecast.forecast_levels(), what forecast() calls);
- snaive: the seasonal naive forecast (the value 24 h before);
- statsmodels: ExponentialSmoothing(trend="add", damped_trend=True, seasonal="add",
  seasonal_periods=24).fit() on the same history, in the same run (pip install statsmodels).
Metrics per series (pooled over its origins): RMSE, nRMSE = RMSE / mean of the actuals, MASE =
MAE / the in-sample MAE of the 24-h seasonal naive on that origin's history (averaged over the
origins), and our intervals' coverage of the held-out points. Groups report means ("median":
our median nRMSE, as series near zero on average, e.g. NAB's disk-write bytes, make a mean of
nRMSE meaningless); "wins" counts series where ours has a lower MASE than statsmodels.

Two sets of origins, both reported (and both in the JSON: groups / groups_clear):
- all origins: the last `--origins` origins a day apart, the last one `--horizon` hours before
  the series' end. NAB's tails hold labelled incidents (labels/combined_windows.json: nyc_taxi's
  blizzard and holidays, the machine's failure, the ASG misconfiguration ...) which no
  forecaster can predict from the history: there, MASE and nRMSE measure the incident's size
  more than the forecaster, and the intervals "miss" by design.
- clear of labelled incidents: walking back a day at a time from the last origin, the first
  `--origins` origins whose forecast window overlaps no labelled window (the history before
  them may hold incidents, as it would in production; it keeps at least half the series and a
  week). This is the forecaster's accuracy on ordinary days, which is what the goals are about.
  Series without labels (synthetic, pgbench, NAB files with no window) use the same origins in
  both. The labels choose evaluation windows only: the forecaster never sees them.
--via-sql starts a throwaway PostgreSQL cluster, installs the store and forecasts a subset (the
synthetic series, last origin) through pganalytics.forecast_series(), reporting the largest
difference from the module's numbers (they must agree: tests/db/test_forecast_series.py).
Results: bench/results/forecast-accuracy.json (or --json).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from plpython import forecast  # noqa: E402 - importable only after the sys.path line above

RESULTS = ROOT / "bench" / "results" / "forecast-accuracy.json"
NAB = Path("/work/shared/datasets/nab")
PGBENCH = ROOT / "bench" / "data" / "pgbench"
GROUPS = ("synthetic", "pgbench", "nab_weekly", "nab_2weeks")
HOUR = 3600.0
MAX_HISTORY = 8 * 168
NAB_WEEKLY = ["realKnownCause/nyc_taxi.csv", "realKnownCause/machine_temperature_system_failure.csv",
              "realKnownCause/cpu_utilization_asg_misconfiguration.csv"] + [
    f"realTweets/Twitter_volume_{s}.csv" for s in ("AAPL", "AMZN", "CRM", "CVS", "FB", "GOOG", "IBM", "KO",
                                                    "PFE", "UPS")]
NAB_2WEEKS = [f"realAWSCloudwatch/{s}.csv" for s in (
    "ec2_cpu_utilization_24ae8d", "ec2_cpu_utilization_53ea38", "ec2_cpu_utilization_5f5533",
    "ec2_cpu_utilization_77c1ca", "ec2_cpu_utilization_825cc2", "ec2_cpu_utilization_ac20cd",
    "ec2_cpu_utilization_c6585a", "ec2_cpu_utilization_fe7f93", "ec2_disk_write_bytes_1ef3de",
    "ec2_disk_write_bytes_c0d644", "ec2_network_in_257a54", "ec2_network_in_5abac7",
    "elb_request_count_8c0756", "grok_asg_anomaly", "rds_cpu_utilization_cc0c53", "rds_cpu_utilization_e47b3b")] + [
    "realKnownCause/ec2_request_latency_system_failure.csv", "artificialNoAnomaly/art_daily_small_noise.csv",
    "artificialNoAnomaly/art_noisy.csv"]


def hourly(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A NAB file averaged into hours (epoch seconds of each hour's start), linearly
    interpolated over missing hours (none of the chosen files misses more than a few)."""
    sums: dict[float, list[float]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            t = dt.datetime.fromisoformat(row["timestamp"]).replace(tzinfo=dt.timezone.utc).timestamp()
            sums.setdefault(t - t % HOUR, []).append(float(row["value"]))
    hours = np.array(sorted(sums))
    values = np.array([np.mean(sums[h]) for h in hours])
    grid = np.arange(hours[0], hours[-1] + HOUR, HOUR)
    return grid, np.interp(grid, hours, values)


def synthetic(seed: int, weeks: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A DB-like hourly metric (think transactions/s or active sessions): level L (log-uniform
    20..5,000) growing or shrinking linearly by -10..+40 % over the series; a business-hours
    bump (raised cosine 07-21 h, peak 0.3..1.2 L) that the weekend scales to 0.2..0.8 of itself;
    a nightly batch job (02-04 h, 0..0.5 L); AR(1) noise (phi 0.3..0.8) of 3..10 % of the
    current level; 0.5 % of hours get a spike of 0.5..2 L."""
    rng = np.random.default_rng(seed)
    n = weeks * 168
    h = np.arange(n)
    level = float(np.exp(rng.uniform(np.log(20), np.log(5000))))
    growth = 1.0 + rng.uniform(-0.10, 0.40) * h / n
    hod, dow = h % 24, (h // 24) % 7
    bump = np.where((hod >= 7) & (hod <= 21), 0.5 - 0.5 * np.cos(2 * np.pi * (hod - 7) / 14), 0.0)
    weekend = np.where(dow >= 5, rng.uniform(0.2, 0.8), 1.0)
    batch = np.where((hod >= 2) & (hod < 4), rng.uniform(0.0, 0.5), 0.0)
    base = level * growth * (1.0 + rng.uniform(0.3, 1.2) * bump * weekend + batch)
    phi, sd = rng.uniform(0.3, 0.8), rng.uniform(0.03, 0.10)
    ar = np.zeros(n)
    shocks = rng.normal(0, sd * np.sqrt(1 - phi * phi), n)
    for i in range(1, n):
        ar[i] = phi * ar[i - 1] + shocks[i]
    spikes = np.where(rng.random(n) < 0.005, rng.uniform(0.5, 2.0, n), 0.0)
    y = base + level * growth * (ar + spikes)
    t0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC, a Thursday
    return t0 + HOUR * h, y


def load_pgbench(data_dir: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """The hourly series bench/pgbench_series.py wrote (ts,value CSVs), if any."""
    out = {}
    for path in sorted(data_dir.glob("*.csv")):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        t = np.array([dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() for r in rows])
        out[f"pgbench_{path.stem}"] = ("pgbench", t, np.array([float(r["value"]) for r in rows]))
    return out


def load(nab_dir: Path, pgbench_dir: Path = PGBENCH) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    out = {}
    for seed in range(8):
        t, y = synthetic(seed)
        out[f"synthetic_{seed}"] = ("synthetic", t, y)
    out.update(load_pgbench(pgbench_dir))
    for name in NAB_WEEKLY + NAB_2WEEKS:
        t, y = hourly(nab_dir / "data" / name)
        out[name.split("/")[1][:-4]] = ("nab_weekly" if name in NAB_WEEKLY else "nab_2weeks", t, y)
    return out


def incident_windows(nab_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """NAB's labelled anomaly windows (labels/combined_windows.json) per series name, as epoch
    seconds read like the data's timestamps (UTC). Used to choose evaluation origins only."""
    path = nab_dir / "labels" / "combined_windows.json"
    if not path.exists():
        return {}
    out = {}
    for name, wins in json.loads(path.read_text()).items():
        out[name.split("/")[-1][:-4]] = [tuple(dt.datetime.fromisoformat(w).replace(tzinfo=dt.timezone.utc).timestamp()
                                               for w in win) for win in wins]
    return out


def all_cuts(n: int, horizon: int, origins: int) -> list[int]:
    """The last `origins` forecast origins a day apart, the last one `horizon` hours before the end."""
    return [n - horizon - 24 * (origins - 1 - k) for k in range(origins)]


def clear_cuts(t: np.ndarray, horizon: int, origins: int, windows: list[tuple[float, float]]) -> list[int]:
    """Up to `origins` origins a day apart, walking back from the last one, whose forecast window
    [t[cut], t[cut] + horizon hours) overlaps no labelled window; the history before each keeps
    at least half the series and a week (fewer origins, or none, when the tail is all incident)."""
    n = len(t)
    least = max(n // 2, 168)
    out: list[int] = []
    cut = n - horizon
    while cut >= least and len(out) < origins:
        a, b = t[cut], t[cut] + horizon * HOUR
        if not any(lo < b and hi >= a for lo, hi in windows):
            out.append(cut)
        cut -= 24
    return sorted(out)


def origin_result(t: np.ndarray, y: np.ndarray, cut: int, horizon: int, have_sm: bool) -> dict:
    """Every method fitted on the history before `cut`, forecasting the `horizon` after it."""
    start = max(0, cut - MAX_HISTORY)
    yh, actual = y[start:cut], y[cut:cut + horizon]
    began = time.perf_counter()
    ours, bounds, info = forecast.forecast_levels(yh, HOUR, horizon, forecast.check_options({}), (0.8, 0.95))
    out = {"actual": actual, "ours": ours, "lo80": bounds[0][0], "hi80": bounds[0][1], "lo95": bounds[1][0],
           "hi95": bounds[1][1], "fit_s": time.perf_counter() - began, "model": info["model"],
           "scale": float(np.mean(np.abs(yh[24:] - yh[:-24]))), "snaive": forecast.naive_forecast(yh, 24, horizon)}
    sm = statsmodels_forecast(yh, horizon) if have_sm else None
    if sm is not None:
        out["sm"] = sm
    return out


def statsmodels_forecast(y: np.ndarray, horizon: int) -> np.ndarray | None:
    try:
        holtwinters = importlib.import_module("statsmodels.tsa.holtwinters")
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = holtwinters.ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add",
                                                 seasonal_periods=24)
        return np.asarray(model.fit().forecast(horizon))


def evaluate(name: str, group: str, y: np.ndarray, results: list[dict]) -> dict:
    """One series' metrics pooled over the given origins' results."""
    a = np.concatenate([r["actual"] for r in results])
    out: dict = {"series": name, "group": group, "origins": len(results),
                 "history_hours": int(min(MAX_HISTORY, len(y) - len(results[-1]["actual"]))),
                 "models": sorted({r["model"] for r in results}),
                 "fit_seconds_median": round(float(np.median([r["fit_s"] for r in results])), 4)}
    for key in ("ours", "snaive", "sm"):
        if not all(key in r for r in results):
            continue
        f = np.concatenate([r[key] for r in results])
        rmse = float(np.sqrt(np.mean((a - f) ** 2)))
        mase = float(np.mean([np.mean(np.abs(r["actual"] - r[key])) / r["scale"] for r in results]))
        out[key] = {"rmse": rmse, "nrmse": rmse / abs(float(np.mean(a))), "mase": mase}
    for level in ("80", "95"):
        lo, hi = np.concatenate([r[f"lo{level}"] for r in results]), np.concatenate([r[f"hi{level}"] for r in results])
        out["ours"][f"coverage{level}"] = float(np.mean((a >= lo) & (a <= hi)))
    return out


def summarise(rows: list[dict]) -> dict:
    def mean(key: str, metric: str) -> float | None:
        vals = [r[key][metric] for r in rows if key in r]
        return float(np.mean(vals)) if vals else None
    out = {"series": len(rows)}
    for key in ("ours", "snaive", "sm"):
        out[key] = {m: mean(key, m) for m in ("mase", "nrmse")}
    out["ours"]["coverage80"] = mean("ours", "coverage80")
    out["ours"]["coverage95"] = mean("ours", "coverage95")
    if all("sm" in r for r in rows):
        out["wins_vs_statsmodels"] = sum(r["ours"]["mase"] < r["sm"]["mase"] for r in rows)
    out["ours"]["nrmse_median"] = float(np.median([r["ours"]["nrmse"] for r in rows]))
    return out


def fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def print_table(groups: dict[str, dict]) -> None:
    print(f"{'group':<12}{'n':>4} | {'MASE ours':>9} {'snaive':>7} {'statsm':>7} | {'nRMSE ours':>10} "
          f"{'snaive':>7} {'statsm':>7} {'median':>7} | {'wins':>5} | {'cov80':>6} {'cov95':>6}")
    for g, s in groups.items():
        wins = f"{s['wins_vs_statsmodels']}/{s['series']}" if "wins_vs_statsmodels" in s else "-"
        print(f"{g:<12}{s['series']:>4} | {fmt(s['ours']['mase']):>9} {fmt(s['snaive']['mase']):>7} "
              f"{fmt(s['sm']['mase']):>7} | {fmt(s['ours']['nrmse'], True):>10} {fmt(s['snaive']['nrmse'], True):>7} "
              f"{fmt(s['sm']['nrmse'], True):>7} {fmt(s['ours']['nrmse_median'], True):>7} | {wins:>5} | {fmt(s['ours']['coverage80'], True):>6} "
              f"{fmt(s['ours']['coverage95'], True):>6}")


def via_sql(series: dict, horizon: int) -> dict:
    """The synthetic series' last origin through pganalytics.forecast_series() on a throwaway
    server: the largest difference from the module's forecast and bounds."""
    import psycopg

    from pganalytics import localpg, store

    base = Path(tempfile.mkdtemp(prefix="pganalytics-forecast-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir())
    worst, count = 0.0, 0
    try:
        cluster.init({})
        cluster.start()
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn) as conn:
            for group, t, y in series.values():
                if group != "synthetic":
                    continue
                cut = len(y) - horizon
                th, yh = t[max(0, cut - MAX_HISTORY):cut], y[max(0, cut - MAX_HISTORY):cut]
                rows = conn.execute(
                    "SELECT extract(epoch FROM ts)::float8, yhat, lo, hi FROM pganalytics.forecast_series("
                    "(SELECT array_agg(to_timestamp(e) ORDER BY o) FROM unnest(%s::float8[]) WITH ORDINALITY u(e, o)),"
                    " %s::float8[], %s, '{}')", (list(th), list(yh), horizon)).fetchall()
                mod = forecast.forecast(list(th), list(yh), horizon, {})
                sql = list(zip(*rows))
                for a, b in zip(mod, sql):
                    scale = max(1.0, float(np.max(np.abs(a))))
                    worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) / scale)
                count += 1
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return {"series": count, "max_relative_difference": worst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--origins", type=int, default=5)
    ap.add_argument("--series-detail", action="store_true", help="print one line per series")
    ap.add_argument("--via-sql", action="store_true", help="also forecast a subset through forecast_series()")
    ap.add_argument("--groups", default=",".join(GROUPS), help="comma-separated groups to run")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--nab-dir", type=Path, default=NAB)
    ap.add_argument("--pgbench-dir", type=Path, default=PGBENCH)
    args = ap.parse_args()
    try:
        importlib.import_module("statsmodels.tsa.holtwinters")
        have_sm = True
    except ImportError:
        have_sm = False
        print("statsmodels is not installed: its column stays empty "
              "(pip install statsmodels, or pip install '.[bench]')", file=sys.stderr)
    series = load(args.nab_dir, args.pgbench_dir)
    windows = incident_windows(args.nab_dir)
    rows: dict[str, list[dict]] = {"all": [], "clear": []}
    wanted = args.groups.split(",")
    for name, (group, t, y) in series.items():
        if group not in wanted:
            continue
        cuts = {"all": all_cuts(len(y), args.horizon, args.origins),
                "clear": clear_cuts(t, args.horizon, args.origins, windows.get(name, []))}
        done: dict[int, dict] = {}
        for kind, chosen in cuts.items():
            for cut in chosen:
                if cut not in done:
                    done[cut] = origin_result(t, y, cut, args.horizon, have_sm)
            if not chosen:
                print(f"{name}: no origin clear of labelled incidents", file=sys.stderr)
                continue
            r = evaluate(name, group, y, [done[c] for c in chosen])
            rows[kind].append(r)
            if args.series_detail:
                o, sm = r["ours"], r.get("sm", {})
                print(f"{kind:<5} {name:<38} {'/'.join(r['models']):<10} n{r['origins']} MASE {o['mase']:.3f} "
                      f"snaive {r['snaive']['mase']:.3f} sm {sm.get('mase', float('nan')):.3f} "
                      f"nRMSE {100 * o['nrmse']:.1f}% cov80 {100 * o['coverage80']:.0f}% "
                      f"cov95 {100 * o['coverage95']:.0f}% fit {r['fit_seconds_median']:.2f}s", flush=True)
    report: dict = {"horizon": args.horizon, "origins": args.origins, "max_history_hours": MAX_HISTORY,
                    "numpy": np.__version__}
    print(f"horizon {args.horizon} h, up to {args.origins} origins a day apart, history <= {MAX_HISTORY} h")
    for kind, title in (("all", "ALL ORIGINS (the last ones, incidents included)"),
                        ("clear", "ORIGINS CLEAR OF LABELLED INCIDENTS (forecast window outside NAB's windows)")):
        present = [g for g in wanted if any(r["group"] == g for r in rows[kind])]
        groups = {g: summarise([r for r in rows[kind] if r["group"] == g]) for g in present}
        if rows[kind]:
            groups["all"] = summarise(rows[kind])
        print(title)
        print_table(groups)
        report["groups" if kind == "all" else "groups_clear"] = groups
    report["series"] = rows["all"]
    report["series_clear"] = rows["clear"]
    if args.via_sql:
        report["via_sql"] = via_sql(series, args.horizon)
        print(f"via SQL: {report['via_sql']['series']} series through pganalytics.forecast_series(), "
              f"largest relative difference from the module {report['via_sql']['max_relative_difference']:.2e}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
