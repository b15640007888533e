"""The 62 labelled D-Bot PostgreSQL anomaly cases through pganalytics.root_cause_rules().

    .venv/bin/python bench/dbgpt_cases.py [--dataset FILE] [--json OUT]

Each case of ../shared/datasets/dbgpt_dbot_pg/ (TsinghuaDatabaseGroup/DB-GPT, Apache-2.0; see
its README) is turned into a diagnosis_inputs() document from what the case measured, run
through `pganalytics.root_cause_rules(doc, '{}')` on a throwaway store (pganalytics.localpg,
installed with pganalytics.store.upgrade, stopped at the end, SIGTERM included), and the
causes are compared with the case's labels where a label means one of our causes. The same
documents also go through plpython/root_cause.py in this process: the two must agree. Prints a
table and writes bench/results/dbgpt-cases.json (every case's document, split and causes).

What a case has (checked on the file, not assumed):
  * `exceptions`: the node_exporter series flagged abnormal, at a 3 s step from `start_time`
    to `end_time`: floor((end - start) / 3) + 1 points, 14 to 60 (not 60 in every case). A
    few series of 7 cases are shorter and end early (the exporter missed scrapes under the
    load: case 31's last points have 90 blocked processes); they are taken to start at
    `start_time` like the others.
  * `alerts`: Alertmanager payloads. Their `startsAt` is the lab's local time (UTC+8) written
    with a `Z`: every case's alert lies 8 h plus -15..+138 s from its `start_time`, which is a
    plain epoch. 8 h is taken off.
  * no PostgreSQL series at all, and `workload`/`description` are not read (parsing them into
    features would be reading the answer).

Where the anomaly starts: at the case's first alert (the earliest `startsAt`), clipped to the
series' span; the points before it are the baseline, the points from it to `end_time` the
window. This is the only anomaly time the set gives. It is late: an alert fires after its
condition held for the rule's `for:` on one-minute averages, and the trigger script starts at
`start_time` (in all 10 lock cases the host's TCP sockets step up 3-6 s after it, the alert
comes 1-57 s after it), so the baseline is short (0-47 points; case 60's alert is before
`start_time`: no baseline) and often already holds the anomaly's start. The causes do not
depend on the split: the only metric with points in both periods is host_load1, which no rule
reads (see the table).

Their metric -> ours (the names our collector stores; only metrics diagnosis_inputs() reads
can appear in a document):

| theirs (key in `exceptions`)                       | ours                          | in the document |
| -------------------------------------------------- | ----------------------------- | --------------- |
| cpu node_load1                                     | host_load1 (/proc/loadavg)    | yes (9 cases)   |
| cpu node_procs_running, node_procs_blocked         | none (not collected)          | no              |
| cpu node_entropy_available_bits                    | none                          | no              |
| io node_filesystem_size_bytes                      | host_disk_total_bytes         | no: diagnosis_inputs() does not read host_disk_* |
| io 1-(node_filesystem_free_bytes ...)              | host_disk_used / total bytes  | no: same        |
| io irate(node_disk_{reads,writes}_completed_total, | none: no block-device         | no              |
|    read_bytes, written_bytes, read_time, write_time,| counters (pg_database_blk_read_time is the server's |
|    io_time, io_time_weighted), node_disk_io_now    | own read time, another measure) |               |
| memory node_memory_Inactive_anon_bytes, Buffers    | none: we store MemAvailable   | no: host_memory_available_bytes |
|                                                    | and MemTotal only             | is not derivable from them |
| memory irate(node_disk_write_time_seconds_total    | none                          | no              |
| network node_sockstat_TCP_{inuse,alloc,tw,orphan}, | none: host sockets, not       | no              |
|    irate(node_netstat_Tcp_PassiveOpens             | PostgreSQL backends           |                 |

An alert's value is a measurement too, at the time it fired, so it is one sample in the window
(never in the baseline: the split is the first alert):

| their alert expression         | ours                             | in the document |
| ------------------------------ | -------------------------------- | --------------- |
| node:ins:cpu_usage (NodeCpuHigh) | host_cpu_busy_ratio            | yes, one window sample; theirs counts iowait as busy if it is the usual idle-based usage, ours does not |
| pg:db:ixact_backends (PostgresIdleInXact) | pg_activity_idle_in_transaction | yes, one window sample (theirs for one database: a lower bound of ours) |
| node:ins:mem_avail (NodeOutOfMem) | host_memory_available / total | no: a ratio, the bytes are not derivable |
| node:ins:stdload1 (NodeLoadHigh) | none (load1 per core; we store load1, not the core count) | no |
| node:fs:space_usage, pg_up, pg_uptime | none that diagnosis_inputs() reads | no |

There is no CPU usage series (only the alert's one value), no iowait, no memory available in
bytes: host_cpu_iowait_ratio and host_memory_* never appear.

Their labels -> our causes (a case counts where at least one of its labels maps; top-1 is a
match when our first cause is one of the mapped ones, top-2 when one of our first two is).
What each trigger does is read from DB-GPT's anomaly_trigger/anomaly.py and main.py (the
repository's version, not the scripts the cases ran: our copy of the set dropped `script`):

| their label                 | ours            | why |
| --------------------------- | --------------- | --- |
| highly concurrent updates   | lock_contention | LOCK_CONTENTION: many sessions updating random rows of one small table: row-lock waits |
| CORRELATED SUBQUERY         | suboptimal_plan | TPC-H queries whose subquery runs per outer row: the plan is the problem |
| POOR JOIN PERFORMANCE       | suboptimal_plan | JOB queries with bad join orders: the plan is the problem |
| CPU CONTENTION              | cpu_saturation  | CPU-heavy load on the host beside the JOB queries |
| FETCH_LARGE_DATA            | none            | large result sets: not a cause of ours |
| IO_CONTENTION               | none            | a 50-thread sysbench TPC-C run contending for the disk; io_cache_eviction means the buffer cache lost the working set (hit ratio falling, the same statements reading more), another thing |
| highly concurrent commits or highly concurrent inserts, INSERT_LARGE_DATA | none | INSERT_LARGE_DATA: many sessions inserting and committing: the workload's volume; checkpoint_pressure or cpu_saturation are what it may cause, not what it is |
| highly deletes              | none            | VACUUM: a table filled, 80 % of it deleted, then many sessions reading it while the dead rows wait for autovacuum; bloat_long_transaction means a transaction holding the snapshot horizon so vacuum cannot remove dead rows, and the trigger opens none |
| too many indexes            | none            | REDUNDANT_INDEX: many indexes maintained by concurrent updates; that is a recommendation (drop_unused_index / drop_duplicate_index), not a cause |

Cases with no mapped label are reported apart, with what we said for them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "dbgpt-cases.json"
DATASET_ENV = "PGANALYTICS_DBGPT_FILE"
DATASET_FILE = "testing_set_with_workload_new_62.noscript.json"

STEP_S = 3.0  # the series' step: n = floor((end - start) / 3) + 1 in every case
ALERT_CLOCK_OFFSET_S = 8 * 3600  # alerts' startsAt: local time (UTC+8) written with a Z

# their `exceptions` key -> our metric, for the metrics diagnosis_inputs() reads
SERIES_MAP: dict[str, str] = {"node_load1": "host_load1"}
# their alert expression -> our metric (one sample in the window)
ALERT_MAP: dict[str, str] = {"node:ins:cpu_usage": "host_cpu_busy_ratio",
                             "pg:db:ixact_backends": "pg_activity_idle_in_transaction"}

# their label -> our causes (empty: no counterpart); the reasons are in the docstring
LABEL_MAP: dict[str, tuple[str, ...]] = {
    "highly concurrent updates": ("lock_contention",),
    "CORRELATED SUBQUERY": ("suboptimal_plan",),
    "POOR JOIN PERFORMANCE": ("suboptimal_plan",),
    "CPU CONTENTION": ("cpu_saturation",),
    "FETCH_LARGE_DATA": (),
    "IO_CONTENTION": (),
    "highly concurrent commits or highly concurrent inserts": (),
    "INSERT_LARGE_DATA": (),
    "highly deletes": (),
    "too many indexes": (),
}

ALERT_VALUE = re.compile(r"^\s*([\w:]+)\[[^\]]*\]\s*=\s*([-+0-9.eE]+)")


def default_dataset() -> Path:
    """$PGANALYTICS_DBGPT_FILE, else shared/datasets/dbgpt_dbot_pg/ next to the checkout."""
    override = os.environ.get(DATASET_ENV)
    if override:
        return Path(override)
    return ROOT.parent / "shared" / "datasets" / "dbgpt_dbot_pg" / DATASET_FILE


def load_cases(path: Path) -> dict[str, dict]:
    with open(path) as f:
        cases = json.load(f)
    if not isinstance(cases, dict) or not cases:
        raise ValueError(f"{path}: expected a JSON object of cases")
    return cases


def mapped_causes(labels: list[str]) -> set[str]:
    """Our causes for a case's labels; an unknown label is an error (a new label needs a decision)."""
    out: set[str] = set()
    for label in labels:
        if label not in LABEL_MAP:
            raise KeyError(f"label {label!r} has no mapping decision in LABEL_MAP")
        out.update(LABEL_MAP[label])
    return out


