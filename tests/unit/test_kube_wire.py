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
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient, Configuration

from engine.kube import wire
from engine.kube.errors import (
    AlreadyExists,
    ApiError,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    NotLeader,
    ServerError,
    Timeout,
    TooManyRequests,
    TransportError,
)
from engine.kube.transport import Transport, new_connection, query_text
from engine.kube.watch import WatchStream
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


def test_requests_made_again_from_what_was_remembered_are_the_same(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    """The wire joins a client's header lines once and the transport encodes a constant
    query once: the second and third requests (and a fresh header set between them)
    must go out as urllib3 sends each."""
    requests = [("PATCH", (("fieldManager", "edict"),), "Bearer sesame"),
                ("PATCH", (("fieldManager", "edict"),), "Bearer sesame"),
                ("PATCH", (("fieldManager", "edict"), ("x", "ä&=")), "Bearer changed"),
                ("GET", (("limit", "500"),), "Bearer changed"),
                ("PATCH", (("fieldManager", "edict"),), "Bearer sesame")]
    received: dict[bool, list[Any]] = {True: [], False: []}
    for lean in (True, False):
        transport = transport_to(server, tls[1], lean=lean)
        for method, query, token in requests:
            transport._api.configuration.api_key = {"authorization": token}
            server.scripts = [send(sized("200 OK", b"{}"))]
            server.received.clear()
            transport.request(method, "/api/v1/namespaces/a/configmaps/b", query=query,
                              body=None if method == "GET" else [{"op": "é"}],
                              content_type="application/json-patch+json")
            [request] = server.received
            received[lean].append((request.method, request.target, sorted(
                (k.lower(), v) for k, v in request.headers if k.lower() != "accept-encoding"),
                request.body))
        transport.close()
    assert received[True] == received[False]
    assert [dict(r[2])["authorization"] for r in received[True]] == [
        token for _, _, token in requests]


def test_a_header_with_a_line_break_is_refused_every_time(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    transport = transport_to(server, tls[1])
    server.scripts = [send(sized("200 OK", b"{}"))]
    transport.request("GET", "/a")  # the clean header set is remembered
    for _ in range(2):
        with pytest.raises(ValueError, match="line break"):
            transport.impersonating("eve\r\nX-Injected: 1").request("GET", "/a")
    assert len(server.received) == 1
    transport.close()


@pytest.mark.parametrize("query", [
    (("fieldManager", "edict"),), (("x", "ä&= /"), ("y", "")), (),
    [("fieldManager", "edict")], (("limit", 500),), (("watch", True),), (("a", "1", "2"),),
    ("ab",)])
def test_query_text_is_urlencode(query: Any) -> None:
    def expected() -> Any:
        try:
            return urlencode(list(query), quote_via=quote)
        except Exception as error:
            return type(error)
    for _ in range(2):  # the second from what was remembered
        try:
            got: Any = query_text(query)
        except Exception as error:
            got = type(error)
        assert got == expected()


def test_a_remembered_query_is_told_apart_from_an_equal_one_of_other_types() -> None:
    assert query_text((("x", "1"),)) == "x=1"
    assert query_text((("x", 1),)) == "x=1"
    assert query_text((("x", True),)) == "x=True"  # True == 1, but not the same text


def _fields_reference(lines: list[bytes]) -> dict[str, str]:
    """Every header field by lower-case name, as the wire once parsed them all."""
    fields: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise BadAnswer(f"not a header line: {line[:80]!r}")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        fields[key] = f"{fields[key]}, {text}" if key in fields else text
    return fields


_NAMES = ["Connection", "Content-Encoding", "Content-Length", "Retry-After",
          "Transfer-Encoding", "Audit-Id", "Date", "Content-Type"]
_line = st.one_of(
    st.lists(st.sampled_from([bytes([c]) for c in b"aeC:- \t\n\r\x0b\x0c\xc0Lh1;"]),
             max_size=12).map(b"".join),
    st.tuples(st.sampled_from(_NAMES), st.sampled_from(["", " ", "\t", "\x0c"]),
              st.sampled_from(["", " ", "\t"]), st.text("ab 1,\t", max_size=5),
              st.booleans()).map(
        lambda t: f"{t[1]}{t[0].upper() if t[4] else t[0]}{t[2]}:{t[3]}".encode()))


_TRICKY = [b"Content Length: 5", b"Content-Length : 5", b" Content-Length: 5",
           b"Content-Length\t: 5", b"Content\tLength: 5", b"\x0cConnection: close",
           b"Connection\x0b: x", b":x", b"Retry-After:", b"no colon", b"a\nb: c",
           b"CONTENT-LENGTH: 7", b"Content-Length: \t7 ", b"\xc0: x", b"Retry-After: 1",
           b"retry-after:2", b"Transfer-Encoding: chunked", b"X-A:b:c"]


@pytest.mark.parametrize("lines", [[line] for line in _TRICKY] + [
    [a, b] for a in _TRICKY for b in _TRICKY if a.lower()[:5] == b.lower()[:5]])
def test_tricky_header_lines_read_as_a_full_parse_reads_them(lines: list[bytes]) -> None:
    test_the_fields_read_are_those_a_full_parse_gives.hypothesis.inner_test(lines)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_line, max_size=6))
