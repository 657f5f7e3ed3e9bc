"""engine.cel.inputs: data reaches CEL intact and bounded, or the evaluation fails.

The pass over the data is checked against what the library would do with it (a NUL
cuts a string, a lone surrogate breaks the conversion, deep nesting crashes it), and
its measures against values counted by hand; then a property: the measures bound what
a plain recursive count of the same data gives.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cel.inputs import LEVELS, InputRejected, bounds, inspect, plain_bounds
from engine.cel.limits import CelLimits
from engine.cel.values import MARK

LIMITS = CelLimits()


@pytest.mark.parametrize(("data", "where"), [
    ({"object": {"metadata": {"annotations": {"x": "ok\x00EVIL"}}}},
     "object.metadata.annotations.x holds a NUL character"),
    ({"object": {"labels": {"k\x00": "v"}}}, "a key of object.labels holds a NUL character"),
    ({"object": {"items": ["a", "b\x00"]}}, "object.items[1] holds a NUL character"),
    ({"object": {"data": b"a\x00b"}}, "object.data holds a NUL byte"),
    ({"params": "\ud800"}, "params holds a lone surrogate"),
    ({"object": {"x": MARK + "q1\x1f5"}}, "object.x holds the tag of a Kubernetes value"),
])
def test_what_cannot_reach_cel_intact_is_refused_with_its_place(data: dict[str, Any],
                                                                  where: str) -> None:
    with pytest.raises(InputRejected) as raised:
        inspect(data, LIMITS)
    assert str(raised.value).startswith(where)
    assert not raised.value.limit


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("data", "fragment"), [
    ({"object": {"s": "x" * 101}}, "is a string of 101 characters, longer than the limit of 100"),
    ({"object": {"l": list(range(11))}}, "object.l has 11 entries, more than the limit of 10"),
    ({"object": nested(6)}, "is nested deeper than the limit of 5 levels"),
])
def test_sizes_beyond_the_limits_are_refused(data: dict[str, Any], fragment: str) -> None:
    small = CelLimits(max_string_length=100, max_list_length=10, max_depth=5)
    with pytest.raises(InputRejected, match=fragment) as raised:
        inspect(data, small)
    assert raised.value.limit


def test_at_the_limits_is_accepted() -> None:
    small = CelLimits(max_string_length=100, max_list_length=10, max_depth=5)
    sizes = inspect({"object": {"s": "x" * 100, "l": list(range(10))}}, small)
    assert (sizes.chars, sizes.items) == (100, 10)
    assert inspect({"object": nested(5)}, small).count == 5


def test_too_many_values_stop_the_pass_as_a_cost() -> None:
    with pytest.raises(InputRejected, match="more than 1,000 values") as raised:
        inspect({"object": {"l": list(range(2000))}}, LIMITS, max_values=1000)
    assert raised.value.cost


def test_measures() -> None:
    data = {"object": {"a": list(range(100)), "b": [{"x": "abc", "y": [1, 2]}, {"x": "d"}]},
            "params": None}
    sizes = inspect(data, LIMITS)
    assert (sizes.chars, sizes.items, sizes.count, sizes.text) == (3, 100, 111, 9)
    assert len(sizes.levels) == LEVELS
    # depth 2: the lists a (101 values) and b (7 characters with its keys); depth 3: the
    # dicts in b; deeper: the list y, then nothing but scalars
    assert sizes.levels[:3] == ((101, 7), (5, 5), (3, 3))
    assert sizes.levels[-1] == (1, 3)


def test_mappings_and_tuples_the_library_refuses_are_measured_too() -> None:
    sizes = inspect({"object": OrderedDict(a=(1, 2), b=OrderedDict(c="xy"))}, LIMITS)
    assert (sizes.items, sizes.count, sizes.text) == (2, 6, 5)


def count_values(value: Any) -> tuple[int, int, int]:
    """(values, characters, longest list) the plain recursive way."""
    if isinstance(value, dict):
        parts = [count_values(item) for item in value.values()]
        return (1 + sum(p[0] for p in parts), sum(map(len, value)) + sum(p[1] for p in parts),
                max([len(value), *(p[2] for p in parts)]))
    if isinstance(value, list):
        parts = [count_values(item) for item in value]
        return (1 + sum(p[0] for p in parts), sum(p[1] for p in parts),
                max([len(value), *(p[2] for p in parts)]))
    return 1, len(value) if isinstance(value, str) else 0, 0


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=20)


@given(json_values)
def test_the_measures_are_the_plain_counts(value: Any) -> None:
    try:
        sizes = inspect({"object": value}, LIMITS)
    except InputRejected:
        assert "\x00" in repr(value) or "\\x00" in repr(value)
        return
    values, chars, longest = count_values(value)
    assert (sizes.count, sizes.text, sizes.items) == (values, chars, longest)
    assert all(count <= values and text <= chars for count, text in sizes.levels)


@given(json_values)
def test_the_quick_bounds_bound_the_exact_measures(value: Any) -> None:
    quick = bounds({"object": value}, LIMITS)
    try:
        exact = inspect({"object": value}, LIMITS)
    except InputRejected:
        assert quick is None  # what the walk refuses, the quick pass never lets through
        return
    if quick is not None:
        assert not quick.exact
        assert all(q >= e for q, e in zip(quick.flat(), exact.flat(), strict=True))


@pytest.mark.parametrize("value", ["ok\x00EVIL", {"k\x00": 1}, "\ud800", MARK + "q1\x1f5",
                                   b"bytes", {(1, 2): 3}, "a\\u0000", nested(300)])
def test_the_quick_bounds_leave_anything_doubtful_to_the_walk(value: Any) -> None:
    assert bounds({"object": value}, LIMITS) is None


ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
              st.sampled_from([2 ** 63, -2 ** 63 - 1, 2 ** 63 - 1, 1.5, "", "abcde", "a\x00",
                               "é", "\ud800", MARK, b"x", (1,)]), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.one_of(st.sampled_from(["a", "b", "k\x00", "é"]),
                                                      st.integers(0, 1)), inner, max_size=5)),
    max_leaves=25)
TIGHT = CelLimits(max_string_length=5, max_list_length=4, max_depth=4)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.sampled_from(["object", "params"]), ANY, min_size=1),
       st.booleans(), st.sampled_from([10, 40, 1_000_000]))
def test_plain_bounds_accept_only_what_inspect_accepts_and_bound_its_measures(
        data: dict[str, Any], tight: bool, max_values: int) -> None:
    limits = TIGHT if tight else LIMITS
    sizes = plain_bounds(data, limits, max_values=max_values)
    if sizes is None:
        return
    exact = inspect(data, limits, max_values=max_values)  # must not raise
    assert all(a <= b for a, b in zip(exact.flat(), sizes.flat(), strict=True)), (
        exact, sizes)


def test_plain_bounds_refuse_what_the_library_would_repair_or_refuse() -> None:
    for value in ({"a": 1.5}, {"a": (1,)}, {"a": 2 ** 63}, {1: "a"}, {"a": "é"},
                  {"a": b"x"}, {"a": "x\x00"}):
        assert plain_bounds({"object": value}, LIMITS) is None
    assert plain_bounds({"object": {"a": ["x", 1, True, None, {"b": -2 ** 63}]}},
                        LIMITS) is not None
