"""engine.evaluate.field_writers: an item writer's fields compiled into functions give
exactly what `writers._write` and `writers._fresh` give.

On random shapes (nested maps of constants and templated leaves), random item maps
(keys missing, equal or other values, a map where a scalar is written and the other way
round, `1` against `1.0` and `True`) and random rendered values: the same map — the
very given one where nothing changed, a copy otherwise, keys in the same order, values
of the same types —, the same assignments in the same order, the given map untouched.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import field_writers
from engine.evaluate.writers import _fresh, _write
from engine.templating import Constant
from tests.support import same


class _Leaf:
    """A templated leaf (anything neither a Constant nor a map of the shape)."""


KEYS = ["a", "b", "cpu", "limits", "x.y", "0"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(
    [1.0, 0.5, "x", "", "500m"]))
CHILD = st.recursive(
    st.one_of(SCALARS.map(Constant), st.just(None).map(lambda _: _Leaf())),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=3).map(
        lambda d: tuple(d.items())),
    max_leaves=8)
SHAPES = st.dictionaries(st.sampled_from(KEYS), CHILD, min_size=1, max_size=3).map(
    lambda d: tuple(d.items()))
VALUES = st.recursive(
    SCALARS | st.lists(SCALARS, max_size=2),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2).map(OrderedDict),
    max_leaves=8)
TARGETS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4)


def leaf_count(shape: Any) -> int:
    return sum(leaf_count(child) if isinstance(child, tuple) else
               0 if isinstance(child, Constant) else 1 for _, child in shape)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SHAPES, TARGETS, st.lists(SCALARS, min_size=12, max_size=12), st.randoms())
def test_compiled_fields_are_write_and_fresh(shape: Any, target: dict[str, Any],
                                             rendered: list[Any], rng: Any) -> None:
    count = leaf_count(shape)
    # the fields' leaves at some positions among all the template's rendered values
    positions = sorted(rng.sample(range(len(rendered)), count))
    write, fresh = field_writers.compiled(shape, positions)
    here = ("spec", "containers", "name=c0")
    given_target = copy.deepcopy(target)

    out: list[Any] = []
    got = write(target, here, rendered, out)
    expected_out: list[Any] = []
    expected = _write(target, shape, here, iter([rendered[p] for p in positions]), expected_out)
    assert (got is target) == (expected is target)
    assert same(got, expected), (shape, target, got, expected)
    assert [a.path for a in out] == [a.path for a in expected_out]
    assert all(same(a.value, b.value) for a, b in zip(out, expected_out, strict=True))
    assert same(target, given_target)  # never written in place

    named = {"name": "c0"}
    out, expected_out = [], []
    got = fresh(dict(named), here, rendered, out)
    expected = _fresh(dict(named), shape, here, iter([rendered[p] for p in positions]),
                      expected_out)
    assert same(got, expected), (shape, got, expected)
    assert [a.path for a in out] == [a.path for a in expected_out]
    assert all(same(a.value, b.value) for a, b in zip(out, expected_out, strict=True))


def test_the_corpus_fields() -> None:
    shape = (("resources", (("limits", (("cpu", _Leaf()), ("memory", _Leaf()))),)),)
    write, fresh = field_writers.compiled(shape, [1, 2])
    out: list[Any] = []
    item = {"name": "c0", "resources": {"limits": {"cpu": "500m"}}}
    written = write(item, ("c", "name=c0"), ["c0", "500m", "256Mi"], out)
    assert written == {"name": "c0", "resources": {"limits": {"cpu": "500m",
                                                               "memory": "256Mi"}}}
    assert written["resources"] is not item["resources"]
    assert [a.path for a in out] == [("c", "name=c0", "resources", "limits", "cpu"),
                                     ("c", "name=c0", "resources", "limits", "memory")]
    same_item = {"name": "c0", "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}
    assert write(same_item, ("c", "name=c0"), ["c0", "500m", "256Mi"], []) is same_item
    assert fresh({"name": "c1"}, ("c", "name=c1"), ["c1", "1", "2"], []) == {
        "name": "c1", "resources": {"limits": {"cpu": "1", "memory": "2"}}}
