"""HTTP/1.1 on kept-alive connections to the API server, without http.client or urllib3.

`Transport` sends its ordinary requests (everything but watches) through one `Wire`
when it talks to the API server directly, without a proxy. The request goes out as one
buffer; of the answer only the status line, the headers that frame the body
(Content-Length, Transfer-Encoding, Connection) and Retry-After are read. That is what
a request needs, and it costs a fraction of the CPU of http.client (which parses every
answer's headers with the `email` package) plus urllib3's response wrapper: this
process writes once per object it changes, so the client's CPU per request is most of
what the live engine spends.

Connections are made by the official client's urllib3 pool (`new_connection`), so they
have exactly its TLS settings (CA, client certificate, server name). A watch
(`Wire.stream`) gets a new connection of its own, read line by line as its body comes
in and closed when it ends. An idle connection is checked before it is used again (a server that
closed it has made it readable) and dropped if it is not clean.

A stream may *linger* (`Wire.stream(linger=...)`, the informers' setting): while its
events come faster than one per `linger` seconds, it waits that long before reading
again and then reads everything that has arrived, so a burst wakes the reading thread
once per `linger` instead of once per event (each event is its own TLS record and
chunk: waking up and reading one costs several times decoding it). A quiet stream is
read at once: the wait is only taken right after a read that found bytes waiting or
came within `linger` of asking.

The server is not trusted to be well-formed: the header block is capped at
`MAX_HEAD` bytes, the body at `max_body`, each wait for bytes at `timeout` seconds and
the whole answer at `max_seconds`. Whatever breaks these rules, or is not HTTP/1.1 as
read here (a Content-Encoding we did not ask for, a transfer coding other than
chunked, a 1xx answer, bytes after the answer), raises `BadAnswer`; a socket failure
raises its `OSError` (`TimeoutError` for a timeout). Either way the connection is
closed and the caller maps the error to a `TransportError`.

A request is sent a second time, on a new connection, only when that cannot make the
server act twice: the kept-alive connection it was written to failed before the whole
request was written, or gave no byte of an answer to a GET.

Thread-safety: one `Wire` serves many threads; each request holds its connection alone,
and the idle ones wait in a deque (whose append and pop are atomic).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

MAX_HEAD = 64 * 1024
"""Bytes of status line plus headers (Go's net/http server allows 1 MiB to clients;
the API server sends well under 1 KiB)."""

MAX_LINE = 4096
"""Bytes of one chunk-size or trailer line."""

MAX_BODY = 1 << 30
"""Bytes of one answer body: far above any list page the engine asks for."""

MAX_SECONDS = 300.0
"""Seconds one whole answer may take, however steadily its bytes trickle in."""

MAX_EVENT = 64 << 20
"""Bytes of one line (one watch event) of a stream."""

MAX_ERROR_BODY = 1 << 20
"""Bytes of the body of a stream's error answer (a `metav1.Status`: well under 1 KiB)."""

_RECV = 256 * 1024
_RENDERED = 64  # header sets remembered rendered by one wire
_pause = time.sleep  # a stream's linger (a seam for tests)
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_NO_BODY = (204, 304)


class BadAnswer(ValueError):
    """The server's answer is not HTTP/1.1 as this module reads it, or breaks a limit."""


