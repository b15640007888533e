"""`pganalytics collect` as a daemon: many targets, each on its own cadence, one process.

A scheduler loop hands due targets to a small thread pool (reading a target is I/O-bound);
finished cycles put their batches on the delivery queue. A target that is down is recorded
(pg_up = 0) and retried with exponential backoff. SIGTERM stops cleanly - no new cycles,
running ones finish, everything queued is delivered or spooled; SIGHUP reloads the TOML file.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg

from . import config as cfg
from . import target
from .activity import ActivitySampler
from .cycle import run_cycle
from .delivery import Delivery
from .spool import Spool

log = logging.getLogger("pganalytics.collector")
MAX_BACKOFF_S = 300.0


@dataclass
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
    # wait-event sampling: a persistent connection, ticked every sample_interval_s
    sampler: ActivitySampler | None = None
    sampler_lock: threading.Lock = field(default_factory=threading.Lock)
    next_tick: float = 0.0
    ticking: Future | None = None

    def close_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.conn.close()
            self.sampler = None


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
        self.targets: dict[str, TargetState] = {}
        self._store_targets: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="pganalytics-target")
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._apply_targets()

    # -- targets ---------------------------------------------------------------------------
    def _apply_targets(self) -> None:
        wanted = {t.name: t for t in self.config.targets}
        for name, ref in self._store_targets.items():
            wanted.setdefault(name, cfg.TargetConfig(name, ref, self.config.interval_s,
                                                     self.config.slow_interval_s))
        for name in set(self.targets) - set(wanted):
            self.targets.pop(name).close_sampler()
        for name, t in wanted.items():
            state = self.targets.get(name)
            if state is None:
                # Spread first cycles over one interval (a stable per-name phase, like
                # Prometheus scrape offsets): a fleet does not arrive as one burst every minute.
                phase = zlib.crc32(name.encode()) / 2**32 * t.interval_s
                due = time.monotonic() + phase
                self.targets[name] = TargetState(name, t.conn, t.interval_s, t.slow_interval_s,
                                                 next_fast=due, next_slow=due)
            else:
                state.conn, state.interval_s, state.slow_interval_s = t.conn, t.interval_s, t.slow_interval_s

    def _sync_targets_with_store(self, sink) -> None:
        """On each store connection: register configured targets, learn the registered ones."""
        for t in self.config.targets:
            sink.conn.execute("SELECT pganalytics.register_instance(%s, %s, %s::jsonb)",
                              (t.name, t.conn, json.dumps(t.labels)))
        self._store_targets = dict(sink.conn.execute(
            "SELECT name, conn_ref FROM pganalytics.instances").fetchall())
        self._reload.set()  # re-merge target list in the scheduler thread

    # -- cycles ----------------------------------------------------------------------------
    def _tick(self, state: TargetState) -> None:
        with state.sampler_lock:
            try:
                if state.sampler is None:
                    state.sampler = ActivitySampler(target.connect(state.conn), state.name)
                state.sampler.tick()
            except (target.TargetError, psycopg.Error) as exc:
                log.debug("target %s: wait sampling paused: %s", state.name, exc)
                state.close_sampler()

    def _drain_activity(self, state: TargetState) -> None:
        """Wait-event counts since the last cycle, and current lock chains."""
        with state.sampler_lock:
            if state.sampler is None:
                return
            try:
                batches = [state.sampler.drain(), state.sampler.lock_waits()]
                self.delivery.put([b for b in batches if b.rows])
            except psycopg.Error as exc:
                log.info("target %s: wait sampling lost its connection: %s", state.name, exc)
                state.close_sampler()

    def _cycle(self, state: TargetState, cadences: frozenset[str]) -> None:
        report = run_cycle(state.name, state.conn, cadences, memory=state.memory)
        self.delivery.put(report.batches)
        if report.up and "fast" in cadences:
            self._drain_activity(state)
        now = time.monotonic()
        if report.up:
            state.failures = 0
        else:
            state.failures += 1
            backoff = min(state.interval_s * 2 ** state.failures, MAX_BACKOFF_S)
            state.next_fast = state.next_slow = now + backoff
            log.warning("target %s down (%s): retry in %.0f s", state.name, report.error, backoff)
        state.cycles += 1

    def _schedule(self) -> None:
        now = time.monotonic()
        for state in self.targets.values():
            if state.running is not None and not state.running.done():
                continue
            cadences = set()
            if now >= state.next_fast:
                cadences.add("fast")
                state.next_fast = _next(state.next_fast, state.interval_s, now)
            if now >= state.next_slow:
                cadences.add("slow")
                state.next_slow = _next(state.next_slow, state.slow_interval_s, now)
            if cadences:
                state.running = self._pool.submit(self._cycle, state, frozenset(cadences))
            tick = self.config.sample_interval_s
            if (tick > 0 and state.failures == 0 and now >= state.next_tick
                    and (state.ticking is None or state.ticking.done())):
                state.next_tick = _next(state.next_tick, tick, now)
                state.ticking = self._pool.submit(self._tick, state)

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
            log.info("config reloaded: %d configured targets", len(new.targets))
        self._reload.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def run(self, tick_s: float = 0.1) -> None:
        self.delivery.start()
        try:
            while not self._stop.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    self._apply_targets()
                self._schedule()
                self._stop.wait(tick_s)
        finally:
            self._pool.shutdown(wait=True)
            for state in self.targets.values():
                state.close_sampler()
            self.delivery.stop()
            log.info("collector stopped: %d batches delivered, %d spooled, %d dropped",
                     self.delivery.delivered, len(self.spool), self.spool.dropped)
