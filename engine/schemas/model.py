"""What server-side apply needs to know of a kind's schema, as a tree of `Node`s.

A rendered template is merged onto an object by each field's own semantics
(DESIGN.md, "A rule set"): maps merge, scalars replace, and a list follows its
OpenAPI markers — ``x-kubernetes-list-type: atomic`` replaces it whole, ``set`` unions,
``map`` merges items by ``x-kubernetes-list-map-keys``; a map (or struct) marked
``x-kubernetes-map-type: atomic`` is replaced whole. `engine.patching.merge` walks the
partial object and this tree side by side; lint reads the field names.

A `Node` is read lazily from a `Table`: a dict of named types in the compact form the
shipped catalogue uses (and the converters from OpenAPI v3 and CRD schemas produce),
so loading the catalogue costs one JSON parse and nodes are built when a merge reaches
them. The compact form of one node ("ref"):

- a string: the name of a type in the table, or a scalar — ``string``, ``integer``,
  ``number``, ``boolean``, ``int-or-string``, ``quantity`` (a resource quantity: a
  string or a number) — or ``any`` (no schema: preserved unknown
  fields, or nothing known);
- a dict with any of: ``f`` (struct fields: name → ref), ``v`` (map values:
  ``additionalProperties`` ref), ``i`` (list items ref), ``l`` (list type: ``atomic``,
  ``set`` or ``map``), ``k`` (list-map keys), ``m`` (``atomic`` for an atomic map or
  struct), ``s`` (scalar type), ``d`` (default value; recorded for list-map key fields),
  ``u`` (true: unknown fields are preserved beside the declared ones).

Where the schema says nothing (no node, ``any``), the server-side-apply defaults hold:
lists are atomic, maps merge key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine.objects import GVK

SCALARS = frozenset({"string", "integer", "number", "boolean", "int-or-string", "quantity"})
ANY = "any"


class _Missing:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _Missing()


class SchemaSource(Protocol):
    """Where the schema of a kind comes from: the shipped catalogue, CRDs, a cluster."""

    def for_kind(self, gvk: GVK) -> Node | None:
        """The kind's root node; None when nothing is known of the kind."""


class Table:
    """Named types in compact form; `node` builds (and remembers) `Node`s from them."""

    def __init__(self, types: Mapping[str, Any]) -> None:
        self._types = types
        self._named: dict[str, Node] = {}

    def node(self, ref: Any) -> Node | None:
        """The node a ref names (None for ``any`` or an unknown type name)."""
        if isinstance(ref, dict):
            return Node(self, ref)
        if not isinstance(ref, str) or ref == ANY:
            return None
        if ref in SCALARS:
            return Node(self, {"s": ref})
        hit = self._named.get(ref)
        if hit is None:
            raw = self._types.get(ref)
            if raw is None:
                return None
            hit = self._named[ref] = Node(self, raw, name=ref)
        return hit

    def names(self) -> list[str]:
        return list(self._types)


class Node:
    """One schema node: a struct, a map, a list or a scalar (read-only)."""

    __slots__ = ("_children", "_raw", "_table", "name")

    def __init__(self, table: Table, raw: Mapping[str, Any], *, name: str = "") -> None:
        self._table = table
        self._raw = raw
        self._children: dict[str, Node | None] = {}
        self.name = name

    # -- what kind of node ------------------------------------------------------------

    @property
    def list_type(self) -> str | None:
        """``atomic``, ``set`` or ``map`` for a list node (unmarked lists: ``atomic``)."""
        if "i" in self._raw or "l" in self._raw:
            return str(self._raw.get("l") or "atomic")
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        """The ``x-kubernetes-list-map-keys`` of a ``map`` list."""
        return tuple(self._raw.get("k") or ())

    @property
    def atomic(self) -> bool:
        """A map or struct replaced whole (``x-kubernetes-map-type: atomic``), or an
        atomic list."""
        return self._raw.get("m") == "atomic" or self.list_type == "atomic"

    @property
    def scalar(self) -> str | None:
        return self._raw.get("s")

    @property
    def default(self) -> Any:
        return self._raw.get("d", NO_DEFAULT)

    @property
    def is_struct(self) -> bool:
        return "f" in self._raw

    @property
    def is_map(self) -> bool:
        return "v" in self._raw

    @property
    def preserves_unknown(self) -> bool:
        return bool(self._raw.get("u"))

    def field_names(self) -> tuple[str, ...]:
        return tuple(self._raw.get("f") or ())

    # -- children -----------------------------------------------------------------------

    def field(self, name: str) -> Node | None:
        """The node of a struct field or of a map's values; None when not known."""
        if name in self._children:
            return self._children[name]
        fields = self._raw.get("f") or {}
        if name in fields:
            child = self._table.node(fields[name])
        elif "v" in self._raw:
            child = self._table.node(self._raw["v"])
        else:
            child = None
        self._children[name] = child
        return child

    def items(self) -> Node | None:
        """The node of a list's items; None when not known."""
        if "#items" not in self._children:
            self._children["#items"] = self._table.node(self._raw.get("i", ANY))
        return self._children["#items"]

    def __repr__(self) -> str:
        return f"Node({self.name or dict(self._raw)!r})"


def outline(node: Node | None) -> Any:
    """Everything a merge or lint can read of `node` and the nodes under it, as plain
    data: two schemas with equal outlines merge alike. A named type met again below
    itself (a recursive type) is written as ``{"ref": name}``. For tests and debugging.
    """
    return _outline(node, ())


def _outline(node: Node | None, above: tuple[str, ...]) -> Any:
    if node is None:
        return ANY
    if node.name and node.name in above:
        return {"ref": node.name}
    if node.name:
        above = (*above, node.name)
    out: dict[str, Any] = {}
    if node.scalar:
        out["scalar"] = node.scalar
    if node.default is not NO_DEFAULT:
        out["default"] = node.default
    if node.list_type:
        out["list"] = node.list_type
        out["items"] = _outline(node.items(), above)
    if node.keys:
        out["keys"] = list(node.keys)
    if node.atomic:
        out["atomic"] = True
    if node.preserves_unknown:
        out["unknown"] = True
    if node.is_struct:
        out["fields"] = {name: _outline(node.field(name), above)
                         for name in node.field_names()}
    if node.is_map:
        out["values"] = _outline(node.field("\0 any key"), above)
    return out