class Answer(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None


class _Connection:
    """One socket and the bytes read from it but not yet used."""

    __slots__ = ("buffer", "received", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.received = 0  # bytes of the current answer read so far

    def fill(self, deadline: float, timeout: float) -> None:
        """Wait for more bytes (at most `timeout`, and not past `deadline`)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer did not end in time")
        self.wait_at_most(timeout if left >= timeout else left)
        data = self.sock.recv(_RECV)
        if not data:
            raise ConnectionAbortedError("the server closed the connection mid-answer"
                                         if self.received else
                                         "the server closed the connection")
        self.received += len(data)
        self.buffer += data

    def line(self, deadline: float, timeout: float) -> bytes:
        """One CRLF-terminated line (without the CRLF)."""
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_LINE:
                raise BadAnswer(f"a line of the answer is longer than {MAX_LINE} bytes")
            self.fill(deadline, timeout)
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        return line

    def take(self, size: int, deadline: float, timeout: float) -> bytes:
        while len(self.buffer) < size:
            self.fill(deadline, timeout)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def wait_at_most(self, seconds: float) -> None:
        """Bound each wait for the socket by `seconds`. Set only when it changes: setting
        it is a system call that lets other threads take the interpreter, and a kept
        connection waits with the same bound request after request."""
        if self.sock.gettimeout() != seconds:
            self.sock.settimeout(seconds)

    def clean(self) -> bool:
        """Idle, nothing unread, and not closed by the server (which makes it readable)."""
        if self.buffer:
            return False
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        self.sock.close()


class Wire:
    """Requests to one API server over connections `connect(timeout)` opens."""

    def __init__(self, connect: Callable[[float], socket.socket], *, authority: str,
                 keep: int, max_body: int = MAX_BODY,
                 max_seconds: float = MAX_SECONDS, max_line: int = MAX_EVENT) -> None:
        self._connect = connect
        self._max_line = max_line
        self._host = f"Host: {authority}\r\n"
        self._keep = keep
        self._max_body = max_body
        self._max_seconds = max_seconds
        self._idle: deque[_Connection] = deque()
        self._rendered: dict[tuple[tuple[str, str], ...], str] = {}  # `_header_lines`

    def close(self) -> None:
        """Close the idle connections (one in use is closed when its request ends)."""
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:  # taken by another thread meanwhile
                break

    def exchange(self, method: str, target: str, headers: Sequence[tuple[str, str]],
                 body: bytes | None, *, timeout: float) -> Answer:
        """Send one request, read its whole answer; raise `BadAnswer` or `OSError`."""
        request = self._render(method, target, headers, body)
        retried = False
        while True:
            connection, reused = self._take(timeout)
            written = False
            try:
                connection.wait_at_most(timeout)
                connection.sock.sendall(request)
                written = True
                answer, keep = self._read(connection, method, timeout)
            except (OSError, BadAnswer):
                connection.close()
                stale = reused and (not written or (method == "GET"
                                                    and connection.received == 0))
                if stale and not retried:
                    retried = True
                    continue
                raise
            if keep and len(self._idle) < self._keep:
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def _render(self, method: str, target: str, headers: Sequence[tuple[str, str]],
                body: bytes | None) -> bytes:
        if _BAD_TARGET.search(target) or _BAD_TARGET.search(method):
            raise ValueError(f"not a request target: {target!r}")
        fields = self._header_lines(headers)
        length = "" if body is None else f"Content-Length: {len(body)}\r\n"
        head = f"{method} {target} HTTP/1.1\r\n{self._host}{fields}{length}\r\n".encode(
            "latin-1")
        return head + body if body is not None else head

    def _header_lines(self, headers: Sequence[tuple[str, str]]) -> str:
        """The header lines of `headers`, checked; the same headers (every request of a
        client sends the same few) are checked and joined once."""
        key = tuple(headers)
        text = self._rendered.get(key)
        if text is None:
            for name, value in key:
                if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                    raise ValueError(f"header {name!r} holds a line break")
            text = "".join(f"{name}: {value}\r\n" for name, value in key)
            if len(self._rendered) >= _RENDERED:  # a refreshed token, impersonations
                self._rendered.clear()
            self._rendered[key] = text
        return text

    def _take(self, timeout: float) -> tuple[_Connection, bool]:
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return _Connection(self._connect(timeout)), False
            if connection.clean():
                connection.received = 0
                return connection, True
            connection.close()

    def stream(self, target: str, headers: Sequence[tuple[str, str]], *,
               connect_timeout: float, timeout: float, linger: float = 0.0) -> Stream:
        """GET `target` on a new connection of its own, for a long-running answer (a
        watch): read its status line and headers; raise `BadAnswer` or `OSError`.

        A 2xx answer's body is left to `Stream.lines`; any other answer's body (of at
        most `MAX_ERROR_BODY` bytes, else it is left empty) is read and the connection
        closed."""
        request = self._render("GET", target, headers, None)
        connection = _Connection(self._connect(connect_timeout))
        try:
            connection.sock.settimeout(timeout)
            connection.sock.sendall(request)
            deadline = time.monotonic() + self._max_seconds
            status, fields, _ = _head(connection, deadline, timeout)
            framing = _framing(fields)
        except BaseException:
            connection.close()
            raise
        if 200 <= status <= 299:
            return Stream(status, b"", fields.get("retry-after"), connection, framing,
                          timeout, self._max_line, linger)
        try:
            body, _ = self._body(connection, "GET", status, framing, deadline, timeout,
                                 MAX_ERROR_BODY)
        except (OSError, BadAnswer):
            body = b""
        finally:
            connection.close()
        return Stream(status, body, fields.get("retry-after"), None, framing, timeout)

    def _read(self, connection: _Connection, method: str, timeout: float
              ) -> tuple[Answer, bool]:
        """The answer, and whether the connection may carry another request."""
        deadline = time.monotonic() + self._max_seconds
        status, fields, http11 = _head(connection, deadline, timeout)
        keep = http11 and "close" not in fields.get("connection", "").lower()
        body, closed = self._body(connection, method, status, _framing(fields), deadline,
                                  timeout, self._max_body)
        if connection.buffer:
            raise BadAnswer("the server sent bytes after its answer")
        return Answer(status, body, fields.get("retry-after")), keep and not closed

    def _body(self, connection: _Connection, method: str, status: int,
              framing: str | int | None, deadline: float, timeout: float, limit: int
              ) -> tuple[bytes, bool]:
        """The body framed as `framing` says, and whether it ended with the connection."""
        if method == "HEAD" or status in _NO_BODY:
            return b"", False
        if framing == "chunked":
            return _chunked(connection, deadline, timeout, limit), False
        if isinstance(framing, int):
            if framing > limit:
                raise BadAnswer(f"Content-Length {framing} exceeds {limit} bytes")
            return connection.take(framing, deadline, timeout), False
        return _until_closed(connection, deadline, timeout, limit), True


class Stream:
    """A long-running answer (a watch) on a connection of its own: its status, and for
    a 2xx answer its body read as lines as they come.

    The body is read with large `recv` calls, de-chunked as it comes in, and split at
    each newline; a line longer than `max_line` bytes, bad chunk framing, or a
    connection that ends before the body does raise `BadAnswer` or `OSError`. Each
    wait for bytes is bounded by `timeout`, not the whole body (a watch lasts as long
    as the server keeps it open). `shutdown()` may be called from another thread: it
    ends a read blocked there, which then raises `OSError` or ends."""

    def __init__(self, status: int, body: bytes, retry_after: str | None,
                 connection: _Connection | None, framing: str | int | None,
                 timeout: float, max_line: int = MAX_EVENT, linger: float = 0.0) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self._connection = connection
        self._framing = framing
        self._timeout = timeout
        self._max_line = max_line
        self._linger = linger
        self._busy = False  # the last read found bytes within `linger`: wait first
        self._backlog = False  # the last drain stopped with bytes still waiting

    def lines(self) -> Iterator[bytes]:
        """The body's non-blank lines, without their newline (the last one may have
        none); the connection is closed when they end."""
        pending = bytearray()
        limit = self._max_line
        try:
            for piece in self._pieces():
                start = 0
                while (end := piece.find(b"\n", start)) >= 0:
                    if pending:
                        pending += piece[start:end]
                        line = bytes(pending)
                        pending.clear()
                    else:
                        line = piece[start:end]
                    start = end + 1
                    if len(line) > limit:
                        raise BadAnswer(f"a line of the stream exceeds {limit} bytes")
                    if line.strip():
                        yield line
                if start < len(piece):
                    pending += piece[start:]
                    if len(pending) > limit:
                        raise BadAnswer(f"a line of the stream exceeds {limit} bytes")
            if pending.strip():
                yield bytes(pending)
        finally:
            self.close()

    def _pieces(self) -> Iterator[bytes]:
        """The body's bytes, de-chunked, in the pieces they arrive in."""
        connection = self._connection
        if connection is None:
            return
        buffer = connection.buffer
        sock = connection.sock
        sock.settimeout(self._timeout)
        framing = self._framing
        if framing != "chunked":  # a Content-Length, or until the server closes
            left = framing if isinstance(framing, int) else -1
            while left:
                if not buffer:
                    try:
                        self._more(sock, buffer)
                    except _Closed:
                        if left > 0:
                            raise
                        return
                piece = bytes(buffer[:left] if left > 0 else buffer)
                del buffer[:len(piece)]
                left -= len(piece) if left > 0 else 0
                yield piece
            return
        while True:
            while (end := buffer.find(b"\r\n")) < 0:
                if len(buffer) > MAX_LINE:
                    raise BadAnswer(f"a chunk-size line is longer than {MAX_LINE} bytes")
                self._more(sock, buffer)
            size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise BadAnswer(f"not a chunk size: {bytes(buffer[:min(end, 40)])!r}")
            del buffer[:end + 2]
            size = int(size_text, 16)
            if size == 0:
                break
            while size:
                if not buffer:
                    _receive(sock, buffer)
                piece = bytes(buffer[:size])
                del buffer[:len(piece)]
                size -= len(piece)
                yield piece
            while len(buffer) < 2:
                _receive(sock, buffer)
            if buffer[:2] != b"\r\n":
                raise BadAnswer("a chunk does not end where its size says")
            del buffer[:2]
        trailers = 0
        while True:  # trailer lines, up to the blank line that ends the body
            while (end := buffer.find(b"\r\n")) < 0:
                if len(buffer) > MAX_LINE:
                    raise BadAnswer(f"a trailer line is longer than {MAX_LINE} bytes")
                _receive(sock, buffer)
            del buffer[:end + 2]
            if not end:
                return
            trailers += 1
            if trailers > 100:
                raise BadAnswer("more than 100 trailer lines")

    def _more(self, sock: socket.socket, buffer: bytearray) -> None:
        """Read what comes next of the body (between events: `buffer` holds no whole
        line); while the stream is busy, after lingering, all that has arrived."""
        linger = self._linger
        if linger and self._busy and not buffer:
            if not self._backlog:
                _pause(linger)
            got, self._backlog = _drain(sock, buffer, self._timeout)
            if got:
                return  # still busy
        asked = time.monotonic()
        _receive(sock, buffer)
        self._busy = bool(linger) and time.monotonic() - asked < linger

    def shutdown(self) -> None:
        """End a read blocked on another thread (the socket stays open until `close`)."""
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(OSError, ValueError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class _Closed(ConnectionAbortedError):
    """The server closed the connection (a read gave no bytes)."""


def _receive(sock: socket.socket, buffer: bytearray) -> None:
    data = sock.recv(_RECV)
    if not data:
        raise _Closed("the server closed the connection mid-answer")
    buffer += data


def _drain(sock: socket.socket, buffer: bytearray, timeout: float) -> tuple[bool, bool]:
    """Read, without waiting, what has arrived (a TLS socket gives one record per read),
    up to `_RECV` bytes; return whether there was anything, and whether more waits."""
    got = False
    sock.settimeout(0.0)
    try:
        while len(buffer) < _RECV:
            try:
                data = sock.recv(_RECV)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return got, False  # nothing more to read without waiting
            if not data:
                if got:
                    return True, False  # the bytes before the end first, the end next
                raise _Closed("the server closed the connection mid-answer")
            buffer += data
            got = True
    finally:
        sock.settimeout(timeout)
    return got, True


def _head(connection: _Connection, deadline: float, timeout: float
          ) -> tuple[int, dict[str, str], bool]:
    """The status, the header fields read (`_fields`), and whether the answer is
    HTTP/1.1."""
    buffer = connection.buffer
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > MAX_HEAD:
            raise BadAnswer(f"the answer's headers exceed {MAX_HEAD} bytes")
        connection.fill(deadline, timeout)
    if end > MAX_HEAD:
        raise BadAnswer(f"the answer's headers exceed {MAX_HEAD} bytes")
    lines = bytes(buffer[:end]).split(b"\r\n")
    del buffer[:end + 4]
    status, http11 = _status_line(lines[0])
    return status, _fields(lines[1:]), http11


def _framing(fields: dict[str, str]) -> str | int | None:
    """How the body ends: "chunked", after a Content-Length, or (None) at close."""
    if fields.get("content-encoding", "identity").lower() != "identity":
        raise BadAnswer(f"an answer in {fields['content-encoding']!r}, which was not "
                        "asked for")
    coding = fields.get("transfer-encoding")
    length = fields.get("content-length")
    if coding is not None:
        if coding.lower() != "chunked":
            raise BadAnswer(f"transfer coding {coding!r} is not supported")
        return "chunked"
    if length is not None:
        if not length.isdigit() or len(length) > 18:
            raise BadAnswer(f"Content-Length {length[:40]!r} is not a length")
        return int(length)
    return None


def _chunked(connection: _Connection, deadline: float, timeout: float, limit: int
             ) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = connection.line(deadline, timeout)
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise BadAnswer(f"not a chunk size: {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise BadAnswer(f"the answer's body exceeds {limit} bytes")
        parts.append(connection.take(size, deadline, timeout))
        if connection.take(2, deadline, timeout) != b"\r\n":
            raise BadAnswer("a chunk does not end where its size says")
    trailers = 0
    while connection.line(deadline, timeout):
        trailers += 1
        if trailers > 100:
            raise BadAnswer("more than 100 trailer lines")
    return b"".join(parts)


def _until_closed(connection: _Connection, deadline: float, timeout: float,
                  limit: int) -> bytes:
    while True:
        if len(connection.buffer) > limit:
            raise BadAnswer(f"the answer's body exceeds {limit} bytes")
        try:
            connection.fill(deadline, timeout)
        except ConnectionAbortedError:
            break
    body = bytes(connection.buffer)
    connection.buffer.clear()
    return body


def _status_line(line: bytes) -> tuple[int, bool]:
    """The status code, and whether the answer is HTTP/1.1 (keep-alive by default)."""
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if (version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit()
            or rest[3:4] not in (b"", b" ")):
        raise BadAnswer(f"not an HTTP/1.1 status line: {line[:80]!r}")
    status = int(code)
    if status < 200:
        raise BadAnswer(f"an informational answer ({status}) to a request that asked "
                        "for none")
    return status, version == b"HTTP/1.1"


_HEADER_NAME = re.compile(rb"[^:\s](?:[^: ]*[^:\s])?:")
"""The start of a header line: a name without spaces or a colon, starting and ending
with no whitespace (as `bytes.strip` sees it), then its colon."""

_READ = frozenset({b"connection", b"content-encoding", b"content-length", b"retry-after",
                   b"transfer-encoding"})
"""The header fields the wire reads (framing, keep-alive, Retry-After)."""


def _fields(lines: list[bytes]) -> dict[str, str]:
    """The fields in `_READ`, by lower-case name, repeated ones joined with ", "; every
    line is checked to be a header line (BadAnswer if one is not)."""
    if not all(map(_HEADER_NAME.match, lines)):
        bad = next(line for line in lines if not _HEADER_NAME.match(line))
        raise BadAnswer(f"not a header line: {bad[:80]!r}")
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in _READ:
            key, text = name.decode(), value.strip().decode("latin-1")
            fields[key] = f"{fields[key]}, {text}" if key in fields else text
    return fields
