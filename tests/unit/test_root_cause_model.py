"""The trained root-cause model (plpython/root_cause_model.py): it learns a separable problem,
a rejection lowers its cause, training is deterministic, few examples barely move the rules,
and evaluation keeps an incident's rows in one fold."""
import random

import pytest

from pganalytics.plpython import root_cause_model as m


def incidents(n, seed=1, noise=0.3):
    """Lock incidents have lock_share high, spills temp high; the rules confuse them half the time."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        cause = "lock_contention" if i % 2 else "work_mem_spill"
        lock = (1.0 if cause == "lock_contention" else 0.0) + rng.gauss(0, noise)
        temp = (1.0 if cause == "work_mem_spill" else 0.0) + rng.gauss(0, noise)
        wrong = rng.random() < 0.5
        rules = {"rule:lock_contention": 0.6 if (cause == "lock_contention") != wrong else 0.4,
                 "rule:work_mem_spill": 0.4 if (cause == "lock_contention") != wrong else 0.6}
        rows.append({"features": {"lock_share_delta": lock, "temp_bytes_log_delta": temp, **rules},
                     "cause": cause, "confirmed": True, "group": f"g{i}"})
    return rows


def test_learns_a_separable_problem_and_beats_unreliable_rules():
    rows = incidents(80)
    model = m.train(rows)
    p = m.predict(model, {"lock_share_delta": 1.0, "temp_bytes_log_delta": 0.0})
    assert p["lock_contention"] > 0.8 and p["work_mem_spill"] < 0.2
    ev = m.evaluate(rows)
    assert ev["incidents"] == 80
    assert ev["blended_top1"] > ev["rules_top1"] + 0.2


def test_rejected_verdicts_lower_their_cause():
    base = incidents(40)
    rejected = [{"features": {"lock_share_delta": 1.0, "temp_bytes_log_delta": 0.0}, "cause": "lock_contention",
                 "confirmed": False, "group": f"r{i}"} for i in range(30)]
    f = {"lock_share_delta": 1.0, "temp_bytes_log_delta": 0.0}
    assert m.predict(m.train(base + rejected), f)["lock_contention"] < m.predict(m.train(base), f)["lock_contention"]


def test_deterministic():
    rows = incidents(30)
    assert m.train(rows) == m.train(list(rows))


def test_few_examples_barely_move_the_rules():
    rows = incidents(4)
    model = m.train(rows)
    rules = {"lock_contention": 0.9, "work_mem_spill": 0.1}
    out = m.blend(rules, {"lock_contention": 0.0, "work_mem_spill": 1.0}, model)
    assert out["lock_contention"] > 0.75  # the rules keep most of their say
    big = m.train(incidents(200))
    out_big = m.blend(rules, {"lock_contention": 0.0, "work_mem_spill": 1.0}, big)
    assert out_big["lock_contention"] < out["lock_contention"]
    assert out_big["lock_contention"] >= 0.45  # never below half the rules' confidence


def test_evaluation_keeps_groups_together_and_scores_confirmed_only():
    rows = incidents(20)
    for r in rows:
        r["group"] = "same"  # one incident: nothing to hold out against
    assert m.evaluate(rows)["incidents"] == 0
    rows = incidents(20) + [{"features": {}, "cause": "lock_contention", "confirmed": False, "group": "x"}]
    assert m.evaluate(rows)["incidents"] == 20


def test_no_rows_is_an_error():
    with pytest.raises(ValueError, match="no feedback"):
        m.train([])
