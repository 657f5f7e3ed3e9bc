"""The checked syntax tree of a compiled expression: decoded, inspected, rewritten, encoded.

cel-expr-python 0.1.3 exposes no syntax tree, only ``Expression.serialize()``: a
``google.protobuf.Any`` holding a ``cel.expr.CheckedExpr`` (tree, the overloads the
type-checker chose, the type of every node), and ``Env.deserialize`` to turn such bytes
back into a program. `decode` reads them into `Checked` (`Node` values plus the
reference and type maps), `Checked.encode` writes them back (`engine.cel.wire` does
the byte work). Who uses it: `engine.cel.reads` (what an expression reads),
`engine.cel.checks` (compile-time checks), `engine.cel.cost` (the cost estimate) and
`engine.cel.rewrite` (calls of the Kubernetes library routed to their runtime
functions). Macros arrive expanded: ``has(x.f)`` is a test-only select; ``all``,
``map``… and ``cel.bind`` are comprehensions. Anything unexpected raises
`SyntaxUnknown`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.cel import wire

CHECKED_EXPR = "type.googleapis.com/cel.expr.CheckedExpr"
PARSED_EXPR = "type.googleapis.com/cel.expr.ParsedExpr"

# Field numbers of cel.expr.Expr (cel/expr/syntax.proto).
_ID, _CONST, _IDENT, _SELECT, _CALL, _LIST, _STRUCT, _COMPREHENSION = 2, 3, 4, 5, 6, 7, 8, 9
_CONSTANT_KINDS = {1: "null", 2: "bool", 3: "int", 4: "uint", 5: "double", 6: "string",
                   7: "bytes", 8: "duration", 9: "timestamp"}
_PRIMITIVES = {1: "bool", 2: "int", 3: "uint", 4: "double", 5: "string", 6: "bytes"}
_WELL_KNOWN = {1: "any", 2: "google.protobuf.Timestamp", 3: "google.protobuf.Duration"}


class SyntaxUnknown(Exception):
    """The serialized expression is not what this decoder knows."""


@dataclass(frozen=True)
class Entry:
    """One entry of a map or message literal."""

    id: int
    value: Node
    key: Node | None = None  # map literals
    field: str = ""          # message literals
    optional: bool = False


@dataclass(frozen=True)
class Loop:
    """The parts of a comprehension (what a macro expands to)."""

    iter_var: str
    iter_range: Node
    accu_var: str
    accu_init: Node
    condition: Node
    step: Node
    result: Node
    iter_var2: str = ""


@dataclass(frozen=True)
class Node:
    """One expression node.

    `kind` is ``ident``, ``select``, ``call``, ``const``, ``list``, ``map`` or
    ``comprehension``. `name` is the identifier, the selected field, the function, or
    for a string constant its value. `operand` is a select's operand or a call's
    receiver; `args` a call's arguments or a list's elements. A constant keeps its
    `value`, its kind (`const`) and its encoded form (`raw`). `binds` are the variables
    a comprehension introduces.
    """

    kind: str
    name: str | None = None
    operand: Node | None = None
    args: tuple[Node, ...] = ()
    test_only: bool = False
    binds: tuple[str, ...] = ()
    id: int = 0
    value: Any = None
    const: str = ""
    raw: bytes = b""
    entries: tuple[Entry, ...] = ()
    message: str = ""
    optional_indices: tuple[int, ...] = ()
    loop: Loop | None = None

    def children(self) -> tuple[Node, ...]:
        if self.loop is not None:
            part = self.loop
            return (part.iter_range, part.accu_init, part.condition, part.step, part.result)
        if self.entries:
            return tuple(node for entry in self.entries
                         for node in (entry.key, entry.value) if node is not None)
        return self.args if self.operand is None else (self.operand, *self.args)

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, parents first."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))


@dataclass(frozen=True)
class Reference:
    """What the type-checker resolved a node to: a name, or a function's overloads."""

    name: str = ""
    overloads: tuple[str, ...] = ()
    value: bytes = b""


@dataclass(frozen=True)
class Checked:
    """A checked expression: the tree, the chosen overloads, the type of each node."""

    root: Node
    references: Mapping[int, Reference] = field(default_factory=dict)
    types: Mapping[int, str] = field(default_factory=dict)
    raw_types: Mapping[int, bytes] = field(default_factory=dict)
    source_info: bytes = b""
    version: str = ""

    def encode(self) -> bytes:
        """``Expression.serialize()`` form of this checked expression."""
        body = bytearray()
        for number, mapping in ((2, self.references), (3, self.raw_types)):
            for node_id in sorted(mapping):
                value = mapping[node_id]
                payload = _reference(value) if isinstance(value, Reference) else value
                body += wire.delimited(number, wire.integer(1, node_id)
                                       + wire.delimited(2, payload))
        body += wire.delimited(4, _node(self.root))
        if self.source_info:
            body += wire.delimited(5, self.source_info)
        if self.version:
            body += wire.text(6, self.version)
        return wire.text(1, CHECKED_EXPR) + wire.delimited(2, bytes(body))

    def max_id(self) -> int:
        return max([node.id for node in self.root.walk()] + [*self.references, *self.types])


