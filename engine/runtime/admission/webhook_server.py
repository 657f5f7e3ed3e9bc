"""The HTTPS endpoint the API server calls: AdmissionReview v1 on /mutate and /validate.

`edict run --webhook-addr` starts one `WebhookServer` on every replica (leader or not);
the manager owns it. Each POST body goes to `AdmissionHandler.review` and its answer is
sent back as JSON; ``GET /healthz`` answers over the same TLS stack, so a probe checks
what the API server uses. Connections are kept alive (HTTP/1.1), as the API server
reuses them, and each is served by its own thread (stdlib `ThreadingHTTPServer`); an
answer leaves in one write, with TCP_NODELAY.

TLS: every accepted connection is wrapped with the context `tls()` returns at that
moment, so a rotated certificate (`webhook_certs.py`) is served from the next
connection on, without a restart; the handshake runs in the connection's thread, never
in the accept loop. Status codes: 200 with the review, 400 for a body that is no
AdmissionReview, 503 while the rule sets are not loaded, 500 for a bug — the last two
make the API server apply the webhook's failurePolicy.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.evaluate.request import Phase

from .admission import AdmissionHandler, BadReview, NotReady

log = logging.getLogger(__name__)

PATHS = {"/mutate": Phase.MUTATE, "/validate": Phase.VALIDATE}
MAX_BODY = 8 * 1024 * 1024  # the API server's own request size limit is 3 MiB
IDLE_TIMEOUT = 120.0  # seconds a kept-alive connection may wait for its next request


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the API server opens many connections at once under load
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(IDLE_TIMEOUT)
        # answers are small and go out whole: never wait for an ACK before sending
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            wrapped = self._tls().wrap_socket(sock, server_side=True,
                                              do_handshake_on_connect=False)
        except Exception:
            sock.close()
            raise
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up or fails the handshake is not an engine error
        log.debug("webhook connection from %s failed", client_address, exc_info=True)


class WebhookServer:
    def __init__(self, *, host: str, port: int, handler: AdmissionHandler,
                 tls: Callable[[], ssl.SSLContext]) -> None:
        self._server = _Server((host, port), self._handler_class(handler), tls)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="webhook-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    @staticmethod
    def _handler_class(admission: AdmissionHandler) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # status line, headers and body leave in one write when the request is done
            # (unbuffered, the headers go first and the body waits for their ACK: a
            # delayed ACK costs 40 ms per review)
            wbufsize = 64 * 1024

            def setup(self) -> None:
                super().setup()
                # the TLS handshake, in this connection's thread
                self.request.do_handshake()

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] in ("/healthz", "/readyz"):
                    self._send(200, b"ok\n", "text/plain; charset=utf-8")
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")

            def do_POST(self) -> None:
                phase = PATHS.get(self.path.split("?", 1)[0])
                length = int(self.headers.get("Content-Length") or 0)
                if phase is None or length <= 0 or length > MAX_BODY:
                    self.close_connection = True
                    self._send(404 if phase is None else 400, b"{}")
                    return
                body = self.rfile.read(length)
                try:
                    review = admission.review(body, phase)
                except BadReview as error:
                    self._send(400, json.dumps({"error": str(error)}).encode())
                    return
                except NotReady as error:
                    self._send(503, json.dumps({"error": str(error)}).encode())
                    return
                except Exception:
                    log.exception("answering an AdmissionReview on %s failed", self.path)
                    self._send(500, b'{"error": "internal error"}')
                    return
                self._send(200, review)

            def _send(self, status: int, body: bytes,
                      content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("webhook: " + format, *args)

        return Handler


def probe(host: str, port: int, *, timeout: float = 2.0) -> bool:
    """Whether a TLS connection to the webhook answers ``/healthz`` (no verification:
    this checks that the server serves, not who it is)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: edict\r\nConnection: close\r\n\r\n")
            return tls.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
