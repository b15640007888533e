"""`make demo`'s first minute: a failing collection round is shown and retried (it used to
kill the collector thread silently while the gateway kept serving empty lists), and a taken
server port is refused in one sentence instead of pg_ctl's traceback."""
from __future__ import annotations

import logging
import socket
import threading

import pytest

from pganalytics import demo, store


def test_a_failing_round_is_logged_once_and_retried(monkeypatch, caplog):
    calls = []
    stop = threading.Event()

    def collect_once(dsn, **kw):
        calls.append(dsn)
        if len(calls) >= 5:
            stop.set()
        if len(calls) <= 3:
            raise RuntimeError("function pganalytics.open_staging() does not exist")
        return []

    monkeypatch.setattr(demo, "collect_once", collect_once)
    monkeypatch.setattr(demo, "COLLECT_EVERY_S", 0.01)
    with caplog.at_level(logging.ERROR, logger="pganalytics.demo"):
        thread = threading.Thread(target=demo._collect_loop, args=("dsn", stop))
        thread.start()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(calls) >= 5
    failures = [r for r in caplog.records if "collection failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None


def test_a_taken_port_is_refused_in_one_sentence():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(store.StoreError, match=f"port {port} .* PGANALYTICS_DEMO_PG_PORT"):
            demo._check_port_free(port)
    demo._check_port_free(port)   # free again (SO_REUSEADDR, as the server binds)
