"""`engine.kube.jsontext.loads` is `json.loads` for any bytes: the same value (same key
order, same types) or the same kind of error, whichever path it takes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kube.jsontext import loads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=5), st.booleans(), st.booleans(),
       st.sampled_from(["", "\n", " \r\n\t"]))
def test_what_the_server_sends_is_read_as_json_loads_reads_it(
        value: dict[str, object], ascii_only: bool, spaced: bool, after: str) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only,
                      separators=(", ", ": ") if spaced else (",", ":")) + after
    try:
        encoded = data.encode()
    except UnicodeEncodeError:  # a lone surrogate: only escaped text carries it
        encoded = (json.dumps(value) + after).encode()
    assert json.dumps(loads(encoded)) == json.dumps(json.loads(encoded))


def test_an_answer_ending_in_a_line_feed_is_decoded_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("decoded a second time by json.loads")
    monkeypatch.setattr(json, "loads", refuse)
    assert loads(b'{"a":[1,"\xc3\xa9"]}\n') == {"a": [1, "\u00e9"]}
    assert loads(b'{"a":1} \r\n\t') == {"a": 1}


@pytest.mark.parametrize("data", [
    b' {"a":1}', b'{"a":1}\n', b'\xef\xbb\xbf{"a":1}', '{"a":"\u00e9"}'.encode("utf-16"),
    '{"a":1}'.encode("utf-32"), b'{"a":"\\ud800"}', b'{"a":NaN,"b":-Infinity}', b"[1,2]",
    b'"text"', b"12", b'{"a":{"b":[1,{"c":null}]}}'])
def test_other_input_is_read_as_json_loads_reads_it(data: bytes) -> None:
    assert json.dumps(loads(data)) == json.dumps(json.loads(data))


@pytest.mark.parametrize("data", [
    b'{"a":1} {"b":2}', b'{"a":', b"", b"\xff{}", b"nul", b'{"a":1}x', b'{"a":"\\ud80"}',
    b'{"a":"\xff"}', b"{", b'{"a" 1}', b"{}}", b'{"a":1}\x0c', b'{"a":1}\n\x00',
    '{"a":1}\u00a0'.encode(), b'{"a":1}\x0b', b'{"a":1}\n1'])
def test_what_json_loads_refuses_is_refused_alike(data: bytes) -> None:
    with pytest.raises(ValueError) as refused:
        json.loads(data)
    with pytest.raises(type(refused.value)):
        loads(data)
