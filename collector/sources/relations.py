"""Table and index health of the database the collector is connected to.

Sizes come from pg_class.relpages (kept by VACUUM/ANALYZE) rather than pg_relation_size():
the latter takes a lock that queues behind an ACCESS EXCLUSIVE holder, and the collector must
never wait on the target's locks. Only the largest relations are read (LIMIT), so a database
with 100k tables does not become 2M series.
"""
from .base import Source, Variant

MAX_RELATIONS = 500

_TABLE_COUNTERS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins",
                   "n_tup_upd", "n_tup_del", "n_tup_hot_upd", "vacuum_count",
                   "autovacuum_count", "analyze_count", "autoanalyze_count")
_TABLE_GAUGES = ("n_live_tup", "n_dead_tup", "n_mod_since_analyze", "n_ins_since_vacuum",
                 "vacuum_age_s", "analyze_age_s", "size_bytes", "frozenxid_age")
_TABLE_SQL = (
    "SELECT s.schemaname, s.relname, {cols}, "
    "extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum)) AS vacuum_age_s, "
    "extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) AS analyze_age_s, "
    "(c.relpages + coalesce(t.relpages, 0))::float8 * current_setting('block_size')::int AS size_bytes, "
    "age(c.relfrozenxid) AS frozenxid_age "
    "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "LEFT JOIN pg_class t ON t.oid = c.reltoastrelid "
    f"ORDER BY c.relpages DESC, s.relid LIMIT {MAX_RELATIONS}")
_VACUUM_TIMES_18 = ("total_vacuum_time", "total_autovacuum_time", "total_analyze_time",
                    "total_autoanalyze_time")


def _cols(names):
    return ", ".join(f"s.{n}" for n in names)


TABLES = Source(
    name="pg_stat_user_tables", metric_prefix="pg_table",
    labels=("schemaname", "relname"),
    counters=_TABLE_COUNTERS + ("n_tup_newpage_upd",) + _VACUUM_TIMES_18,
    gauges=_TABLE_GAUGES,
    cadence="slow",
    variants=(
        Variant(180000, _TABLE_SQL.format(cols=_cols(
            _TABLE_COUNTERS + ("n_tup_newpage_upd",) + _VACUUM_TIMES_18 + _TABLE_GAUGES[:4]))),
        Variant(160000, _TABLE_SQL.format(cols=_cols(
            _TABLE_COUNTERS + ("n_tup_newpage_upd",) + _TABLE_GAUGES[:4]))),
        Variant(150000, _TABLE_SQL.format(cols=_cols(_TABLE_COUNTERS + _TABLE_GAUGES[:4]))),
    ))

INDEXES = Source(
    name="pg_stat_user_indexes", metric_prefix="pg_index",
    labels=("schemaname", "relname", "indexrelname"),
    counters=("idx_scan", "idx_tup_read", "idx_tup_fetch"),
    gauges=("size_bytes", "is_unique"),
    cadence="slow",
    variants=(Variant(150000,
        "SELECT s.schemaname, s.relname, s.indexrelname, s.idx_scan, s.idx_tup_read, "
        "s.idx_tup_fetch, c.relpages::float8 * current_setting('block_size')::int AS size_bytes, "
        "i.indisunique::int AS is_unique "
        "FROM pg_stat_user_indexes s JOIN pg_class c ON c.oid = s.indexrelid "
        "JOIN pg_index i ON i.indexrelid = s.indexrelid "
        f"ORDER BY c.relpages DESC, s.indexrelid LIMIT {MAX_RELATIONS}"),))

RELATION_SOURCES = (TABLES, INDEXES)
