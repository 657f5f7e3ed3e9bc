"""`same_content` compares field by field without copying: the same answer as removing
the server's fields from both objects' metadata and comparing them whole."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.objects import meta
from engine.patching import json_equal
from engine.runtime.controller.reconciler import SERVER_FIELDS, same_content


def stripped_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "metadata": {k: v for k, v in meta(obj).items()
                                    if k not in SERVER_FIELDS}}
    return json_equal(strip(a), strip(b))


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(0, 2), st.sampled_from([0.0, 1.0]),
                     st.sampled_from(["", "x", "1", "true"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=2) | st.tuples(inner)
                       | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
                       max_leaves=4)
_META = st.one_of(st.none(), st.dictionaries(st.sampled_from(
    ["name", "labels", *SERVER_FIELDS]), _VALUES, max_size=4))
_OBJECTS = st.builds(lambda top, m: {**top, **({} if m is None else {"metadata": m})},
                     st.dictionaries(st.sampled_from(["kind", "data", "spec"]), _VALUES,
                                     max_size=3), _META)


@settings(max_examples=500, deadline=None)
@given(_OBJECTS, _OBJECTS)
def test_same_content_is_equality_but_for_the_server_fields(
        a: dict[str, Any], b: dict[str, Any]) -> None:
    assert same_content(a, b) == stripped_equal(a, b)
    # and on near copies, where most pairs are equal
    c = {**a, "metadata": {**meta(a), "resourceVersion": "9", "generation": 2}}
    assert same_content(a, c) == stripped_equal(a, c) == same_content(c, a)


_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(0, 1), st.sampled_from([0.0, 1.0]),
                    st.sampled_from(["", "x", "1"]), st.lists(st.sampled_from(["x", 1]),
                                                              max_size=1))
_STRING_MAPS = st.dictionaries(st.sampled_from(["a", "b", "c"]), _LEAVES, max_size=3)


@settings(max_examples=500, deadline=None)
@given(_STRING_MAPS, _STRING_MAPS, _LEAVES, _LEAVES)
def test_maps_of_strings_and_strings_compare_as_json_equal_says(
        labels: dict[str, Any], other: dict[str, Any], a: Any, b: Any) -> None:
    """The shortcut for strings and maps of mostly strings (labels, a ConfigMap's data)."""
    for x, y in ((labels, other), (labels, dict(labels)), (a, b), (labels, a)):
        one, two = {"data": x, "metadata": {"labels": x}}, {"data": y, "metadata": {"labels": y}}
        assert same_content(one, two) == stripped_equal(one, two) == same_content(two, one)