def parse(serialized: bytes) -> Node:
    """The root expression of ``Expression.serialize()`` output."""
    return decode(serialized).root


def decode(serialized: bytes) -> Checked:
    """``Expression.serialize()`` output as a `Checked` (a parsed one has no maps)."""
    try:
        envelope = wire.fields(serialized)
        type_url = wire.as_text(wire.one(envelope, 1))
        body = wire.fields(wire.as_bytes(wire.one(envelope, 2)))
        if type_url == PARSED_EXPR:
            return Checked(_expr(wire.as_bytes(wire.one(body, 2))))
        if type_url != CHECKED_EXPR:
            raise SyntaxUnknown(f"unknown serialization {type_url!r}")
        references, raw_types = {}, {}
        for entry in body.get(2, []):
            pair = wire.fields(entry)
            references[_int64(pair.get(1, [0])[-1])] = _read_reference(
                wire.as_bytes(wire.one(pair, 2)))
        for entry in body.get(3, []):
            pair = wire.fields(entry)
            raw_types[_int64(pair.get(1, [0])[-1])] = wire.as_bytes(wire.one(pair, 2))
        version = wire.as_text(body[6][-1]) if 6 in body else ""
        return Checked(_expr(wire.as_bytes(wire.one(body, 4))), references,
                       {node: type_name(raw) for node, raw in raw_types.items()}, raw_types,
                       wire.as_bytes(body[5][-1]) if 5 in body else b"", version)
    except (wire.WireError, UnicodeDecodeError, IndexError) as error:
        raise SyntaxUnknown(str(error)) from None


def type_name(raw: bytes) -> str:
    """A ``cel.expr.Type`` as CEL writes it: ``int``, ``list(string)``, ``net.IP``…"""
    found = wire.fields(raw)
    if 3 in found:
        return _PRIMITIVES.get(found[3][-1], "dyn")
    if 5 in found:
        return _WELL_KNOWN.get(found[5][-1], "dyn")
    if 6 in found:
        inner = wire.fields(wire.as_bytes(found[6][-1]))
        return f"list({type_name(wire.as_bytes(inner[1][-1])) if 1 in inner else 'dyn'})"
    if 7 in found:
        inner = wire.fields(wire.as_bytes(found[7][-1]))
        parts = [type_name(wire.as_bytes(inner[n][-1])) if n in inner else "dyn" for n in (1, 2)]
        return f"map({parts[0]}, {parts[1]})"
    if 9 in found:
        return wire.as_text(found[9][-1])
    if 14 in found:
        inner = wire.fields(wire.as_bytes(found[14][-1]))
        name = wire.as_text(inner[1][-1]) if 1 in inner else "abstract"
        params = [type_name(wire.as_bytes(p)) for p in inner.get(2, [])]
        return f"{name}({', '.join(params)})" if params else name
    if 11 in found:
        return f"type({type_name(wire.as_bytes(found[11][-1]))})"
    if 2 in found:
        return "null_type"
    if 4 in found:
        return f"wrapper({_PRIMITIVES.get(found[4][-1], 'dyn')})"
    if 12 in found:
        return "error"
    if 10 in found:
        return wire.as_text(found[10][-1])
    return "dyn"


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _read_reference(data: bytes) -> Reference:
    found = wire.fields(data)
    return Reference(wire.as_text(found[1][-1]) if 1 in found else "",
                     tuple(wire.as_text(item) for item in found.get(3, [])),
                     wire.as_bytes(found[4][-1]) if 4 in found else b"")


def _reference(reference: Reference) -> bytes:
    out = wire.text(1, reference.name) if reference.name else b""
    out += b"".join(wire.text(3, overload) for overload in reference.overloads)
    return out + (wire.delimited(4, reference.value) if reference.value else b"")


