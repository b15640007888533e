"""Per-database statistics of the whole instance (read from any one database)."""
from .base import Source, Variant

_DB_COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
                "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
                "temp_files", "temp_bytes", "deadlocks", "checksum_failures", "blk_read_time",
                "blk_write_time", "session_time", "active_time", "idle_in_transaction_time",
                "sessions", "sessions_abandoned", "sessions_fatal", "sessions_killed")
_DB_SQL = "SELECT datid, datname, numbackends, {cols} FROM pg_stat_database WHERE datname IS NOT NULL"

DATABASE = Source(
    name="pg_stat_database", metric_prefix="pg_database",
    labels=("datname",),
    counters=_DB_COUNTERS + ("parallel_workers_to_launch", "parallel_workers_launched"),
    gauges=("numbackends",),
    lists_databases=True,
    variants=(
        Variant(180000, _DB_SQL.format(cols=", ".join(
            _DB_COUNTERS + ("parallel_workers_to_launch", "parallel_workers_launched")))),
        Variant(150000, _DB_SQL.format(cols=", ".join(_DB_COUNTERS))),
    ))

# Sizes and wraparound horizons. pg_database_size() walks files and takes no lock; it needs
# CONNECT on the database or pg_read_all_stats (part of pg_monitor).
DATABASE_SIZE = Source(
    name="pg_database_size", metric_prefix="pg_database",
    labels=("datname",),
    gauges=("size_bytes", "xid_age", "mxid_age"),
    cadence="slow",
    variants=(Variant(150000,
        "SELECT datname, pg_database_size(oid) AS size_bytes, age(datfrozenxid) AS xid_age, "
        "mxid_age(datminmxid) AS mxid_age FROM pg_database WHERE datallowconn"),))

DATABASE_SOURCES = (DATABASE, DATABASE_SIZE)
