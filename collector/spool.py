"""A bounded on-disk FIFO of batches that could not be delivered yet.

A store outage spools whole delivery groups: each `put_many` writes ONE segment file (all its
batches, length-prefixed; temp file, one fsync, rename, directory fsync), so spooling costs
one fsync per group, not per batch, and replay delivers a segment as one group again.
Segments are named by a sequence number and their batch count, so replay after a store
outage - or after a collector restart - goes in the original order, and the count needs no
directory scan. When the spool would exceed max_bytes, the OLDEST segments are dropped and
their batches counted: a bounded spool must give up something, and the most recent data is
the most useful. (Single-batch `*.batch` files of earlier versions are still replayed.)
"""
from __future__ import annotations

import logging
import os
import threading
from collections import deque
from pathlib import Path

from . import codec

log = logging.getLogger("pganalytics.collector.spool")

_LEN = 8  # bytes of each record's big-endian length prefix


def _encode_segment(batches: list) -> bytes:
    parts = []
    for batch in batches:
        data = codec.encode(batch)
        parts += [len(data).to_bytes(_LEN, "big"), data]
    return b"".join(parts)


def _decode_segment(data: bytes) -> list:
    out, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + _LEN], "big")
        pos += _LEN
        if size <= 0 or pos + size > len(data):
            raise ValueError(f"spool segment is truncated at byte {pos}")
        out.append(codec.decode(data[pos:pos + size]))
        pos += size
    return out


def _count(path: Path) -> int:
    """Batches in a spool file: from a segment's name, 1 for a legacy single-batch file."""
    return int(path.stem.split("-")[1]) if path.suffix == ".seg" else 1


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 256 << 20):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)  # batches hold query texts
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        for stale in self.dir.glob("*.tmp"):  # a crash between write and rename
            stale.unlink()
        files = sorted([*self.dir.glob("*.seg"), *self.dir.glob("*.batch")],
                       key=lambda p: int(p.stem.split("-")[0]))
        # (path, batches, bytes), oldest first
        self._files = deque((f, _count(f), f.stat().st_size) for f in files)
        self._seq = int(files[-1].stem.split("-")[0]) + 1 if files else 0
        self._batches = sum(n for _, n, _ in self._files)
        self._bytes = sum(size for _, _, size in self._files)

    def __len__(self) -> int:
        """Batches waiting (not files)."""
        return self._batches

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, batch) -> None:
        self.put_many([batch])

    def put_many(self, batches: list) -> None:
        """Spool batches as one segment, durably, in order after everything spooled before."""
        if not batches:
            return
        data = _encode_segment(batches)
        with self._lock:
            while self._bytes + len(data) > self.max_bytes and self._files:
                oldest, n, size = self._files.popleft()
                oldest.unlink()
                self._bytes -= size
                self._batches -= n
                self.dropped += n
                log.warning("spool full (%d bytes): dropped the oldest %d batch(es) (%s)",
                            self.max_bytes, n, oldest.name)
            path = self.dir / f"{self._seq:016d}-{len(batches)}.seg"
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.rename(path)
            _fsync_dir(self.dir)  # the rename itself must survive a crash too
            self._seq += 1
            self._files.append((path, len(batches), len(data)))
            self._batches += len(batches)
            self._bytes += len(data)

    def reject(self, batch, reason: str) -> Path:
        """Set aside a batch the store refused, with the reason next to it."""
        rejected = self.dir / "rejected"
        rejected.mkdir(exist_ok=True)
        with self._lock:
            path = rejected / f"{self._seq:016d}.batch"
            self._seq += 1
        path.write_bytes(codec.encode(batch))
        path.with_suffix(".reason").write_text(reason + "\n")
        return path

    def oldest(self) -> tuple[Path, list] | None:
        """(path, batches) of the oldest spool file, or None; ack(path) once delivered."""
        with self._lock:
            if not self._files:
                return None
            path = self._files[0][0]
            data = path.read_bytes()
        if path.suffix == ".batch":
            return path, [codec.decode(data)]
        return path, _decode_segment(data)

    def ack(self, path: Path) -> None:
        with self._lock:
            for entry in self._files:  # the oldest, unless the bound dropped it meanwhile
                if entry[0] == path:
                    self._files.remove(entry)
                    path.unlink()
                    self._batches -= entry[1]
                    self._bytes -= entry[2]
                    return


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
