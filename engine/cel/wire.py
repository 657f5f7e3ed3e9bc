"""The protobuf wire format, read and written by hand: enough for CEL's syntax tree.

`engine.cel.syntax` decodes the library's ``Expression.serialize()`` with `fields` and
encodes a rewritten tree back with `key`, `varint` and `delimited`. Edict does not
depend on protobuf; the schema it needs (``cel/expr/checked.proto`` and
``syntax.proto``) is small and frozen by the CEL spec. Anything unexpected raises
`WireError`.
"""

from __future__ import annotations

from typing import Any

Fields = dict[int, list[Any]]
"""A message's fields by number: varints as int, length-delimited as bytes, fixed as bytes."""


class WireError(Exception):
    """Bytes that are not the protobuf message this code expects."""


def fields(data: bytes) -> Fields:
    """Decode one message level; repeated fields keep their order."""
    found: Fields = {}
    at, end = 0, len(data)
    while at < end:
        tag, at = read_varint(data, at)
        number, wire = tag >> 3, tag & 7
        value: Any
        if wire == 2:
            size, at = read_varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire == 0:
            value, at = read_varint(data, at)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at:at + size], at + size
        else:
            raise WireError(f"wire type {wire}")
        if at > end:
            raise WireError("truncated message")
        found.setdefault(number, []).append(value)
    return found


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise WireError("bad varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def one(found: Fields, number: int) -> Any:
    values = found.get(number)
    if not values:
        raise WireError(f"field {number} missing")
    return values[-1]


def as_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise WireError("expected a length-delimited field")
    return value


def as_text(value: Any) -> str:
    return as_bytes(value).decode("utf-8")


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 fields encode negatives as ten-byte varints
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def delimited(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a nested message, a string or bytes."""
    return key(number, 2) + varint(len(payload)) + payload


def integer(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def text(number: int, value: str) -> bytes:
    return delimited(number, value.encode("utf-8"))
