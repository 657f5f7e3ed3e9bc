"""Computing the JSON patch (RFC 6902) that turns the current object into the desired one.

The evaluator calls `make_patch(current, desired)` once per trigger and per generated
child after all rules ran; the live engine sends the result in one request, the offline
`edict apply -o patch` prints it. An empty list means converged — nothing is written —
so the diff must never report a difference where there is none (``1`` vs ``1.0``),
nor miss one (``1`` vs ``true``): see `engine.patching.values`.

Our own diff rather than `jsonpatch.make_patch`, whose `move` detection and list
handling have produced wrong patches; this one only emits ``add``, ``remove`` and
``replace``, and is simple enough to trust:

- maps: key by key (removals and changes in the current object's key order, then
  additions in the desired object's order);
- lists of equal length: item by item;
- lists whose length changed: item by item over the common length, then additions at
  the end or removals from the end — unless the lists have no item in common, or more
  than one and more than half of the common items changed (an insertion or removal
  near the front shifts everything): then one ``replace`` of the whole list;
- anything else that differs, including a change of kind: one ``replace``.

Values in operations are copies: the patch shares nothing with `desired`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import compress, filterfalse, repeat
from operator import is_not
from typing import Any

from engine.patching.pointer import escape
from engine.patching.values import MISSING, copy_json, json_equal

Op = dict[str, Any]

GUARD_PATH = "/metadata/resourceVersion"

_NESTED = (dict, list)  # a tuple: `isinstance` takes it faster than `dict | list`


def make_patch(
    current: Any, desired: Any, *, guard_resource_version: bool = True
) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `current` into `desired`; ``[]`` when they are equal.

    With `guard_resource_version`, a patch that changes anything is led by
    ``{"op": "test", "path": "/metadata/resourceVersion", "value": rv}`` when `current`
    has a ``metadata.resourceVersion``, so that the API server refuses it (422) if the
    object changed since it was read. An empty patch never gets a guard.
    """
    ops: list[Op] = []
    _diff(current, desired, "", ops)
    if ops and guard_resource_version:
        version = _resource_version(current)
        if version is not MISSING:
            ops.insert(0, {"op": "test", "path": GUARD_PATH, "value": version})
    return ops


def changed_paths(patch: Sequence[Mapping[str, Any]]) -> list[str]:
    """The JSON pointers that `patch` writes, in order, without repeats.

    ``test`` operations (the resourceVersion guard among them) write nothing and are
    left out; a ``move`` writes both its ``from`` and its ``path``.
    """
    seen: dict[str, None] = {}
    for op in patch:
        kind = op.get("op")
        if kind == "test":
            continue
        if kind == "move" and isinstance(op.get("from"), str):
            seen.setdefault(op["from"])
        if isinstance(op.get("path"), str):
            seen.setdefault(op["path"])
    return list(seen)


def _resource_version(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return MISSING
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("resourceVersion") is None:
        return MISSING
    return metadata["resourceVersion"]


def _diff(a: Any, b: Any, path: str, ops: list[Op]) -> None:
    if a is b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        _diff_map(a, b, path, ops)
    elif isinstance(a, list) and isinstance(b, list):
        _diff_list(a, b, path, ops)
    elif not json_equal(a, b):
        ops.append({"op": "replace", "path": path, "value": copy_json(b)})


def _diff_map(a: dict[str, Any], b: dict[str, Any], path: str, ops: list[Op]) -> None:
    removed = 0
    get = b.get
    # The keys of `a` whose value in `b` is not the very object, found in C: a desired
    # object shares every map and value a rule did not write with the current one, so
    # most keys are left out here without a step each.
    for key in compress(a, map(is_not, a.values(), map(get, a, repeat(MISSING)))):
        old, new = a[key], get(key, MISSING)
        if new is MISSING:
            removed += 1
            ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        elif isinstance(old, _NESTED) or isinstance(new, _NESTED):
            _diff(old, new, f"{path}/{escape(key)}", ops)
        elif not json_equal(old, new):
            ops.append({"op": "replace", "path": f"{path}/{escape(key)}", "value": new})
    if len(b) > len(a) - removed:  # then some keys of `b` are new
        for key in filterfalse(a.__contains__, b):
            ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": copy_json(b[key])})


def _diff_list(a: list[Any], b: list[Any], path: str, ops: list[Op]) -> None:
    common = min(len(a), len(b))
    item_ops: list[Op] = []
    changed = 0
    for index in range(common):
        before = len(item_ops)
        _diff(a[index], b[index], f"{path}/{index}", item_ops)
        if len(item_ops) > before:
            changed += 1
    if len(a) != len(b) and (common == 0 or (changed > 1 and changed * 2 > common)):
        ops.append({"op": "replace", "path": path, "value": copy_json(b)})
        return
    ops.extend(item_ops)
    for index in range(common, len(b)):
        ops.append({"op": "add", "path": f"{path}/{index}", "value": copy_json(b[index])})
    for index in range(len(a) - 1, common - 1, -1):
        ops.append({"op": "remove", "path": f"{path}/{index}"})
