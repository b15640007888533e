"""Forecast accuracy of plpython/forecast.py (pganalytics.forecast_series()) on held-out tails.

    .venv/bin/python bench/forecast_accuracy.py [--horizon 24] [--origins 5] [--series-detail]
                                                [--via-sql] [--json OUT] [--nab-dir DIR]

Series, all hourly (the resolution of the store's rollups a forecast reads):
- nab_weekly: NAB series with at least four weeks of hourly history (nyc_taxi, the machine
  temperature, the autoscaling group's CPU, the ten Twitter volumes), averaged into hours;
- nab_2weeks: NAB series of about two weeks (AWS CloudWatch EC2/RDS/ELB metrics, the EC2
  latency, the artificial daily ones), averaged into hours: daily seasonality can be learnt,
  weekly cannot;
- synthetic: DB-like series from `synthetic()` (seeds 0-7, six weeks each): a level, a linear
  growth or decline, a business-hours bump that is smaller at weekends, a nightly batch job,
  AR(1) noise proportional to the level and a few spikes (see its docstring).
Each series is cut at `--origins` rolling origins a day apart, the last one `--horizon` hours
before its end; at each, every method is fitted on the history before the origin (at most
eight weeks of it) and forecasts the next `--horizon` hours:
- ours: forecast.forecast() with default options (model chosen automatically), 80 % and 95 %;
- snaive: the seasonal naive forecast (the value 24 h before);
- statsmodels: ExponentialSmoothing(trend="add", damped_trend=True, seasonal="add",
  seasonal_periods=24).fit() on the same history, in the same run (pip install statsmodels).
Metrics per series (pooled over its origins): RMSE, nRMSE = RMSE / mean of the actuals, MASE =
MAE / the in-sample MAE of the 24-h seasonal naive on that origin's history (averaged over the
origins), and our intervals' coverage of the held-out points. Groups report means; "wins" counts
series where ours has a lower MASE than statsmodels.

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


def load(nab_dir: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    out = {}
    for name in NAB_WEEKLY + NAB_2WEEKS:
        t, y = hourly(nab_dir / "data" / name)
        out[name.split("/")[1][:-4]] = ("nab_weekly" if name in NAB_WEEKLY else "nab_2weeks", t, y)
    for seed in range(8):
        t, y = synthetic(seed)
        out[f"synthetic_{seed}"] = ("synthetic", t, y)
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


def evaluate(name: str, group: str, t: np.ndarray, y: np.ndarray, horizon: int, origins: int,
             have_sm: bool) -> dict:
    acc: dict[str, list] = {k: [] for k in ("actual", "ours", "snaive", "sm", "lo80", "hi80", "lo95", "hi95")}
    mase: dict[str, list[float]] = {"ours": [], "snaive": [], "sm": []}
    fit_s, models = [], []
    for k in range(origins):
        cut = len(y) - horizon - 24 * (origins - 1 - k)
        start = max(0, cut - MAX_HISTORY)
        th, yh, actual = t[start:cut], y[start:cut], y[cut:cut + horizon]
        scale = float(np.mean(np.abs(yh[24:] - yh[:-24])))
        began = time.perf_counter()
        _, ours, lo80, hi80 = forecast.forecast(list(th), list(yh), horizon, {"level": 0.8})
        fit_s.append(time.perf_counter() - began)
        _, _, lo95, hi95 = forecast.forecast(list(th), list(yh), horizon, {"level": 0.95})
        models.append(forecast.forecast_grid(yh, HOUR, horizon, forecast.check_options({}))[3]["model"])
        snaive = forecast.naive_forecast(yh, 24, horizon)
        sm = statsmodels_forecast(yh, horizon) if have_sm else None
        for key, val in (("actual", actual), ("ours", ours), ("snaive", snaive), ("lo80", lo80), ("hi80", hi80),
                         ("lo95", lo95), ("hi95", hi95)):
            acc[key].append(np.asarray(val))
        for key, val in (("ours", ours), ("snaive", snaive), ("sm", sm)):
            if val is not None:
                mase[key].append(float(np.mean(np.abs(actual - np.asarray(val)))) / scale)
        if sm is not None:
            acc["sm"].append(sm)
    a = np.concatenate(acc["actual"])
    out: dict = {"series": name, "group": group, "history_hours": int(min(MAX_HISTORY, len(y) - horizon)),
                 "models": sorted(set(models)), "fit_seconds_median": round(float(np.median(fit_s)), 4)}
    for key in ("ours", "snaive", "sm"):
        if not acc[key] and key == "sm":
            continue
        f = np.concatenate(acc[key])
        rmse = float(np.sqrt(np.mean((a - f) ** 2)))
        out[key] = {"rmse": rmse, "nrmse": rmse / abs(float(np.mean(a))), "mase": float(np.mean(mase[key]))}
    for level in ("80", "95"):
        lo, hi = np.concatenate(acc[f"lo{level}"]), np.concatenate(acc[f"hi{level}"])
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
          f"{'snaive':>7} {'statsm':>7} | {'wins':>5} | {'cov80':>6} {'cov95':>6}")
    for g, s in groups.items():
        wins = f"{s['wins_vs_statsmodels']}/{s['series']}" if "wins_vs_statsmodels" in s else "-"
        print(f"{g:<12}{s['series']:>4} | {fmt(s['ours']['mase']):>9} {fmt(s['snaive']['mase']):>7} "
              f"{fmt(s['sm']['mase']):>7} | {fmt(s['ours']['nrmse'], True):>10} {fmt(s['snaive']['nrmse'], True):>7} "
              f"{fmt(s['sm']['nrmse'], True):>7} | {wins:>5} | {fmt(s['ours']['coverage80'], True):>6} "
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
    ap.add_argument("--groups", default="synthetic,nab_weekly,nab_2weeks", help="comma-separated groups to run")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--nab-dir", type=Path, default=NAB)
    args = ap.parse_args()
    try:
        importlib.import_module("statsmodels.tsa.holtwinters")
        have_sm = True
    except ImportError:
        have_sm = False
        print("statsmodels is not installed: its column stays empty "
              "(pip install statsmodels, or pip install '.[bench]')", file=sys.stderr)
    series = load(args.nab_dir)
    rows = []
    wanted = args.groups.split(",")
    for name, (group, t, y) in series.items():
        if group not in wanted:
            continue
        r = evaluate(name, group, t, y, args.horizon, args.origins, have_sm)
        rows.append(r)
        if args.series_detail:
            o, s = r["ours"], r.get("sm", {})
            print(f"{name:<40} {'/'.join(r['models']):<10} MASE {o['mase']:.3f} snaive {r['snaive']['mase']:.3f} "
                  f"sm {s.get('mase', float('nan')):.3f} nRMSE {100 * o['nrmse']:.1f}% "
                  f"cov80 {100 * o['coverage80']:.0f}% cov95 {100 * o['coverage95']:.0f}% "
                  f"fit {r['fit_seconds_median']:.2f}s", flush=True)
    groups = {g: summarise([r for r in rows if r["group"] == g]) for g in wanted}
    groups["all"] = summarise(rows)
    print(f"horizon {args.horizon} h, {args.origins} origins a day apart, history <= {MAX_HISTORY} h")
    print_table(groups)
    report: dict = {"horizon": args.horizon, "origins": args.origins, "max_history_hours": MAX_HISTORY,
                    "numpy": np.__version__, "groups": groups, "series": rows}
    if args.via_sql:
        report["via_sql"] = via_sql(series, args.horizon)
        print(f"via SQL: {report['via_sql']['series']} series through pganalytics.forecast_series(), "
              f"largest relative difference from the module {report['via_sql']['max_relative_difference']:.2e}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
