"""Score a detector's NAB results (Numenta Anomaly Benchmark v1.1) with NAB's three profiles.

    .venv/bin/python bench/nab_score.py RESULTS_DIR --detector NAME [--json OUT] [--nab-dir DIR]

RESULTS_DIR holds NAB's results layout for one detector: <category>/<NAME>_<file>.csv with columns
timestamp and anomaly_score (others are ignored), one row per row of the data file. The corpus
(data/, labels/combined_windows.json, config/profiles.json) is read from --nab-dir, else
$PGANALYTICS_NAB_DIR, else shared/datasets/nab next to the checkout. Per profile it prints the
threshold NAB's sweep optimises, the raw and the normalised score (null detector 0, perfect 100),
windows detected/missed and false-positive detections; bench/nab/scorer.py has the rules.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.nab import scorer  # noqa: E402 - importable only after the sys.path line above


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path, help="the detector's results: <category>/<NAME>_<file>.csv")
    parser.add_argument("--detector", required=True, help="NAME, the results files' prefix")
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    parser.add_argument("--nab-dir", type=Path, help="NAB corpus directory (default: %(default)s)",
                        default=scorer.default_nab_dir())
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        scores = scorer.score_corpus(args.results_dir, args.detector, nab_dir=args.nab_dir)
    except ValueError as e:
        print(f"nab_score: {e}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started

    print(f"NAB v1.1 scores of {args.detector} ({args.results_dir}), {elapsed:.1f} s")
    print(f"{'profile':<20} {'score':>7} {'raw':>9} {'threshold':>10} {'TP win':>6} {'FN win':>6} {'FP':>6}")
    for s in scores.values():
        print(f"{s.profile:<20} {s.normalised:7.2f} {s.raw:9.3f} {s.threshold:10.6f} "
              f"{s.tp:6d} {s.fn:6d} {s.fp:6d}")
    if args.json:
        payload = {"detector": args.detector, "results_dir": str(args.results_dir),
                   "profiles": {name: s.as_dict() for name, s in scores.items()}}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
