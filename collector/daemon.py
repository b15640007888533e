"""`pganalytics collect` as a daemon: many targets, each on its own cadence, one process.

A scheduler loop keeps a heap of due events (a cycle and a wait-event tick per target) and
hands them to two small thread pools (reading a target is I/O-bound); finished cycles put
their batches on the delivery queue. Each target has one kept connection (TargetSession).
A target that is down is recorded (pg_up = 0) and retried with exponential backoff. SIGTERM
stops cleanly - no new cycles, running ones finish, everything queued is delivered or
spooled; SIGHUP reloads the TOML file.

With `[collector] shard = "K/N"`, N daemons share the store's targets: each knows them all
(its [[targets]] and every instance registered in the store) and collects only those its
shard owns (collector/shard.py: a stable hash of the name, so no two daemons collect one
target and none is left out).
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import signal
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg

from . import config as cfg
from . import metrics
from .cycle import run_cycle
from .delivery import Delivery
from .maintainer import Maintainer
from .session import TargetSession
from .spool import Spool

log = logging.getLogger("pganalytics.collector")
MAX_BACKOFF_S = 300.0


@dataclass(eq=False)
class TargetState:
    name: str
    conn: str
    interval_s: float
    slow_interval_s: float
    next_fast: float = 0.0
    next_slow: float = 0.0
    failures: int = 0
    running: Future | None = None
    cycles: int = 0
    memory: dict = field(default_factory=dict)
    session: TargetSession = field(init=False)  # the one kept connection (cycles + wait ticks)
    next_tick: float = 0.0  # the start of the next sampling interval (its tick is inside it)
    ticking: Future | None = None
    tick_queued: bool = False  # a "tick" event of this target is in the heap
    retired: bool = False  # removed from the config: its queued events are ignored

    def __post_init__(self):
        self.session = TargetSession(self.name, self.conn)


def _sample_at(slot: float, interval: float, rng: random.Random) -> float:
    """When to take the wait-event sample of the interval starting at `slot`: a uniformly
    random moment in it (stratified sampling). Still one sample per interval, but its phase
    no longer locks onto activity with the same period - a lock held 0.6 s of every second,
    a job every minute, the collector's own 1 s cycle (a tick that meets a cycle is
    skipped) - which fixed-rate ticks see always or never."""
    return slot + rng.random() * interval


def _next(due: float, interval: float, now: float) -> float:
    """The next due time at a fixed rate; after falling behind (or at start), one interval
    from now rather than a burst of catch-up cycles."""
    following = due + interval
    return following if following > now else now + interval


class Collector:
    def __init__(self, config: cfg.CollectorConfig, config_path: str | None = None):
        self.config = config
        self.config_path = config_path
        self.spool = Spool(config.spool_dir, config.spool_max_bytes)
        self.delivery = Delivery(config.store_dsn, self.spool, refresh_s=config.slow_interval_s)
        self.delivery.on_connect = self._sync_targets_with_store
        self.maintainer = Maintainer(config.store_dsn, config.maintain_interval_s)
        self.targets: dict[str, TargetState] = {}
        self._store_targets: dict[str, str] = {}
        self._conflicting: set[str] = set()  # configured names registered elsewhere (admin's word wins)
        self._assignment: tuple[str, int, int] | None = None  # (shard, owned, known) last logged
        # Cycles and wait-event ticks on separate pools: a slow cycle never starves the 1 s
        # ticks of other targets, and a burst of ticks never delays a cycle.
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="pganalytics-target")
        self._tick_rng = random.Random()  # the ticks' phases (_sample_at)
        self._tick_pool = ThreadPoolExecutor(max(4, config.workers),
                                             thread_name_prefix="pganalytics-tick")
        # (due, seq, state, kind): at most one "cycle" and one "tick" event per target
        self._events: list[tuple[float, int, TargetState, str]] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.metrics_server = None  # set by run() when metrics_listen is configured
        self._apply_targets()

    # -- targets ---------------------------------------------------------------------------
    def _apply_targets(self) -> None:
        known = {t.name: t for t in self.config.targets if t.name not in self._conflicting}
        for name, ref in self._store_targets.items():
            known.setdefault(name, cfg.TargetConfig(name, ref, self.config.interval_s,
                                                    self.config.slow_interval_s))
        shard = self.config.shard
        wanted = {name: t for name, t in known.items() if shard.owns(name)}
        assignment = (str(shard), len(wanted), len(known))
        if assignment != self._assignment:
            self._assignment = assignment
            log.info("shard %s: collecting %d of %d known targets", *assignment)
        for name in set(self.targets) - set(wanted):
            self._retire(self.targets.pop(name))
        for name, t in wanted.items():
            state = self.targets.get(name)
            if state is not None and state.conn != t.conn:
                self._retire(self.targets.pop(name))  # a new address: a new session
                state = None
            if state is None:
                # Spread first cycles over one interval (a stable per-name phase, like
                # Prometheus scrape offsets): a fleet does not arrive as one burst every minute.
                phase = zlib.crc32(name.encode()) / 2**32 * t.interval_s
                due = time.monotonic() + phase
                state = self.targets[name] = TargetState(name, t.conn, t.interval_s, t.slow_interval_s,
                                                         next_fast=due, next_slow=due, next_tick=due)
                state.session.sampler.idle_xact_threshold_s = self.config.idle_xact_threshold_s
                self._push(due, state, "cycle")
            else:
                state.interval_s, state.slow_interval_s = t.interval_s, t.slow_interval_s
            # one tick of each cycle's takes the lock chains (ActivitySampler.take_chains)
            state.session.sampler.chains_every_ticks = (
                max(1, round(t.interval_s / self.config.sample_interval_s)) if self.config.sample_interval_s > 0 else 0)
        if self.config.sample_interval_s > 0:  # (re)start sampling where it is not queued
            for state in self.targets.values():
                if not state.tick_queued:
                    state.tick_queued = True
                    state.next_tick = max(state.next_tick, time.monotonic())
                    self._push(_sample_at(state.next_tick, self.config.sample_interval_s, self._tick_rng),
                               state, "tick")

    def _retire(self, state: TargetState) -> None:
        state.retired = True
        # The session closes once no cycle or tick uses it (they hold its lock).
        self._tick_pool.submit(self._close_session, state)

    @staticmethod
    def _close_session(state: TargetState) -> None:
        with state.session.lock:
            state.session.discard()

    def _sync_targets_with_store(self, sink) -> None:
        """On each store connection and every slow interval: register the configured targets
        (one statement for all of them), learn the ones registered with `targets add`.

        With shards, every configured target is registered, not only this shard's: it is
        idempotent, and it is what makes the split gap-free when the daemons' files differ -
        a target only this daemon's file names, but another shard owns, reaches that shard
        through the store (collected there with the [collector] defaults)."""
        targets = self.config.targets
        if targets:
            try:
                with sink.conn.transaction():
                    sink.conn.execute(
                        "SELECT pganalytics.register_target(n, r, l) "
                        "FROM unnest(%s::text[], %s::text[], %s::jsonb[]) AS t(n, r, l)",
                        ([t.name for t in targets], [t.conn for t in targets],
                         [json.dumps(t.labels) for t in targets]))
                self._conflicting = set()
            except psycopg.errors.InsufficientPrivilege:
                self._register_one_by_one(sink, targets)
        self._store_targets = dict(sink.conn.execute(
            "SELECT name, conn_ref FROM pganalytics.instances").fetchall())
        self._reload.set()  # re-merge target list in the scheduler thread

    def _register_one_by_one(self, sink, targets) -> None:
        """Some configured target is registered in the store with another connection
        reference, which only an admin may change: that target is collected from where the
        store says (logged once), the others are registered as usual."""
        conflicting = set()
        for t in targets:
            try:
                with sink.conn.transaction():
                    sink.conn.execute("SELECT pganalytics.register_target(%s, %s, %s)",
                                      (t.name, t.conn, json.dumps(t.labels)))
            except psycopg.errors.InsufficientPrivilege as exc:
                conflicting.add(t.name)
                if t.name not in self._conflicting:
                    log.error("target %s: the config's conn is not used: %s (%s); collecting "
                              "from the registered connection reference", t.name,
                              exc.diag.message_primary, exc.diag.message_hint)
        self._conflicting = conflicting

    # -- cycles and ticks --------------------------------------------------------------------
    def _push(self, due: float, state: TargetState, kind: str) -> None:
        heapq.heappush(self._events, (due, next(self._seq), state, kind))

    def _tick(self, state: TargetState) -> bool:
        """One wait-event sample; False when skipped (retired, cycle running) or failed."""
        return not state.retired and state.session.tick()

    def _cycle(self, state: TargetState, cadences: frozenset[str]) -> None:
        with state.session.lock:
            if state.retired:
                return
            report = run_cycle(state.name, state.conn, cadences, memory=state.memory,
                               session=state.session, query_filter=self.config.filter_for(state.name))
        self.delivery.put(report.batches)
        now = time.monotonic()
        if report.up:
            state.failures = 0
        else:
            state.failures += 1
            backoff = min(state.interval_s * 2 ** state.failures, MAX_BACKOFF_S)
            state.next_fast = state.next_slow = now + backoff
            log.warning("target %s down (%s): retry in %.0f s", state.name, report.error, backoff)
        state.cycles += 1

    def _fire(self, state: TargetState, kind: str, now: float) -> None:
        """Run a due event and queue the target's next one of that kind."""
        if kind == "tick":
            tick = self.config.sample_interval_s
            if tick <= 0:
                state.tick_queued = False  # sampling turned off by a reload
                return
            # No sampling while the target is down (the cycle's backoff probes it).
            if state.failures == 0 and (state.ticking is None or state.ticking.done()):
                state.ticking = self._tick_pool.submit(self._tick, state)
            state.next_tick = _next(state.next_tick, tick, now)
            self._push(_sample_at(state.next_tick, tick, self._tick_rng), state, "tick")
            return
        if state.running is not None and not state.running.done():
            # Still running (a slow target): look again shortly, run as soon as it is done.
            self._push(now + min(1.0, state.interval_s / 10), state, "cycle")
            return
        cadences = set()
        if now >= state.next_fast:
            cadences.add("fast")
            state.next_fast = _next(state.next_fast, state.interval_s, now)
        if now >= state.next_slow:
            cadences.add("slow")
            state.next_slow = _next(state.next_slow, state.slow_interval_s, now)
        if cadences:
            state.running = self._pool.submit(self._cycle, state, frozenset(cadences))
            # After a failure the cycle moves next_fast later (backoff): the event queued here
            # then finds nothing due and re-queues itself at the new time.
        self._push(min(state.next_fast, state.next_slow), state, "cycle")

    def _run_due(self) -> float:
        """Fire every due event; returns seconds until the next one."""
        now = time.monotonic()
        while self._events and self._events[0][0] <= now:
            _, _, state, kind = heapq.heappop(self._events)
            if not state.retired:
                self._fire(state, kind, now)
        return self._events[0][0] - now if self._events else 1.0

    # -- lifecycle ---------------------------------------------------------------------------
    def request_stop(self, *_) -> None:
        self._stop.set()

    def request_reload(self, *_) -> None:
        if self.config_path:
            try:
                new = cfg.load(self.config_path)
            except cfg.ConfigError as exc:
                log.error("reload refused, keeping the running config: %s", exc)
                return
            self.config = new
            log.info("config reloaded: %d configured targets, shard %s", len(new.targets), new.shard)
        self._reload.set()

    def _serve_metrics(self):
        """The collector's own counters on [collector] metrics_listen (read at start only).
        A busy address is logged, not fatal: collecting matters more than its metrics."""
        if not self.config.metrics_listen:
            return None
        try:
            server = metrics.serve(self.config.metrics_listen)
        except OSError as exc:
            log.error("metrics_listen %s: %s; serving no /metrics", self.config.metrics_listen, exc)
            return None
        log.info("metrics on http://%s:%d/metrics", *server.server_address[:2])
        return server

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def run(self) -> None:
        log.info("collector started: shard %s, %d configured targets (and those of the store)",
                 self.config.shard, len(self.config.targets))
        self.delivery.start()
        self.maintainer.start()
        self.metrics_server = self._serve_metrics()
        try:
            while not self._stop.is_set():
                if self.delivery.failure is not None:
                    break
                if self._reload.is_set():
                    self._reload.clear()
                    self._apply_targets()
                wait = self._run_due()
                self._stop.wait(min(max(wait, 0.0), 1.0))
        finally:
            self._pool.shutdown(wait=True)
            self._tick_pool.shutdown(wait=True)
            for state in self.targets.values():
                state.session.discard()
            self.delivery.stop()
            self.maintainer.stop()
            if self.metrics_server is not None:
                self.metrics_server.shutdown()
                self.metrics_server.server_close()
            log.info("collector stopped: shard %s, %d batches delivered, %d spooled, %d dropped",
                     self.config.shard, self.delivery.delivered, len(self.spool), self.spool.dropped)
        if self.delivery.failure is not None:
            raise self.delivery.failure
