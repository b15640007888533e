"""The collector daemon's own Prometheus /metrics ([collector] metrics_listen): served for real
and scraped, its plan counters move as cycles skip, remember and plan queries."""
from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request

import psycopg
import pytest

from pganalytics import localpg
from pganalytics.collector import config, metrics
from pganalytics.collector.daemon import Collector

from .waiting import wait_for


def test_render_is_prometheus_text_with_escaped_labels():
    registry = metrics.Counters()
    registry.inc("pganalytics_collector_plan_queries_total", {"instance": 'a"b\\c', "outcome": "planned"}, 2)
    registry.inc("pganalytics_collector_plan_queries_total", {"outcome": "planned", "instance": 'a"b\\c'})
    text = registry.render()
    assert "# TYPE pganalytics_collector_plan_queries_total counter" in text
    assert 'pganalytics_collector_plan_queries_total{instance="a\\"b\\\\c",outcome="planned"} 3\n' in text
    assert registry.value("pganalytics_collector_plan_queries_total", instance='a"b\\c', outcome="planned") == 3


@pytest.mark.parametrize("value, address", [
    ("127.0.0.1:9188", ("127.0.0.1", 9188)), (":9188", ("127.0.0.1", 9188)), ("[::1]:9188", ("::1", 9188)),
])
def test_listen_addresses(value, address):
    assert metrics.parse_listen(value) == address


@pytest.mark.parametrize("value", ["9188", "host:", "host:http", 9188, "h:70000"])
def test_bad_listen_address_is_refused_by_the_config(value):
    with pytest.raises(config.ConfigError, match="metrics_listen must be"):
        config.parse({"store": {"dsn": "x"}, "collector": {"metrics_listen": value}})


def _scrape(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.read().decode()
    found = {}
    for name, labels, value in re.findall(r'^(\w+)\{([^}]*)\} (\S+)$', body, re.M):
        if 'instance="m1"' in labels:
            found[(name, re.sub(r'instance="m1",?', "", labels))] = float(value)
    return found


def test_daemon_serves_its_counters_and_they_move(store_dsn, databases, tmp_path):
    dsn = databases.create(prefix="metrics_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE m (k int)")
        conn.execute("CREATE FUNCTION count_m(p_k int) RETURNS bigint LANGUAGE plpgsql AS "
                     "$$ BEGIN RETURN (SELECT count(*) FROM m WHERE k = p_k); END $$")
        for i in range(5):
            conn.execute("SELECT count_m(%s)", (i,))
            conn.execute("SELECT count(*) FROM m WHERE k = %s", (i,))
    port = localpg.free_port()
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"interval_s": 0.3, "slow_interval_s": 0.3, "sample_interval_s": 0,
                                       "spool_dir": str(tmp_path), "metrics_listen": f"127.0.0.1:{port}"},
                         "targets": [{"name": "m1", "conn": dsn}]})
    collector = Collector(conf)
    runner = threading.Thread(target=collector.run)
    runner.start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        planned = ("pganalytics_collector_plan_queries_total", 'outcome="planned"')
        remembered = ("pganalytics_collector_plan_queries_total", 'outcome="remembered"')
        wait_for(lambda: collector.metrics_server is not None and _scrape(url).get(planned, 0) >= 1,
                 what="a planned query counted")
        first = _scrape(url)
        assert first.get(("pganalytics_collector_plan_queries_total", 'outcome="not_toplevel"'), 0) >= 1
        wait_for(lambda: _scrape(url).get(planned, 0) > first[planned], what="the counter moving")
        later = _scrape(url)
        assert later.get(remembered, 0) >= first.get(remembered, 0)
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert exc.value.code == 404
    finally:
        collector.request_stop()
        runner.join(30)
    assert not runner.is_alive()
    with pytest.raises(OSError):  # stopped with the daemon
        urllib.request.urlopen(url, timeout=2)


def test_no_endpoint_unless_configured(store_dsn, tmp_path):
    conf = config.parse({"store": {"dsn": store_dsn}, "collector": {"spool_dir": str(tmp_path)}})
    collector = Collector(conf)
    runner = threading.Thread(target=collector.run)
    runner.start()
    try:
        wait_for(lambda: collector.delivery.delivered >= 0, what="start")
        assert collector.metrics_server is None and conf.metrics_listen is None
    finally:
        collector.request_stop()
        runner.join(30)
