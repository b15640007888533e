"""Binary COPY rows of sample frames, encoded without a per-value Python call.

A frame is one batch's values in its layout's order. psycopg dumps a list into an array one
element at a time in Python (~1.5 us a value: the collector's hottest loop at fleet scale);
here a frame names its layout by the store's id (learnt once per layout, see
pganalytics.register_layouts()) and its values are one struct.pack into big-endian float8s,
the store's frame format (a C loop, ~10 ns a value).
"""
from __future__ import annotations

import struct
from functools import lru_cache

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)


@lru_cache(maxsize=256)
def _values_struct(n: int) -> struct.Struct:
    return struct.Struct(f">{n}d")


def float8_values(values) -> bytes:
    """values (floats; ints are accepted) as sample_frames.vals: 8 big-endian bytes each."""
    return _values_struct(len(values)).pack(*values)


_ROW = struct.Struct(">hiiiii")  # 3 fields: batch_no and layout_id (length 4 + value), vals' length


def frame_row(batch_no: int, layout_id: int, values: bytes) -> bytes:
    """One row (batch_no, layout_id, vals) of sample_frames_stage in COPY BINARY."""
    return _ROW.pack(3, 4, batch_no, 4, layout_id, len(values)) + values
