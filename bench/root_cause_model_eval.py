"""Rules alone against rules + the trained model, on fault-lab windows of seeds the model did
not learn from.

    .venv/bin/python bench/root_cause_model_eval.py --train A.json [...] --test B.json [...]

The inputs are bench/root_cause_lab.py results (every window's diagnosis with its features).
Training rows are what a user would have given on the training seeds: a confirmation of the
injected cause, and a rejection of the top cause when it was another (a control window's top
cause, if any, is rejected too). The model is plpython/root_cause_model.py's, trained as
train_root_cause_model() trains it, and blended as diagnose() blends it; the rules'
confidences are the features' rule:<cause> values, so both answers come from the same
diagnosis. Writes bench/results/root-cause-model-eval.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pganalytics.plpython import root_cause_model as rcm  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "root-cause-model-eval.json"


def windows(paths: list[str]) -> list[dict]:
    out = []
    for p in paths:
        out += json.loads(Path(p).read_text())["windows"]
    return out


def verdicts(ws: list[dict]) -> list[dict]:
    rows = []
    for i, w in enumerate(ws):
        feats = w["diagnosis"].get("features") or {}
        causes = [c["cause"] for c in w["diagnosis"]["causes"]]
        if w["fault"]:
            rows.append({"features": feats, "cause": w["fault"], "confirmed": True, "group": i})
        if causes and causes[0] != w["fault"]:
            rows.append({"features": feats, "cause": causes[0], "confirmed": False, "group": i})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--test", nargs="+", required=True)
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args()
    train_rows = verdicts(windows(args.train))
    if len({r["cause"] for r in train_rows}) < 2:
        sys.exit("need verdicts on at least 2 causes to train")
    model = rcm.train(train_rows)
    per: dict[str, dict] = {}
    for w in windows(args.test):
        if not w["fault"]:
            continue
        rules = rcm._rules_of(w["diagnosis"].get("features") or {})
        blended = rcm.blend(rules, rcm.predict(model, w["diagnosis"]["features"]), model)
        p = per.setdefault(w["fault"], {"runs": 0, "rules": 0, "blended": 0})
        p["runs"] += 1
        # rules alone: what diagnose() named first (its threshold and tie order)
        p["rules"] += [c["cause"] for c in w["diagnosis"]["causes"]][:1] == [w["fault"]]
        p["blended"] += rcm._top(blended) == w["fault"]
    n = sum(p["runs"] for p in per.values())
    out = {"command": " ".join(sys.argv), "train_verdicts": len(train_rows), "test_incidents": n,
           "rules_top1": sum(p["rules"] for p in per.values()) / max(n, 1),
           "blended_top1": sum(p["blended"] for p in per.values()) / max(n, 1),
           "per_cause": per, "examples_per_cause": model.get("examples")}
    print(f"{n} held-out incidents, {len(train_rows)} training verdicts: rules alone top-1 "
          f"{out['rules_top1']:.3f}, rules + model {out['blended_top1']:.3f}")
    for cause, p in sorted(per.items()):
        print(f"  {cause:24s} {p['runs']:3d} rules {p['rules']:3d} blended {p['blended']:3d}")
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
