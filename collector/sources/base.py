"""The declarative shape of a sampled source and the one function that reads any of them."""
from __future__ import annotations

from dataclasses import dataclass

Sample = tuple[str, dict, str, float]  # (metric, labels, kind, value)


@dataclass(frozen=True)
class Variant:
    """SQL for servers whose server_version_num is >= min_version (newest variant first)."""
    min_version: int
    sql: str


@dataclass(frozen=True)
class Source:
    name: str                       # also the snapshot ledger's source name
    metric_prefix: str              # metric = f"{metric_prefix}_{column}"
    variants: tuple[Variant, ...]   # newest first; none matching = not on this version
    labels: tuple[str, ...] = ()    # columns that identify a series within the source
    counters: tuple[str, ...] = ()  # cumulative since stats reset
    gauges: tuple[str, ...] = ()    # point-in-time values
    cadence: str = "fast"           # "fast" (default 10 s) or "slow" (default 60 s)
    why_missing: str = ""           # said when no variant fits, e.g. "needs PostgreSQL 16+"
    lists_databases: bool = False   # rows carry (datid, datname): keep pganalytics.databases current

    def columns(self) -> tuple[str, ...]:
        return self.labels + self.counters + self.gauges


def pick_sql(source: Source, server_version_num: int) -> str | None:
    for variant in source.variants:
        if server_version_num >= variant.min_version:
            return variant.sql
    return None


def rows_to_samples(source: Source, rows: list[dict]) -> list[Sample]:
    """Every non-null counter/gauge of every row; a NULL is 'not reported', never zero."""
    out: list[Sample] = []
    for row in rows:
        labels = {k: str(row[k]) for k in source.labels if row.get(k) is not None}
        for kind, names in (("counter", source.counters), ("gauge", source.gauges)):
            for name in names:
                value = row.get(name)
                if value is not None:
                    out.append((f"{source.metric_prefix}_{name}", labels, kind, float(value)))
    return out
