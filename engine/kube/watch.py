"""One watch request, read line by line as (type, object) events.

`Cluster.watch` opens the request and wraps the streaming response in a `WatchStream`;
the runtime's informer iterates it on its own thread and may `close()` it from
another (on stop). Each line of the response is one JSON watch event; an ERROR event
carries a `metav1.Status` and is raised as the matching `ApiError` (`Gone` for 410:
the resourceVersion is too old, list again). The stream ends normally when the server
closes it (after `timeoutSeconds`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import urllib3

from engine.objects import Obj

from .answers import Answers
from .errors import api_error, transport_error
from .jsontext import loads

WatchEvent = tuple[str, Obj]
"""(type, object): type is ADDED, MODIFIED, DELETED or BOOKMARK."""


def iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a stream of chunks into lines; a chunk may hold several or half of one."""
    buffer = bytearray()
    for chunk in chunks:
        buffer.extend(chunk)
        while (end := buffer.find(b"\n")) != -1:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.strip():
                yield line
    if buffer.strip():
        yield bytes(buffer)


_MODIFIED = b'{"type":"MODIFIED","object":'


def parse_event(line: bytes, answers: Answers | None = None) -> WatchEvent:
    """Decode one watch event line; raise the typed error for an ERROR event.

    A MODIFIED event whose object is exactly the bytes of an answer in `answers` (our
    own write's echo) takes that answer's decoded object: the same value, not decoded
    twice."""
    if answers is not None and line.startswith(_MODIFIED) and line.endswith(b"}"):
        known = answers.take(line[len(_MODIFIED):-1])
        if known is not None:
            return "MODIFIED", known
    event: Any = loads(line)
    kind = str(event.get("type", ""))
    obj = event.get("object")
    if not isinstance(obj, dict):
        obj = {}
    if kind == "ERROR":
        code = obj.get("code")
        raise api_error(code if isinstance(code, int) else 500, obj)
    return kind, obj


class Body(Protocol):
    """The body of a watch's answer, as `Transport.stream` opens it."""

    def lines(self) -> Iterator[bytes]:
        """Its non-blank lines; raise `OSError` or `ValueError` (or urllib3's
        `HTTPError`) when reading fails."""
        ...

    def shutdown(self) -> None:
        """End a read blocked on another thread."""
        ...

    def close(self) -> None: ...


class Urllib3Body:
    """A watch's answer read through urllib3 (behind a proxy, or a seam client)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def lines(self) -> Iterator[bytes]:
        try:
            yield from iter_lines(self._response.stream(amt=None, decode_content=True))
        finally:
            self._response.close()

    def shutdown(self) -> None:
        # It refuses (ValueError, RuntimeError) when the response is already closed or
        # released.
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self._response.shutdown()

    def close(self) -> None:
        self._response.close()


class WatchStream:
    """Iterable once; `close()` ends the iteration from any thread."""

    def __init__(self, body: Body, *, answers: Answers | None = None) -> None:
        self._body = body
        self._answers = answers
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[WatchEvent]:
        answers = self._answers
        try:
            for line in self._body.lines():
                if self._closed.is_set():
                    return
                yield parse_event(line, answers)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            if self._closed.is_set():
                return  # reading was cut short by close(): a normal end
            raise transport_error(error) from error
        finally:
            self._body.close()

    def close(self) -> None:
        """Stop the stream; a read blocked on another thread returns promptly."""
        if self._closed.is_set():
            return
        self._closed.set()
        # shutdown() unblocks a read in progress on another thread; close() alone
        # would wait for the next byte from the server.
        self._body.shutdown()
        self._body.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
