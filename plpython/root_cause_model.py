"""The trained root-cause model: one-vs-rest logistic regression over diagnose()'s evidence
features, learnt from users' verdicts (root_cause_feedback), blended with the rules.

- A confirmed verdict is a positive example of its cause and a negative one of every other
  cause; a rejected verdict is a negative example of its cause only (the user said what it
  was not, not what it was).
- Features are standardised with the training rows' mean and standard deviation (a constant
  or absent feature gets scale 1 and so weight ~0); the rules' own confidences (rule:<cause>)
  are features too, so the model learns how far to trust each rule.
- L2-regularised, fitted by a fixed number of full-batch gradient steps from zero: the same
  rows give the same model.
- Blend: confidence = (1 - w) x rule + w x model, w = 0.5 x n / (n + SHRINK) for a cause with n
  examples (positive or negative) in training: a cause seen twice barely moves the rules, one
  seen 50 times gets close to an even say; the rules always keep half, since a model trained
  on one fleet's incidents should not silence evidence it never saw.
Pure numpy; deterministic; numpy 1.24 .. 2.x.
"""
from __future__ import annotations

import math

import numpy as np

SHRINK = 10.0
DEFAULTS = {"l2": 0.1, "steps": 400, "rate": 0.5, "folds": 5}


def _vector(features: dict, names: list[str]) -> np.ndarray:
    out = np.zeros(len(names))
    for i, n in enumerate(names):
        v = features.get(n)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = float(v)
    return out


def train(rows: list[dict], options: dict | None = None) -> dict:
    """rows: {"features": {...}, "cause": str, "confirmed": bool}. Returns the model (JSON-able)."""
    opts = dict(DEFAULTS)
    opts.update(options or {})
    if not rows:
        raise ValueError("no feedback to train on")
    names = sorted({k for r in rows for k, v in r["features"].items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
    causes = sorted({r["cause"] for r in rows})
    x = np.array([_vector(r["features"], names) for r in rows]) if names else np.zeros((len(rows), 0))
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    weights, counts = {}, {}
    for c in causes:
        y = np.full(len(rows), np.nan)
        for i, r in enumerate(rows):
            if r["confirmed"]:
                y[i] = 1.0 if r["cause"] == c else 0.0
            elif r["cause"] == c:
                y[i] = 0.0
        use = ~np.isnan(y)
        counts[c] = int(use.sum())
        w, b = np.zeros(len(names)), 0.0
        zs, ys = z[use], y[use]
        for _ in range(int(opts["steps"])):
            p = 1.0 / (1.0 + np.exp(-(zs @ w + b)))
            g = p - ys
            w -= float(opts["rate"]) * (zs.T @ g / max(len(ys), 1) + float(opts["l2"]) * w)
            b -= float(opts["rate"]) * float(g.mean()) if len(ys) else 0.0
        weights[c] = {"bias": round(b, 6), "weights": {n: round(float(v), 6) for n, v in zip(names, w) if abs(v) > 1e-6}}
    return {"kind": "logistic_one_vs_rest", "features": names,
            "mean": {n: round(float(m), 6) for n, m in zip(names, mean)},
            "scale": {n: round(float(s), 6) for n, s in zip(names, scale)},
            "causes": weights, "examples": counts, "shrink": SHRINK, "options": opts}


def predict(model: dict, features: dict) -> dict:
    """{cause: probability} for one feature vector (features the model does not know are ignored)."""
    out = {}
    for c, spec in model.get("causes", {}).items():
        s = float(spec.get("bias", 0.0))
        for n, w in spec.get("weights", {}).items():
            v = features.get(n, 0.0)
            v = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0
            s += w * (v - model["mean"].get(n, 0.0)) / (model["scale"].get(n, 1.0) or 1.0)
        out[c] = 1.0 / (1.0 + math.exp(-max(min(s, 50.0), -50.0)))
    return out


def blend(rules: dict, probs: dict, model: dict) -> dict:
    """Blended confidence per cause (see the module docstring for the weight)."""
    out = dict(rules)
    for c, p in probs.items():
        n = float(model.get("examples", {}).get(c, 0))
        w = 0.5 * n / (n + float(model.get("shrink", SHRINK)))
        out[c] = (1.0 - w) * float(rules.get(c, 0.0)) + w * p
    return out


def _rules_of(features: dict) -> dict:
    return {k[5:]: float(v) for k, v in features.items() if k.startswith("rule:")}


def _top(conf: dict, min_confidence: float = 0.2) -> str | None:
    """The cause diagnose() would name first: none below its default min_confidence."""
    best = max(conf.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    return best[0] if best and best[1] >= min_confidence else None


def evaluate(rows: list[dict], options: dict | None = None) -> dict:
    """Top-1 accuracy on held-out incidents of the rules alone and of rules + model: k folds
    over incident groups (row "group": one window's rows stay together), confirmed rows only
    scored (a rejection names no right answer)."""
    opts = dict(DEFAULTS)
    opts.update(options or {})
    groups = sorted({str(r.get("group")) for r in rows})
    folds = max(2, min(int(opts["folds"]), len(groups)))
    rules_right = blended_right = scored = 0
    for k in range(folds):
        held = {g for i, g in enumerate(groups) if i % folds == k}
        train_rows = [r for r in rows if str(r.get("group")) not in held]
        test_rows = [r for r in rows if str(r.get("group")) in held and r["confirmed"]]
        if not train_rows or not test_rows:
            continue
        model = train(train_rows, opts)
        for r in test_rows:
            rules = _rules_of(r["features"])
            scored += 1
            rules_right += _top(rules) == r["cause"]
            blended_right += _top(blend(rules, predict(model, r["features"]), model)) == r["cause"]
    return {"folds": folds, "incidents": scored,
            "rules_top1": rules_right / scored if scored else None,
            "blended_top1": blended_right / scored if scored else None}
