"""Root-cause rules: from diagnosis_inputs() (the evidence of a window and of the baseline
just before it) to ranked causes, each with a confidence, the evidence it rests on, what to do,
and the queries and objects involved.

How the rules think, so their answers can be checked by a DBA:
  * A symptom is not a cause. CPU, I/O and lock waits rise for many reasons; each cause has a
    rule scoring its *specific* evidence (an index that was dropped, a setting that changed, a
    session holding a snapshot, a plan that changed shape...), and generic ones (CPU, cache)
    are discounted when a more specific cause explains the same change: a missing index also
    burns CPU and reads, a plan regression also reads more.
  * Everything is a change against the baseline, except the few levels that are bad whatever
    came before (connections near the limit, replication far behind). The baseline is the
    time just before the window; where a trained anomaly model has learnt an hour-of-week
    profile of a series, the baseline is moved by what the window's hours usually add over
    the baseline's (a nightly batch at 02:00 is no CPU saturation at 02:00).
  * Confidence is a product of ramps sat(x, lo, hi) (0 below lo, 1 above hi) over the
    evidence's size: a rule fires by degrees, and a cause below `min_confidence` (0.2) is
    not reported. No evidence, no cause: `causes` is empty rather than a guess.
Pure Python over dicts (numpy not needed): diagnose(inputs, options) -> dict.
"""
from __future__ import annotations

import base64
import math
import re
import struct
from datetime import datetime
from typing import Any

CAUSES = ("missing_index", "stale_statistics", "suboptimal_plan", "plan_regression",
          "lock_contention", "work_mem_spill", "io_cache_eviction", "cpu_saturation",
          "memory_pressure", "connection_saturation", "bloat_long_transaction",
          "replication_lag", "checkpoint_pressure")

DEFAULTS: dict[str, Any] = {"min_confidence": 0.2}
# Resource causes that the specific ones also produce, most generic last (ties are ranked so).
GENERIC = ("io_cache_eviction", "memory_pressure", "cpu_saturation")

# A rule's answer: (confidence, evidence, recommendations, queryids, objects)
Finding = tuple[float, list[str], list[str], list, list]
NOTHING: Finding = (0.0, [], [], [], [])

# Week profiles (train_anomaly_model()): slot k holds hour k after epoch + WEEK_SHIFT_S, as in
# plpython/anomaly.py (a separate module in the server: the constant is repeated, a test checks).
WEEK_SHIFT_S = 3 * 86400
# Learnt profiles of ratios whose baseline mean they move (anomaly key -> metric); memory use,
# connection use, lock waiters and statements' latency (LATENCY_KEY + queryid) are moved where
# they are derived.
PROFILED_RATIOS = {"high_cpu_usage/": "host_cpu_busy_ratio", "high_io_wait/": "host_cpu_iowait_ratio"}
LATENCY_KEY = "execution_time_spike/queryid:"

# Settings that steer the planner's choice of plan (a change is a plan's specific evidence).
PLANNER_SETTINGS = re.compile(
    r"^(enable_\w+|random_page_cost|seq_page_cost|cpu_tuple_cost|cpu_index_tuple_cost|"
    r"cpu_operator_cost|effective_cache_size|default_statistics_target|plan_cache_mode|"
    r"join_collapse_limit|from_collapse_limit|geqo\w*|jit\w*|parallel_\w+_cost|"
    r"max_parallel_workers_per_gather)$")


def sat(x, lo: float, hi: float) -> float:
    """0 at or below lo, 1 at or above hi, linear between; None or NaN -> 0."""
    if x is None or isinstance(x, float) and math.isnan(x):
        return 0.0
    if hi == lo:
        return 1.0 if x >= hi else 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def _f(x, default: float = 0.0) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(v) else v


def _share(x: float) -> float:
    """A ratio kept in [0, 1] (a baseline moved by a learnt profile, a confidence)."""
    return min(max(x, 0.0), 1.0)


def _epoch(iso) -> float:
    """Epoch seconds of a timestamptz as JSON gives it (ISO 8601 with an offset)."""
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


def _profile_mean(offsets, start: float, end: float) -> float | None:
    """Mean of a week profile over [start, end), each hour-of-week slot weighted by its overlap;
    None when no covered slot was fitted (NaN) or the span is empty."""
    total = weight = 0.0
    t, end = start, min(end, start + 7 * 86400)  # a week covers every slot: enough
    while t < end:
        hour_end = min((math.floor((t + WEEK_SHIFT_S) / 3600.0) + 1) * 3600.0 - WEEK_SHIFT_S, end)
        value = offsets[int(math.floor((t + WEEK_SHIFT_S) / 3600.0)) % 168]
        if not math.isnan(value):
            total += value * (hour_end - t)
            weight += hour_end - t
        t = hour_end
    return total / weight if weight > 0 else None


def _ratio(a: float, b: float, floor: float) -> float:
    """a / b with b floored: a change from nothing is large but finite."""
    return a / max(b, floor)


