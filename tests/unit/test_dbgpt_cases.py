"""bench/dbgpt_cases.py without a database: a D-Bot case becomes a diagnosis_inputs() document
with our metric names, split at its first alert (whose clock is UTC+8 written with a Z), and
their labels map to our causes; the scoring counts top-1/top-2 as documented."""
from __future__ import annotations

import copy
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pganalytics.plpython import root_cause

# bench/ is not part of the installed package: import it from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import dbgpt_cases as dc  # noqa: E402 - importable only after the sys.path line above

T0 = 1_697_297_150  # 2023-10-14 15:25:50 UTC


def alert_at(epoch: float, name: str, description: str) -> dict:
    """An Alertmanager payload as the lab wrote it: local time (UTC+8) with a Z."""
    whole = math.floor(epoch)
    local = (datetime.fromtimestamp(whole + 8 * 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
             + f"{epoch - whole:.9f}"[1:] + "Z")  # nanoseconds, as Alertmanager writes them
    return {"alerts": [{"labels": {"alertname": name}, "annotations": {"description": description},
                        "startsAt": local, "endsAt": local}]}


def case(alert_offset: float = 12.5, labels=("highly concurrent updates",)) -> dict:
    load = [1.0, 1.1, 0.9, 1.0, 1.0, 4.0, 8.0, 12.0, 15.0, 16.0, 17.0]  # 11 points: 0..30 s
    return {"start_time": str(T0), "end_time": str(T0 + 30), "labels": list(labels),
            "description": "many users update one table", "workload": "UPDATE t SET ...",
            "alerts": [alert_at(T0 + alert_offset, "NodeCpuHigh", "node:ins:cpu_usage[ins=] = 0.95 > 70%\n")],
            "exceptions": {"cpu": {"node_load1": load, "node_procs_running": [1.0] * 5 + [90.0] * 6},
                           "memory": {"node_memory_Inactive_anon_bytes": [2e8] * 11},
                           "network": {"node_sockstat_TCP_inuse": [13.0] + [60.0] * 10}}}


def test_the_alert_clock_is_corrected_and_splits_the_series():
    c = case()
    (a,) = dc.alerts(c)
    assert a["start"] == pytest.approx(T0 + 12.5) and a["expr"] == "node:ins:cpu_usage" and a["value"] == 0.95
    s = dc.split(c)
    # points at 0, 3, 6, 9, 12 s are before 12.5 s; 15..30 s are the window
    assert s["points"] == 11 and s["baseline_points"] == 5
    assert s["seconds_b"] == pytest.approx(12.5) and s["seconds_w"] == pytest.approx(17.5)


def test_a_case_becomes_our_metric_names_with_baseline_and_window():
    doc = dc.to_document("7", case())
    # their load1 is our host_load1; the CPU alert's value is one window sample of
    # host_cpu_busy_ratio; processes, sockets and inactive memory have no counterpart
    assert set(doc["metrics"]) == {"host_load1", "host_cpu_busy_ratio"}
    load = doc["metrics"]["host_load1"]
    assert (load["b_n"], load["w_n"]) == (5, 6)
    assert load["b_mean"] == pytest.approx(1.0) and load["b_last"] == 1.0
    assert load["w_first"] == 4.0 and load["w_last"] == 17.0 and load["w_max"] == 17.0
    assert load["w_mean"] == pytest.approx((4 + 8 + 12 + 15 + 16 + 17) / 6)
    cpu = doc["metrics"]["host_cpu_busy_ratio"]
    assert cpu == {"w_n": 1, "b_n": 0, "w_mean": 0.95, "w_max": 0.95, "w_min": 0.95, "w_first": 0.95, "w_last": 0.95}
    assert doc["seconds"] == {"w": pytest.approx(17.5), "b": pytest.approx(12.5)}
    assert doc["from"].startswith("2023-10-14T15:26:02.5") and doc["baseline_from"].startswith("2023-10-14T15:25:50")
    # no PostgreSQL evidence is invented, and the scenario's text is not read
    assert doc["queries"] == [] and doc["waits"] == [] and doc["tables"] == [] and doc["plans"] == []
    other = case()
    other["description"], other["workload"] = "a completely different story", ""
    assert dc.to_document("7", other) == doc


def test_an_alert_before_the_series_leaves_no_baseline():
    doc = dc.to_document("60", case(alert_offset=-15))
    assert doc["seconds"]["b"] == 0
    assert doc["metrics"]["host_load1"]["b_n"] == 0 and "b_mean" not in doc["metrics"]["host_load1"]
    assert doc["metrics"]["host_load1"]["w_n"] == 11


def test_the_documents_go_through_the_rules_unchanged():
    doc = dc.to_document("7", case())
    before = copy.deepcopy(doc)
    out = root_cause.diagnose(doc, {})
    assert doc == before and set(out) >= {"causes", "summary", "features"}
    assert out["features"]["rule:cpu_saturation"] == 0.0  # a window-only busy ratio compares with nothing


def test_label_mapping():
    assert dc.mapped_causes(["highly concurrent updates"]) == {"lock_contention"}
    assert dc.mapped_causes(["POOR JOIN PERFORMANCE", "CPU CONTENTION"]) == {"suboptimal_plan", "cpu_saturation"}
    assert dc.mapped_causes(["FETCH_LARGE_DATA", "CORRELATED SUBQUERY"]) == {"suboptimal_plan"}
    for no_counterpart in ("too many indexes", "highly deletes", "INSERT_LARGE_DATA", "IO_CONTENTION",
                           "highly concurrent commits or highly concurrent inserts"):
        assert dc.mapped_causes([no_counterpart]) == set()
    with pytest.raises(KeyError, match="no mapping decision"):
        dc.mapped_causes(["SOMETHING NEW"])
    assert {c for causes in dc.LABEL_MAP.values() for c in causes} <= set(root_cause.CAUSES)


def test_top1_top2_and_the_confusion_list():
    cases = {"a": case(), "b": case(), "c": case(), "d": case(labels=("too many indexes",))}
    diag = {"a": {"causes": [{"cause": "lock_contention"}], "summary": ""},
            "b": {"causes": [{"cause": "cpu_saturation"}, {"cause": "lock_contention"}], "summary": ""},
            "c": {"causes": [], "summary": ""},
            "d": {"causes": [{"cause": "cpu_saturation"}], "summary": ""}}
    rep = dc.report(cases, diag)
    (lock,) = [r for r in rep["labels"] if r["label"] == "highly concurrent updates"]
    assert (lock["cases"], lock["top1"], lock["top2"], lock["no_cause"]) == (3, 1, 2, 1)
    assert lock["named_instead"] == {"cpu_saturation": 1, "(no cause)": 1}
    assert rep["overall_mapped"] == {"cases": 3, "top1": 1, "top2": 2, "no_cause": 1,
                                     "top1_rate": 0.333, "top2_rate": 0.667, "no_cause_rate": 0.333}
    assert rep["unmapped"]["cases"] == 1 and rep["unmapped"]["list"][0]["said"] == ["cpu_saturation"]


DATASET = dc.default_dataset()


@pytest.mark.skipif(not DATASET.is_file(), reason=f"D-Bot cases not found at {DATASET}")
def test_the_real_cases_fit_the_assumptions():
    cases = dc.load_cases(DATASET)
    assert len(cases) == 62
    for cid, c in cases.items():
        dc.mapped_causes(c["labels"])  # every label has a decision
        n = math.floor((int(c["end_time"]) - int(c["start_time"])) / dc.STEP_S) + 1
        lengths = [len(v) for g in c["exceptions"].values() for v in g.values()]
        assert max(lengths) == n, cid  # a 3 s step from start_time to end_time
        # the 8 h clock correction puts every alert near the case, not hours away
        assert all(-60 <= a["start"] - int(c["start_time"]) <= 600 for a in dc.alerts(c)), cid
        doc = dc.to_document(cid, c)
        assert set(doc["metrics"]) <= {"host_load1", "host_cpu_busy_ratio", "pg_activity_idle_in_transaction"}
        assert doc["seconds"]["w"] > 0 and doc["seconds"]["b"] >= 0
