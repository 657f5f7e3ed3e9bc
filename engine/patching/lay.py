"""A generated child laid onto nothing, with its owned-fields record, in one walk.

`engine.evaluate.children.plan` needs, for every child a generate rule renders, what
``merge({}, child, schema=...)`` gives and the field set of that merge's assignments
(`owned.field_set`, the `edict.dev/owned-fields` record). `lay` computes both in one walk
of the child, without the merge's assignment objects, for the plain case a generated
child almost always is: maps with string keys over scalars and nulls, and keyed lists
whose items are replaced whole (``ownerReferences``: flat maps of scalars carrying all
their keys). It answers None for anything else — another list, a map the schema marks
atomic, a ``$patch``, a ``$keep`` marker (`engine.templating.keep`: `plan` resolves those
first), a key missing from a keyed item, a key repeated, a value that is not JSON data —
and the caller then merges (and raises the merge's errors) as before.
tests/unit/test_lay.py checks on random children and schemas that an answer is always
what merge and field_set give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.patching.assignments import ItemKey
from engine.patching.owned import FieldSet, token
from engine.schemas import Node

_SCALARS = (str, int, float, bool)
_KEEP = "$keep"  # engine.templating.keep.KEEP (the patching layer does not import templating)


class _Decline(Exception):
    """Not the plain case: merge decides."""


def lay(child: Any, *, schema: Node | None, skip: Iterable[tuple[str, ...]] = ()
        ) -> tuple[dict[str, Any], FieldSet] | None:
    """``(merge({}, child, schema)[0], field_set(assignments, skip=skip))`` or None."""
    if not isinstance(child, dict):
        return None
    skipped = frozenset(tuple(path) for path in skip)
    try:
        laid, record = _map(child, (), schema, skipped)
    except _Decline:
        return None
    return laid, record


def _map(partial: dict[Any, Any], path: tuple[str, ...], node: Node | None,
         skipped: frozenset[tuple[str, ...]]) -> tuple[dict[str, Any], FieldSet]:
    laid: dict[str, Any] = {}
    record: FieldSet = {}
    if _KEEP in partial:
        raise _Decline
    for key, value in partial.items():
        if type(key) is not str:
            raise _Decline
        if value is None:
            continue  # a deletion: laid onto nothing it leaves nothing, and is not owned
        here = (*path, key)
        field = node.field(key) if node is not None else None
        kind = type(value)
        if kind in _SCALARS:
            laid[key] = value
            if here not in skipped:
                record[token(key)] = {}
        elif kind is dict:
            if field is not None and field.atomic and field.list_type is None:
                raise _Decline
            if not value:
                laid[key] = {}
                if here not in skipped:
                    record[token(key)] = {}
                continue
            inner, inner_record = _map(value, here, field, skipped)
            laid[key] = inner
            if inner_record:
                record[token(key)] = inner_record
        elif kind is list:
            if any(path[:len(here)] == here for path in skipped):
                raise _Decline
            laid[key], items = _keyed(value, field)
            record[token(key)] = items
        else:
            raise _Decline
    return laid, record


def _keyed(partial: list[Any], node: Node | None) -> tuple[list[Any], FieldSet]:
    """A keyed list whose items are replaced whole, each a flat map with all its keys."""
    if node is None or node.list_type != "map" or not node.keys:
        raise _Decline
    item_node = node.items()
    if item_node is None or not item_node.atomic:
        raise _Decline
    laid: list[Any] = []
    record: FieldSet = {}
    seen: set[str] = set()
    for item in partial:
        if type(item) is not dict or "$patch" in item or _KEEP in item:
            raise _Decline
        for key, value in item.items():
            if type(key) is not str or (value is not None and type(value) not in _SCALARS):
                raise _Decline
        keys = {}
        for key in node.keys:
            value = item.get(key)
            if value is None:
                raise _Decline  # the schema's default, or an error: merge's call
            keys[key] = value
        # replaced whole: its keys first, then its other fields (merge's order)
        copy = dict(keys)
        copy.update((k, v) for k, v in item.items() if k not in keys and v is not None)
        ident = ItemKey.of_keys(keys)
        if str(ident) in seen:
            raise _Decline  # twice in one list (as merge compares them): merge's error
        seen.add(str(ident))
        record[token(ident)] = {}
        laid.append(copy)
    if not partial:
        raise _Decline
    return laid, record
