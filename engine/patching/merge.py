"""Merging a rendered partial object onto its target: the `mutate.template` semantics.

The evaluator calls `merge` once per rendering of a mutate rule, onto the object as the
previous rule left it, and `MergeSequence.merge` once per item of a `forEach`, onto
the object as the previous item left it; generated children are laid over what exists
the same way. Each field merges by its own
semantics, as server-side apply defines them, read from the kind's schema (an
`engine.schemas.Node`; DESIGN.md, "A rule set"):

- maps merge key by key, recursively; scalars replace; ``null`` deletes the key (no error
  when it is absent). A map or struct marked ``x-kubernetes-map-type: atomic`` is
  replaced whole;
- ``x-kubernetes-list-type: atomic`` lists — and every list the schema says nothing
  of — are replaced whole;
- ``set`` lists union: items the target lacks are added, none removed;
- ``map`` lists merge item by item, an item identified by its
  ``x-kubernetes-list-map-keys`` (containers and env by name, container ports by
  containerPort+protocol, volumeMounts by mountPath…); a key the item omits takes the
  schema's default (protocol ``TCP``), and with no default the item is an error. A
  matching item is merged onto in place; target items the partial does not name are
  kept; an item whose own type is atomic (ownerReferences) is replaced whole. An item
  that is its keys plus ``$patch: delete`` (the strategic-merge-patch
  spelling Kubernetes users know) removes the item;
- where new items go follows server-side apply: items the partial shares with the target
  come in the partial's order, items only the target has keep their places, new items
  go after the partial's item before them;
- a map, list or scalar replaces a value of another kind — except at the top, where both
  must be maps;
- what the result takes from the partial is what the partial would merge onto nothing:
  ``null`` values in maps are dropped, ``$patch: delete`` items are dropped. That keeps
  merging idempotent: merging the same partial again changes nothing.

A key repeated in one partial list is a `MergeError`, as is ``$patch`` anywhere but in a
keyed list.

Sharing and mutation: `merge` never mutates its arguments. The result is fresh along
every changed path and holds no dict or list of the partial (the templating layer may
hand out the same constants at every render); untouched subtrees — and the target
itself, when nothing changes — are *shared with the target*. Callers must treat both
target and result as read-only (as client-go asks of cached objects), or `copy_json`
the result before editing it. Unchanged values keep their identity, which also lets
`make_patch` skip them cheaply.

A sequence of merges (`MergeSequence`, one per ``forEach`` item) gives exactly what
`merge` would give one partial after the other, in time linear in the number of
partials: copying a 20,000-item list for each of its items is quadratic. It copies a
map or list of the target the first time it changes, as `merge` does, and from then on
changes its own copy in place; a keyed list keeps an index of its items by key, so the
partial's items are merged onto theirs, or added at the end, without walking the list
— whenever that is where `merge` puts them (the items the list has, in the list's
order, before the new ones; anything else — a ``$patch: delete``, a key the list holds
twice, items that `merge` would move — takes the path of `merge`). What the sequence
made is never handed to anyone else while it runs, so the target and every partial
stay untouched; only its own results change under the caller, each
`MergeSequence.merge` updating the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.errors import MergeError, Where
from engine.patching.assignments import DELETE, Assignment, ItemKey, PathKey, format_path
from engine.patching.values import MISSING, json_equal
from engine.schemas import NO_DEFAULT, Node

Out = list[Assignment] | None  # where assignments go; None while laying onto nothing

_SCALARS = (str, int, float, bool)


def merge(target: Any, partial: Any, *, where: Where, schema: Node | None = None
          ) -> tuple[Any, tuple[Assignment, ...]]:
    """Merge `partial` onto `target` by `schema` (the kind's; None: nothing known);
    return the result and what the partial assigned.

    Raises `MergeError` when either side is not a map, when a key of the partial is not
    a string, when a value is not JSON data, for a key repeated in a keyed list, for an
    item without one of its keys and for a misplaced or malformed ``$patch``. The message
    names the path; `where` names the rule.
    """
    if not isinstance(partial, dict):
        raise MergeError(
            f"the template must render a map (an object), not {_kind(partial)}", where=where
        )
    if not isinstance(target, dict):
        raise MergeError(
            f"cannot merge onto {_kind(target)}: the target must be a map (an object)",
            where=where,
        )
    out: list[Assignment] = []
    result = _Merger(where).map(target, partial, (), out, schema)
    return result, tuple(out)


class MergeSequence:
    """Several partials merged onto one target in turn, as `merge` would merge them one
    after the other, in time linear in their number (see the module docstring).

    `result` is the target as the partials so far left it. It is the sequence's own:
    read it between merges (a ``forEach`` item renders against it), never change it;
    the next `merge` changes it in place.
    """

    def __init__(self, target: Any, *, schema: Node | None = None) -> None:
        self.result = target
        self.schema = schema
        # what the sequence made (by id, holding them so no id is reused): safe to change
        self.owned: dict[int, Any] = {}
        # id of an owned keyed list -> its index (kept with the list and its schema node)
        self.indexes: dict[int, _ListIndex] = {}

    def merge(self, partial: Any, *, where: Where) -> tuple[Any, tuple[Assignment, ...]]:
        """`merge(self.result, partial)`: the new result and what the partial assigned."""
        if not isinstance(partial, dict):
            raise MergeError(
                f"the template must render a map (an object), not {_kind(partial)}",
                where=where)
        if not isinstance(self.result, dict):
            raise MergeError(f"cannot merge onto {_kind(self.result)}: the target must be a "
                             "map (an object)", where=where)
        out: list[Assignment] = []
        before = self.result
        result = _Merger(where, self).map(before, partial, (), out, self.schema)
        if result is not before:
            self.owned[id(result)] = result
        self.result = result
        return result, tuple(out)

    def may_change(self, value: Any) -> bool:
        return self.owned.get(id(value)) is value


class _ListIndex:
    """Where each key of an owned keyed list first is, and the keys it holds twice."""

    __slots__ = ("at", "items", "node", "twice")

    def __init__(self, items: list[Any], node: Node) -> None:
        self.items, self.node = items, node
        self.at: dict[ItemKey, int] = {}
        self.twice: set[ItemKey] = set()
        for position, item in enumerate(items):
            self.add(item_identity(item, node), position)

    def copy(self, items: list[Any]) -> _ListIndex:
        """The index of `items`, a copy of the indexed list."""
        made = _ListIndex([], self.node)
        made.items, made.at, made.twice = items, dict(self.at), set(self.twice)
        return made

    def add(self, ident: ItemKey | None, position: int) -> None:
        if ident is None:
            return
        if ident in self.at:
            self.twice.add(ident)
        else:
            self.at[ident] = position


def item_identity(item: Any, node: Node) -> ItemKey | None:
    """How a keyed (or set) list names one of its existing items; None when it cannot."""
    if node.list_type == "set":
        return ItemKey.of_value(item)
    if not isinstance(item, dict):
        return None
    keys = {}
    for key in node.keys:
        value = item.get(key, MISSING)
        if value is MISSING:
            value = _key_default(node, key)
        keys[key] = None if value is NO_DEFAULT else value
    return ItemKey.of_keys(keys)


def _key_default(node: Node, key: str) -> Any:
    items = node.items()
    field = items.field(key) if items is not None else None
    return field.default if field is not None else NO_DEFAULT


class _Merger:
    """One merge: carries `where` for errors through the recursion, and the sequence it
    is part of (whose own copies it changes in place)."""

    def __init__(self, where: Where, sequence: MergeSequence | None = None) -> None:
        self.where = where
        self.sequence = sequence

    def made(self, value: Any, node: Node | None) -> None:
        """`value` was made by this merge: a later merge of the sequence may change it
        in place (never an atomic value: a later merge replaces it whole)."""
        if self.sequence is not None and isinstance(value, dict | list) and not (
                node is not None and node.atomic):
            self.sequence.owned[id(value)] = value

    def fail(self, path: PathKey, message: str) -> MergeError:
        return MergeError(f"at {format_path(path)}: {message}", where=self.where)

    def map(self, target: dict[str, Any], partial: dict[Any, Any], path: PathKey, out: Out,
            node: Node | None) -> Any:
        if not partial and out is not None and path:
            out.append(Assignment(path, {}))
        # copied at the first change (a map the sequence made: changed in place)
        copy = not (self.sequence is not None and self.sequence.may_change(target))
        result = target
        for key, value in partial.items():
            if not isinstance(key, str):
                raise self.fail(path, f"key {key!r} is not a string")
            here = (*path, key)
            if value is None:
                if out is not None:
                    out.append(Assignment(here, DELETE))
                if key in result:
                    if copy:
                        result, copy = dict(target), False
                    del result[key]
                continue
            before = target.get(key, MISSING)
            field = node.field(key) if node is not None else None
            after = self.value(before, value, here, out, field)
            if after is not before:
                if copy:
                    result, copy = dict(target), False
                result[key] = after
                self.made(after, field)
        return result

    def value(self, target: Any, partial: Any, path: PathKey, out: Out, node: Node | None
              ) -> Any:
        if isinstance(partial, dict):
            if node is not None and node.atomic and node.list_type is None:
                return self.replace(target, partial, path, out, node)
            base = target if isinstance(target, dict) else {}
            return self.map(base, partial, path, out, node)
        if isinstance(partial, list | tuple):
            kind = node.list_type if node is not None else None
            if node is not None and kind == "map" and node.keys:
                return self.keyed(target, partial, path, out, node)
            if node is not None and kind == "set":
                return self.set(target, partial, path, out)
            return self.replace(target, partial, path, out, node)
        if not isinstance(partial, _SCALARS):
            raise self.fail(path, f"{_kind(partial)} is not JSON data")
        if out is not None:
            out.append(Assignment(path, partial))
        if target is not MISSING and json_equal(target, partial):
            return target
        return partial

    # -- replacing ----------------------------------------------------------------------

    def replace(self, target: Any, partial: Any, path: PathKey, out: Out, node: Node | None
                ) -> Any:
        """An atomic value: what the partial is onto nothing, whatever was there."""
        new = self.fresh(partial, path, node)
        if target is not MISSING and json_equal(target, new):
            new = target
        if out is not None:
            out.append(Assignment(path, new))
        return new

    def fresh(self, partial: Any, path: PathKey, node: Node | None) -> Any:
        """The partial laid onto nothing (nulls in maps dropped, `$patch` items checked)."""
        if isinstance(partial, dict):
            if "$patch" in partial:
                raise self.fail(path, "$patch is only understood on an item of a list "
                                "merged by keys (x-kubernetes-list-type: map)")
            fields = node if node is not None and not node.atomic else None
            return self.map({}, partial, path, None, fields) if partial else {}
        if isinstance(partial, list | tuple):
            kind = node.list_type if node is not None else None
            if node is not None and ((kind == "map" and node.keys) or kind == "set"):
                return self.value(MISSING, partial, path, None, node)
            items = node.items() if node is not None else None
            return [None if item is None else self.fresh(item, (*path, index), items)
                    for index, item in enumerate(partial)]
        if not isinstance(partial, _SCALARS):
            raise self.fail(path, f"{_kind(partial)} is not JSON data")
        return partial

    # -- sets -------------------------------------------------------------------------

    def set(self, target: Any, partial: Sequence[Any], path: PathKey, out: Out) -> Any:
        lhs = target if isinstance(target, list) else []
        rhs: list[Any] = []
        rhs_ids: list[ItemKey] = []
        for index, item in enumerate(partial):
            if isinstance(item, dict | list | tuple) or item is None:
                raise self.fail((*path, index), "a set list (x-kubernetes-list-type: set) "
                                f"holds scalars, not {_kind(item)}")
            ident = ItemKey.of_value(item)
            if ident in rhs_ids:
                raise self.fail(path, f"{item!r} appears twice in this set")
            rhs.append(item)
            rhs_ids.append(ident)
            if out is not None:
                out.append(Assignment((*path, ident), item))
        lhs_ids = [ItemKey.of_value(item) for item in lhs]
        result = [lhs[left] if left is not None else rhs[right]  # type: ignore[index]
                  for left, right in _interleave(lhs_ids, rhs_ids)]
        return target if isinstance(target, list) and json_equal(target, result) else result

    # -- keyed lists ------------------------------------------------------------------

    def keyed(self, target: Any, partial: Sequence[Any], path: PathKey, out: Out,
              node: Node) -> Any:
        keys = node.keys
        item_node = node.items()
        lhs = target if isinstance(target, list) else []
        deleted: set[ItemKey] = set()
        rhs: list[tuple[ItemKey, dict[str, Any], dict[str, Any]]] = []
        seen: set[ItemKey] = set()
        for index, item in enumerate(partial):
            if not isinstance(item, dict):
                raise self.fail((*path, index), f"an item of a list merged by "
                                f"{'+'.join(keys)} must be a map, not {_kind(item)}")
            ident_keys: dict[str, Any] = {}
            for key in keys:
                value = item.get(key, MISSING)
                if value is MISSING or value is None:
                    value = _key_default(node, key)
                    if value is NO_DEFAULT:
                        raise self.fail((*path, index), f"this list merges items by "
                                        f"{'+'.join(keys)}; the item has no {key!r}")
                ident_keys[key] = value
            ident = ItemKey.of_keys(ident_keys)
            here = (*path, ident)
            if ident in seen:
                raise self.fail(here, f"{ident} appears twice in this list")
            seen.add(ident)
            if "$patch" in item:
                if item["$patch"] != "delete" or set(item) - {*keys, "$patch"}:
                    raise self.fail(here, "the only item directive is {<keys>…, "
                                    "$patch: delete}")
                if out is not None:
                    out.append(Assignment(here, DELETE))
                deleted.add(ident)
                continue
            fields = {k: v for k, v in item.items() if k not in keys}
            present = {k: item[k] for k in keys if item.get(k) is not None}
            rhs.append((ident, present, fields))
        if self.sequence is not None and not deleted and isinstance(target, list):
            done = self.keyed_in_place(target, rhs, path, out, node)
            if done is not None:
                return done
        lhs_ids: list[ItemKey | None] = [item_identity(item, node) for item in lhs]
        kept = [(known, item) for known, item in zip(lhs_ids, lhs, strict=True)
                if known is None or known not in deleted]
        changed = len(kept) != len(lhs)
        by_ident: dict[ItemKey, Any] = {}
        for known, item in kept:
            if known is not None:
                by_ident.setdefault(known, item)
        result: list[Any] = []
        order = _interleave([known for known, _ in kept], [ident for ident, _, _ in rhs])
        for left, right in order:
            if right is None:
                assert left is not None
                result.append(kept[left][1])
                continue
            ident, present, fields = rhs[right]
            base = by_ident.get(ident)
            merged = self.item(base, present, fields, (*path, ident), out, item_node)
            changed = changed or merged is not base
            result.append(merged)
        if not changed and isinstance(target, list) and len(result) == len(target) and all(
                a is b for a, b in zip(result, target, strict=True)):
            return target
        return result

    def item(self, base: Any, present: dict[str, Any], fields: dict[str, Any],
             here: PathKey, out: Out, item_node: Node | None) -> Any:
        """One item of the partial's keyed list merged onto the target's item of the same
        keys (`base`, None when there is none): the item as it ends up."""
        if item_node is not None and item_node.atomic:
            # items replaced whole (ownerReferences: `+structType=atomic`)
            return self.replace(MISSING if base is None else base, {**present, **fields},
                                here, out, item_node)
        if base is None:
            merged = self.map(present, fields, here, out, item_node)
            made = dict(present) if merged is present else merged
            self.made(made, item_node)
            return made
        merged = self.map(base, fields, here, out, item_node)
        if merged is not base:
            self.made(merged, item_node)
        return merged

    def keyed_in_place(self, target: list[Any],
                       rhs: list[tuple[ItemKey, dict[str, Any], dict[str, Any]]],
                       path: PathKey, out: Out, node: Node) -> list[Any] | None:
        """The partial's items merged onto a list from the list's index, without a walk,
        when that is what `keyed` gives: every item the list has is there once and in
        the partial's order, and the items it lacks come after them in the partial (the
        shared items are merged where they are, the new ones added at the end, the rest
        stay; the very list when nothing changed). A list the sequence made changes in
        place; another is copied once, the copy then the sequence's. None otherwise
        (`keyed` moves or drops items then: its way)."""
        sequence = self.sequence
        assert sequence is not None
        index = sequence.indexes.get(id(target))
        if index is None or index.items is not target or index.node is not node:
            index = sequence.indexes[id(target)] = _ListIndex(target, node)
        positions: list[int | None] = []
        last = -1
        for ident, _, _ in rhs:
            position = index.at.get(ident)
            if ident in index.twice or (position is not None and (
                    position <= last or (positions and positions[-1] is None))):
                return None
            positions.append(position)
            last = last if position is None else position
        result = target
        item_node = node.items()
        for (ident, present, fields), position in zip(rhs, positions, strict=True):
            base = None if position is None else target[position]
            merged = self.item(base, present, fields, (*path, ident), out, item_node)
            if merged is base:
                continue
            if result is target and not sequence.may_change(target):
                result = list(target)
                sequence.owned[id(result)] = result
                index = sequence.indexes[id(result)] = index.copy(result)
            if position is None:
                index.add(ident, len(result))
                result.append(merged)
            else:
                result[position] = merged
        return result


def _interleave(lhs: Sequence[str | None], rhs: Sequence[str]
                ) -> list[tuple[int | None, int | None]]:
    """The order of a merged list, as server-side apply builds it.

    Pairs of (index in lhs, index in rhs); None where the item comes from one side only.
    Items of both sides come in rhs's order, items only lhs has keep their places
    between them, items only rhs has go right after the rhs item before them.
    """
    in_rhs = set(rhs)
    lhs_at: dict[str, int] = {}
    for index, ident in enumerate(lhs):
        if ident is not None:
            lhs_at.setdefault(ident, index)
    shared = [ident for ident in rhs if ident in lhs_at]
    shared.reverse()
    next_shared = shared.pop() if shared else None
    merged: set[str] = set()
    out: list[tuple[int | None, int | None]] = []
    li = ri = 0
    here: str | None
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            here = lhs[li]
            if here is not None and here == rhs[ri]:
                merged.add(here)
                out.append((li, ri))
                li += 1
                ri += 1
                next_shared = shared.pop() if shared else None
                continue
            if here in in_rhs and next_shared is not None and next_shared != here:
                li += 1
                continue
        if li < len(lhs):
            here = lhs[li]
            if here is None or here not in in_rhs:
                out.append((li, None))
                li += 1
                continue
            if here in merged:
                li += 1
        if ri < len(rhs):
            wanted = rhs[ri]
            merged.add(wanted)
            out.append((lhs_at.get(wanted), ri))
            ri += 1
            if next_shared is not None and next_shared == wanted:
                next_shared = shared.pop() if shared else None
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, _SCALARS):
        return f"a scalar ({type(value).__name__})"
    return f"a value of type {type(value).__name__}"


__all__ = ["item_identity", "merge"]
