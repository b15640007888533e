"""root_cause_rules(), the SQL shim, answers exactly what plpython/root_cause.py answers for
the same document, and refuses what is not one."""
import base64
import json
import struct

import psycopg
import pytest

from pganalytics.plpython import root_cause


def metric(b, w):
    return {"b_mean": b, "w_mean": w, "b_max": b, "w_max": w, "w_first": w, "w_last": w, "w_n": 20, "b_n": 20}


DOCS = [
    {"seconds": {"w": 60, "b": 60}},
    {"seconds": {"w": 60, "b": 0}},
    {"seconds": {"w": 30, "b": 60}, "settings": {"current": {"max_connections": "40"}},
     "metrics": {"pg_activity_client_backends": metric(5, 36)}},
    {"seconds": {"w": 60, "b": 60}, "ticks": {"w": 60, "b": 60},
     "waits": [{"type": "Lock", "event": "relation", "state": "active", "w": 200, "b": 1},
               {"type": "CPU", "event": "CPU", "state": "active", "w": 20, "b": 60}],
     "blockers": [{"pid": 12, "state": "idle in transaction", "xact_age_s": 40, "waiter_samples": 180}]},
    # a learnt profile (base64 of 168 big-endian float8s) decoded by the server's Python
    {"seconds": {"w": 60, "b": 60}, "from": "2026-12-05T02:00:00+00:00", "to": "2026-12-05T02:01:00+00:00",
     "baseline_from": "2026-12-05T01:59:00+00:00",
     "metrics": {"host_cpu_busy_ratio": metric(0.3, 0.95)},
     "profile": {"version": 2, "rows": {"high_cpu_usage/": base64.b64encode(
         struct.pack(">168d", *[0.1 * (k % 24 == 2) for k in range(168)])).decode()}}},
]


def test_sql_and_module_agree(store_conn):
    for doc in DOCS:
        for options in ({}, {"min_confidence": 0.5}):
            sql = store_conn.execute("SELECT pganalytics.root_cause_rules(%s, %s)",
                                     (json.dumps(doc), json.dumps(options))).fetchone()[0]
            assert sql == json.loads(json.dumps(root_cause.diagnose(doc, options))), doc
    causes = store_conn.execute("SELECT pganalytics.root_cause_rules(%s)", (json.dumps(DOCS[3]),)).fetchone()[0]["causes"]
    assert causes[0]["cause"] == "lock_contention"


@pytest.mark.parametrize("doc, options, message", [
    (None, "{}", "inputs must not be null"),
    ("[]", "{}", "must be JSON objects"),
    ("{}", "[1]", "must be JSON objects"),
    ("{}", '{"min_confidence": -1}', "min_confidence must be from 0 to 1"),
])
def test_bad_documents_are_refused(store_conn, doc, options, message):
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute("SELECT pganalytics.root_cause_rules(%s::jsonb, %s::jsonb)", (doc, options))
