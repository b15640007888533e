"""Sources are data: each module here declares entries (SQL per version range, label columns,
counter and gauge columns); collector/sources/base.py turns any entry's rows into samples.
Adding a metric source is one new entry in one of these lists.
"""
from .base import Source, Variant, pick_sql, rows_to_samples
from .databases import DATABASE_SOURCES
from .instance import INSTANCE_SOURCES
from .relations import RELATION_SOURCES
from .replication import REPLICATION_SOURCES

ALL: tuple[Source, ...] = INSTANCE_SOURCES + DATABASE_SOURCES + REPLICATION_SOURCES + RELATION_SOURCES
BY_NAME = {s.name: s for s in ALL}

__all__ = ["ALL", "BY_NAME", "Source", "Variant", "pick_sql", "rows_to_samples"]