def _epoch(iso: str) -> float:
    """An Alertmanager time (nanoseconds, 'Z') as epoch seconds, the UTC+8 clock corrected."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", iso)
    if not m:
        raise ValueError(f"not an alert time: {iso!r}")
    whole = datetime.fromisoformat(m.group(1)).replace(tzinfo=timezone.utc).timestamp()
    return whole + float(m.group(2) or 0.0) - ALERT_CLOCK_OFFSET_S


def alerts(case: dict) -> list[dict]:
    """Every alert of the case: name, start (epoch), expression and value when it has one."""
    out = []
    for payload in case.get("alerts") or []:
        for a in payload.get("alerts") or []:
            m = ALERT_VALUE.match((a.get("annotations") or {}).get("description") or "")
            out.append({"name": (a.get("labels") or {}).get("alertname"), "start": _epoch(a["startsAt"]),
                        "expr": m.group(1) if m else None, "value": float(m.group(2)) if m else None})
    return sorted(out, key=lambda a: a["start"])


def series(case: dict) -> dict[str, list[tuple[float, float]]]:
    """Their series as (epoch, value) points, keyed by their expression: 3 s apart from start_time."""
    t0 = float(case["start_time"])
    out = {}
    for group in (case.get("exceptions") or {}).values():
        for key, values in group.items():
            out[key] = [(t0 + STEP_S * i, float(v)) for i, v in enumerate(values)]
    return out


def split(case: dict) -> dict[str, Any]:
    """The anomaly's start (the first alert, clipped to the series' span) and the periods."""
    t0, t_end = float(case["start_time"]), float(case["end_time"])
    n = math.floor((t_end - t0) / STEP_S) + 1
    last = t0 + STEP_S * (n - 1)
    found = alerts(case)
    first = found[0]["start"] if found else t0
    start = min(max(first, t0), last)  # the window keeps at least the last point
    return {"start": start, "first_alert_s": round(first - t0, 3), "baseline_points": math.ceil((start - t0) / STEP_S),
            "points": n, "seconds_w": max(t_end - start, STEP_S), "seconds_b": start - t0}


def aggregate(points: list[tuple[float, float]], start: float) -> dict[str, float]:
    """One metric's statistics per period, as diagnosis_inputs() builds them (nulls stripped)."""
    w = [v for t, v in points if t >= start and not math.isnan(v)]
    b = [v for t, v in points if t < start and not math.isnan(v)]
    out: dict[str, float] = {"w_n": len(w), "b_n": len(b)}
    if w:
        out.update(w_mean=sum(w) / len(w), w_max=max(w), w_min=min(w), w_first=w[0], w_last=w[-1])
    if b:
        out.update(b_mean=sum(b) / len(b), b_max=max(b), b_min=min(b), b_last=b[-1])
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def to_document(case_id: str, case: dict) -> dict:
    """The diagnosis_inputs() document for one case: only the metrics it measured that mean
    what ours mean; everything PostgreSQL-internal is empty, as for an instance without it."""
    s = split(case)
    metrics: dict[str, dict] = {}
    for key, points in series(case).items():
        if key in SERIES_MAP:
            metrics[SERIES_MAP[key]] = aggregate(points, s["start"])
    samples: dict[str, list[tuple[float, float]]] = {}
    for a in alerts(case):
        if a["expr"] in ALERT_MAP and a["value"] is not None:
            samples.setdefault(ALERT_MAP[a["expr"]], []).append((max(a["start"], s["start"]), a["value"]))
    for name, points in samples.items():
        if name not in metrics:  # a series, where the case has one, says more than an alert
            metrics[name] = aggregate(sorted(points), s["start"])
    return {
        "instance": f"dbgpt-{case_id}", "queryid": None,
        "from": _iso(s["start"]), "to": _iso(float(case["end_time"])), "baseline_from": _iso(float(case["start_time"])),
        "seconds": {"w": s["seconds_w"], "b": s["seconds_b"]}, "resolution": "raw",
        "queries": [], "waits": [], "ticks": {}, "locks": {}, "blockers": [], "idle_in_transaction": [],
        "metrics": metrics, "tables": [], "indexes": [],
        "settings": {"changes": [], "current": {}}, "dropped_indexes": [], "plans": [], "advice": [],
    }


