"""engine.cel.cost, engine.cel.syntax and engine.cel.rewrite: the estimate and the tree.

The estimate is checked where it matters: growth shows (chained replace), what the
library does quadratically is charged quadratically, loop bodies are capped by the
library's iteration budget, checked types narrow it, and it never shrinks when the data
grows (the per-program cache relies on that). The tree round-trips through the library
unchanged, and routing only renames what the Kubernetes library declares.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cel import compile_expression, cost, rewrite, syntax
from engine.cel.environment import environment
from engine.cel.inputs import LEVELS, Sizes
from engine.cel.limits import CelLimits
from engine.errors import Where

NAMES = ("object",)


def checked(source: str) -> syntax.Checked:
    return syntax.decode(environment(NAMES).compile(source).serialize())


def estimate(source: str, items: int = 10, chars: int = 10, count: int = 100) -> float:
    tree = checked(source)
    sizes = Sizes(chars, items, count, chars * count, ((count, chars * count),) * LEVELS)
    return cost.estimate(tree.root, NAMES, cost.measured_inputs(sizes), tree.types)


def test_growth_multiplies_through_a_chain() -> None:
    reading = estimate("object.s", chars=1000)
    one = estimate("object.s.replace('a', 'aaaaaaaaaa')", chars=1000) - reading
    two = estimate("object.s.replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa')",
                   chars=1000) - reading
    assert two > 10 * one
    assert estimate("object.s.replace('aa', 'b')", chars=1000) - reading < one


def test_map_is_quadratic_and_all_is_linear() -> None:
    assert estimate("size(object.l.map(x, x))", items=2000) > 3.5 * estimate(
        "size(object.l.map(x, x))", items=1000)
    assert estimate("object.l.all(x, x > 0)", items=2000) < 2.2 * estimate(
        "object.l.all(x, x > 0)", items=1000)


def test_loop_bodies_never_run_more_than_the_library_allows() -> None:
    nested = "object.a.all(x, object.b.all(y, x != y))"
    assert estimate(nested, items=100_000) < 40 * estimate(nested, items=100)


def test_checked_types_narrow_what_a_value_can_be() -> None:
    # a string built from data is one value, whatever the data holds
    assert estimate("[object.s + 'x'] == [object.t]", count=10_000) < estimate(
        "[object.s] == [object.t]", count=10_000)


EXPRESSIONS = [
    "size(object.l.map(x, x))", "object.l.all(x, object.l.exists(y, y == x))",
    "object.s.replace('a', 'bb').split('b').size()", "object.m.transformMap(k, v, v + 'x')",
    "sets.contains(object.l, object.k)", "object.s.find(object.p)",
    "'%s'.format([object.m]).size()", "object.l.filter(x, x in object.k).size()",
]
measures = st.integers(min_value=0, max_value=5000)


@given(st.sampled_from(EXPRESSIONS), measures, measures, measures, measures)
def test_the_estimate_never_shrinks_when_the_data_grows(source: str, chars: int, items: int,
                                                       count: int, extra: int) -> None:
    small = Sizes(chars, items, count, chars, ((count, chars),) * LEVELS)
    large = Sizes(chars + extra, items + extra, count + extra, chars + extra,
                  ((count + extra, chars + extra),) * LEVELS)
    tree = checked(source)
    assert (cost.estimate(tree.root, NAMES, cost.measured_inputs(small), tree.types)
            <= cost.estimate(tree.root, NAMES, cost.measured_inputs(large), tree.types))


ROUND_TRIP = [
    "has(object.a.b) && object.c[?'d'].orValue(1) in [1, 2] && {'k': 1}.k == 1",
    "object.l.map(x, x * 2).filter(y, y > 2)", "[1, ?optional.none(), 3]",
    "{?'a': optional.of(1), 'b': 2}", "b'\\x00ab' != bytes('x') && -9223372036854775807 - 1 < 0",
    "cel.bind(v, object.a, v.b + 1)", "duration('1s') + duration('2s') > duration('2s')",
    "object.l.exists_one(x, x > 1) && 2.5 > 1 && 2u > 1u && null == object.z",
]


@pytest.mark.parametrize("source", ROUND_TRIP)
def test_the_tree_round_trips_through_the_library(source: str) -> None:
    env = environment(NAMES)
    compiled = env.compile(source)
    data = {"object": {"a": {"b": 1}, "c": {"d": 1}, "l": [1, 2, 3], "z": None}}
    again = env.deserialize(syntax.decode(compiled.serialize()).encode())
    assert str(again.return_type()) == str(compiled.return_type())
    first, second = (expression.eval(data=data) for expression in (compiled, again))
    assert first.plain_value() == second.plain_value()


@pytest.mark.parametrize("source", [*ROUND_TRIP, "{'a': 1}.transformMap(k, v, v * 10)",
                                    "quantity('1') == quantity('1000m')"])
def test_decoding_what_was_encoded_gives_the_same_tree(source: str) -> None:
    tree = checked(source)
    assert syntax.decode(tree.encode()) == tree


def names_of_calls(tree: syntax.Checked) -> set[str]:
    return {str(node.name) for node in tree.root.walk() if node.kind == "call"}


def test_routing_renames_only_what_the_kubernetes_library_declares() -> None:
    plain = checked("object.a.startsWith('x') && object.l.all(x, x > 1)")
    assert rewrite.rewrite(plain) is None
    routed = rewrite.rewrite(checked(
        "quantity(object.q).isLessThan(quantity('1')) && ip('::1').family() == 6"))
    assert routed is not None
    calls = names_of_calls(routed)
    assert {"@k8s.quantity", "@k8s.isLessThan", "@k8s.ip", "@k8s.ip.family"} <= calls
    assert "quantity" not in calls and "_&&_" in calls


def test_optional_results_are_wrapped_and_type_names_become_text() -> None:
    routed = rewrite.rewrite(checked(
        "format.named('uuid').hasValue() && type(ip('::1')) == net.IP"))
    assert routed is not None
    calls = names_of_calls(routed)
    assert {"optional.ofNonZeroValue", "@k8s.format.named", "@k8s.typeOf"} <= calls
    constants = {node.value for node in routed.root.walk() if node.kind == "const"}
    assert "net.IP" in constants


def test_programs_keep_their_estimates() -> None:
    program = compile_expression("size(object.l.map(x, x))", where=Where())
    assert 0 < program.cost < CelLimits().static_cost_limit < program.worst
    assert dataclasses.replace(program).source == program.source


def test_a_program_that_reads_no_data_is_never_checked_at_run_time() -> None:
    program = compile_expression("[1, 2, 3].map(x, x * 2)", where=Where())
    assert program.worst <= CelLimits().runtime_cost_limit
    assert program.evaluate({}) == [2, 4, 6]
