"""Replication seen from both ends, and slots (whose retained WAL can fill a disk)."""
from .base import Source, Variant

# On a standby pg_current_wal_lsn() errors, hence the CASE on pg_is_in_recovery().
_CURRENT_LSN = "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END"

REPLICAS = Source(
    name="pg_stat_replication", metric_prefix="pg_replication",
    labels=("application_name", "client_addr", "state"),
    gauges=("sent_lag_bytes", "replay_lag_bytes", "write_lag_s", "flush_lag_s", "replay_lag_s"),
    variants=(Variant(150000,
        f"SELECT application_name, client_addr::text, state, "
        f"pg_wal_lsn_diff({_CURRENT_LSN}, sent_lsn) AS sent_lag_bytes, "
        f"pg_wal_lsn_diff({_CURRENT_LSN}, replay_lsn) AS replay_lag_bytes, "
        "extract(epoch FROM write_lag) AS write_lag_s, extract(epoch FROM flush_lag) AS flush_lag_s, "
        "extract(epoch FROM replay_lag) AS replay_lag_s FROM pg_stat_replication"),))

RECOVERY = Source(
    name="pg_recovery", metric_prefix="pg_recovery",
    gauges=("in_recovery", "replay_delay_s", "receive_replay_lag_bytes"),
    variants=(Variant(150000,
        "SELECT pg_is_in_recovery()::int AS in_recovery, "
        "CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS replay_delay_s, "
        "CASE WHEN pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) END AS receive_replay_lag_bytes"),))

_SLOT_COMMON = (f"slot_name, slot_type, active::int AS active, "
                f"pg_wal_lsn_diff({_CURRENT_LSN}, restart_lsn) AS retained_bytes, "
                "age(xmin) AS xmin_age, age(catalog_xmin) AS catalog_xmin_age")
SLOTS = Source(
    name="pg_replication_slots", metric_prefix="pg_slot",
    labels=("slot_name", "slot_type"),
    gauges=("active", "retained_bytes", "xmin_age", "catalog_xmin_age", "conflicting",
            "inactive_s"),
    variants=(
        Variant(170000, f"SELECT {_SLOT_COMMON}, conflicting::int AS conflicting, "
                        "extract(epoch FROM now() - inactive_since) AS inactive_s FROM pg_replication_slots"),
        Variant(160000, f"SELECT {_SLOT_COMMON}, conflicting::int AS conflicting FROM pg_replication_slots"),
        Variant(150000, f"SELECT {_SLOT_COMMON} FROM pg_replication_slots"),
    ))

REPLICATION_SOURCES = (REPLICAS, RECOVERY, SLOTS)