def test_the_fields_read_are_those_a_full_parse_gives(lines: list[bytes]) -> None:
    try:
        full = _fields_reference(lines)
    except BadAnswer:
        with pytest.raises(BadAnswer, match="not a header line"):
            wire._fields(lines)
        return
    assert wire._fields(lines) == {k: v for k, v in full.items()
                                   if k.encode() in wire._READ}


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


class RecordingSocket:
    """Only what `_Connection.wait_at_most` may use of a socket; any other use fails."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.set: list[float] = []

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, seconds: float) -> None:
        self.set.append(seconds)
        self.timeout = seconds

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected use of the socket: {name}")


def test_a_wait_bound_is_set_only_when_it_changes() -> None:
    sock = RecordingSocket(timeout=None)
    connection = wire._Connection(sock)  # type: ignore[arg-type]
    for seconds in (1.0, 1.0, 1, 0.25, 0.25, 1.0):
        connection.wait_at_most(seconds)
    assert sock.set == [1.0, 0.25, 1.0] and sock.timeout == 1.0


def test_a_kept_connection_sets_its_bound_once_and_follows_a_new_one(
        server: Server, tls: tuple[ssl.SSLContext, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    wire = wire_to(server, tls[1])
    set_to: list[float] = []
    setter = ssl.SSLSocket.settimeout

    def recording(sock: ssl.SSLSocket, seconds: float | None) -> None:
        set_to.append(seconds)  # type: ignore[arg-type]
        setter(sock, seconds)

    monkeypatch.setattr(ssl.SSLSocket, "settimeout", recording)
    server.scripts = [send(sized("200 OK", b"{}")), send(sized("200 OK", b"[]")),
                      stall(answer("200 OK", b'{"a":', "Content-Length: 100"))]
    assert wire.exchange("GET", "/a", [], None, timeout=2.0).body == b"{}"
    set_to.clear()
    assert wire.exchange("GET", "/b", [], None, timeout=2.0).body == b"[]"
    assert set_to == []  # the same bound, request after request: no system call
    # a smaller bound on the same connection holds: the stall (3 s, then the server
    # closes) times out instead of ending with the server's close
    with pytest.raises(TimeoutError):
        wire.exchange("GET", "/c", [], None, timeout=0.3)
    assert set_to == [0.3]
    assert [r.connection for r in server.received] == [1, 1, 1]


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


# -- watches ------------------------------------------------------------------------


WATCH_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def pieces(*parts: bytes, head: bytes = WATCH_HEAD + b"Transfer-Encoding: chunked\r\n\r\n",
           release: threading.Event | None = None) -> Script:
    """Sends `head`, then each part in a write (and TLS record) of its own; then waits
    for `release` if given, and closes the connection."""
    def script(sock: socket.socket) -> bool:
        sock.sendall(head)
        for part in parts:
            time.sleep(0.005)
            sock.sendall(part)
        if release is not None:
            release.wait(10)
        return False
    return script


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunked(*payloads: bytes, end: bytes = b"0\r\n\r\n") -> Script:
    return pieces(*(chunk(p) for p in payloads), end)


def event(kind: str, name: str, rv: int = 1) -> bytes:
    return (b'{"type":"%s","object":{"kind":"ConfigMap","metadata":{"name":"%s",'
            b'"resourceVersion":"%d"},"data":{"k":"\xc3\xa9"}}}\n'
            % (kind.encode(), name.encode(), rv))


A, B, C = event("ADDED", "a", 1), event("MODIFIED", "b", 2), event("DELETED", "c", 3)
BOOKMARK = b'{"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"9"}}}\n'
EXPIRED = (b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired",'
           b'"message":"too old resource version: 1 (5)"}}\n')

WATCHES: dict[str, Script] = {
    "one event a chunk": chunked(A, B, C),
    "an event split across chunks": chunked(A[:5], A[5:30], A[30:] + B[:7], B[7:]),
    "several events in one chunk": chunked(A + B + C),
    "a line split at its newline": chunked(A[:-1], b"\n" + B),
    "blank lines and CRLF": chunked(b"\n" + A[:-1] + b"\r\n\n", B),
    "bookmarks": chunked(A, BOOKMARK, B),
    "ERROR 410 after an event": chunked(A, EXPIRED, B),
    "a last line without newline": chunked(A, B[:-1]),
    "chunk extension and trailer": pieces(b"%x;x=y\r\n%s\r\n" % (len(A), A),
                                          b"0\r\nX-Trailer: t\r\n\r\n"),
    "size line split across writes": pieces(b"%x" % len(A), b"\r\n" + A + b"\r", b"\n",
                                           b"0\r\n", b"\r\n"),
    "until the server closes": pieces(A, B[:9], B[9:],
                                      head=WATCH_HEAD + b"Connection: close\r\n\r\n"),
    "Content-Length": pieces(A, B, head=WATCH_HEAD + b"Content-Length: %d\r\n\r\n"
                             % len(A + B)),
    "closed mid-line": chunked(A, B[:10], end=b""),
    "closed mid-chunk": pieces(chunk(A), b"%x\r\n" % len(B) + B[:10]),
    "closed at a line boundary without the last chunk": chunked(A, B, end=b""),
    "Content-Length cut short": pieces(A, head=WATCH_HEAD + b"Content-Length: 999\r\n\r\n"),
    "a garbage chunk size": pieces(chunk(A), b"zz\r\n" + B + b"\r\n0\r\n\r\n"),
    "a negative chunk size": pieces(chunk(A), b"-5\r\nxxxxx\r\n0\r\n\r\n"),
    "a chunk longer than its size": pieces(chunk(A), b"3\r\nabcdef\r\n0\r\n\r\n"),
    "an event that is not JSON": chunked(A, b"{not json\n", B),
    "403 at open": send(sized("403 Forbidden", status(403, "Forbidden"))),
    "410 at open, chunked": send(answer("410 Gone", chunk(status(410, "Expired"))
                                        + b"0\r\n\r\n", "Transfer-Encoding: chunked")),
    "500 at open, body cut short": send(answer("500 Oops", b"{", "Content-Length: 10"),
                                        keep=False),
}


WHOLE_BODY = {"Content-Length cut short"}
"""urllib3 reads a body of known length whole before it gives any line of it (the wire
gives each line as it comes): only the ends compare."""


def watch_outcome(transport: Transport, read_timeout: float = 5.0,
                  linger: float = 0.0) -> list[Any]:
    """Every event the watch yields, then how it ended."""
    seen: list[Any] = []
    try:
        stream = WatchStream(transport.stream("/api/v1/configmaps",
                                              query=[("watch", "true"), ("x", "ä&=")],
                                              read_timeout=read_timeout, linger=linger))
        seen.extend(stream)
        seen.append("end")
    except TransportError as error:  # the message names the failure in its own words
        seen.append((type(error), error.status, error.reason))
    except ApiError as error:
        seen.append((type(error), error.status, error.reason, error.message))
    return seen


@pytest.mark.parametrize("name", WATCHES)
def test_both_paths_give_the_same_watch(server: Server, tls: tuple[ssl.SSLContext, Path],
                                        name: str) -> None:
    results, received, observed = [], [], []
    for lean in (True, False):
        server.scripts = [WATCHES[name]]
        server.received.clear()
        seen: list[tuple[str, str]] = []
        transport = transport_to(server, tls[1], lean=lean).impersonating("u", ["g1", "g2"])
        transport.observe_requests(lambda method, code, seen=seen: seen.append((method,
                                                                                 code)))
        results.append(watch_outcome(transport))
        transport.close()
        observed.append(seen)
        [request] = server.received
        headers = sorted((k.lower(), v) for k, v in request.headers
                         if k.lower() != "accept-encoding")
        received.append((request.method, request.target, headers, request.body))
    if name in WHOLE_BODY:
        assert results[0][-1] == results[1][-1]
    else:
        assert results[0] == results[1]
    assert received[0] == received[1]
    assert observed[0] == observed[1]


def test_the_watch_cases_cover_every_ending(server: Server,
                                            tls: tuple[ssl.SSLContext, Path]) -> None:
    """The differential cases above are not vacuous: events, each kind of end."""
    outcomes = {}
    for name in ("one event a chunk", "ERROR 410 after an event", "closed mid-line",
                 "a garbage chunk size", "403 at open", "bookmarks"):
        server.scripts = [WATCHES[name]]
        outcomes[name] = watch_outcome(transport_to(server, tls[1]))
    assert [kind for kind, _ in outcomes["one event a chunk"][:-1]] == [
        "ADDED", "MODIFIED", "DELETED"]
    assert outcomes["one event a chunk"][0][1]["data"] == {"k": "é"}
    assert outcomes["one event a chunk"][-1] == "end"
    assert outcomes["bookmarks"][1] == ("BOOKMARK", {
        "kind": "ConfigMap", "metadata": {"resourceVersion": "9"}})
    assert outcomes["ERROR 410 after an event"][1][:3] == (Gone, 410, "Expired")
    assert outcomes["closed mid-line"][-1] == (ConnectionFailed, 0, "ConnectionFailed")
    assert outcomes["a garbage chunk size"][-1] == (ConnectionFailed, 0, "ConnectionFailed")
    assert outcomes["403 at open"] == [(Forbidden, 403, "Forbidden", "said Forbidden")]


def test_a_watch_that_cannot_open_is_observed_as_an_error(
        server: Server, tls: tuple[ssl.SSLContext, Path]) -> None:
    observed: list[tuple[str, str]] = []
    transport = transport_to(server, tls[1])
    transport.observe_requests(lambda method, code: observed.append((method, code)))
    server.scripts = [send(b"garbage\r\n\r\n", keep=False), chunked(A)]
    with pytest.raises(ConnectionFailed):
        transport.stream("/w", query=[], read_timeout=5.0)
    assert list(WatchStream(transport.stream("/w", query=[], read_timeout=5.0))) == [
        ("ADDED", {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1"},
                   "data": {"k": "é"}})]
    assert observed == [("WATCH", "error"), ("WATCH", "200")]
    # each watch had a connection of its own, none is kept for ordinary requests
    assert server.connections == 2


@pytest.mark.parametrize("lean", [True, False])
def test_a_stalled_watch_times_out(server: Server, tls: tuple[ssl.SSLContext, Path],
                                   lean: bool) -> None:
    release = threading.Event()
    server.scripts = [pieces(chunk(A), chunk(B[:10]), release=release)]
    seen = watch_outcome(transport_to(server, tls[1], lean=lean), read_timeout=0.3)
    release.set()
    assert seen[0][0] == "ADDED" and seen[-1] == (Timeout, 0, "Timeout")


@pytest.mark.parametrize(("lean", "linger"), [(True, 0.0), (True, 0.05), (False, 0.0)])
def test_close_from_another_thread_ends_a_blocked_read(
        server: Server, tls: tuple[ssl.SSLContext, Path], lean: bool, linger: float) -> None:
    release = threading.Event()
    server.scripts = [pieces(chunk(A), release=release)]
    stream = WatchStream(transport_to(server, tls[1], lean=lean).stream(
        "/w", query=[], read_timeout=60.0, linger=linger))
    first = threading.Event()
    seen: list[Any] = []

    def read() -> None:
        for item in stream:
            seen.append(item)
            first.set()
        seen.append("end")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(10)
    stream.close()
    reader.join(10)  # the server holds the stream open until released, 60 s read timeout
    ended = not reader.is_alive()
    release.set()
    assert ended and seen[0][0] == "ADDED" and seen[-1] == "end"


def test_a_line_over_the_limit_is_refused(server: Server,
                                          tls: tuple[ssl.SSLContext, Path]) -> None:
    wire = wire_to(server, tls[1], max_line=100)
    line = b'{"type":"ADDED","object":{"x":"' + b"y" * 200 + b'"}}\n'
    server.scripts = [chunked(line[:50], line[50:120], line[120:]),  # across chunks
                      chunked(A[:99] + b"\n"),  # exactly the limit: fine
                      chunked(line),  # in one chunk
                      pieces(line, head=WATCH_HEAD + b"Connection: close\r\n\r\n")]
    for expected in (BadAnswer, None, BadAnswer, BadAnswer):
        stream = wire.stream("/w", [], connect_timeout=1.0, timeout=5.0)
        assert stream.status == 200
        if expected is None:
            assert list(stream.lines()) == [A[:99]]
        else:
            with pytest.raises(expected):
                list(stream.lines())


# -- a lingering watch ----------------------------------------------------------------


@pytest.mark.parametrize("linger", [0.002, 0.05])
@pytest.mark.parametrize("name", WATCHES)
def test_a_lingering_watch_gives_the_same_events_and_end(
        server: Server, tls: tuple[ssl.SSLContext, Path], name: str, linger: float) -> None:
    """Parts 5 ms apart: read at once, after a linger shorter than the gap, or after one
    that spans several parts; the same events and the same end either way."""
    results = []
    for wait in (0.0, linger):
        server.scripts = [WATCHES[name]]
        results.append(watch_outcome(transport_to(server, tls[1]), linger=wait))
    assert results[0] == results[1]


def spaced(payloads: list[bytes], gaps: list[float], release: threading.Event) -> Script:
    """Each payload a chunk (and TLS record) of its own, after the gap before it."""
    def script(sock: socket.socket) -> bool:
        sock.sendall(WATCH_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        for gap, payload in zip(gaps, payloads, strict=True):
            if gap:
                time.sleep(gap)
            sock.sendall(chunk(payload))
        release.wait(10)
        return False
    return script


def read_counted(server: Server, ca_file: Path, monkeypatch: pytest.MonkeyPatch,
                 script: Script, events: int, linger: float
                 ) -> tuple[list[str], int, list[float]]:
    """The names of the first `events` events, the reads that could block, the lingers."""
    reads, pauses = [0], []
    receive = wire._receive

    def counted(sock: socket.socket, buffer: bytearray) -> None:
        reads[0] += 1
        receive(sock, buffer)

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(wire, "_receive", counted)
    monkeypatch.setattr(wire, "_pause", pause)
    server.scripts = [script]
    stream = WatchStream(transport_to(server, ca_file).stream(
        "/w", query=[], read_timeout=10.0, linger=linger))
    names = []
    with stream:
        for _, obj in stream:
            names.append(obj["metadata"]["name"])
            if len(names) == events:
                break
    return names, reads[0], pauses


BURST = [event("MODIFIED", f"o{n}", n) for n in range(60)]


def test_a_burst_is_read_in_a_few_wakeups(server: Server, tls: tuple[ssl.SSLContext, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """One event, a pause, then 59 in a burst: each read as it comes unless lingering;
    lingering, a few reads and all the rest taken as they had arrived."""
    outcomes = {}
    for linger in (0.0, 0.05):
        release = threading.Event()
        outcomes[linger] = read_counted(
            server, tls[1], monkeypatch, spaced(BURST, [0.0, 0.3] + [0.0] * 58, release),
            len(BURST), linger)
        release.set()
    names = [f"o{n}" for n in range(60)]
    assert outcomes[0.0] == (names, 60, [])  # a TLS record is one read
    seen, reads, pauses = outcomes[0.05]
    assert seen == names
    assert reads <= 5
    assert pauses and set(pauses) == {0.05}


def test_a_quiet_watch_is_read_at_once(server: Server, tls: tuple[ssl.SSLContext, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Events further apart than the linger are each read as they come: none waits."""
    release = threading.Event()
    seen, reads, pauses = read_counted(server, tls[1], monkeypatch,
                                       spaced(BURST[:4], [0.12] * 4, release), 4, 0.05)
    release.set()
    assert seen == ["o0", "o1", "o2", "o3"] and reads == 4 and pauses == []


def test_a_backlog_beyond_one_drain_is_read_without_lingering_again(
        server: Server, tls: tuple[ssl.SSLContext, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of 11 events of 60 KB (three drains of up to 256 KiB) waits one linger:
    a drain that stopped with bytes still waiting is followed by another at once."""
    big = [b'{"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":{"name":"o%d",'
           b'"resourceVersion":"%d"},"data":{"pad":"%s"}}}\n' % (n, n, b"x" * 60_000)
           for n in range(12)]
    release = threading.Event()
    seen, _, pauses = read_counted(server, tls[1], monkeypatch,
                                   spaced(big, [0.3, 0.3] + [0.0] * 10, release), 12, 0.05)
    release.set()
    assert seen == [f"o{n}" for n in range(12)]
    assert len(pauses) == 1
