"""The daemon's maintain() schedule: rolls the store up on its own connection, keeps going
through a store outage, and is off when maintain_interval_s = 0 (pg_cron runs it)."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from pganalytics.collector import config as cfg
from pganalytics.collector.batch import SamplesBatch
from pganalytics.collector.daemon import Collector
from pganalytics.collector.maintainer import Maintainer
from pganalytics.collector.sink import Sink


def _load(dsn: str) -> None:
    base = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(second=0, microsecond=0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance('m1', 'service=m1')")
    with psycopg.connect(dsn) as conn:
        sink = Sink(conn)
        with sink.transaction():
            sink.deliver_group([SamplesBatch("m1", "host", base + timedelta(seconds=10 * i),
                                             [("load", {}, "gauge", float(i))]) for i in range(30)])


def _until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_daemon_rolls_the_store_up_by_default(store_dsn, store_conn):
    _load(store_dsn)
    config = cfg.parse({"store": {"dsn": store_dsn}, "collector": {"maintain_interval_s": 0.2}})
    collector = Collector(config)
    collector.maintainer.start()
    try:
        assert _until(lambda: store_conn.execute("SELECT count(*) FROM pganalytics.rollups_1m").fetchone()[0] == 3)
    finally:
        collector.maintainer.stop()
    assert collector.maintainer.runs >= 1
    assert cfg.parse({"store": {"dsn": "x"}}).maintain_interval_s == 60  # on unless turned off


def test_a_store_outage_is_logged_and_retried(caplog):
    m = Maintainer("host=127.0.0.1 port=1 dbname=none connect_timeout=1", 0.1)
    with caplog.at_level(logging.WARNING, logger="pganalytics.collector.maintainer"):
        m.start()
        assert _until(lambda: len([r for r in caplog.records if "maintain() failed" in r.message]) >= 2)
        m.stop()
    assert m.runs == 0 and not m._thread.is_alive()


def test_zero_turns_it_off_and_bad_values_are_refused():
    off = Maintainer("host=127.0.0.1 port=1", 0)
    off.start()
    assert off._thread is None
    with pytest.raises(cfg.ConfigError, match="maintain_interval_s must be a number >= 0"):
        cfg.parse({"store": {"dsn": "x"}, "collector": {"maintain_interval_s": -1}})
