"""The engine's small HTTP endpoint: /healthz, /readyz and /metrics.

`edict run` starts one `HealthServer` (kubelet probes and Prometheus scrape it).
`/healthz` answers 200 while the process serves at all (plus an optional liveness
check); `/readyz` asks a readiness callback (e.g. informers synced) and answers 200 or
503 with the reason; `/metrics` renders the registry it was given — never the
global one. Runs stdlib `http.server` on a daemon thread; port 0 picks a free port
(`address` tells which).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]
"""A probe: (ok, reason shown in the response body)."""


def always_ok() -> tuple[bool, str]:
    return True, "ok"


class HealthServer:
    def __init__(self, *, host: str, port: int, registry: CollectorRegistry,
                 ready: Check, alive: Check = always_ok) -> None:
        self._registry = registry
        self._ready = ready
        self._alive = alive
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="health-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def _respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        checks = {"/healthz": self._alive, "/livez": self._alive, "/readyz": self._ready}
        check = checks.get(path)
        if check is None:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        try:
            ok, reason = check()
        except Exception as error:  # a broken probe reports itself, not a crash
            ok, reason = False, f"check failed: {error}"
        body = (reason or ("ok" if ok else "not ok")).encode() + b"\n"
        return (200 if ok else 503), "text/plain; charset=utf-8", body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        respond = self._respond

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = respond(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("health: " + format, *args)

        return Handler
