"""The collector's own counters, served as Prometheus text by the daemon.

The daemon has no other HTTP surface, and its counters describe this process (what it did,
what it skipped and why), not the store's data: so they are served by the process itself, on
`[collector] metrics_listen` (off by default; loopback unless an address is given), the way
an exporter is scraped, rather than through the gateway, which cannot see them.

Counters are process-wide (one registry, like prometheus_client's default) and thread-safe:
cycles of many targets increment them from the worker threads.
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELP = {
    "pganalytics_collector_plan_queries_total":
        "Top queries considered for a generic plan, by outcome (planned, utility, not_toplevel, "
        "remembered = known unplannable and not retried yet, explain_failed, no_text, no_database, "
        "no_connection).",
    "pganalytics_collector_plan_explain_errors_total":
        "EXPLAINs of top queries that failed, by SQLSTATE.",
}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name: str, labels: dict | None = None, by: float = 1.0) -> None:
        key = (name, tuple(sorted((k, str(v)) for k, v in (labels or {}).items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + by

    def value(self, name: str, **labels) -> float:
        key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
        with self._lock:
            return self._values.get(key, 0.0)

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4, one HELP/TYPE block per metric."""
        with self._lock:
            items = sorted(self._values.items())
        lines, current = [], None
        for (name, labels), value in items:
            if name != current:
                current = name
                lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} counter"]
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{body}}} {value:g}" if body else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


REGISTRY = Counters()


def parse_listen(value: str) -> tuple[str, int]:
    """"host:port", "[::1]:port" or ":port" (loopback: the counters need not leave the host)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics_listen must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(listen: str, registry: Counters = REGISTRY) -> ThreadingHTTPServer:
    """Serve GET /metrics on a daemon thread; the caller calls .shutdown() at stop."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = registry.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every 15 s would flood the collector's log
            pass

    host, port = parse_listen(listen)
    server_class = _Server6 if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="pganalytics-metrics", daemon=True).start()
    return server
