"""pg_stat_database as time-series samples, one series per (metric, database).

Counters are stored as the cumulative values the server reports (kind 'counter'); rates are
computed in SQL, where resets can be seen against stats_reset. Only columns every supported
version has are listed; newer ones are added when the target has them.
"""
from __future__ import annotations

GAUGES = ("numbackends",)
COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
            "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
            "temp_files", "temp_bytes", "deadlocks", "blk_read_time", "blk_write_time",
            "session_time", "active_time", "idle_in_transaction_time", "sessions",
            "sessions_abandoned", "sessions_fatal", "sessions_killed")

SELECT_SQL = (
    "SELECT datid, datname, "
    + ", ".join(f"{c}::float8" for c in GAUGES + COUNTERS)
    + " FROM pg_stat_database WHERE datname IS NOT NULL")


def samples(rows) -> list[tuple[str, dict, str, float]]:
    """(metric, labels, kind, value) for every non-null column of every database row."""
    out = []
    for row in rows:
        datname = row[1]
        for i, name in enumerate(GAUGES + COUNTERS):
            value = row[2 + i]
            if value is not None:
                kind = "gauge" if name in GAUGES else "counter"
                out.append((f"pg_database_{name}", {"datname": datname}, kind, float(value)))
    return out
