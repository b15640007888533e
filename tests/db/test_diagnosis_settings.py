"""diagnosis_inputs() hands the rules the settings in force at the window's end: a non-default
value that went back to its default is no longer current (the collector sends non-default
settings only, so its row closes with no successor)."""
from __future__ import annotations

import json

from .stage import at, entry, ingest, register


def snapshot(conn, iid, minute, settings: dict[str, str]) -> None:
    rows = [{"name": k, "setting": v, "unit": None, "source": "configuration file", "pending_restart": False}
            for k, v in settings.items()]
    conn.execute("SELECT pganalytics.ingest_settings(%s, %s, %s)", (iid, at(minute), json.dumps(rows)))


def inputs(conn, w_from, w_to) -> dict:
    return conn.execute("SELECT pganalytics.diagnosis_inputs('tuned', %s, %s)", (at(w_from), at(w_to))).fetchone()[0]


def test_a_setting_back_at_its_default_is_not_current(store_conn):
    iid = register(store_conn, "tuned")
    for m in range(0, 40):
        ingest(store_conn, iid, at(m), [entry(7, 10 * (m + 1), 5.0 * (m + 1))])
    snapshot(store_conn, iid, 0, {"max_connections": "40", "work_mem": "65536"})
    snapshot(store_conn, iid, 10, {"work_mem": "65536"})   # max_connections back to its default
    snapshot(store_conn, iid, 30, {"work_mem": "8192"})

    assert inputs(store_conn, 5, 8)["settings"]["current"] == {"max_connections": "40", "work_mem": "65536"}
    late = inputs(store_conn, 20, 25)["settings"]
    assert late["current"] == {"work_mem": "65536"}
    # a row closed at the window's end was still in force during it
    assert inputs(store_conn, 25, 30)["settings"]["current"] == {"work_mem": "65536"}
    assert inputs(store_conn, 32, 35)["settings"]["current"] == {"work_mem": "8192"}


def test_an_empty_snapshot_sends_every_setting_back_to_its_default(store_conn):
    """diagnose() takes the connection limit from the current settings (default 100 without)."""
    iid = register(store_conn, "tuned")
    for m in range(0, 40):
        ingest(store_conn, iid, at(m), [entry(7, 10 * (m + 1), 5.0 * (m + 1))])
    snapshot(store_conn, iid, 0, {"max_connections": "40"})
    snapshot(store_conn, iid, 10, {})
    assert "max_connections" not in inputs(store_conn, 20, 25)["settings"]["current"]
