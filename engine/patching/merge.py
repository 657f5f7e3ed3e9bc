"""Merging a rendered partial object onto its target: the `mutate.template` semantics.

The evaluator calls `merge` once per rendering of a mutate rule (once per item with
`forEach`), each time onto the object as the previous rules left it; `generate` uses
it to lay a template over nothing. The rules (DESIGN.md, "A rule set"):

- maps merge key by key, recursively; scalars replace;
- ``null`` deletes the key (no error when it is absent);
- lists replace — except a *named list*: a non-empty list whose items are all maps with
  a string ``name`` (containers, env, ports, volumes, volumeMounts…), merged by name
  onto a target list whose items are all such maps too (an empty or missing target list
  counts). An item whose name the target has is merged onto it, in place (onto every
  item of that name, if the target repeats one); a new name is appended, in the
  partial's order; target items the partial does not name are kept. An item
  ``{name: x, $patch: delete}`` (the strategic-merge-patch spelling Kubernetes users
  know) removes item ``x``. A name twice in one partial list is a `MergeError`;
- a map, list or scalar replaces a value of another kind (a map onto a string, a named
  list onto a list of strings…) — except at the top, where both must be maps;
- what the result takes from the partial is what the partial would merge onto nothing:
  ``null`` values in maps are dropped, ``$patch: delete`` items are dropped. That keeps
  merging idempotent: merging the same partial again changes nothing.

Sharing and mutation: `merge` never mutates its arguments. The result is fresh along
every changed path and holds no dict or list of the partial (the templating layer may
hand out the same constants at every render); untouched subtrees — and the target
itself, when nothing changes — are *shared with the target*. Callers must treat both
target and result as read-only (as client-go asks of cached objects), or `copy_json`
the result before editing it. Unchanged values keep their identity, which also lets
`make_patch` skip them cheaply.
"""

from __future__ import annotations

from typing import Any

from engine.errors import MergeError, Where
from engine.patching.assignments import DELETE, Assignment, PathKey, format_path
from engine.patching.values import MISSING, json_equal

Out = list[Assignment] | None  # where assignments go; None while building replaced lists

_SCALARS = (str, int, float, bool)


def merge(target: Any, partial: Any, *, where: Where) -> tuple[Any, tuple[Assignment, ...]]:
    """Merge `partial` onto `target`; return the result and what the partial assigned.

    Raises `MergeError` when either side is not a map, when a key of the partial is not
    a string, when a value is not JSON data, for a name repeated in a named list and for
    a malformed ``$patch`` item. The message names the path; `where` names the rule.
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
    result = _Merger(where).map(target, partial, (), out)
    return result, tuple(out)


class _Merger:
    """One merge: carries `where` for errors through the recursion."""

    def __init__(self, where: Where) -> None:
        self.where = where

    def fail(self, path: PathKey, message: str) -> MergeError:
        return MergeError(f"at {format_path(path)}: {message}", where=self.where)

    def map(self, target: dict[str, Any], partial: dict[Any, Any], path: PathKey, out: Out) -> Any:
        if not partial and out is not None and path:
            out.append(Assignment(path, {}))
        result = dict(target)
        changed = False
        for key, value in partial.items():
            if not isinstance(key, str):
                raise self.fail(path, f"key {key!r} is not a string")
            here = (*path, key)
            if value is None:
                if out is not None:
                    out.append(Assignment(here, DELETE))
                if key in result:
                    del result[key]
                    changed = True
                continue
            before = target.get(key, MISSING)
            after = self.value(before, value, here, out)
            if after is not before:
                result[key] = after
                changed = True
        return result if changed else target

    def value(self, target: Any, partial: Any, path: PathKey, out: Out) -> Any:
        if isinstance(partial, dict):
            base = target if isinstance(target, dict) else {}
            return self.map(base, partial, path, out)
        if isinstance(partial, list | tuple):
            if _is_named(partial):
                items = target if isinstance(target, list) and _all_named(target) else []
                return self.named(items, partial, path, out)
            new = [self.item(item, (*path, index)) for index, item in enumerate(partial)]
            if isinstance(target, list) and json_equal(target, new):
                new = target
            if out is not None:
                out.append(Assignment(path, new))
            return new
        if not isinstance(partial, _SCALARS):
            raise self.fail(path, f"{_kind(partial)} is not JSON data")
        if out is not None:
            out.append(Assignment(path, partial))
        if target is not MISSING and json_equal(target, partial):
            return target
        return partial

    def item(self, partial: Any, path: PathKey) -> Any:
        """An item of a replacing list, as it merges onto nothing."""
        if partial is None:
            return None
        return self.value(MISSING, partial, path, None)

    def named(
        self, target: list[Any], partial: list[Any] | tuple[Any, ...], path: PathKey, out: Out
    ) -> list[Any]:
        result = list(target)
        positions: dict[str, list[int]] = {}
        for index, item in enumerate(target):
            positions.setdefault(item["name"], []).append(index)
        seen: set[str] = set()
        deleted: set[str] = set()
        changed = False
        for item in partial:
            name: str = item["name"]
            here = (*path, f"name={name}")
            if name in seen:
                raise self.fail(here, f"name {name!r} appears twice in this list")
            seen.add(name)
            if "$patch" in item:
                if item["$patch"] != "delete" or len(item) != 2:
                    raise self.fail(here, "the only item directive is {name: …, $patch: delete}")
                if out is not None:
                    out.append(Assignment(here, DELETE))
                deleted.add(name)
                continue
            # A name-only item records ``{}`` ("exists") through `map`.
            fields = {key: value for key, value in item.items() if key != "name"}
            found = positions.get(name)
            if not found:
                positions[name] = [len(result)]
                result.append(self.map({"name": name}, fields, here, out))
                changed = True
                continue
            for number, index in enumerate(found):
                merged = self.map(result[index], fields, here, out if number == 0 else None)
                if merged is not result[index]:
                    result[index] = merged
                    changed = True
        if deleted & positions.keys():
            result = [item for item in result if item["name"] not in deleted]
            changed = True
        return result if changed else target


def _is_named(items: list[Any] | tuple[Any, ...]) -> bool:
    """A partial list merged by name: non-empty, every item a map with a string name."""
    return bool(items) and _all_named(items)


def _all_named(items: list[Any] | tuple[Any, ...]) -> bool:
    return all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in items)


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
