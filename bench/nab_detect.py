"""Run pganalytics' anomaly detector over the NAB corpus and score it with NAB's rules.

    .venv/bin/python bench/nab_detect.py [--options JSON] [--write] [--ablation] [--json OUT]
                                         [--via-sql DSN] [--nab-dir DIR]

Every series of NAB v1.1 (58 files) is scored online, point by point, with ONE parameter set for
the whole corpus (the detector's defaults, or --options) and no labels: the same Bank as
pganalytics.anomaly_scores() (plpython/anomaly.py), all files stepped side by side. With --via-sql
the scores come from pganalytics.anomaly_scores() on the store at DSN instead, one call a file
(the two must agree: tests/db/test_anomaly_scores.py). --write puts NAB results files
(timestamp,value,anomaly_score,label) under bench/results/nab/<category>/pganalytics_<file>.csv,
which NAB's own scorer (and bench/nab_score.py) reads. Scores: the standard, reward-low-FP and
reward-low-FN profiles at NAB's optimised threshold, and at the production threshold; also
on two halves of the corpus (files in name order, alternate ones), so a change tuned on one half
can be checked on the other. --ablation repeats the run without each detector in turn (and
without the seasonal profiles), and scores the plain-SQL rolling z-score of
bench/anomaly_speed.py as a baseline.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.nab import scorer  # noqa: E402 - importable only after the sys.path line above
from plpython import anomaly  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "nab"
DETECTOR = "pganalytics"


def load_values(nab_dir: Path, corpus: scorer.Corpus) -> dict[str, np.ndarray]:
    out = {}
    for name in corpus.files:
        with open(nab_dir / "data" / name) as f:
            out[name] = np.array([float(r["value"]) for r in csv.DictReader(f)])
    return out


def epoch_seconds(timestamps: np.ndarray) -> np.ndarray:
    """Epoch seconds, strictly increasing: a few NAB files repeat an hour at a daylight-saving change;
    such a repeated timestamp is nudged one second past the previous one (the detector only)."""
    t = timestamps.astype("datetime64[us]").astype(np.int64) / 1e6
    for i in range(1, len(t)):
        if t[i] <= t[i - 1]:
            t[i] = t[i - 1] + 1.0
    return t


def run_bank(corpus: scorer.Corpus, values: dict[str, np.ndarray], options: dict) -> dict[str, np.ndarray]:
    """Scores of every file, all files stepped side by side through one Bank."""
    names = list(corpus.files)
    length = max(len(values[n]) for n in names)
    t = np.full((len(names), length), np.nan)
    x = np.full((len(names), length), np.nan)
    for i, n in enumerate(names):
        k = len(values[n])
        t[i, :k] = epoch_seconds(corpus.files[n].timestamps)
        x[i, :k] = values[n]
    scores = np.zeros_like(x)
    bank = anomaly.Bank(len(names), options)
    for j in range(length):  # each file its own clock: not Bank.run(), which shares one
        scores[:, j] = bank.step(t[:, j], x[:, j])[1]
    return {n: scores[i, :len(values[n])] for i, n in enumerate(names)}


def run_sql(dsn: str, corpus: scorer.Corpus, values: dict[str, np.ndarray], options: dict) -> dict[str, np.ndarray]:
    import psycopg
    out = {}
    with psycopg.connect(dsn) as conn:
        for n in corpus.files:
            t = epoch_seconds(corpus.files[n].timestamps)
            rows = conn.execute(
                "SELECT score FROM pganalytics.anomaly_scores("
                "(SELECT array_agg(to_timestamp(e) ORDER BY o) FROM unnest(%s::float8[]) WITH ORDINALITY u(e, o)),"
                " %s::float8[], %s::jsonb)", (list(t), list(values[n]), json.dumps(options))).fetchall()
            assert len(rows) == len(t)
            out[n] = np.array([r[0] for r in rows])
    return out


def rolling_z(values: np.ndarray, window: int = 100) -> np.ndarray:
    """The plain-SQL baseline of bench/anomaly_speed.py in numpy: |z| of each point against the
    previous `window` points' mean and sample stddev (window functions can do this; they
    cannot keep a streaming median, likelihoods or profiles), as |z| / (|z| + 4.4) in [0, 1)."""
    out = np.zeros(len(values))
    for i in range(2, len(values)):
        prev = values[max(0, i - window):i]
        sd = prev.std(ddof=1)
        if sd > 0:
            z = abs(values[i] - prev.mean()) / sd
            out[i] = z / (z + 4.4)
    return out


def subset(corpus: scorer.Corpus, names: list[str]) -> scorer.Corpus:
    return scorer.Corpus({n: corpus.files[n] for n in names})


def score_all(corpus: scorer.Corpus, scores: dict[str, np.ndarray], costs: dict, threshold: float) -> dict:
    names = list(corpus.files)
    halves = {"all": names, "half_a": names[0::2], "half_b": names[1::2]}
    out: dict = {}
    for label, part in halves.items():
        c = subset(corpus, part)
        s = {n: scores[n] for n in part}
        out[label] = {p: r.as_dict() for p, r in scorer.score_detector(c, s, costs).items()}
    fixed = scorer.score_detector(corpus, scores, costs, {p: threshold for p in costs})
    out["production_threshold"] = {p: r.as_dict() for p, r in fixed.items()}
    return out


def write_results(corpus: scorer.Corpus, values: dict[str, np.ndarray], scores: dict[str, np.ndarray]) -> None:
    for n, data in corpus.files.items():
        path = scorer.results_path(RESULTS, DETECTOR, n)
        path.parent.mkdir(parents=True, exist_ok=True)
        in_window = np.zeros(data.n_rows, dtype=int)
        for a, b in data.windows:
            in_window[a:b + 1] = 1
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "value", "anomaly_score", "label"])
            for ts, v, sc, lab in zip(data.timestamps, values[n], scores[n], in_window):
                w.writerow([str(ts).replace("T", " ")[:19], repr(float(v)), f"{sc:.6f}", lab])


def ablate(report: dict, label: str, corpus: scorer.Corpus, values: dict[str, np.ndarray], costs: dict,
           options: dict) -> None:
    r = scorer.score_detector(corpus, run_bank(corpus, values, options), costs)
    report["ablation"][label] = {p: round(v.normalised, 2) for p, v in r.items()}
    print(f"{label:26s} " + "  ".join(f"{p} {v.normalised:6.2f}" for p, v in r.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--options", default="{}", help="detector options (JSON object), one set for the corpus")
    ap.add_argument("--write", action="store_true", help="write NAB results files under bench/results/nab/")
    ap.add_argument("--ablation", action="store_true", help="also score without each detector in turn")
    ap.add_argument("--via-sql", metavar="DSN", help="score through pganalytics.anomaly_scores() on this store")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--nab-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    nab_dir = args.nab_dir or scorer.default_nab_dir()
    options = json.loads(args.options)
    opts = anomaly.check_options(options)
    corpus = scorer.load_corpus(nab_dir)
    costs = scorer.load_profiles(nab_dir / scorer.PROFILES_FILE)
    values = load_values(nab_dir, corpus)
    started = time.perf_counter()
    if args.via_sql:
        scores = run_sql(args.via_sql, corpus, values, options)
    else:
        scores = run_bank(corpus, values, options)
    seconds = time.perf_counter() - started
    points = sum(len(v) for v in values.values())
    report = {"options": opts, "via": "sql" if args.via_sql else "python", "points": points,
              "seconds": round(seconds, 2), "scores": score_all(corpus, scores, costs, opts["threshold"])}
    print(f"{points} points in {seconds:.1f} s ({points / seconds:,.0f} points/s, {report['via']})")
    for label, profiles in report["scores"].items():
        print(f"{label:22s} " + "  ".join(f"{p} {r['normalised']:6.2f} (tp {r['tp']} fn {r['fn']} fp {r['fp']})"
                                          for p, r in profiles.items()))
    if args.ablation:
        report["ablation"] = {}
        for d in opts["detectors"]:
            rest = [k for k in opts["detectors"] if k != d]
            if not rest:
                continue
            ablate(report, f"without {d}", corpus, values, costs, {**options, "detectors": rest})
        ablate(report, "without seasonal profiles", corpus, values, costs, {**options, "seasonal": False})
    if args.ablation:
        base = scorer.score_detector(corpus, {n: rolling_z(values[n]) for n in corpus.files}, costs)
        report["baseline_sql_rolling_z"] = {p: round(v.normalised, 2) for p, v in base.items()}
        print(f"{'SQL rolling z (baseline)':26s} " + "  ".join(f"{p} {v.normalised:6.2f}" for p, v in base.items()))
    if args.write:
        write_results(corpus, values, scores)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