def judge(labels: list[str], causes: list[str]) -> dict[str, Any]:
    want = mapped_causes(labels)
    return {"mapped": sorted(want), "top1": bool(want) and bool(causes) and causes[0] in want,
            "top2": bool(want) and any(c in want for c in causes[:2]), "no_cause": not causes}


def report(cases: dict[str, dict], diagnoses: dict[str, dict]) -> dict[str, Any]:
    """Per label (their combination), overall over the mapped cases, and the unmapped ones."""
    rows: dict[str, dict] = {}
    per_case = []
    for cid, case in cases.items():
        causes = [c["cause"] for c in diagnoses[cid]["causes"]]
        j = judge(case["labels"], causes)
        label = " + ".join(case["labels"])
        r = rows.setdefault(label, {"label": label, "cases": 0, "mapped": j["mapped"], "top1": 0, "top2": 0,
                                    "no_cause": 0, "named_instead": Counter(), "case_ids": []})
        r["cases"] += 1
        r["case_ids"].append(cid)
        r["top1"] += j["top1"]
        r["top2"] += j["top2"]
        r["no_cause"] += j["no_cause"]
        if not j["top1"]:
            r["named_instead"][causes[0] if causes else "(no cause)"] += 1
        per_case.append({"case": cid, "labels": case["labels"], **j, "causes": diagnoses[cid]["causes"],
                         "summary": diagnoses[cid]["summary"]})
    labels = sorted(rows.values(), key=lambda r: (-r["cases"], r["label"]))
    for r in labels:
        r["named_instead"] = dict(r["named_instead"].most_common())
    mapped = [c for c in per_case if c["mapped"]]
    n = len(mapped)
    overall = {"cases": n, "top1": sum(c["top1"] for c in mapped), "top2": sum(c["top2"] for c in mapped),
               "no_cause": sum(c["no_cause"] for c in mapped)}
    overall.update({f"{k}_rate": round(overall[k] / n, 3) if n else None for k in ("top1", "top2", "no_cause")})
    unmapped = [{"case": c["case"], "labels": c["labels"], "said": [x["cause"] for x in c["causes"]] or None}
                for c in per_case if not c["mapped"]]
    said = Counter(s for u in unmapped for s in (u["said"] or ["(no cause)"])[:1])
    return {"overall_mapped": overall, "labels": labels,
            "unmapped": {"cases": len(unmapped), "top_cause": dict(said.most_common()), "list": unmapped},
            "cases": per_case}


