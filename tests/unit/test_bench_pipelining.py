"""bench/live/pipelining.py reads answers with its own minimal HTTP code: it must frame
them exactly (a round checks every answer, so a misread fails the round, not the
numbers)."""

from __future__ import annotations

import pytest

from bench.live.pipelining import parse_answer

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def test_a_sized_answer_is_taken_whole_and_only_once_complete() -> None:
    whole = HEAD + b"Content-Length: 7\r\n\r\n" + b'{"a":1}'
    for cut in range(len(whole)):
        assert parse_answer(bytearray(whole[:cut])) is None
    buffer = bytearray(whole + b"HTTP/1.1 2")
    assert parse_answer(buffer) == (200, b'{"a":1}')
    assert buffer == bytearray(b"HTTP/1.1 2"), "the next answer's bytes stay"


def test_a_chunked_answer_is_joined() -> None:
    whole = (b"HTTP/1.1 422 Unprocessable Entity\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"4\r\n{\"a\"\r\na\r\n:12345678}\r\n0\r\n\r\n")
    for cut in range(len(whole)):
        assert parse_answer(bytearray(whole[:cut])) is None
    buffer = bytearray(whole)
    assert parse_answer(buffer) == (422, b'{"a":12345678}')
    assert not buffer


def test_an_answer_without_framing_is_refused() -> None:
    with pytest.raises(ValueError, match="without framing"):
        parse_answer(bytearray(HEAD + b"\r\n{}"))
