"""Which targets this daemon collects when N daemons share one store: `[collector] shard = "K/N"`.

Every daemon sees the same set of names (its [[targets]] are registered in the store, and each
daemon learns every registered instance), and decides ownership from the name alone, so N
daemons with the same N split that set into N disjoint parts whose union is all of it, with
no coordination between them and the same answer after any restart.

The split is rendezvous (highest-random-weight) hashing: for a target, each shard j = 1..N
gets a weight, a hash of (j, name), and the shard with the highest weight owns it. A shard's
weight for a name does not depend on N, so going from N to N+1 daemons moves only the targets
that the new shard now wins, about 1/(N+1) of them, and none between the old shards (a
`hash(name) % N` split would move about N/(N+1) of them). Compared with a consistent-hash
ring it needs no virtual nodes to be even, and N is small (a daemon handles ~1,000 targets),
so the N hashes per name cost nothing. The weight is blake2b over UTF-8 bytes, never
Python's hash() (salted per process: each daemon would disagree): this function is part of
the contract between daemons, so it must not change between versions - a test pins it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
USAGE = "must look like K/N with 1 <= K <= N (this daemon is shard K of N daemons), e.g. \"1/3\""


def weight(shard: int, name: str) -> int:
    """The shard's 64-bit rendezvous weight for a target name."""
    digest = hashlib.blake2b(f"{shard}/{name}".encode(), digest_size=8,
                             person=b"pga-shard").digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    """The shard (1..count) that collects `name`: the highest weight, the lowest shard on a tie."""
    return max(range(1, count + 1), key=lambda j: (weight(j, name), -j))


@dataclass(frozen=True)
class Shard:
    index: int = 1  # K, 1-based
    count: int = 1  # N

    def owns(self, name: str) -> bool:
        return self.count == 1 or owner(name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


ALL = Shard()


def parse(value: object) -> Shard:
    """"K/N" -> Shard; ValueError saying what to fix, to follow the setting's name
    ("collector.shard must look like K/N ...")."""
    if not isinstance(value, str):
        raise ValueError(f"{USAGE}; got {value!r}, not a string in quotes")
    match = _FORM.fullmatch(value)
    if match is None:
        raise ValueError(f"{USAGE}; got {value!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ValueError(f"{USAGE}; got {value!r}: N (the number of daemons) must be at least 1")
    if not 1 <= index <= count:
        raise ValueError(f"{USAGE}; got {value!r}: K must be between 1 and {count}")
    return Shard(index, count)