def print_table(rep: dict) -> None:
    print(f"{'their label':58s} {'n':>3} {'our cause':32s} {'top1':>4} {'top2':>4} {'none':>4}  named instead")
    for r in rep["labels"]:
        inst = ", ".join(f"{k} x{v}" for k, v in r["named_instead"].items()) if r["mapped"] else "-"
        print(f"{r['label'][:58]:58s} {r['cases']:>3} {', '.join(r['mapped']) or '(no counterpart)':32s} "
              f"{r['top1'] if r['mapped'] else '-':>4} {r['top2'] if r['mapped'] else '-':>4} {r['no_cause']:>4}  {inst}")
    o = rep["overall_mapped"]
    print(f"mapped cases: {o['cases']}, top-1 {o['top1']}, top-2 {o['top2']}, no cause {o['no_cause']}")
    u = rep["unmapped"]
    print(f"cases with no counterpart: {u['cases']}; our first cause for them: "
          + ", ".join(f"{k} x{v}" for k, v in u["top_cause"].items()))


def run_sql(docs: dict[str, dict]) -> tuple[dict[str, dict], str]:
    """Every document through pganalytics.root_cause_rules() on a throwaway store."""
    import psycopg
    from psycopg.types.json import Jsonb

    from pganalytics import localpg, store

    tmp = tempfile.mkdtemp(prefix="pga-dbgpt-")
    base = localpg.reachable_dir(tmp)  # a stand-in under /var/lib when postgres cannot enter tmp
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir())
    out = {}
    try:
        cluster.init({})
        cluster.start()
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            for cid, doc in docs.items():
                row = conn.execute("SELECT pganalytics.root_cause_rules(%s, '{}')", (Jsonb(doc),)).fetchone()
                assert row is not None
                out[cid] = row[0]
    finally:
        cluster.destroy()  # pg_ctl stop (immediate), then the directory
        for d in {Path(tmp), base}:
            shutil.rmtree(d, ignore_errors=True)
    return out, version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, default=None, help=f"the cases' JSON (default: ${DATASET_ENV} "
                    "or ../shared/datasets/dbgpt_dbot_pg/)")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally block stops the server
    path = args.dataset or default_dataset()
    cases = load_cases(path)
    for case in cases.values():
        mapped_causes(case["labels"])  # every label decided before a server starts
    docs = {cid: to_document(cid, case) for cid, case in cases.items()}
    diagnoses, version = run_sql(docs)
    from pganalytics.plpython import root_cause
    differ = [cid for cid, doc in docs.items()
              if [c["cause"] for c in root_cause.diagnose(doc, {})["causes"]]
              != [c["cause"] for c in diagnoses[cid]["causes"]]]
    rep = report(cases, diagnoses)
    print_table(rep)
    if differ:
        print(f"the SQL function and the module disagree on cases {differ}")
    metric_cases = Counter(m for d in docs.values() for m in d["metrics"])
    splits = {cid: split(case) for cid, case in cases.items()}
    out = {"dataset": {"file": path.name, "cases": len(cases)}, "server_version": version,
           "function": "pganalytics.root_cause_rules(doc, '{}')",
           "sql_agrees_with_module": not differ, "disagreements": differ,
           "metrics_in_documents": dict(metric_cases.most_common()),
           "baseline_points": {"min": min(s["baseline_points"] for s in splits.values()),
                               "max": max(s["baseline_points"] for s in splits.values())},
           **rep,
           "documents": {cid: {"split": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in splits[cid].items()
                                         if k != "start"},
                               "from": d["from"], "to": d["to"], "baseline_from": d["baseline_from"],
                               "metrics": d["metrics"]} for cid, d in docs.items()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
