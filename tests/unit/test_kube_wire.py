"""`engine.kube.wire`, the lean request path, against a small TLS server of our own that
answers exactly the bytes a test scripts: well-formed answers every way HTTP/1.1 frames
a body, error statuses, and answers that are garbage, too large, stalled or endless.

Each well-formed answer is also sent through urllib3 (`Transport(lean=False)`, the
path watches and proxies use), and both paths must give the same value or the same
error. What the server receives is compared the same way.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from engine.kube.errors import (
    AlreadyExists,
    ApiError,
    ConnectionFailed,
    Invalid,
    NotFound,
    NotLeader,
    ServerError,
    Timeout,
    TooManyRequests,
    TransportError,
)
from engine.kube.transport import Transport, new_connection
from engine.kube.wire import BadAnswer, Wire
from engine.runtime.admission.webhook_certs import issue, make_ca, ssl_context

Script = Callable[[socket.socket], bool]
"""Answers one request on the server's side; returns whether to keep the connection."""


@dataclass
class Request:
    connection: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Server:
    """Accepts TLS connections; answers each request with the next of `scripts`."""

    context: ssl.SSLContext
    listener: socket.socket = field(init=False)
    scripts: list[Script] = field(default_factory=list)
    received: list[Request] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(raw, self.connections),
                             daemon=True).start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as sock:
                reader = sock.makefile("rb")
                while True:
                    line = reader.readline()
                    if not line:
                        return
                    method, target, _ = line.decode().split(" ", 2)
                    headers = []
                    while (header := reader.readline()) not in (b"\r\n", b""):
                        name, _, value = header.decode().partition(":")
                        headers.append((name, value.strip()))
                    length = int(dict((k.lower(), v) for k, v in headers).get(
                        "content-length", "0"))
                    self.received.append(Request(number, method, target, headers,
                                                 reader.read(length)))
                    if not self.scripts or not self.scripts.pop(0)(sock):
                        return
        except (OSError, ValueError):
            return


def send(data: bytes, *, keep: bool = True) -> Script:
    def script(sock: socket.socket) -> bool:
        sock.sendall(data)
        return keep
    return script


def stall(data: bytes) -> Script:
    def script(sock: socket.socket) -> bool:
        sock.sendall(data)
        time.sleep(3)
        return False
    return script


def trickle(sock: socket.socket) -> bool:
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(200):
            sock.sendall(b"1\r\n \r\n")
            time.sleep(0.02)
    except OSError:
        pass
    return False


def endless_headers(sock: socket.socket) -> bool:
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    try:
        for _ in range(10_000):
            sock.sendall(b"X-Filler: " + b"a" * 100 + b"\r\n")
    except OSError:
        pass
    return False


