"""engine.patching.values.json_equal against the definition it implements, on random
pairs of JSON-like values (shared subtrees, near copies, texts, `1`/`1.0`/`True`,
tuples for lists, key order)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.patching import json_equal

SCALARS = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, 1.0, 0.0, 2, -1]),
                    st.sampled_from(["", "a", "b", "1", "True"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=2).map(tuple)
    | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=10)


def reference(a: Any, b: Any) -> bool:
    """The definition: maps equal key by key in any order, lists (or tuples) item by
    item, booleans equal only to booleans, numbers by value, texts by text."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(reference(a[k], b[k]) for k in a))
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return (isinstance(a, list | tuple) and isinstance(b, list | tuple)
                and len(a) == len(b) and all(map(reference, a, b)))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def changed(value: Any, data: st.DataObject) -> Any:
    """A copy of `value` sharing some subtrees with it, one leaf perhaps replaced."""
    if isinstance(value, dict):
        out = {}
        for key in sorted(value, key=lambda _: data.draw(st.integers(0, 3))):
            out[key] = value[key] if data.draw(st.booleans()) else changed(value[key], data)
        return out
    if isinstance(value, list | tuple):
        return [item if data.draw(st.booleans()) else changed(item, data) for item in value]
    return data.draw(SCALARS) if data.draw(st.integers(0, 4)) == 0 else copy.copy(value)


@settings(max_examples=1500, deadline=None)
@given(VALUES, VALUES, st.data())
def test_json_equal_is_its_definition(a: Any, b: Any, data: st.DataObject) -> None:
    assert json_equal(a, b) == reference(a, b)
    near = changed(a, data)
    assert json_equal(a, near) == reference(a, near), (a, near)
    assert json_equal(near, a) == reference(near, a), (a, near)
