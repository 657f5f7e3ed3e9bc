"""The checked syntax tree of a compiled expression, read from the library's serialization.

`engine.cel.reads` calls `parse` once per compiled expression to find what it reads.
cel-expr-python 0.1.3 exposes no syntax tree, only ``Expression.serialize()``: a
``google.protobuf.Any`` holding a ``cel.expr.CheckedExpr``. Edict does not depend on
protobuf, and the part of the schema needed here is small and frozen by the CEL spec
(``cel/expr/syntax.proto``), so this module decodes the protobuf wire format itself into
`Node` values. Macros arrive expanded: ``has(x.f)`` is a test-only select, ``all``,
``map``… and ``cel.bind`` are comprehensions. Anything unexpected raises `SyntaxUnknown`;
the caller then assumes the expression reads everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECKED_EXPR = "type.googleapis.com/cel.expr.CheckedExpr"
PARSED_EXPR = "type.googleapis.com/cel.expr.ParsedExpr"

# Field numbers of cel.expr.Expr and its parts (cel/expr/syntax.proto).
_CONST, _IDENT, _SELECT, _CALL, _LIST, _STRUCT, _COMPREHENSION = 3, 4, 5, 6, 7, 8, 9
_STRING_VALUE = 6  # Constant.string_value


class SyntaxUnknown(Exception):
    """The serialized expression is not what this decoder knows."""


@dataclass(frozen=True)
class Node:
    """One expression node; only what the analysis of reads needs.

    `kind` is ``ident``, ``select``, ``call``, ``const`` or ``other`` (lists, maps,
    comprehensions). `name` is the identifier, the selected field, the function, or for
    a string constant its value (other constants: None). `operand` is a select's operand
    or a call's receiver. `binds` are the variables a comprehension introduces.
    """

    kind: str
    name: str | None = None
    operand: Node | None = None
    args: tuple[Node, ...] = ()
    test_only: bool = False
    binds: tuple[str, ...] = ()

    def children(self) -> tuple[Node, ...]:
        return self.args if self.operand is None else (self.operand, *self.args)


def parse(serialized: bytes) -> Node:
    """The root expression of ``Expression.serialize()`` output."""
    envelope = _fields(serialized)
    type_url = _text(_one(envelope, 1))
    body = _fields(_bytes(_one(envelope, 2)))
    if type_url == CHECKED_EXPR:
        return _expr(_bytes(_one(body, 4)))
    if type_url == PARSED_EXPR:
        return _expr(_bytes(_one(body, 2)))
    raise SyntaxUnknown(f"unknown serialization {type_url!r}")


def _expr(data: bytes) -> Node:
    fields = _fields(data)
    if _IDENT in fields:
        return Node("ident", name=_text(_one(_fields(_bytes(_one(fields, _IDENT))), 1)))
    if _SELECT in fields:
        select = _fields(_bytes(_one(fields, _SELECT)))
        return Node("select", name=_text(_one(select, 2)), operand=_expr(_bytes(_one(select, 1))),
                    test_only=bool(select.get(3, [0])[-1]))
    if _CALL in fields:
        call = _fields(_bytes(_one(fields, _CALL)))
        target = _expr(_bytes(_one(call, 1))) if 1 in call else None
        return Node("call", name=_text(_one(call, 2)), operand=target,
                    args=tuple(_expr(_bytes(arg)) for arg in call.get(3, [])))
    if _CONST in fields:
        constant = _fields(_bytes(_one(fields, _CONST)))
        value = _text(_one(constant, _STRING_VALUE)) if _STRING_VALUE in constant else None
        return Node("const", name=value)
    if _LIST in fields:
        elements = _fields(_bytes(_one(fields, _LIST))).get(1, [])
        return Node("other", args=tuple(_expr(_bytes(element)) for element in elements))
    if _STRUCT in fields:
        parts: list[Node] = []
        for entry in _fields(_bytes(_one(fields, _STRUCT))).get(2, []):
            entry_fields = _fields(_bytes(entry))
            parts.extend(_expr(_bytes(part)) for number in (3, 4)  # map key, value
                         for part in entry_fields.get(number, []))
        return Node("other", args=tuple(parts))
    if _COMPREHENSION in fields:
        loop = _fields(_bytes(_one(fields, _COMPREHENSION)))
        binds = tuple(_text(name) for number in (1, 3, 8) for name in loop.get(number, []))
        return Node("other", binds=binds, args=tuple(
            _expr(_bytes(part)) for number in (2, 4, 5, 6, 7) for part in loop.get(number, [])))
    raise SyntaxUnknown(f"unknown expression kind, fields {sorted(fields)}")


def _fields(data: bytes) -> dict[int, list[Any]]:
    """A message's fields by number: varints as int, length-delimited as bytes."""
    fields: dict[int, list[Any]] = {}
    at, end = 0, len(data)
    while at < end:
        key = data[at]  # one byte for every field number below 16, all of this schema
        at += 1
        if key >= 0x80:
            key, at = _varint(data, at - 1)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 2:
            size = data[at] if at < end else 0x80
            if size < 0x80:
                at += 1
            else:
                size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire == 0:
            value, at = _varint(data, at)
        elif wire in (1, 5):  # fixed64 / fixed32: doubles, never needed here
            size = 8 if wire == 1 else 4
            value, at = data[at:at + size], at + size
        else:
            raise SyntaxUnknown(f"wire type {wire}")
        if at > end:
            raise SyntaxUnknown("truncated message")
        if number in fields:
            fields[number].append(value)
        else:
            fields[number] = [value]
    return fields


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise SyntaxUnknown("bad varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _one(fields: dict[int, list[Any]], number: int) -> Any:
    values = fields.get(number)
    if not values:
        raise SyntaxUnknown(f"field {number} missing")
    return values[-1]


def _bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise SyntaxUnknown("expected a length-delimited field")
    return value


def _text(value: Any) -> str:
    return _bytes(value).decode("utf-8")
