"""Feedback, training and blending in the store: verdicts through
record_root_cause_feedback() (features computed by diagnose()), train_root_cause_model()
storing a version (the same feedback: the same version), diagnose() blending the newest model,
and clear errors on bad input."""
import json

import psycopg
import pytest


def register(conn, name="rc1"):
    conn.execute("SELECT pganalytics.register_instance(%s, 'host=127.0.0.1 dbname=app')", (name,))


def test_feedback_training_and_blending(store_conn):
    register(store_conn)
    # verdicts on windows with no data: their features are the empty evidence (rules all 0)
    for k in range(12):
        store_conn.execute(
            "SELECT pganalytics.record_root_cause_feedback('rc1', now() - make_interval(mins => %s + 1),"
            " now() - make_interval(mins => %s), %s, %s, 'from the on-call review')",
            (2 * k, 2 * k, "lock_contention" if k % 3 else "cpu_saturation", k % 4 != 0))
    stored = store_conn.execute("SELECT count(*), bool_and(features ? 'rule:lock_contention'), min(noted_by)"
                                " FROM pganalytics.root_cause_feedback").fetchone()
    assert stored[0] == 12 and stored[1] and stored[2]
    first = store_conn.execute("SELECT pganalytics.train_root_cause_model()").fetchone()[0]
    assert first["version"] == 1 and not first["unchanged"] and first["examples"] == 12
    assert set(first["causes"]) == {"lock_contention", "cpu_saturation"}
    assert {"rules_top1", "blended_top1", "incidents"} <= set(first["evaluation"])
    again = store_conn.execute("SELECT pganalytics.train_root_cause_model()").fetchone()[0]
    assert again["version"] == 1 and again["unchanged"]
    other = store_conn.execute("""SELECT pganalytics.train_root_cause_model('{"l2": 1.0}')""").fetchone()[0]
    assert other["version"] == 2

    model = store_conn.execute("SELECT model FROM pganalytics.root_cause_models WHERE version = 2").fetchone()[0]
    feats = {"rule:lock_contention": 0.3, "rule:cpu_saturation": 0.0}
    blended = store_conn.execute("SELECT pganalytics.root_cause_model_scores(%s, %s)",
                                 (json.dumps(model), json.dumps(feats))).fetchone()[0]
    assert set(blended) >= {"lock_contention", "cpu_saturation"}
    assert blended["lock_contention"] != 0.3  # the model moved it
    rules_only = store_conn.execute("SELECT pganalytics.root_cause_model_scores(NULL, %s)",
                                    (json.dumps(feats),)).fetchone()[0]
    assert rules_only == {"lock_contention": 0.3, "cpu_saturation": 0.0}

    with_model = store_conn.execute("SELECT pganalytics.diagnose('rc1', now() - interval '1 minute', now())").fetchone()[0]
    assert with_model["model"] == 2
    without = store_conn.execute("""SELECT pganalytics.diagnose('rc1', now() - interval '1 minute', now(),
                                    '{"use_model": false}')""").fetchone()[0]
    assert without["model"] is None


@pytest.mark.parametrize("sql, message", [
    ("SELECT pganalytics.record_root_cause_feedback('rc1', now() - interval '1 minute', now(), 'Lock!', true)",
     "cause must be a cause name"),
    ("SELECT pganalytics.record_root_cause_feedback('rc1', now() - interval '1 minute', now(), 'lock_contention', NULL)",
     "confirmed must be true or false"),
    ("SELECT pganalytics.record_root_cause_feedback('nope', now() - interval '1 minute', now(), 'lock_contention', true)",
     "unknown instance"),
    ("SELECT pganalytics.record_root_cause_feedback('rc1', now(), now() - interval '1 minute', 'lock_contention', true)",
     "must end after it starts"),
    ("SELECT pganalytics.train_root_cause_model()", "at least 10 verdicts"),
    ("SELECT pganalytics.train_root_cause_model('[]')", "options must be a JSON object"),
    ("SELECT pganalytics.root_cause_fit('[]', '{\"depth\": 3}')", "unknown option"),
    ("SELECT pganalytics.root_cause_model_scores(NULL, '[1]')", "features must be a JSON object"),
    ("SELECT pganalytics.diagnose('rc1', now() - interval '1 minute', now(), '{\"use_model\": 1}')",
     "use_model must be true or false"),
])
def test_bad_input_is_refused(store_conn, sql, message):
    register(store_conn)
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute(sql)