def _expr(data: bytes) -> Node:
    found = wire.fields(data)
    node_id = _int64(found.get(_ID, [0])[-1])
    if _IDENT in found:
        ident = wire.fields(wire.as_bytes(wire.one(found, _IDENT)))
        return Node("ident", name=wire.as_text(wire.one(ident, 1)), id=node_id)
    if _SELECT in found:
        select = wire.fields(wire.as_bytes(wire.one(found, _SELECT)))
        return Node("select", name=wire.as_text(wire.one(select, 2)), id=node_id,
                    operand=_expr(wire.as_bytes(wire.one(select, 1))),
                    test_only=bool(select.get(3, [0])[-1]))
    if _CALL in found:
        call = wire.fields(wire.as_bytes(wire.one(found, _CALL)))
        target = _expr(wire.as_bytes(call[1][-1])) if 1 in call else None
        return Node("call", name=wire.as_text(wire.one(call, 2)), operand=target, id=node_id,
                    args=tuple(_expr(wire.as_bytes(arg)) for arg in call.get(3, [])))
    if _CONST in found:
        return _constant(wire.as_bytes(wire.one(found, _CONST)), node_id)
    if _LIST in found:
        listed = wire.fields(wire.as_bytes(wire.one(found, _LIST)))
        return Node("list", id=node_id,
                    args=tuple(_expr(wire.as_bytes(item)) for item in listed.get(1, [])),
                    optional_indices=_packed(listed.get(2, [])))
    if _STRUCT in found:
        struct = wire.fields(wire.as_bytes(wire.one(found, _STRUCT)))
        message = wire.as_text(struct[1][-1]) if 1 in struct else ""
        entries = tuple(_entry(wire.as_bytes(entry)) for entry in struct.get(2, []))
        return Node("map", id=node_id, entries=entries, message=message)
    if _COMPREHENSION in found:
        loop = wire.fields(wire.as_bytes(wire.one(found, _COMPREHENSION)))
        names = {n: wire.as_text(loop[n][-1]) if n in loop else "" for n in (1, 3, 8)}
        parts = {n: _expr(wire.as_bytes(wire.one(loop, n))) for n in (2, 4, 5, 6, 7)}
        return Node("comprehension", id=node_id,
                    binds=tuple(name for name in (names[1], names[3], names[8]) if name),
                    loop=Loop(names[1], parts[2], names[3], parts[4], parts[5], parts[6],
                              parts[7], names[8]))
    raise SyntaxUnknown(f"unknown expression kind, fields {sorted(found)}")


def _constant(data: bytes, node_id: int) -> Node:
    found = wire.fields(data)
    if not found:
        return Node("const", id=node_id, const="null", raw=data)
    number = min(found)
    kind = _CONSTANT_KINDS.get(number, "other")
    item = found[number][-1]
    value: Any = None
    if kind == "string":
        value = wire.as_text(item)
    elif kind == "bytes":
        value = wire.as_bytes(item)
    elif kind == "bool":
        value = bool(item)
    elif kind == "int":
        value = _int64(item)
    elif kind == "uint":
        value = item
    elif kind == "double":
        value = struct.unpack("<d", wire.as_bytes(item))[0]
    return Node("const", name=value if kind == "string" else None, id=node_id, value=value,
                const=kind, raw=data)


def _packed(values: list[Any]) -> tuple[int, ...]:
    out: list[int] = []
    for value in values:
        if isinstance(value, int):
            out.append(value)
            continue
        at = 0
        while at < len(value):
            number, at = wire.read_varint(value, at)
            out.append(number)
    return tuple(out)


def _entry(data: bytes) -> Entry:
    found = wire.fields(data)
    return Entry(id=_int64(found.get(1, [0])[-1]),
                 value=_expr(wire.as_bytes(wire.one(found, 4))),
                 key=_expr(wire.as_bytes(found[3][-1])) if 3 in found else None,
                 field=wire.as_text(found[2][-1]) if 2 in found else "",
                 optional=bool(found.get(5, [0])[-1]))


def _node(node: Node) -> bytes:
    out = wire.integer(_ID, node.id)
    if node.kind == "ident":
        return out + wire.delimited(_IDENT, wire.text(1, node.name or ""))
    if node.kind == "select":
        assert node.operand is not None
        body = wire.delimited(1, _node(node.operand)) + wire.text(2, node.name or "")
        return out + wire.delimited(_SELECT, body + (wire.integer(3, 1) if node.test_only
                                                     else b""))
    if node.kind == "call":
        body = wire.delimited(1, _node(node.operand)) if node.operand is not None else b""
        body += wire.text(2, node.name or "")
        body += b"".join(wire.delimited(3, _node(arg)) for arg in node.args)
        return out + wire.delimited(_CALL, body)
    if node.kind == "const":
        return out + wire.delimited(_CONST, node.raw)
    if node.kind == "list":
        body = b"".join(wire.delimited(1, _node(item)) for item in node.args)
        body += b"".join(wire.integer(2, index) for index in node.optional_indices)
        return out + wire.delimited(_LIST, body)
    if node.kind == "map":
        body = wire.text(1, node.message) if node.message else b""
        for entry in node.entries:
            part = wire.integer(1, entry.id)
            part += (wire.delimited(3, _node(entry.key)) if entry.key is not None
                     else wire.text(2, entry.field))
            part += wire.delimited(4, _node(entry.value))
            body += wire.delimited(2, part + (wire.integer(5, 1) if entry.optional else b""))
        return out + wire.delimited(_STRUCT, body)
    assert node.loop is not None, node.kind
    loop = node.loop
    body = (wire.text(1, loop.iter_var) + wire.delimited(2, _node(loop.iter_range))
            + wire.text(3, loop.accu_var) + wire.delimited(4, _node(loop.accu_init))
            + wire.delimited(5, _node(loop.condition)) + wire.delimited(6, _node(loop.step))
            + wire.delimited(7, _node(loop.result)))
    if loop.iter_var2:
        body += wire.text(8, loop.iter_var2)
    return out + wire.delimited(_COMPREHENSION, body)


def string_constant(node_id: int, value: str) -> Node:
    """A new string constant node (for rewriting)."""
    return Node("const", name=value, id=node_id, value=value, const="string",
                raw=wire.text(6, value))
