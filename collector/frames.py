"""Binary COPY rows of sample frames, encoded without a per-value Python call.

A frame is one batch's values in its layout's order. psycopg dumps a list into an array one
element at a time in Python (~1.5 us a value: the collector's hottest loop at fleet scale);
here a frame names its layout by the store's id (learnt once per layout, see
pganalytics.register_layouts()) and its values are one struct.pack into big-endian float8s,
the store's frame format (a C loop, ~10 ns a value). The frame's instance and time are in its
row too, not array parameters of the ingest call (dumped one element at a time as well).
"""
from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from functools import lru_cache

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)


@lru_cache(maxsize=256)
def _values_struct(n: int) -> struct.Struct:
    return struct.Struct(f">{n}d")


def float8_values(values) -> bytes:
    """values (floats; ints are accepted) as sample_frames.vals: 8 big-endian bytes each."""
    return _values_struct(len(values)).pack(*values)


_ROW = struct.Struct(">hiiiiiqiii")  # 5 fields, each its length then its value (vals': length only)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def pg_timestamptz(at: datetime) -> int:
    """A timezone-aware datetime as COPY BINARY's timestamptz: microseconds since 2000-01-01 UTC."""
    if at.tzinfo is None:
        raise ValueError(f"collected_at {at!r} has no time zone: the store would read it in its own")
    return (at - _PG_EPOCH) // _MICROSECOND


def frame_row(batch_no: int, instance_id: int, collected_at: datetime, layout_id: int, values: bytes) -> bytes:
    """One row (batch_no, instance_id, collected_at, layout_id, vals) of sample_frames_stage in
    COPY BINARY."""
    return _ROW.pack(5, 4, batch_no, 4, instance_id, 8, pg_timestamptz(collected_at), 4, layout_id,
                     len(values)) + values
