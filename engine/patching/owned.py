"""The fields a generated child's template set, recorded on the child, so that what the
rule set before and no longer renders can be taken away.

A synchronized child is owned *exactly* (DESIGN.md, `generate`): every field the
template sets is kept at its rendered value, what the rule rendered before and no
longer renders is removed, fields it never mentioned are left to others. Server-side
apply keeps that record in `managedFields`; Edict keeps its own, in an annotation of the
child, for three reasons: the offline commands have no server to ask (`edict apply` fed
its own earlier output must remove the same fields the live engine would), the live
engine's caches need not hold `managedFields`, and a plain guarded JSON patch stays the
one way Edict writes.

The record is a field set in the notation of `managedFields` (``FieldsV1``), so people
who know one can read the other: ``{"f:data": {"f:password": {}}}``; items of keyed
lists are ``k:{"name":"app"}``, items of sets ``v:"x"``. A leaf ``{}`` is a field the
template set (a scalar, an atomic list or map, an empty map, an item with only its
keys). `field_set` builds it from a merge's assignments; `remove_dropped` takes away,
from an object, what one record has and a newer one does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from engine.patching.assignments import DELETE, Assignment, ItemKey
from engine.patching.merge import item_identity
from engine.schemas import Node

FieldSet = dict[str, Any]  # token -> FieldSet; {} is a leaf


def token(key: str | int) -> str:
    if isinstance(key, ItemKey):
        if key.keys is not None:
            return "k:" + _canonical(key.keys)
        return "v:" + _canonical(key.value)
    if isinstance(key, int):
        return f"i:{key}"
    return "f:" + key


def field_set(assignments: Iterable[Assignment], *, skip: Iterable[tuple[str, ...]] = ()
              ) -> FieldSet:
    """The fields some assignments set (deletions are not owned), minus `skip` paths."""
    skipped = {tuple(path) for path in skip}
    root: FieldSet = {}
    for assignment in assignments:
        if assignment.value is DELETE or tuple(assignment.path) in skipped:
            continue
        node = root
        for key in assignment.path:
            node = node.setdefault(token(key), {})
    return root


def encode(fields: FieldSet) -> str:
    return _canonical(fields)


def decode(text: Any) -> FieldSet | None:
    """A record read back from an object; None when absent or not one of ours."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if _well_formed(value) else None


def remove_dropped(obj: Any, old: FieldSet, new: FieldSet, *, schema: Node | None) -> Any:
    """`obj` without the fields `old` records and `new` does not (never mutates `obj`).

    A dropped item of a keyed list or set goes whole; a dropped field goes; a map left
    empty by what was taken out of it goes too (it existed for the dropped fields). What
    `new` still records is kept, and so is everything neither record names.
    """
    return _Remover().walk(obj, old, new, schema)


class _Remover:
    def walk(self, value: Any, old: FieldSet, new: FieldSet | None, node: Node | None
             ) -> Any:
        if isinstance(value, dict):
            return self.map(value, old, new, node)
        if isinstance(value, list):
            return self.list(value, old, new, node)
        return value

    def map(self, value: dict[str, Any], old: FieldSet, new: FieldSet | None,
            node: Node | None) -> dict[str, Any]:
        result = value
        for tok, old_child in old.items():
            if not tok.startswith("f:"):
                continue
            name = tok[2:]
            if name not in value:
                continue
            new_child = new.get(tok) if new is not None else None
            child_node = node.field(name) if node is not None else None
            replaced = self.child(value[name], old_child, new_child, child_node)
            if replaced is value[name]:
                continue
            if result is value:
                result = dict(value)
            if replaced is _GONE:
                del result[name]
            else:
                result[name] = replaced
        return result

    def list(self, value: list[Any], old: FieldSet, new: FieldSet | None,
             node: Node | None) -> list[Any]:
        item_node = node.items() if node is not None else None
        wanted = {tok: child for tok, child in old.items() if tok[:2] in ("k:", "v:")}
        if not wanted or node is None:
            return value
        result: list[Any] = []
        changed = False
        for item in value:
            ident = item_identity(item, node)
            tok = token(ident) if ident is not None else None
            if tok is None or tok not in wanted:
                result.append(item)
                continue
            new_child = new.get(tok) if new is not None else None
            replaced = self.child(item, wanted[tok], new_child, item_node,
                                  whole=True)
            if replaced is _GONE:
                changed = True
                continue
            changed = changed or replaced is not item
            result.append(replaced)
        return result if changed else value

    def child(self, value: Any, old: FieldSet, new: FieldSet | None, node: Node | None,
              *, whole: bool = False) -> Any:
        """What becomes of one element that `old` records."""
        if new is None and (whole or not old):
            return _GONE  # no longer rendered at all: an item, or a leaf field
        if new is not None and not old:
            return value  # still rendered (a leaf before, a leaf or more now)
        kept = self.walk(value, old, new, node)
        if new is None and isinstance(kept, dict) and not kept:
            return _GONE  # a map that only held what was dropped
        return kept


class _Gone:
    def __repr__(self) -> str:
        return "GONE"


_GONE: Any = _Gone()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _well_formed(value: Any, depth: int = 0) -> bool:
    if not isinstance(value, dict) or depth > 100:
        return False
    return all(isinstance(k, str) and k[:2] in ("f:", "k:", "v:", "i:")
               and _well_formed(v, depth + 1) for k, v in value.items())
