"""A bounded on-disk FIFO of batches that could not be delivered yet.

Files are written atomically (temp file, fsync, rename) and named by a sequence number, so
replay after a store outage - or after a collector restart - goes in the original order.
When the spool would exceed max_bytes, the OLDEST batches are dropped and counted: a bounded
spool must give up something, and the most recent data is the most useful.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from . import codec

log = logging.getLogger("pganalytics.collector.spool")


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
        files = self._files()
        self._seq = int(files[-1].stem) + 1 if files else 0
        self._bytes = sum(f.stat().st_size for f in files)

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob("*.batch"))

    def __len__(self) -> int:
        return len(self._files())

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, batch) -> None:
        data = codec.encode(batch)
        with self._lock:
            while self._bytes + len(data) > self.max_bytes and self._files():
                oldest = self._files()[0]
                self._bytes -= oldest.stat().st_size
                oldest.unlink()
                self.dropped += 1
                log.warning("spool full (%d bytes): dropped the oldest batch %s", self.max_bytes, oldest.name)
            path = self.dir / f"{self._seq:016d}.batch"
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.rename(path)
            self._seq += 1
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

    def oldest(self):
        """(path, batch) of the oldest spooled batch, or None."""
        with self._lock:
            files = self._files()
            if not files:
                return None
            return files[0], codec.decode(files[0].read_bytes())

    def ack(self, path: Path) -> None:
        with self._lock:
            self._bytes -= path.stat().st_size
            path.unlink()
