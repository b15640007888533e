"""Batches as bytes for the on-disk spool: a JSON header line, then the raw COPY payload.

JSON (not pickle) so a spool file is inspectable and loading one cannot run code.
"""
from __future__ import annotations

import json
from datetime import datetime

from .batch import QueryStatsBatch, RowsBatch, SamplesBatch

_TYPES = {"query_stats": QueryStatsBatch, "samples": SamplesBatch, "rows": RowsBatch}


def _kind(batch) -> str:
    for kind, cls in _TYPES.items():
        if isinstance(batch, cls):
            return kind
    raise TypeError(f"not a batch: {type(batch).__name__}")


def _default(value):
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"cannot spool a {type(value).__name__}")


def _hook(obj):
    return datetime.fromisoformat(obj["$dt"]) if set(obj) == {"$dt"} else obj


def encode(batch) -> bytes:
    kind = _kind(batch)
    fields = {k: v for k, v in vars(batch).items() if not k.startswith("_")}  # not caches
    payload = fields.pop("copy_data", b"")
    fields.pop("source", None) if kind == "query_stats" else None
    header = json.dumps({"kind": kind, "fields": fields}, default=_default, separators=(",", ":"))
    return header.encode() + b"\n" + payload


def decode(data: bytes):
    header, _, payload = data.partition(b"\n")
    meta = json.loads(header, object_hook=_hook)
    fields = meta["fields"]
    if meta["kind"] == "query_stats":
        fields["texts"] = [tuple(t) for t in fields.get("texts", [])]
        return QueryStatsBatch(copy_data=payload, **fields)
    if meta["kind"] == "samples":
        fields["samples"] = [tuple(s) for s in fields["samples"]]
        fields["databases"] = [tuple(d) for d in fields.get("databases", [])]
        return SamplesBatch(**fields)
    return RowsBatch(**fields)
