"""Server-wide statistics views: background writer, checkpointer, WAL, I/O.

Where PostgreSQL moved a counter between views, the metric keeps one name across versions
(e.g. 15/16's pg_stat_bgwriter.checkpoints_timed is pg_checkpointer_num_timed, as on 17+),
so a fleet of mixed versions graphs alike.
"""
from .. import OWN_SESSIONS
from .base import Source, Variant

BGWRITER = Source(
    name="pg_stat_bgwriter", metric_prefix="pg_bgwriter",
    counters=("buffers_clean", "maxwritten_clean", "buffers_alloc", "buffers_backend",
              "buffers_backend_fsync"),
    variants=(
        Variant(170000, "SELECT buffers_clean, maxwritten_clean, buffers_alloc FROM pg_stat_bgwriter"),
        Variant(150000, "SELECT buffers_clean, maxwritten_clean, buffers_alloc, buffers_backend, "
                        "buffers_backend_fsync FROM pg_stat_bgwriter"),
    ))

CHECKPOINTER = Source(
    name="pg_stat_checkpointer", metric_prefix="pg_checkpointer",
    counters=("num_timed", "num_requested", "num_done", "write_time", "sync_time",
              "buffers_written", "slru_written", "restartpoints_timed", "restartpoints_req",
              "restartpoints_done"),
    variants=(
        Variant(180000, "SELECT num_timed, num_requested, num_done, write_time, sync_time, "
                        "buffers_written, slru_written, restartpoints_timed, restartpoints_req, "
                        "restartpoints_done FROM pg_stat_checkpointer"),
        Variant(170000, "SELECT num_timed, num_requested, write_time, sync_time, buffers_written, "
                        "restartpoints_timed, restartpoints_req, restartpoints_done "
                        "FROM pg_stat_checkpointer"),
        Variant(150000, "SELECT checkpoints_timed AS num_timed, checkpoints_req AS num_requested, "
                        "checkpoint_write_time AS write_time, checkpoint_sync_time AS sync_time, "
                        "buffers_checkpoint AS buffers_written FROM pg_stat_bgwriter"),
    ))

# 18 moved wal_write/wal_sync and their timings to pg_stat_io (object 'wal').
WAL = Source(
    name="pg_stat_wal", metric_prefix="pg_wal",
    counters=("wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write",
              "wal_sync", "wal_write_time", "wal_sync_time"),
    variants=(
        Variant(180000, "SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full FROM pg_stat_wal"),
        Variant(150000, "SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full, wal_write, "
                        "wal_sync, wal_write_time, wal_sync_time FROM pg_stat_wal"),
    ))

# 16/17 count blocks of op_bytes; 18 counts operations and reports bytes itself. The *_bytes
# metrics mean the same on every version, so prefer them over reads/writes across versions.
_IO_COMMON = ("reads, read_time, writes, write_time, writebacks, writeback_time, extends, "
              "extend_time, hits, evictions, reuses, fsyncs, fsync_time")
IO = Source(
    name="pg_stat_io", metric_prefix="pg_io",
    labels=("backend_type", "object", "context"),
    counters=("reads", "read_time", "writes", "write_time", "writebacks", "writeback_time",
              "extends", "extend_time", "hits", "evictions", "reuses", "fsyncs", "fsync_time",
              "read_bytes", "write_bytes", "extend_bytes"),
    variants=(
        Variant(180000, f"SELECT backend_type, object, context, {_IO_COMMON}, read_bytes, "
                        "write_bytes, extend_bytes FROM pg_stat_io"),
        Variant(160000, f"SELECT backend_type, object, context, {_IO_COMMON}, "
                        "reads * op_bytes AS read_bytes, writes * op_bytes AS write_bytes, "
                        "extends * op_bytes AS extend_bytes FROM pg_stat_io"),
    ),
    why_missing="pg_stat_io needs PostgreSQL 16 or newer")

ARCHIVER = Source(
    name="pg_stat_archiver", metric_prefix="pg_archiver",
    counters=("archived_count", "failed_count"),
    gauges=("last_archived_age_s", "last_failed_age_s"),
    variants=(Variant(150000,
        "SELECT archived_count, failed_count, "
        "extract(epoch FROM now() - last_archived_time) AS last_archived_age_s, "
        "extract(epoch FROM now() - last_failed_time) AS last_failed_age_s FROM pg_stat_archiver"),))

# Client sessions by state, and the oldest transaction and snapshot among them: what holds
# vacuum back (a long or idle-in-transaction session's xmin keeps every newer dead row) and
# how full the connection slots are, at every fast cycle. lock_waits records the sessions
# themselves, but only past its idle threshold (60 s): the horizon shows from the first second.
# client_backends counts every session (a slot is a slot, whoever holds it); the rest leave the
# collector's own sessions out, as the wait-event sampler does: with the store on the monitored
# server, a long delivery or maintain() would read as the workload's long transaction or
# running statement (the root-cause rules' evidence of bloat and of CPU-bound statements).
_OWN = ", ".join(f"'{name}'" for name in OWN_SESSIONS)  # constants: no quote in them
ACTIVITY = Source(
    name="pg_stat_activity", metric_prefix="pg_activity",
    gauges=("client_backends", "active", "idle_in_transaction", "waiting_on_lock",
            "oldest_xact_age_s", "oldest_xmin_age", "oldest_query_age_s"),
    variants=(Variant(150000,
        "SELECT count(*) AS client_backends, count(*) FILTER (WHERE state = 'active' AND NOT own) AS active, "
        "count(*) FILTER (WHERE state LIKE 'idle in transaction%' AND NOT own) AS idle_in_transaction, "
        "count(*) FILTER (WHERE wait_event_type = 'Lock' AND NOT own) AS waiting_on_lock, "
        "extract(epoch FROM now() - min(xact_start) FILTER (WHERE NOT own))::float8 AS oldest_xact_age_s, "
        "max(age(backend_xmin)) FILTER (WHERE NOT own) AS oldest_xmin_age, "
        "extract(epoch FROM now() - min(query_start) FILTER (WHERE state = 'active' AND NOT own))::float8 "
        "AS oldest_query_age_s "
        f"FROM (SELECT *, coalesce(application_name, '') IN ({_OWN}) AS own FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()) a"),))

INSTANCE_SOURCES = (BGWRITER, CHECKPOINTER, WAL, IO, ARCHIVER, ACTIVITY)
