"""The collector's TOML configuration, validated with messages that say what to fix.

    [store]
    dsn = "service=pganalytics"        # or PGANALYTICS_DSN; passwords in .pgpass, not here

    [collector]
    interval_s = 10                    # pg_stat_statements, database/WAL/IO stats
    slow_interval_s = 60               # tables, indexes, sizes, settings, plans
    sample_interval_s = 1              # pg_stat_activity wait-event samples (0 = off)
    workers = 8                        # targets read in parallel
    spool_dir = "/var/lib/pganalytics/spool"
    spool_max_mb = 256

    [[targets]]                        # also: every instance registered in the store
    name = "prod-1"
    conn = "service=prod-1"
    interval_s = 10                    # optional per-target cadence
    labels = { env = "prod" }
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class TargetConfig:
    name: str
    conn: str
    interval_s: float
    slow_interval_s: float
    labels: dict = field(default_factory=dict)


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


def _number(table: dict, key: str, default: float, where: str, minimum: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a number >= {minimum}, got {value!r}")
    return float(value)


def parse(data: dict, env_dsn: str | None = None) -> CollectorConfig:
    unknown = set(data) - {"store", "collector", "targets"}
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    dsn = data.get("store", {}).get("dsn") or env_dsn
    if not dsn:
        raise ConfigError("no store: set [store] dsn or PGANALYTICS_DSN")
    c = data.get("collector", {})
    interval = _number(c, "interval_s", 10, "collector", 0.1)
    slow = _number(c, "slow_interval_s", 60, "collector", interval)
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
                                    dict(t.get("labels", {}))))
    return CollectorConfig(
        store_dsn=dsn, interval_s=interval, slow_interval_s=slow,
        sample_interval_s=_number(c, "sample_interval_s", 1, "collector", 0),
        workers=int(_number(c, "workers", 8, "collector", 1)),
        spool_dir=Path(c.get("spool_dir", ".pganalytics-spool")),
        spool_max_bytes=int(_number(c, "spool_max_mb", 256, "collector", 1) * (1 << 20)),
        targets=tuple(targets))


def load(path: str | Path) -> CollectorConfig:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse(data, os.environ.get("PGANALYTICS_DSN"))