def _setting_bytes(value, unit) -> float | None:
    """A memory setting in bytes (pg_settings' value in its unit: kB or 8kB)."""
    if value is None:
        return None
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$", str(value))
    if not m:
        return None
    n, suffix = float(m.group(1)), (m.group(2) or unit or "").lower()
    scale = {"": 1, "b": 1, "kb": 1024, "8kb": 8192, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
    return n * scale.get(suffix, 1)


class Query:
    """One statement in both periods: per-call work and its time per second of each."""

    def __init__(self, q: dict, sw: float, sb: float):
        self.queryid = q.get("queryid")
        self.text = q.get("query") or ""
        w, b = q.get("w") or {}, q.get("b") or {}
        self.calls_w, self.calls_b = _f(w.get("calls")), _f(b.get("calls"))
        self.time_w, self.time_b = _f(w.get("time_ms")), _f(b.get("time_ms"))
        self.rate_w = self.time_w / sw
        self.rate_b = self.time_b / sb if sb > 0 else 0.0
        self.delta = self.rate_w - self.rate_b  # ms of execution per second: added busy sessions x 1000

        def per_call(d: dict, key: str, calls: float) -> float | None:
            return _f(d.get(key)) / calls if calls > 0 else None

        blocks = {k: _f(w.get("hit")) + _f(w.get("read")) for k in ("w",)}
        self.blks_w = blocks["w"] / self.calls_w if self.calls_w else None
        self.blks_b = (_f(b.get("hit")) + _f(b.get("read"))) / self.calls_b if self.calls_b else None
        self.read_w, self.read_b = _f(w.get("read")), _f(b.get("read"))
        self.hit_w, self.hit_b = _f(w.get("hit")), _f(b.get("hit"))
        self.temp_w = per_call(w, "temp", self.calls_w)
        self.temp_b = per_call(b, "temp", self.calls_b)
        self.temp_total_w, self.temp_total_b = _f(w.get("temp")), _f(b.get("temp"))
        self.rows_w = per_call(w, "rows", self.calls_w)
        self.rows_b = per_call(b, "rows", self.calls_b)
        self.mean_w = self.time_w / self.calls_w if self.calls_w else None
        self.mean_b = self.time_b / self.calls_b if self.calls_b else None
        self.seen_before = self.calls_b >= 3

    def work_ratio(self) -> float:
        """Shared blocks per call, window over baseline (1 when unknown)."""
        if not self.seen_before or self.blks_w is None or self.blks_b is None:
            return 1.0
        return _ratio(self.blks_w, self.blks_b, 1.0)

    def rows_ratio(self) -> float:
        if not self.seen_before or self.rows_w is None or self.rows_b is None:
            return 1.0
        return max(_ratio(self.rows_w, self.rows_b, 0.5), _ratio(self.rows_b, max(self.rows_w, 0.5), 0.5))

    def latency_ratio(self) -> float:
        if not self.seen_before or self.mean_w is None or self.mean_b is None:
            return 1.0
        return _ratio(self.mean_w, self.mean_b, 0.01)

    def read_share(self, period: str) -> float | None:
        hit, read = (self.hit_w, self.read_w) if period == "w" else (self.hit_b, self.read_b)
        return read / (hit + read) if hit + read > 0 else None

    def brief(self) -> str:
        text = " ".join(self.text.split())
        return text[:120] + ("..." if len(text) > 120 else "")

    def mentions(self, relname: str) -> bool:
        return bool(relname) and re.search(r"\b" + re.escape(relname) + r"\b", self.text, re.I) is not None


class Evidence:
    """The inputs, read once into what the rules ask about."""

    def __init__(self, inputs: dict):
        sec = inputs.get("seconds") or {}
        self.sw = max(_f(sec.get("w")), 1.0)
        self.sb = _f(sec.get("b"))
        self.has_baseline = self.sb >= 10.0
        self.metrics: dict = inputs.get("metrics") or {}
        rows = self.raw_queries = inputs.get("queries") or []
        self.queries = [Query(q, self.sw, self.sb) for q in rows if q.get("queryid") != "all"]
        total: dict = next((q for q in rows if q.get("queryid") == "all"), {"w": {}, "b": {}})
        self.total = Query(total, self.sw, self.sb)
        # contributors: what added the most execution time per second, biggest first
        self.contributors = sorted((q for q in self.queries if q.delta > 0), key=lambda q: -q.delta)
        self.added = sum(q.delta for q in self.contributors)
        self.tables = inputs.get("tables") or []
        self.indexes = inputs.get("indexes") or []
        self.plans = {p.get("queryid"): p for p in inputs.get("plans") or []}
        self.advice = inputs.get("advice") or []
        settings = inputs.get("settings") or {}
        self.changes = settings.get("changes") or []
        self.current = settings.get("current") or {}
        self.dropped = inputs.get("dropped_indexes") or []
        self.locks = inputs.get("locks") or {}
        self.blockers = inputs.get("blockers") or []
        self.idle = inputs.get("idle_in_transaction") or []
        self._waits(inputs)
        self._profile(inputs)

    def _profile(self, inputs: dict) -> None:
        """Expected change from the baseline's hours to the window's, per learnt profile: the
        window's mean profile offset minus the baseline's, each hour weighted by its overlap."""
        self.expected: dict[str, float] = {}
        prof = inputs.get("profile") or {}
        self.profile_version = prof.get("version")
        rows = prof.get("rows") or {}
        try:
            w_from, w_to = _epoch(inputs.get("from")), _epoch(inputs.get("to"))
            b_from = _epoch(inputs.get("baseline_from"))
        except (TypeError, ValueError):
            return
        for key, packed in sorted(rows.items()):
            try:
                offsets = struct.unpack(">168d", base64.b64decode(str(packed), validate=True))
            except (ValueError, struct.error) as exc:  # binascii.Error is a ValueError
                raise ValueError(f"profile row {key!r} must be 168 big-endian float8s in base64 ({exc})") from None
            pw, pb = _profile_mean(offsets, w_from, w_to), _profile_mean(offsets, b_from, w_from)
            if pw is not None and pb is not None and pw != pb:
                self.expected[key] = pw - pb
        for q in self.queries:
            shift = self.expected.get(f"{LATENCY_KEY}{q.queryid}")
            if shift is not None and q.mean_b is not None:
                q.mean_b = max(q.mean_b + shift, 0.0)
        for key, name in PROFILED_RATIOS.items():
            shift = self.expected.get(key)
            series = self.metrics.get(name)
            if shift is not None and series and series.get("b_mean") is not None:
                self.metrics[name] = dict(series, b_mean=_share(_f(series["b_mean"]) + shift))

    def shift(self, key: str) -> float:
        """What the learnt profile expects the window to add over the baseline (0 without one)."""
        return self.expected.get(key, 0.0)

    def expected_note(self, key: str, scale: float = 1.0, unit: str = "") -> str:
        shift = self.expected.get(key)
        if shift is None or abs(shift * scale) < 1e-9:
            return ""
        return (f" (the baseline moved by {shift * scale:+,.2f}{unit}: the window's hours usually differ so, "
                f"from the learnt profile of model version {self.profile_version})")

    def _waits(self, inputs: dict) -> None:
        ticks = inputs.get("ticks") or {}
        # A drain that saw no session stores no row, so its ticks are not in the store: dividing
        # by the stored ticks alone would be the load *when something ran* (two samples in the one
        # busy drain of a quiet minute read as two sessions). The period's seconds at the rate the
        # stored drains sampled (ticks skipped while a cycle held the connection lower it) count
        # the quiet drains too; the sampler's nominal one a second when no drain was stored.
        tick_s = _f(ticks.get("w_interval_s")) + _f(ticks.get("b_interval_s"))
        stored = _f(ticks.get("w")) + _f(ticks.get("b"))
        rate = stored / tick_s if tick_s > 0 and stored > 0 else 1.0
        tw = max(_f(ticks.get("w")), self.sw * rate, 1.0)
        tb = max(_f(ticks.get("b")), self.sb * rate, 1.0)
        self.aas: dict[str, dict[str, float]] = {"w": {}, "b": {}}
        self.events: dict[str, dict[str, float]] = {"w": {}, "b": {}}
        for row in inputs.get("waits") or []:
            if row.get("state") != "active":
                continue  # idle in transaction (ClientRead) is no work waiting
            kind = row.get("type") or "CPU"
            event = f"{kind}:{row.get('event')}"
            for p, t in (("w", tw), ("b", tb)):
                v = _f(row.get(p)) / t
                self.aas[p][kind] = self.aas[p].get(kind, 0.0) + v
                self.events[p][event] = self.events[p].get(event, 0.0) + v

    # -- accessors -------------------------------------------------------------------------
    def m(self, name: str, key: str) -> float | None:
        v = (self.metrics.get(name) or {}).get(key)
        return None if v is None else _f(v)

    def active(self, p: str) -> float:
        return sum(self.aas[p].values())

    def share(self, kind: str, p: str) -> float:
        total = self.active(p)
        return self.aas[p].get(kind, 0.0) / total if total > 0 else 0.0

    def event(self, name: str, p: str) -> float:
        return self.events[p].get(name, 0.0)

    def table(self, relname: str) -> dict | None:
        return next((t for t in self.tables if t.get("relname") == relname), None)

    def tables_of(self, q: Query) -> list[str]:
        """Relations the query reads: its plans' scans, else names its text mentions."""
        plan = self.plans.get(q.queryid) or {}
        rels = {s.get("relation") for k in ("w_scans", "b_scans") for s in plan.get(k) or [] if s.get("relation")}
        if not rels:
            rels = {t.get("relname") for t in self.tables if q.mentions(t.get("relname") or "")}
        return sorted(r for r in rels if r)

    def setting_changes(self, pattern) -> list[dict]:
        """Changes of the settings whose name (without @role/database) matches. A setting put
        back to its default is left out: undoing a change is not what breaks things."""
        return [c for c in self.changes if c.get("setting") is not None
                and pattern(str(c.get("name") or "").split("@")[0])]

    def usable_connections(self) -> float:
        return (_f(self.current.get("max_connections"), 100.0)
                - _f(self.current.get("superuser_reserved_connections"), 3.0)
                - _f(self.current.get("reserved_connections"), 0.0))

    def hit_ratio(self, p: str) -> float | None:
        hit, read = self.m("pg_database_blks_hit", f"{p}_mean"), self.m("pg_database_blks_read", f"{p}_mean")
        if hit is None or read is None or hit + read < 10:
            return None
        return hit / (hit + read)

    def mem_used(self, p: str) -> float | None:
        avail, total = self.m("host_memory_available_bytes", f"{p}_mean"), self.m("host_memory_total_bytes", f"{p}_mean")
        if avail is None or not total:
            return None
        used = 1.0 - avail / total
        return _share(used + self.shift("memory_pressure/")) if p == "b" else used


# -- the rules: each returns (confidence, evidence, recommendations, queryids, objects) -----------

def _fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _mb(x: float) -> str:
    return f"{x / (1 << 20):,.1f} MB"


def _plan_change(ev: Evidence, q: Query) -> dict | None:
    """The query's plan shape changed between the periods (hashes seen before vs in the window)."""
    plan = ev.plans.get(q.queryid)
    if not plan or not plan.get("b_hashes") or not plan.get("w_hashes"):
        return None
    new = set(plan["w_hashes"]) - set(plan["b_hashes"])
    return plan if new else None


def _dropped_for(ev: Evidence, q: Query) -> list[dict]:
    """Indexes gone between the periods on a relation the query reads, or that its earlier
    plan used: from index_definitions' history, else from an index's statistics series
    stopping (seen in the baseline, not in the window)."""
    rels = set(ev.tables_of(q))
    plan = ev.plans.get(q.queryid) or {}
    used = {s.get("index") for s in plan.get("b_scans") or [] if s.get("index")}
    out = [d for d in ev.dropped if d.get("relname") in rels or d.get("indexrelname") in used]
    names = {d.get("indexrelname") for d in out}
    for ix in ev.indexes:
        if _f(ix.get("b_n")) > 0 and _f(ix.get("w_n")) == 0 and ix.get("indexrelname") not in names \
                and (ix.get("relname") in rels or ix.get("indexrelname") in used):
            out.append({"relname": ix.get("relname"), "indexrelname": ix.get("indexrelname"),
                        "schemaname": ix.get("schemaname"), "from_statistics": True})
    return out


def _seq_scans(ev: Evidence, q: Query) -> list[dict]:
    plan = ev.plans.get(q.queryid) or {}
    return [s for s in plan.get("w_scans") or [] if "Seq Scan" in str(s.get("node"))]


def _advice_for(ev: Evidence, q: Query) -> list[dict]:
    out = []
    for a in ev.advice:
        if a.get("queryid") != q.queryid:
            continue
        before, after = _f(a.get("cost_before")), a.get("cost_after")
        gain = (before - _f(after)) / before if after is not None and before > 0 else None
        out.append({**a, "gain": gain})
    return sorted(out, key=lambda a: -(a["gain"] or 0))


def _heavier(ev: Evidence) -> list[Query]:
    """Contributors whose work per call grew (blocks x3+) or latency x2+ while their calls did
    not explode: the query itself got worse, not just busier."""
    out = []
    for q in ev.contributors[:5]:
        share = q.delta / ev.added if ev.added > 0 else 0
        if share >= 0.1 and q.seen_before and (q.work_ratio() >= 3 or q.latency_ratio() >= 2):
            out.append(q)
    return out


def rule_missing_index(ev: Evidence):
    best: Finding = NOTHING
    for q in _heavier(ev):
        dropped = _dropped_for(ev, q)
        advice = [a for a in _advice_for(ev, q) if a["gain"] is None or a["gain"] > 0.3]
        scans = _seq_scans(ev, q)
        strength = sat(q.work_ratio(), 2, 8) * 0.5 + sat(q.latency_ratio(), 1.5, 4) * 0.5
        if dropped:
            base = 0.95
        elif advice and advice[0]["gain"] is not None:
            base = 0.55 + 0.3 * sat(advice[0]["gain"], 0.3, 0.9)
        elif scans and q.rows_ratio() < 3:
            base = 0.35
        else:
            continue
        # rows per call moving with the work points at the data (stale statistics), not the index
        conf = base * strength * (1.0 if q.rows_ratio() < 3 else 0.4)
        if conf <= best[0]:
            continue
        evidence = [f"query {q.queryid} now reads {_fmt(q.blks_w or 0, 0)} blocks a call against "
                    f"{_fmt(q.blks_b or 0, 0)} before (x{_fmt(q.work_ratio())}), {_fmt(q.mean_w or 0, 2)} ms "
                    f"a call against {_fmt(q.mean_b or 0, 2)} ms; it added {_fmt(q.delta / 1000, 2)} busy sessions"]
        recs, objects = [], []
        for d in dropped:
            evidence.append(f"index {d.get('indexrelname')} on {d.get('relname')} disappeared"
                            + (f" at {d.get('dropped_at')}" if d.get("dropped_at") else " (its statistics stopped)"))
            objects.append(d.get("indexrelname"))
            if d.get("indexdef"):
                recs.append(re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX CONCURRENTLY ", d["indexdef"]))
        for s in scans[:2]:
            evidence.append(f"its plan scans {s.get('relation')} sequentially"
                            + (f" with filter {s.get('filter')}" if s.get("filter") else ""))
            objects.append(s.get("relation"))
        for a in advice[:2]:
            if a["gain"] is not None:
                evidence.append(f"a hypothetical index ({a.get('verified_with')}) on {a.get('relname')} "
                                f"({', '.join(a.get('columns') or [])}) lowers the plan's cost from "
                                f"{_fmt(_f(a.get('cost_before')))} to {_fmt(_f(a.get('cost_after')))} "
                                f"({_fmt(100 * a['gain'], 0)} % less)")
            recs.append(str(a.get("statement") or ""))
        if not recs:
            recs.append("create an index on the filtered columns of " + ", ".join(ev.tables_of(q) or ["its table"]))
        best = (conf, evidence, [r for r in recs if r], [q.queryid], [o for o in objects if o])
    return best


def rule_stale_statistics(ev: Evidence):
    best: Finding = NOTHING
    for q in _heavier(ev):
        for rel in ev.tables_of(q):
            t = ev.table(rel)
            if not t:
                continue
            tm = t.get("metrics") or {}
            mods = _f((tm.get("pg_table_n_mod_since_analyze") or {}).get("w_max"))
            live = _f((tm.get("pg_table_n_live_tup") or {}).get("w_max"))
            frac = mods / max(live, 1.0)
            # autovacuum analyzes past 10 % (+50 rows) of a table by default: far past it, stale
            stale = sat(frac, 0.1, 0.4) * sat(mods, 500, 5000)
            if stale <= 0:
                continue
            plan = ev.plans.get(q.queryid) or {}
            est = _f(plan.get("w_rows") or plan.get("b_rows"), -1)
            actual = q.rows_w or 0.0
            mis = max(actual / max(est, 1.0), max(est, 1.0) / max(actual, 1.0)) if est >= 0 and q.calls_w else 1.0
            shift = max(sat(q.rows_ratio(), 2, 10), sat(mis, 5, 50))
            conf = 0.95 * stale * (0.4 + 0.6 * shift) * sat(q.latency_ratio() * q.work_ratio(), 1.5, 6)
            if _dropped_for(ev, q):
                conf *= 0.3  # an index gone explains the slowdown better
            if conf > best[0]:
                evidence = [f"{_fmt(mods, 0)} rows of {rel} changed since it was last analyzed "
                            f"({_fmt(100 * frac, 0)} % of its {_fmt(live, 0)} live rows)",
                            f"query {q.queryid} returns {_fmt(q.rows_w or 0)} rows a call against "
                            f"{_fmt(q.rows_b or 0)} before and reads x{_fmt(q.work_ratio())} the blocks"]
                if est >= 0:
                    evidence.append(f"its plan expects {_fmt(est, 0)} rows (x{_fmt(mis)} off)")
                age = (tm.get("pg_table_analyze_age_s") or {}).get("w_max")
                if age is not None:
                    evidence.append(f"{rel} was last analyzed {_fmt(_f(age) / 60)} minutes ago")
                best = (conf, evidence, [f"ANALYZE {rel};",
                                         f"check autovacuum on {rel} (autovacuum_enabled, analyze scale factor)"],
                        [q.queryid], [rel])
    return best


def _planner_changes(ev: Evidence) -> tuple[list[dict], list[dict]]:
    """Planner settings changed in the range: (for a role or database only, server-wide)."""
    changed = ev.setting_changes(lambda n: PLANNER_SETTINGS.match(n) is not None)
    scoped = [c for c in changed if "@" in str(c.get("name"))]
    return scoped, [c for c in changed if "@" not in str(c.get("name"))]


def _describe_change(c: dict) -> str:
    return (f"{c.get('name')} changed from {c.get('before') if c.get('before') is not None else 'default'} "
            f"to {c.get('setting') if c.get('setting') is not None else 'default'} at {c.get('at')}")


def rule_suboptimal_plan(ev: Evidence):
    scoped, server = _planner_changes(ev)
    best: Finding = NOTHING
    for q in _heavier(ev):
        if _dropped_for(ev, q):
            continue
        strength = sat(q.work_ratio(), 2, 10) * 0.5 + sat(q.latency_ratio(), 1.5, 5) * 0.5
        changed = _plan_change(ev, q)
        if scoped:
            # the collector's own EXPLAIN does not run under that role: the plan it sees may not change
            base = 0.9
        elif server and not changed and _plan_known(ev, q):
            base = 0.5  # a planner setting changed, the plan did not: the cost model misleads it
        elif not changed and q.rows_ratio() < 2 and _plan_known(ev, q):
            base = 0.3  # slower with the same plan and data: a plan the stored one does not show
        else:
            continue
        conf = base * strength
        if conf > best[0]:
            evidence = [f"query {q.queryid} reads x{_fmt(q.work_ratio())} the blocks a call "
                        f"and takes {_fmt(q.mean_w or 0, 2)} ms against {_fmt(q.mean_b or 0, 2)} ms, "
                        f"returning the same rows"]
            evidence += [_describe_change(c) for c in scoped + server]
            recs = [f"ALTER ROLE ... RESET {str(c.get('name')).split('@')[0]}; -- {c.get('name')}" for c in scoped]
            recs += [f"ALTER SYSTEM RESET {c.get('name')}; SELECT pg_reload_conf();" for c in server]
            recs = recs or [f"compare EXPLAIN (ANALYZE, BUFFERS) of query {q.queryid} under the application's role"]
            best = (conf, evidence, recs, [q.queryid], [c.get("name") for c in scoped + server])
    return best


def _plan_known(ev: Evidence, q: Query) -> bool:
    """The collector captured this statement's plan both before and in the window."""
    plan = ev.plans.get(q.queryid) or {}
    return bool(plan.get("b_hashes")) and bool(plan.get("w_hashes"))


def rule_plan_regression(ev: Evidence):
    scoped, server = _planner_changes(ev)
    best: Finding = NOTHING
    for q in _heavier(ev):
        if _dropped_for(ev, q):
            continue
        strength = sat(q.latency_ratio(), 1.3, 4) * 0.6 + sat(q.work_ratio(), 1.5, 10) * 0.4
        plan = _plan_change(ev, q)
        if plan:
            conf = 0.9 * strength * (0.6 if scoped and not server else 1.0)
            before = ", ".join(f"{s.get('node')} on {s.get('relation') or s.get('index')}" for s in plan.get("b_scans") or [])
            after = ", ".join(f"{s.get('node')} on {s.get('relation') or s.get('index')}" for s in plan.get("w_scans") or [])
            seen = f"query {q.queryid}'s plan changed at {plan.get('first_w_at')}: {before or '?'} -> {after or '?'}"
        elif server and not _plan_known(ev, q) and q.rows_ratio() < 2:
            # no plan of it before (it was not among the top statements): the same rows for many
            # times the blocks after a server-wide planner change is a plan that changed
            conf = 0.7 * strength * sat(q.work_ratio(), 3, 10)
            seen = (f"query {q.queryid} reads x{_fmt(q.work_ratio())} the blocks a call for the same rows "
                    "(its plan before the window was not captured)")
        else:
            continue
        if conf > best[0]:
            evidence = [seen,
                        f"its latency went from {_fmt(q.mean_b or 0, 2)} ms to {_fmt(q.mean_w or 0, 2)} ms a call "
                        f"and its blocks x{_fmt(q.work_ratio())}"]
            evidence += [_describe_change(c) for c in server]
            recs = [f"ALTER SYSTEM RESET {c.get('name')}; SELECT pg_reload_conf();" for c in server]
            recs += [f"compare the old and new plans of query {q.queryid}; pin the good one (e.g. statistics "
                     "targets, extended statistics, or pg_hint_plan)"]
            best = (conf, evidence, recs, [q.queryid], [c.get("name") for c in server])
    return best


def _lock_waiters(ev: Evidence, p: str) -> float:
    """Sessions waiting on a heavyweight lock per collection (lock_waits: taken in every cycle,
    where wait-event ticks are skipped while a cycle holds the connection - and cycles slow
    down exactly when locks pile up)."""
    total: dict = next((q for q in ev.raw_queries if q.get("queryid") == "all"), {})
    snapshots = _f((total.get(p) or {}).get("snapshots"))
    waiters = _f(ev.locks.get(f"{p}_waiters"))
    return waiters / snapshots if snapshots > 0 else 0.0


def _lock_rise(w: float, b: float, share_w: float, share_b: float) -> float:
    """How clearly lock waits rose: in share of active time, in sessions and as a ratio."""
    return sat(share_w - share_b, 0.05, 0.3) * sat(w - b, 0.1, 0.6) * sat(w / max(b, 0.05), 1.5, 3)


def _lock_kind_rise(ev: Evidence, active_w: float, active_b: float) -> tuple[str, float, float, float]:
    """The lock type (relation, transactionid, tuple, ...) whose waits rose most clearly:
    (type, sessions in the window, before, confidence)."""
    best = ("", 0.0, 0.0, 0.0)
    for name in set(ev.events["w"]) | set(ev.events["b"]):
        if not name.startswith("Lock:"):
            continue
        w, b = ev.event(name, "w"), ev.event(name, "b")
        conf = _lock_rise(w, b, w / max(active_w, 1e-9), b / max(active_b, 1e-9))
        if conf > best[3]:
            best = (name[len("Lock:"):], w, b, conf)
    return best


def rule_lock_contention(ev: Evidence):
    lock_w = max(ev.aas["w"].get("Lock", 0.0), _lock_waiters(ev, "w"))
    lock_b = max(max(ev.aas["b"].get("Lock", 0.0), _lock_waiters(ev, "b")) + ev.shift("lock_contention_increase/"), 0.0)
    active_w = max(ev.active("w"), _f(ev.m("pg_activity_active", "w_mean")), lock_w)
    active_b = max(ev.active("b"), _f(ev.m("pg_activity_active", "b_mean")), lock_b)
    share_w, share_b = lock_w / max(active_w, 1e-9), lock_b / max(active_b, 1e-9)
    collections = max(_f((ev.locks or {}).get("w_collections_with_waiters")), 0.0)
    conf = _lock_rise(lock_w, lock_b, share_w, share_b)
    # One kind of lock rising beside a steady other: a table lock held against a workload with
    # its usual row-lock (transactionid) waits barely moves the total's ratio.
    kind, kind_w, kind_b, kind_conf = _lock_kind_rise(ev, active_w, active_b)
    conf = max(conf, kind_conf)
    if conf <= 0:
        return NOTHING
    evidence = [f"{_fmt(lock_w, 2)} sessions on average waited on a heavyweight lock against {_fmt(lock_b, 2)} "
                f"before ({_fmt(100 * share_w, 0)} % of active time against {_fmt(100 * share_b, 0)} %)"
                + ev.expected_note("lock_contention_increase/", unit=" sessions")]
    if kind_conf > 0:
        evidence.append(f"waits on {kind} locks: {_fmt(kind_w, 2)} sessions on average against "
                        f"{_fmt(kind_b, 2)} before")
    if collections:
        evidence.append(f"lock waits seen at {_fmt(collections, 0)} collections, the longest "
                        f"{_fmt(_f(ev.locks.get('w_max_wait_s')))} s")
    recs, queryids = [], []
    for b in ev.blockers[:3]:
        evidence.append(f"root blocker pid {b.get('pid')} ({b.get('state')}, transaction open "
                        f"{_fmt(_f(b.get('xact_age_s')))} s, query {b.get('queryid')}) held up "
                        f"{b.get('waiter_samples')} waiter samples")
        if b.get("pid"):
            recs.append(f"SELECT pg_terminate_backend({int(b['pid'])});  -- the root blocker, if it is safe to end")
        queryids += [b.get("queryid")] + list(b.get("waiting_queryids") or [])
    recs.append("keep transactions that take strong or row locks short; set lock_timeout for DDL")
    if ev.blockers and str(ev.blockers[0].get("state", "")).startswith("idle in transaction"):
        conf = min(1.0, conf * 1.1)
    return (conf, evidence, recs, [x for x in queryids if x is not None][:5], [])


def rule_work_mem_spill(ev: Evidence):
    temp_w = _f(ev.m("pg_database_temp_bytes", "w_mean"))
    temp_b = _f(ev.m("pg_database_temp_bytes", "b_mean"))
    # pg_stat_statements' temp blocks count too (8 kB each): the database counter can lag
    temp_w = max(temp_w, ev.total.temp_total_w * 8192 / ev.sw)
    temp_b = max(temp_b, ev.total.temp_total_b * 8192 / max(ev.sb, 1.0)) if ev.has_baseline else temp_b
    buffile = ev.event("IO:BufFileWrite", "w") + ev.event("IO:BufFileRead", "w")
    conf = sat(temp_w - temp_b, 256 << 10, 4 << 20) * sat(temp_w / max(temp_b, 64 << 10), 2, 6)
    changes = ev.setting_changes(lambda n: n in ("work_mem", "hash_mem_multiplier", "maintenance_work_mem"))
    lowered = [c for c in changes if (_setting_bytes(c.get("setting"), "kb") or 1e18)
               < (_setting_bytes(c.get("before"), "kb") or 4 << 20)]
    if conf <= 0:
        return NOTHING
    conf = min(1.0, conf * (0.8 + 0.2 * sat(buffile, 0.05, 0.5)) * (1.0 if lowered else 0.9))
    spillers = sorted((q for q in ev.queries if q.temp_total_w > q.temp_total_b * ev.sw / max(ev.sb, 1.0)),
                      key=lambda q: -q.temp_total_w)[:3]
    evidence = [f"temporary files written at {_mb(temp_w)}/s against {_mb(temp_b)}/s before"]
    if buffile:
        evidence.append(f"{_fmt(buffile, 2)} sessions on average waited on temporary file I/O")
    evidence += [_describe_change(c) for c in changes]
    for q in spillers:
        evidence.append(f"query {q.queryid} wrote {_fmt(q.temp_w or 0, 0)} temporary blocks a call "
                        f"(before {_fmt(q.temp_b or 0, 0)}): {q.brief()}")
    recs = [f"ALTER ROLE ... RESET work_mem; -- {c.get('name')}" if "@" in str(c.get("name"))
            else "ALTER SYSTEM RESET work_mem; SELECT pg_reload_conf();" for c in lowered]
    recs.append("raise work_mem for the sessions running these sorts/hashes (SET LOCAL work_mem), "
                "or make them sort less (an index providing the order, fewer rows)")
    return (conf, evidence, recs, [q.queryid for q in spillers], [c.get("name") for c in changes])


def _plan_explained(ev: Evidence) -> float:
    """How far statements that got heavier per call explain a rise in CPU or reads: their
    share of the added time, each weighted by how much heavier (a plan flipped for a role
    slows several statements at once, none of them most of the change alone)."""
    if ev.added <= 0:
        return 0.0
    share = sum(sat(q.work_ratio(), 2, 10) * q.delta / ev.added for q in _heavier(ev))
    return sat(share, 0.2, 0.6)


def rule_io_cache_eviction(ev: Evidence):
    hr_w, hr_b = ev.hit_ratio("w"), ev.hit_ratio("b")
    read_w = _f(ev.m("pg_database_blks_read", "w_mean"))
    read_b = _f(ev.m("pg_database_blks_read", "b_mean"))
    if hr_w is None or hr_b is None:
        return NOTHING
    io_w = ev.event("IO:DataFileRead", "w") + ev.event("IO:DataFilePrefetch", "w")
    io_b = ev.event("IO:DataFileRead", "b") + ev.event("IO:DataFilePrefetch", "b")
    drop = hr_b - hr_w
    conf = sat(drop, 0.01, 0.08) * sat(read_w / max(read_b, 50.0), 1.5, 4) * sat(read_w - read_b, 200, 2000)
    # victims: statements doing the same work per call that now read what they used to hit
    victims = [q for q in ev.queries if q.seen_before and q.calls_w >= 3 and 0.5 <= q.work_ratio() <= 2
               and (q.read_share("w") or 0) - (q.read_share("b") or 0) > 0.05]
    conf *= 0.7 + 0.3 * min(1.0, len(victims) / 2)
    conf *= 1.0 - 0.8 * _plan_explained(ev)
    # the evictor: reads added by statements that are new or read more per call, against reads
    # the usual statements now make of what they used to hit (a write burst evicts too, and
    # its own cause - replication, checkpoints - is the better answer then)
    def extra(q: Query) -> float:
        return q.read_w - q.read_b * ev.sw / max(ev.sb, 1.0)
    added = [q for q in ev.queries if extra(q) > 0]
    evictors = [q for q in added if not q.seen_before or q.work_ratio() >= 2]
    evictor_share = sum(map(extra, evictors)) / max(sum(map(extra, added)), 1.0)
    conf *= 0.45 + 0.55 * sat(evictor_share, 0.15, 0.5)
    if conf <= 0:
        return NOTHING
    readers = sorted(ev.queries, key=lambda q: (q not in evictors, -extra(q)))[:2]
    evidence = [f"buffer hit ratio fell from {_fmt(100 * hr_b, 1)} % to {_fmt(100 * hr_w, 1)} %, "
                f"blocks read from disk or the OS cache at {_fmt(read_w, 0)}/s against {_fmt(read_b, 0)}/s",
                f"{_fmt(io_w, 2)} sessions on average waited on data file reads against {_fmt(io_b, 2)}"]
    for q in readers:
        evidence.append(f"query {q.queryid} read {_fmt(q.read_w, 0)} blocks in the window "
                        f"({_fmt((q.blks_w or 0), 0)} a call): {q.brief()}")
    if victims:
        evidence.append(f"{len(victims)} statements doing the same work per call now miss the cache more")
    recs = ["find what scans large relations (the readers above) and move it off peak, give it an index, "
            "or a replica", "if the working set outgrew shared_buffers, raise it (the hit ratio says by how much)"]
    return (conf, evidence, recs, [q.queryid for q in readers], [])


def rule_cpu_saturation(ev: Evidence):
    busy_w, busy_b = ev.m("host_cpu_busy_ratio", "w_mean"), ev.m("host_cpu_busy_ratio", "b_mean")
    cpu_w, cpu_b = ev.aas["w"].get("CPU", 0.0), ev.aas["b"].get("CPU", 0.0)
    if busy_w is not None and busy_b is not None:
        conf = sat(busy_w, 0.7, 0.9) * sat(busy_w - busy_b, 0.1, 0.3)
    else:  # no host metrics (a remote collector): sessions on CPU, without the core count
        conf = 0.6 * sat(cpu_w - cpu_b, 0.5, 2.0) * sat(cpu_w / max(cpu_b, 0.1), 1.5, 3)
        # Sampled sessions alone are a few ticks: the statements must have added the time too,
        # or one still running (pg_stat_statements counts a statement when it ends).
        added = ev.added / 1000.0
        running = sat(ev.m("pg_activity_oldest_query_age_s", "w_max"), 5.0, 30.0)
        conf *= max(sat(added / max(cpu_w - cpu_b, 1e-6), 0.1, 0.4), running)
    conf *= sat(cpu_w / max(cpu_b, 0.1), 1.2, 2.0) * (1.0 - 0.85 * _plan_explained(ev))
    # time added by statements reading blocks at a high rate (pages copied from the OS cache
    # burn CPU too): the reads are the story, the CPU their symptom
    readers = sum(q.delta for q in ev.contributors if q.read_w / max(q.time_w, 1.0) >= 5)
    conf *= 1.0 - 0.6 * sat(readers / ev.added if ev.added > 0 else 0.0, 0.3, 0.7)
    if conf <= 0:
        return NOTHING
    # the statements that added CPU time: more time without more block reads
    burners = [q for q in ev.contributors[:5] if q.delta > 0 and (q.read_w / max(q.time_w, 1.0)) < 5][:3]
    evidence = []
    if busy_w is not None:
        evidence.append(f"host CPU {_fmt(100 * busy_w, 0)} % busy against {_fmt(100 * _f(busy_b), 0)} % before"
                        + ev.expected_note("high_cpu_usage/", 100.0, " points"))
    evidence.append(f"{_fmt(cpu_w, 2)} sessions on average on CPU against {_fmt(cpu_b, 2)} before")
    for q in burners:
        evidence.append(f"query {q.queryid} added {_fmt(q.delta / 1000, 2)} busy sessions "
                        f"({_fmt(q.calls_w / ev.sw, 1)} calls/s, {_fmt(q.mean_w or 0, 1)} ms a call): {q.brief()}")
    recs = ["find the statements above: make them cheaper, run fewer at once (a pool limit), "
            "or move them to a replica; add CPU if the load is legitimate"]
    return (conf, evidence, recs, [q.queryid for q in burners], [])


def rule_memory_pressure(ev: Evidence):
    used_w, used_b = ev.mem_used("w"), ev.mem_used("b")
    if used_w is None or used_b is None:
        return NOTHING
    # a fifth of the host's memory taken in minutes is the evidence; how full it is now scales it
    conf = sat(used_w - used_b, 0.1, 0.3) * (0.6 + 0.4 * sat(used_w, 0.4, 0.8))
    if conf <= 0:
        return NOTHING
    avail_w = _f(ev.m("host_memory_available_bytes", "w_min"))
    evidence = [f"host memory in use {_fmt(100 * used_w, 0)} % against {_fmt(100 * used_b, 0)} % before "
                f"(available down to {_mb(avail_w)})" + ev.expected_note("memory_pressure/", 100.0, " points")]
    recs = ["find what allocates the memory (a process on the host, or many backends with large work_mem); "
            "lower work_mem or max_connections, or move the other process off the database host"]
    return (conf, evidence, recs, [], [])


def rule_connection_saturation(ev: Evidence):
    usable = ev.usable_connections()
    if usable <= 0:
        return NOTHING
    n_w = ev.m("pg_activity_client_backends", "w_max")
    n_b = ev.m("pg_activity_client_backends", "b_mean")
    if n_w is None:  # older collections: pg_stat_database.numbackends counts every backend of the databases
        n_w, n_b = ev.m("pg_database_numbackends", "w_max"), ev.m("pg_database_numbackends", "b_mean")
    if n_w is None:
        return NOTHING
    use_w, use_b = n_w / usable, _share(_f(n_b) / usable + ev.shift("connection_pool_saturation/"))
    fatal = _f(ev.m("pg_database_sessions_fatal", "w_mean")) * ev.sw
    conf = sat(use_w, 0.75, 0.92) * (0.5 + 0.5 * sat(use_w - use_b, 0.05, 0.25))
    conf = max(conf, 0.5 * sat(fatal, 1, 5) * sat(use_w, 0.6, 0.8))
    if conf <= 0:
        return NOTHING
    idle = _f(ev.m("pg_activity_client_backends", "w_mean")) - _f(ev.m("pg_activity_active", "w_mean"))
    evidence = [f"{_fmt(n_w, 0)} of {_fmt(usable, 0)} usable connections in use ({_fmt(100 * use_w, 0)} %), "
                f"against {_fmt(_f(n_b), 0)} before" + ev.expected_note("connection_pool_saturation/", 100.0, " points of use")]
    if idle > 0:
        evidence.append(f"about {_fmt(idle, 0)} of them idle")
    if fatal:
        evidence.append(f"{_fmt(fatal, 0)} sessions ended by errors (e.g. too many clients)")
    recs = ["put a connection pooler (PgBouncer, transaction mode) in front, or lower the application's pool "
            "size; end idle sessions (idle_session_timeout)"]
    return (conf, evidence, recs, [], [])


def rule_bloat_long_transaction(ev: Evidence):
    age_w = _f(ev.m("pg_activity_oldest_xact_age_s", "w_max"))
    age_b = _f(ev.m("pg_activity_oldest_xact_age_s", "b_max"))
    xmin_first = _f(ev.m("pg_activity_oldest_xmin_age", "w_first"))
    xmin_last = _f(ev.m("pg_activity_oldest_xmin_age", "w_last"))
    idle_w = _f(ev.m("pg_activity_idle_in_transaction", "w_mean"))
    held = max(age_w, max((_f(i.get("xact_age_s")) for i in ev.idle), default=0.0))
    # the horizon stays while the world moves on: the snapshot's age grows with the xids used
    grows = xmin_last - xmin_first
    dead_growth, rels = 0.0, []
    for t in ev.tables:
        d = (t.get("metrics") or {}).get("pg_table_n_dead_tup") or {}
        g = _f(d.get("w_last")) - min(_f(d.get("w_first")), _f(d.get("b_last"), _f(d.get("w_first"))))
        if g > 0:
            dead_growth += g
            rels.append((g, t.get("relname")))
    # open 40 s, or nearly all of a shorter window (it cannot be older than the fault)
    conf = (sat(held, 15, max(20.0, min(40.0, 0.9 * ev.sw)) if ev.sw < 80 else max(40.0, 0.5 * ev.sw))
            * sat(held - age_b, 10, 30)
            * (0.5 + 0.25 * sat(grows, 100, 2000) + 0.25 * sat(dead_growth, 1000, 20000)))
    conf *= 0.85 + 0.15 * sat(idle_w, 0.3, 1)
    if conf <= 0:
        return NOTHING
    evidence = [f"the oldest transaction has been open {_fmt(held, 0)} s (before: {_fmt(age_b, 0)} s); "
                f"its snapshot is {_fmt(xmin_last, 0)} transactions old and growing by {_fmt(grows, 0)} in the window"]
    recs = []
    for i in ev.idle[:2]:
        evidence.append(f"pid {i.get('pid')} ({i.get('usename')}@{i.get('datname')}, {i.get('application_name')}) "
                        f"idle in transaction for {_fmt(_f(i.get('xact_age_s')), 0)} s")
        if i.get("pid"):
            recs.append(f"SELECT pg_terminate_backend({int(i['pid'])});  -- idle in transaction, holding back vacuum")
    if dead_growth:
        top = ", ".join(f"{r} (+{_fmt(g, 0)})" for g, r in sorted(rels, reverse=True)[:3])
        evidence.append(f"dead rows grew by {_fmt(dead_growth, 0)} that vacuum cannot remove: {top}")
    recs.append("set idle_in_transaction_session_timeout; keep reporting transactions short or on a replica")
    return (conf, evidence, recs, [], [r for _, r in sorted(rels, reverse=True)[:3]])


def rule_replication_lag(ev: Evidence):
    lag_w = _f(ev.m("pg_replication_replay_lag_bytes", "w_max"))
    lag_first = _f(ev.m("pg_replication_replay_lag_bytes", "w_first"))
    lag_b = _f(ev.m("pg_replication_replay_lag_bytes", "b_max"))
    delay = _f(ev.m("pg_recovery_replay_delay_s", "w_max"))
    standby_lag = _f(ev.m("pg_recovery_receive_replay_lag_bytes", "w_max"))
    lag = max(lag_w, standby_lag)
    conf = sat(lag, 4 << 20, 64 << 20) * (0.5 + 0.5 * sat(lag - max(lag_b, lag_first * 0.5), 2 << 20, 32 << 20))
    conf = max(conf, sat(delay, 30, 300) * 0.8)
    if conf <= 0:
        return NOTHING
    evidence = [f"a replica is {_mb(lag)} of WAL behind in replay (before: {_mb(lag_b)})"]
    if delay:
        evidence.append(f"the standby last replayed a transaction {_fmt(delay, 0)} s ago")
    recs = ["check the replica: replay paused (pg_is_wal_replay_paused()), conflicts with queries, or I/O; "
            "watch pg_stat_replication and the slots' retained WAL"]
    return (conf, evidence, recs, [], [])


def rule_checkpoint_pressure(ev: Evidence):
    req_w = _f(ev.m("pg_checkpointer_num_requested", "w_mean")) * ev.sw
    req_b = _f(ev.m("pg_checkpointer_num_requested", "b_mean")) * max(ev.sb, 1.0)
    rate_w, rate_b = req_w / ev.sw, req_b / max(ev.sb, 1.0)
    changes = ev.setting_changes(lambda n: n in ("max_wal_size", "checkpoint_timeout", "checkpoint_completion_target"))
    conf = sat(req_w, 0.8, 3) * sat(rate_w / max(rate_b, 1.0 / 3600), 2, 5)
    if changes and req_w >= 0.8:
        conf = min(1.0, conf + 0.2)
    if conf <= 0:
        return NOTHING
    wal = _f(ev.m("pg_wal_wal_bytes", "w_mean"))
    evidence = [f"{_fmt(req_w, 0)} checkpoints requested by WAL volume in {_fmt(ev.sw, 0)} s "
                f"(before: {_fmt(req_b, 0)} in {_fmt(ev.sb, 0)} s); WAL written at {_mb(wal)}/s"]
    evidence += [_describe_change(c) for c in changes]
    fpi = _f(ev.m("pg_wal_wal_fpi", "w_mean"))
    if fpi:
        evidence.append(f"{_fmt(fpi, 0)} full-page images a second (every first change after a checkpoint)")
    recs = ["raise max_wal_size so checkpoints come from checkpoint_timeout, not WAL volume "
            "(ALTER SYSTEM SET max_wal_size = '...'; SELECT pg_reload_conf();)"]
    return (conf, evidence, recs, [], [c.get("name") for c in changes])


RULES = {
    "missing_index": rule_missing_index,
    "stale_statistics": rule_stale_statistics,
    "suboptimal_plan": rule_suboptimal_plan,
    "plan_regression": rule_plan_regression,
    "lock_contention": rule_lock_contention,
    "work_mem_spill": rule_work_mem_spill,
    "io_cache_eviction": rule_io_cache_eviction,
    "cpu_saturation": rule_cpu_saturation,
    "memory_pressure": rule_memory_pressure,
    "connection_saturation": rule_connection_saturation,
    "bloat_long_transaction": rule_bloat_long_transaction,
    "replication_lag": rule_replication_lag,
    "checkpoint_pressure": rule_checkpoint_pressure,
}


def features(ev: Evidence) -> dict[str, float]:
    """The evidence as a flat vector of numbers (the trained model's input; stored with
    feedback). Changes are window minus baseline, ratios window over baseline (floored)."""
    def m(name, key):
        return _f(ev.m(name, key))

    top = ev.contributors[0] if ev.contributors else None
    hr_w, hr_b = ev.hit_ratio("w"), ev.hit_ratio("b")
    mem_w, mem_b = ev.mem_used("w"), ev.mem_used("b")
    usable = max(ev.usable_connections(), 1.0)
    out = {
        "db_time_ratio": _ratio(ev.total.rate_w, ev.total.rate_b, 1.0),
        "calls_ratio": _ratio(ev.total.calls_w / ev.sw, ev.total.calls_b / max(ev.sb, 1.0), 0.1),
        "active_sessions_delta": ev.active("w") - ev.active("b"),
        "lock_share_delta": ev.share("Lock", "w") - ev.share("Lock", "b"),
        "cpu_share_delta": ev.share("CPU", "w") - ev.share("CPU", "b"),
        "io_share_delta": ev.share("IO", "w") - ev.share("IO", "b"),
        "lwlock_share_delta": ev.share("LWLock", "w") - ev.share("LWLock", "b"),
        "temp_file_wait_delta": (ev.event("IO:BufFileWrite", "w") + ev.event("IO:BufFileRead", "w"))
                                - (ev.event("IO:BufFileWrite", "b") + ev.event("IO:BufFileRead", "b")),
        "cpu_busy_delta": m("host_cpu_busy_ratio", "w_mean") - m("host_cpu_busy_ratio", "b_mean"),
        "iowait_delta": m("host_cpu_iowait_ratio", "w_mean") - m("host_cpu_iowait_ratio", "b_mean"),
        "memory_used_delta": (mem_w - mem_b) if mem_w is not None and mem_b is not None else 0.0,
        "hit_ratio_drop": (hr_b - hr_w) if hr_w is not None and hr_b is not None else 0.0,
        "blocks_read_ratio": math.log1p(_ratio(m("pg_database_blks_read", "w_mean"),
                                               m("pg_database_blks_read", "b_mean"), 10.0)),
        "temp_bytes_log_delta": math.log1p(max(m("pg_database_temp_bytes", "w_mean")
                                               - m("pg_database_temp_bytes", "b_mean"), 0.0)),
        "connection_use": m("pg_activity_client_backends", "w_max") / usable,
        "connection_use_delta": (m("pg_activity_client_backends", "w_max")
                                 - m("pg_activity_client_backends", "b_mean")) / usable,
        "checkpoints_requested": m("pg_checkpointer_num_requested", "w_mean") * ev.sw,
        "replay_lag_log": math.log1p(m("pg_replication_replay_lag_bytes", "w_max")),
        "oldest_xact_age_log": math.log1p(m("pg_activity_oldest_xact_age_s", "w_max")),
        "idle_in_transaction": m("pg_activity_idle_in_transaction", "w_mean"),
        "top_query_share": (top.delta / ev.added) if top and ev.added > 0 else 0.0,
        "top_query_work_log_ratio": math.log(max(top.work_ratio(), 1e-3)) if top else 0.0,
        "top_query_rows_log_ratio": math.log(max(top.rows_ratio(), 1e-3)) if top else 0.0,
        "top_query_latency_log_ratio": math.log(max(top.latency_ratio(), 1e-3)) if top else 0.0,
        "top_query_new": 1.0 if top and not top.seen_before else 0.0,
        "index_dropped": 1.0 if any(_dropped_for(ev, q) for q in ev.contributors[:5]) else 0.0,
        "plan_changed": 1.0 if any(_plan_change(ev, q) for q in ev.contributors[:5]) else 0.0,
        "planner_setting_scoped": 1.0 if _planner_changes(ev)[0] else 0.0,
        "planner_setting_server": 1.0 if _planner_changes(ev)[1] else 0.0,
        "work_mem_changed": 1.0 if ev.setting_changes(lambda n: n == "work_mem") else 0.0,
        "wal_settings_changed": 1.0 if ev.setting_changes(lambda n: n in ("max_wal_size", "checkpoint_timeout")) else 0.0,
    }
    return {k: round(float(v), 6) for k, v in out.items()}


def _summary(causes: list[dict], ev: Evidence) -> str:
    if not causes:
        if not ev.has_baseline:
            return ("no cause found; there is little or no history before the window to compare with, "
                    "so only levels bad in themselves were checked")
        return "no cause found: nothing in the window departs from the time before it enough to explain a problem"
    first = causes[0]
    lead = f"most likely {first['cause'].replace('_', ' ')} (confidence {first['confidence']:.2f})"
    if first["evidence"]:
        lead += ": " + first["evidence"][0]
    others = [c["cause"].replace("_", " ") for c in causes[1:3]]
    return lead + (f"; also {', '.join(others)}" if others else "")


def diagnose(inputs: dict, options: dict | None = None) -> dict:
    """Ranked causes for diagnosis_inputs()' document. options: min_confidence (0.2);
    'blend': {cause: confidence} from the trained model to use instead of the rules' own
    (root_cause_model_scores()), and 'model': its name for the evidence line."""
    opts: dict[str, Any] = dict(DEFAULTS)
    opts.update(options or {})
    min_conf = _f(opts.get("min_confidence"), 0.2)
    if not 0 <= min_conf <= 1:
        raise ValueError(f"min_confidence must be from 0 to 1, got {opts.get('min_confidence')!r}")
    ev = Evidence(inputs)
    found = {name: rule(ev) for name, rule in RULES.items()}
    blend: dict = opts.get("blend") or {}
    causes = []
    for name, (conf, evidence, recs, queryids, objects) in found.items():
        c = _f(blend.get(name), conf) if name in blend else conf
        if c >= min_conf and not evidence and name in blend:
            # the trained model recognises what the rules do not: say so rather than hide it
            evidence = [f"no rule fired; the trained model ({opts.get('model') or 'newest'}) puts it at "
                        f"{c:.2f} from users' confirmed incidents with similar evidence"]
        if c >= min_conf and evidence:
            causes.append({"cause": name, "confidence": round(_share(c), 3),
                           "rule_confidence": round(conf, 3), "evidence": evidence,
                           "recommendations": recs, "queryids": [q for q in queryids if q is not None],
                           "objects": [o for o in objects if o]})
    # equal confidence: the specific cause first, the resource symptoms it may explain after
    causes.sort(key=lambda c: (-c["confidence"], GENERIC.index(c["cause"]) if c["cause"] in GENERIC else -1, c["cause"]))
    feats = features(ev)
    feats.update({f"rule:{name}": round(found[name][0], 6) for name in RULES})
    contributors = [{"queryid": q.queryid, "query": q.brief(), "added_sessions": round(q.delta / 1000, 3),
                     "calls_per_s": round(q.calls_w / ev.sw, 3),
                     "calls_per_s_before": round(q.calls_b / max(ev.sb, 1.0), 3) if ev.has_baseline else None,
                     "mean_ms": None if q.mean_w is None else round(q.mean_w, 3),
                     "mean_ms_before": None if q.mean_b is None else round(q.mean_b, 3)}
                    for q in ev.contributors[:5]]
    return {"causes": causes, "summary": _summary(causes, ev), "contributors": contributors, "features": feats,
            "window": {"from": inputs.get("from"), "to": inputs.get("to"),
                       "baseline_from": inputs.get("baseline_from"), "seconds": inputs.get("seconds"),
                       # what the baseline is: the time before, moved by learnt profiles where any
                       "baseline": {"kind": "learnt profile + time before" if ev.expected else "time before",
                                    "model_version": ev.profile_version,
                                    "expected_change": {k: round(v, 6) for k, v in ev.expected.items()}}}}
