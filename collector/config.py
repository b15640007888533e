"""The collector's TOML configuration, validated with messages that say what to fix.

    [store]
    dsn = "service=pganalytics"        # or PGANALYTICS_DSN; passwords in .pgpass, not here

    [collector]
    interval_s = 10                    # pg_stat_statements, database/WAL/IO stats
    slow_interval_s = 60               # tables, indexes, sizes, settings, plans
    sample_interval_s = 1              # pg_stat_activity wait-event samples (0 = off)
    idle_xact_threshold_s = 60         # sessions idle in a transaction this long are recorded
    workers = 8                        # targets read in parallel
    spool_dir = "/var/lib/pganalytics/spool"
    spool_max_mb = 256
    metrics_listen = "127.0.0.1:9188"  # Prometheus /metrics of the collector itself (off if unset)
    maintain_interval_s = 60           # calls pganalytics.maintain() (0 = off: pg_cron runs it)
    shard = "1/3"                      # this daemon collects shard 1 of 3 daemons sharing the store
                                       #   (default "1/1": every target; PGANALYTICS_SHARD wins)
    exclude_databases = []             # default for every target, also those of `targets add`
    exclude_roles = []

    [[targets]]                        # also: every instance registered in the store
    name = "prod-1"
    conn = "service=prod-1"
    interval_s = 10                    # optional per-target cadence
    labels = { env = "prod" }
    exclude_databases = ["pganalytics"]  # kept out of its query statistics and plans
    exclude_roles = []                   #   (each default: [collector]'s)
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import metrics
from . import shard as sharding
from .pgss import NO_FILTER, QueryFilter


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class TargetConfig:
    name: str
    conn: str
    interval_s: float
    slow_interval_s: float
    labels: dict = field(default_factory=dict)
    query_filter: QueryFilter | None = None  # None (a target of `targets add`): the default


@dataclass(frozen=True)
class CollectorConfig:
    store_dsn: str
    interval_s: float = 10
    slow_interval_s: float = 60
    sample_interval_s: float = 1
    workers: int = 8
    spool_dir: Path = Path(".pganalytics-spool")
    spool_max_bytes: int = 256 << 20
    targets: tuple[TargetConfig, ...] = ()
    metrics_listen: str | None = None
    query_filter: QueryFilter = NO_FILTER
    shard: sharding.Shard = sharding.ALL
    maintain_interval_s: float = 60
    idle_xact_threshold_s: float = 60

    def filter_for(self, name: str) -> QueryFilter:
        """A configured target's own exclusions, else the default (targets of `targets add`)."""
        own = next((t.query_filter for t in self.targets if t.name == name), None)
        return own if own is not None else self.query_filter


def _number(table: dict, key: str, default: float, where: str, minimum: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _names(table: dict, key: str, where: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key} must be a list of names, got {value!r}")
    return tuple(value)


def _filter(table: dict, where: str, default: QueryFilter) -> QueryFilter:
    """Each list not given is the default's (a target inherits [collector]'s)."""
    databases, roles = _names(table, "exclude_databases", where), _names(table, "exclude_roles", where)
    return QueryFilter(default.databases if databases is None else databases,
                       default.roles if roles is None else roles)


def _listen(c: dict) -> str | None:
    value = c.get("metrics_listen")
    if value is None:
        return None
    try:
        metrics.parse_listen(value if isinstance(value, str) else "")
    except ValueError:
        raise ConfigError(f"collector.metrics_listen must be \"HOST:PORT\" (e.g. \"127.0.0.1:9188\"), "
                          f"got {value!r}") from None
    return value


def _shard(c: dict, env_shard: str | None) -> sharding.Shard:
    """PGANALYTICS_SHARD, when set, wins over the file: N daemons can share one config file,
    each started with its own shard (e.g. from a StatefulSet ordinal)."""
    where, value = ("PGANALYTICS_SHARD", env_shard) if env_shard else ("collector.shard", c.get("shard"))
    if value is None:
        return sharding.ALL
    try:
        return sharding.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None


def parse(data: dict, env_dsn: str | None = None, env_shard: str | None = None) -> CollectorConfig:
    unknown = set(data) - {"store", "collector", "targets"}
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    dsn = data.get("store", {}).get("dsn") or env_dsn
    if not dsn:
        raise ConfigError("no store: set [store] dsn or PGANALYTICS_DSN")
    c = data.get("collector", {})
    interval = _number(c, "interval_s", 10, "collector", 0.1)
    slow = _number(c, "slow_interval_s", 60, "collector", interval)
    default_filter = _filter(c, "collector", NO_FILTER)
    targets, seen = [], set()
    for i, t in enumerate(data.get("targets", [])):
        where = f"targets[{i}]"
        if not isinstance(t.get("name"), str) or not t["name"]:
            raise ConfigError(f"{where}.name is required")
        if not isinstance(t.get("conn"), str) or not t["conn"]:
            raise ConfigError(f"{where}.conn is required (a DSN without password, or a service name)")
        if t["name"] in seen:
            raise ConfigError(f"target {t['name']!r} is listed twice")
        seen.add(t["name"])
        t_interval = _number(t, "interval_s", interval, where, 0.1)
        targets.append(TargetConfig(t["name"], t["conn"], t_interval,
                                    _number(t, "slow_interval_s", max(slow, t_interval), where, t_interval),
                                    dict(t.get("labels", {})), _filter(t, where, default_filter)))
    return CollectorConfig(
        store_dsn=dsn, interval_s=interval, slow_interval_s=slow,
        sample_interval_s=_number(c, "sample_interval_s", 1, "collector", 0),
        workers=int(_number(c, "workers", 8, "collector", 1)),
        maintain_interval_s=_number(c, "maintain_interval_s", 60, "collector", 0),
        idle_xact_threshold_s=_number(c, "idle_xact_threshold_s", 60, "collector", 0),
        spool_dir=Path(c.get("spool_dir", ".pganalytics-spool")),
        spool_max_bytes=int(_number(c, "spool_max_mb", 256, "collector", 1) * (1 << 20)),
        targets=tuple(targets), metrics_listen=_listen(c),
        query_filter=default_filter, shard=_shard(c, env_shard))


def load(path: str | Path) -> CollectorConfig:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse(data, os.environ.get("PGANALYTICS_DSN"), os.environ.get("PGANALYTICS_SHARD"))
