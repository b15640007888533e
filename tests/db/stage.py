"""Feed synthetic data through the real ingest path: pg_stat_statements snapshots, sample
batches through the collector's Sink, and maintain() until it has caught up."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg

from pganalytics.collector.sink import Sink

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(queryid, calls, total, *, mean=None, stddev=0.0, dbid=1, userid=10, query=None, **more):
    row = {"dbid": dbid, "userid": userid, "queryid": queryid, "toplevel": True,
           "calls": calls, "total_exec_time": total,
           "mean_exec_time": total / calls if mean is None and calls else (mean or 0.0),
           "stddev_exec_time": stddev, "query": query or f"SELECT {queryid}"}
    row.update(more)
    return row


def ingest(conn, instance_id: int, collected_at, entries, dealloc=0, stats_reset=None) -> int:
    """Stage entries as the collector does (its texts as the call's arrays) and ingest them."""
    texts = {e["queryid"]: e["query"] for e in entries if e.get("query")}
    with conn.transaction(), conn.cursor() as cur:
        for e in entries:
            row = {k: v for k, v in e.items() if k != "query"}
            cols = ", ".join(row)
            cur.execute(f"INSERT INTO pganalytics.query_stats_stage ({cols}) "
                        f"VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))
        cur.execute("SELECT pganalytics.ingest_query_stats(0, %s, %s, %s, %s, %s, %s)",
                    (instance_id, collected_at, dealloc, stats_reset, list(texts), list(texts.values())))
        return cur.fetchone()[0]


def register(conn, name="db1") -> int:
    return conn.execute("SELECT pganalytics.register_instance(%s, %s)",
                        (name, "host=127.0.0.1 dbname=app")).fetchone()[0]


def deliver_samples(dsn: str, batches: list, group: int = 600) -> None:
    """Deliver sample batches as the collector does, `group` batches a transaction."""
    with psycopg.connect(dsn) as conn:
        sink = Sink(conn)
        for k in range(0, len(batches), group):
            with sink.transaction():
                sink.deliver_group(batches[k:k + group])


def maintain(conn) -> None:
    """maintain() until it is no longer behind (it rolls up at most rollup.max_catchup a call)."""
    for _ in range(20):
        if not conn.execute("SELECT pganalytics.maintain()").fetchone()[0]["behind"]:
            return
    raise AssertionError("maintain() still behind")