def answer(status: str, body: bytes = b"", *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def sized(status: str, body: bytes, *headers: str) -> bytes:
    return answer(status, body, "Content-Type: application/json",
                  f"Content-Length: {len(body)}", *headers)


def status(code: int, reason: str) -> bytes:
    return (b'{"kind":"Status","code":%d,"reason":"%s","message":"said %s"}'
            % (code, reason.encode(), reason.encode()))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_cert, ca_key = make_ca(now, datetime.timedelta(days=1))
    cert, key = issue(ca_cert, ca_key, ["127.0.0.1"], now, datetime.timedelta(days=1))
    ca_file = tmp_path_factory.mktemp("tls") / "ca.crt"
    ca_file.write_bytes(ca_cert)
    return ssl_context(cert, key), ca_file


@pytest.fixture
def server(tls: tuple[ssl.SSLContext, Path]) -> Iterator[Server]:
    made = Server(tls[0])
    yield made
    made.listener.close()


def transport_to(server: Server, ca_file: Path, *, lean: bool = True,
                 timeout: float = 1.0) -> Transport:
    configuration = Configuration(host=f"https://127.0.0.1:{server.port}",
                                  api_key={"authorization": "Bearer sesame"})
    configuration.ssl_ca_cert = str(ca_file)
    return Transport(ApiClient(configuration), timeout=timeout, lean=lean)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("value", call())
    except ApiError as error:
        return (type(error), error.status, error.reason, error.message, error.retry_after)


WELL_FORMED = {
    "content-length": sized("200 OK", b'{"a":[1,2],"b":"\xc3\xa9"}'),
    "empty 201": sized("201 Created", b""),
    "chunked, extension and trailer": answer(
        "200 OK", b'4;x=y\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n',
        "Transfer-Encoding: chunked"),
    "204": answer("204 No Content"),
    "HTTP/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "404": sized("404 Not Found", status(404, "NotFound")),
    "409 AlreadyExists": sized("409 Conflict", status(409, "AlreadyExists")),
    "422": sized("422 Unprocessable Entity", status(422, "Invalid")),
    "429 Retry-After": sized("429 Too Many Requests", status(429, "TooManyRequests"),
                             "Retry-After: 2"),
    "502 not JSON": sized("502 Bad Gateway", b"<html>bad gateway</html>"),
}


@pytest.mark.parametrize("name", WELL_FORMED)
def test_both_paths_give_the_same_answer(server: Server, tls: tuple[ssl.SSLContext, Path],
                                         name: str) -> None:
    results, received = [], []
    for lean in (True, False):
        server.scripts = [send(WELL_FORMED[name])]
        server.received.clear()
        transport = transport_to(server, tls[1], lean=lean)
        results.append(outcome(lambda t=transport: t.request(
            "PATCH", "/api/v1/namespaces/a/configmaps/b",
            query=[("fieldManager", "edict"), ("x", "ä&=")], body={"op": ["é", 1]},
            content_type="application/json-patch+json")))
        transport.close()
        [request] = server.received
        # http.client adds Accept-Encoding: identity; the wire asks for no coding at all
        headers = sorted((k.lower(), v) for k, v in request.headers
                         if k.lower() != "accept-encoding")
        received.append((request.method, request.target, headers, request.body))
    assert results[0] == results[1]
    assert received[0] == received[1]


RETRIED = {
    "GET 429 then 200": ("GET", [sized("429 Too Many Requests", status(429, "X"),
                                       "Retry-After: 0"), sized("200 OK", b"[1]")]),
    "PUT 503 twice then 200": ("PUT", [sized("503 Service Unavailable", b"",
                                             "Retry-After: 0")] * 2
                               + [sized("200 OK", b"[2]")]),
    "DELETE 429 then 404": ("DELETE", [sized("429 Too Many Requests", b"",
                                             "Retry-After: 0"),
                                       sized("404 Not Found", status(404, "NotFound"))]),
    "GET 429 without Retry-After": ("GET", [sized("429 Too Many Requests", b"")]),
    "GET 500 with Retry-After": ("GET", [sized("500 Oops", b"", "Retry-After: 0")]),
    "POST 429": ("POST", [sized("429 Too Many Requests", b"", "Retry-After: 0")]),
}


@pytest.mark.parametrize("name", RETRIED)
def test_both_paths_wait_out_retry_after_alike(server: Server,
                                               tls: tuple[ssl.SSLContext, Path],
                                               name: str) -> None:
    """urllib3's default Retry sends an idempotent request again after a 413/429/503
    with Retry-After; callers count on that, so the wire's path does the same."""
    method, answers = RETRIED[name]
    results, sent = [], []
    for lean in (True, False):
        server.scripts = [send(each) for each in answers] + [
            send(sized("200 OK", b'"too far"'))]
        server.received.clear()
        transport = transport_to(server, tls[1], lean=lean)
        observed: list[tuple[str, str]] = []
        transport.observe_requests(lambda m, c, seen=observed: seen.append((m, c)))
        results.append(outcome(lambda t=transport: t.request(method, "/x", body={})))
        sent.append(len(server.received))
        assert len(observed) == 1  # only the last answer is reported
        transport.close()
    assert results[0] == results[1] and sent[0] == sent[1]
    assert sent[0] == (len(answers) if "then" in name else 1)


def test_retry_after_is_waited_out_three_times_at_most(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    busy = sized("429 Too Many Requests", status(429, "TooManyRequests"), "Retry-After: 0")
    server.scripts = [send(busy)] * 5
    transport = transport_to(server, tls[1])
    with pytest.raises(TooManyRequests):
        transport.request("GET", "/x")
    assert len(server.received) == 4
    server.received.clear()
    server.scripts = [send(sized("429 Too Many Requests", b"", "Retry-After: 60"))]
    with pytest.raises(TooManyRequests) as error:  # longer than the request's timeout
        transport.request("GET", "/x")
    assert error.value.retry_after == 60.0 and len(server.received) == 1


def test_error_statuses_keep_their_types(server: Server,
                                         tls: tuple[ssl.SSLContext, Path]) -> None:
    expected = {"404": NotFound, "409 AlreadyExists": AlreadyExists, "422": Invalid,
                "429 Retry-After": TooManyRequests, "502 not JSON": ServerError}
    transport = transport_to(server, tls[1])
    for name, kind in expected.items():
        server.scripts = [send(WELL_FORMED[name])]
        with pytest.raises(kind) as error:
            transport.request("GET", "/x")
        assert error.value.status == int(name[:3])
    assert error.value.message == "<html>bad gateway</html>"
    server.scripts = [send(WELL_FORMED["429 Retry-After"])]
    with pytest.raises(TooManyRequests) as throttled:
        transport.request("GET", "/x")
    assert throttled.value.retry_after == 2.0 and throttled.value.retryable
    assert server.connections == 1  # every answer above left the connection usable


def test_keep_alive_and_connection_close(server: Server,
                                         tls: tuple[ssl.SSLContext, Path]) -> None:
    transport = transport_to(server, tls[1])
    server.scripts = [send(sized("200 OK", b"{}")), send(sized("200 OK", b"{}"))]
    assert transport.request("GET", "/a") == {} and transport.request("GET", "/b") == {}
    assert server.connections == 1
    server.scripts = [send(sized("200 OK", b"{}", "Connection: close"), keep=False),
                      send(answer("200 OK", b'{"until":"closed"}'), keep=False),
                      send(sized("200 OK", b"[]"))]
    assert transport.request("GET", "/c") == {}
    assert transport.request("GET", "/d") == {"until": "closed"}
    assert transport.request("GET", "/e") == []
    assert server.connections == 3


def test_a_connection_the_server_closed_while_idle_is_not_used(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    transport = transport_to(server, tls[1])
    server.scripts = [send(sized("200 OK", b"{}"), keep=False),
                      send(sized("200 OK", b'{"b":1}'))]
    assert transport.request("GET", "/a") == {}
    time.sleep(0.2)  # the server's close reaches us
    assert transport.request("PATCH", "/b", body={}) == {"b": 1}
    assert [r.connection for r in server.received] == [1, 2]


def drop(sock: socket.socket) -> bool:
    return False  # read the request, close without a word


def test_only_a_get_is_sent_again_after_a_kept_connection_gave_no_answer(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    transport = transport_to(server, tls[1])
    server.scripts = [send(sized("200 OK", b"{}")), drop, send(sized("200 OK", b"[1]"))]
    transport.request("GET", "/a")
    assert transport.request("GET", "/b") == [1]
    assert [(r.method, r.target, r.connection) for r in server.received] == [
        ("GET", "/a", 1), ("GET", "/b", 1), ("GET", "/b", 2)]
    server.received.clear()
    server.scripts = [drop, send(sized("200 OK", b"{}"))]
    with pytest.raises(ConnectionFailed):
        transport.request("PATCH", "/c", body={})
    assert [(r.method, r.connection) for r in server.received] == [("PATCH", 2)]
    # a GET on a new connection that gives no answer is not retried either
    server.scripts = [drop]
    transport = transport_to(server, tls[1])
    with pytest.raises(ConnectionFailed):
        transport.request("GET", "/d")


BROKEN = {
    "garbage": send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", keep=False),
    "no status code": send(b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n", keep=False),
    "informational": send(b"HTTP/1.1 100 Continue\r\n\r\n", keep=False),
    "header without colon": send(answer("200 OK", b"", "Content-Length 0")),
    "folded header": send(answer("200 OK", b"", "Content-Length: 0", " folded")),
    "length not a number": send(answer("200 OK", b"{}", "Content-Length: 2x")),
    "two lengths": send(answer("200 OK", b"{}", "Content-Length: 2",
                               "Content-Length: 3")),
    "length too large": send(answer("200 OK", b"{}", f"Content-Length: {1 << 40}")),
    "gzip not asked for": send(answer("200 OK", b"{}", "Content-Length: 2",
                                      "Content-Encoding: gzip")),
    "unknown transfer coding": send(answer("200 OK", b"{}", "Transfer-Encoding: gzip")),
    "bad chunk size": send(answer("200 OK", b"zz\r\n{}\r\n0\r\n\r\n",
                                  "Transfer-Encoding: chunked")),
    "chunk longer than said": send(answer("200 OK", b"1\r\n{}\r\n0\r\n\r\n",
                                          "Transfer-Encoding: chunked")),
    "chunk-size line endless": send(answer("200 OK", b"1" * 5000,
                                           "Transfer-Encoding: chunked")),
    "endless trailers": send(answer("200 OK", b"0\r\n" + b"T: t\r\n" * 101 + b"\r\n",
                                    "Transfer-Encoding: chunked")),
    "bytes after the answer": send(sized("200 OK", b"{}") + b"HTTP/1.1 200 OK\r\n"),
    "closed mid-body": send(answer("200 OK", b"{}", "Content-Length: 10"), keep=False),
    "headers never end": endless_headers,
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_answers_are_transport_errors(server: Server,
                                             tls: tuple[ssl.SSLContext, Path],
                                             name: str) -> None:
    observed: list[tuple[str, str]] = []
    transport = transport_to(server, tls[1])
    transport.observe_requests(lambda method, code: observed.append((method, code)))
    server.scripts = [BROKEN[name], send(sized("200 OK", b'{"ok":1}'))]
    with pytest.raises(ConnectionFailed) as error:
        transport.request("GET", "/x")
    assert error.value.retryable and error.value.status == 0
    assert observed == [("GET", "error")]
    # the connection that carried it is dropped; the next request gets a good one
    assert transport.request("GET", "/y") == {"ok": 1}


def test_a_stalled_body_times_out(server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    transport = transport_to(server, tls[1], timeout=0.3)
    server.scripts = [stall(answer("200 OK", b'{"a":', "Content-Length: 100"))]
    with pytest.raises(Timeout):
        transport.request("GET", "/x")
    server.scripts = [stall(b"HTTP/1.1 200 OK\r\n")]
    with pytest.raises(Timeout):
        transport.request("GET", "/y")


def wire_to(server: Server, ca_file: Path, **limits: Any) -> Wire:
    transport = transport_to(server, ca_file)
    pool = transport._pool()
    assert pool is not None
    return Wire(lambda timeout: new_connection(pool, timeout), authority="127.0.0.1",
                keep=4, **limits)


def test_an_endless_trickle_ends_at_the_answer_deadline(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    wire = wire_to(server, tls[1], max_seconds=0.3)
    server.scripts = [trickle]
    with pytest.raises(TimeoutError):
        wire.exchange("GET", "/x", [], None, timeout=1.0)


def test_the_body_limit_holds_for_every_framing(server: Server,
                                                tls: tuple[ssl.SSLContext, Path]) -> None:
    wire = wire_to(server, tls[1], max_body=10)
    server.scripts = [send(sized("200 OK", b"x" * 10)),
                      send(sized("200 OK", b"x" * 11)),
                      send(answer("200 OK", b"6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n",
                                  "Transfer-Encoding: chunked")),
                      send(answer("200 OK", b"x" * 50_000), keep=False)]
    assert wire.exchange("GET", "/a", [], None, timeout=1.0).body == b"x" * 10
    for _ in range(3):
        with pytest.raises(BadAnswer):
            wire.exchange("GET", "/b", [], None, timeout=1.0)


def test_fence_observers_and_impersonation(server: Server,
                                           tls: tuple[ssl.SSLContext, Path]) -> None:
    observed: list[tuple[str, str]] = []
    transport = transport_to(server, tls[1])
    transport.observe_requests(lambda method, code: observed.append((method, code)))
    view = transport.impersonating("system:serviceaccount:a:b", ["g1", "g2"])
    allowed = [False]
    view.fence_writes(lambda: allowed[0])
    with pytest.raises(NotLeader):
        transport.request("PATCH", "/a", body={}, fenced=True)
    assert server.received == [] and observed == []
    allowed[0] = True
    server.scripts = [send(sized("404 Not Found", status(404, "NotFound")))]
    with pytest.raises(NotFound):
        view.request("PATCH", "/a", body={}, fenced=True)
    assert observed == [("PATCH", "404")]
    [request] = server.received
    assert [(k, v) for k, v in request.headers if k.startswith("Impersonate")] == [
        ("Impersonate-User", "system:serviceaccount:a:b"), ("Impersonate-Group", "g1"),
        ("Impersonate-Group", "g2")]
    assert ("authorization", "Bearer sesame") in [(k.lower(), v) for k, v in request.headers]
    with pytest.raises(ValueError):
        transport.impersonating("eve\r\nX-Injected: 1").request("GET", "/a")
    with pytest.raises(ValueError):
        transport.request("GET", "/a b")


def test_an_unreachable_server_is_a_transport_error(tls: tuple[ssl.SSLContext, Path]) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    configuration = Configuration(host=f"https://127.0.0.1:{port}")
    configuration.ssl_ca_cert = str(tls[1])
    transport = Transport(ApiClient(configuration), timeout=1.0)
    with pytest.raises(TransportError):
        transport.request("GET", "/x")


def test_the_server_certificate_is_verified(server: Server, tmp_path: Path) -> None:
    """The wire's connections are the urllib3 pool's: a CA that did not sign the
    server's certificate fails the handshake, and nothing is sent."""
    now = datetime.datetime.now(datetime.UTC)
    other_ca, _ = make_ca(now, datetime.timedelta(days=1))
    (tmp_path / "other.crt").write_bytes(other_ca)
    transport = transport_to(server, tmp_path / "other.crt")
    server.scripts = [send(sized("200 OK", b"{}"))]
    with pytest.raises(ConnectionFailed) as error:
        transport.request("GET", "/x")
    assert "certificate verify failed" in str(error.value)
    assert server.received == []
