"""Quick conditions (`engine.cel.quick`) answer exactly what the CEL program answers.

Random expressions of the quick forms and around them (paths, has(), comparisons, `in`
on literal lists, !, &&, ||) on random data (missing keys, nulls, maps and lists where
scalars are read, int64 bounds, floats, NUL, non-ASCII and long strings): whenever a
quick closure answers, the answer is the program's; where the program fails, the
closure must have declined (`SLOW`).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from engine.cel import SLOW, compile_expression, cost
from engine.cel.inputs import InputRejected, inspect, plain_bounds
from engine.cel.limits import CelLimits
from engine.cel.quick import filter_of
from engine.errors import CelError, CompileError, Where

WHERE = Where(rule_set="random", rule="r")
PATHS = ["object.a", "object.a.b", "object.spec.replicas", "object.b", "namespaceObject",
         "params.x", "object.spec"]
CONSTANTS = ["1", "0", "-1", "'x'", "''", "true", "false", "null", "9223372036854775807"]
KEYS = ["a", "b", "spec", "replicas", "x"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([2 ** 63 - 1, 2 ** 63, -2 ** 63,
                                                                 -2 ** 63 - 1, 1.0, 0.5]),
    st.sampled_from(["x", "", "y", "a\x00b", "é", "\ud800", "x" * 300]))
ODD = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=6)
PLAIN = st.recursive(st.one_of(st.integers(-2, 2), st.sampled_from(["x", "y"])),
                     lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, min_size=2,
                                                   max_size=4), max_leaves=8)
DATA = st.one_of(PLAIN, ODD)  # the plain case often, so that quick answers are many


def atoms() -> st.SearchStrategy[str]:
    path = st.sampled_from(PATHS)
    comparison = st.tuples(path, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
                           st.one_of(st.sampled_from(CONSTANTS), path)).map(" ".join)
    has = st.sampled_from([p for p in PATHS if "." in p]).map(lambda p: f"has({p})")
    member = st.tuples(path, st.sampled_from(["['x', 'y']", "[1, 2]", "['x']"])).map(
        lambda t: f"{t[0]} in {t[1]}")
    return st.one_of(comparison, has, member, path)


EXPRESSIONS = st.recursive(atoms(), lambda inner: st.one_of(
    inner.map(lambda e: f"!({e})"),
    st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
        lambda t: f"({t[0]}) {t[1]} ({t[2]})")), max_leaves=4)


def evaluated(program: Any, variables: dict[str, Any]) -> Any:
    try:
        return program.evaluate(variables)
    except CelError as exc:
        return exc


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.filter_too_much])
@given(EXPRESSIONS, st.dictionaries(st.sampled_from(KEYS), DATA, max_size=3),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), DATA, max_size=2)), DATA)
def test_a_quick_answer_is_the_programs(source: str, obj: dict[str, Any], namespace: Any,
                                        x: Any) -> None:
    try:
        program = compile_expression(source, where=WHERE)
    except CompileError:
        assume(False)
        return
    variables = {"object": obj, "namespaceObject": namespace, "params": {"x": x}}
    quick = program.quick(variables)
    if quick is SLOW:
        return
    expected = evaluated(program, variables)
    assert not isinstance(expected, Exception), (source, variables, quick, expected)
    assert type(quick) is type(expected) and quick == expected, (source, variables)


@pytest.mark.parametrize(("source", "variables", "expected"), [
    ("object.spec.replicas > 1", {"object": {"spec": {"replicas": 3}}}, True),
    ("!has(object.spec.revisionHistoryLimit)", {"object": {"spec": {}}}, True),
    ("!has(object.spec.revisionHistoryLimit)",
     {"object": {"spec": {"revisionHistoryLimit": 2}}}, False),
    ("namespaceObject == null", {"namespaceObject": None}, True),
    ("namespaceObject != null", {"namespaceObject": {"metadata": {"labels": {"a": "b"}}}},
     True),
    ("null == context.settings", {"context": {"settings": {"data": {"a": 1}}}}, False),
    ("params.x != null", {"params": {"x": [1, "a", None, {"b": True}]}}, True),
    ("object.metadata.labels.env in ['a', 'b']",
     {"object": {"metadata": {"labels": {"env": "b"}}}}, True),
    ("object.a == 'x' && object.b != 1", {"object": {"a": "x", "b": 2}}, True),
])
def test_the_quick_forms_answer_quickly(source: str, variables: dict[str, Any],
                                        expected: bool) -> None:
    program = compile_expression(source, where=WHERE)
    assert program.quick(variables) is expected
    assert program.evaluate(variables) is expected


@pytest.mark.parametrize(("source", "variables"), [
    ("object.spec.replicas > 1", {"object": {"spec": {}}}),  # missing: CEL's error
    ("object.spec.replicas > 1", {"object": {"spec": {"replicas": 1.5}}}),
    ("object.a == 'x'", {"object": {"a": "x\x00"}}),  # the input check refuses it
    ("object.a == 'x'", {"object": {"a": {"b": 1}}}),
    ("context.settings != null", {"context": {}}),  # missing: CEL's error
    ("object.a.b != null", {"object": {"a": "text"}}),  # selecting on text: CEL's error
    ("object.a != null", {"object": {"a": 1.5}}),  # not plain: the program decides
    ("object.a != null", {"object": {"a": (1, 2)}}),  # the repair's
    ("has(object.a.b)", {"object": {"a": "text"}}),
    ("object.a.size() > 1", {"object": {"a": "xy"}}),  # not a quick form
])
def test_anything_else_is_left_to_the_program(source: str, variables: dict[str, Any]
                                              ) -> None:
    assert compile_expression(source, where=WHERE).quick(variables) is SLOW


NULL_CHECKS = ["namespaceObject != null", "namespaceObject == null", "null != params.x",
               "context.settings == null", "context.settings != null", "object.a != null",
               "object.a.b == null"]
# small limits, so that depth, length and cost refusals happen on small data
TIGHT = CelLimits(max_string_length=4, max_list_length=3, max_depth=3,
                  runtime_cost_limit=60)
CONTAINERS = st.recursive(
    st.one_of(SCALARS, st.sampled_from([(1,), b"x", "\ue000"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
                            st.dictionaries(st.sampled_from([1, "x"]), inner, max_size=2)),
    max_leaves=12)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NULL_CHECKS), st.booleans(),
       st.dictionaries(st.sampled_from(["namespaceObject", "params", "context", "object"]),
                       st.one_of(CONTAINERS, st.dictionaries(
                           st.sampled_from(["x", "settings", "a", "b"]), CONTAINERS,
                           max_size=2)), max_size=4))
def test_a_container_against_null_is_the_programs_answer(source: str, tight: bool,
                                                         variables: dict[str, Any]) -> None:
    """`<path> != null` on a map or a list answers only where the program would bind
    the data and run (its checks, its repair, its cost bound) and then says the same."""
    program = compile_expression(source, where=WHERE, limits=TIGHT if tight else None)
    quick = program.quick(variables)
    if quick is SLOW:
        return
    expected = evaluated(program, variables)
    assert not isinstance(expected, Exception), (source, variables, quick, expected)
    assert type(quick) is type(expected) and quick == expected, (source, variables)


@pytest.mark.parametrize("value", [
    {"metadata": {"a": "x\x00"}}, {"metadata": {"a": 2 ** 64}}, [[1, 2, 3]] * 3,
    {"deep": {"er": {"than": {"allowed": 1}}}}, "é" * 9, 2 ** 64, {1: "not a string key"}])
def test_a_value_only_compared_with_null_is_not_read(value: Any) -> None:
    """``x != null`` binds a stand-in for x (`reads.stand_in`): what x holds — text CEL
    cannot take, numbers beyond int64, more than the limits allow — cannot fail it,
    quick or not; an expression that reads into x still checks all it reads there."""
    for source, variables in [("params.x != null", {"params": {"x": value}}),
                              ("null == namespaceObject", {"namespaceObject": value})]:
        program = compile_expression(source, where=WHERE, limits=TIGHT)
        expected = source.startswith("null ==") is False
        assert program.quick(variables) is expected
        assert program.evaluate(variables) is expected
    reading = compile_expression("params.x != null && size(params.x) >= 0", where=WHERE,
                                 limits=TIGHT)
    assert isinstance(evaluated(reading, {"params": {"x": value}}), CelError)


ITEM_PATHS = ["c.a", "c.a.b", "c.b", "c", "object.a", "params.x"]


def item_atoms() -> st.SearchStrategy[str]:
    path = st.sampled_from(ITEM_PATHS)
    comparison = st.tuples(path, st.sampled_from(["==", "!=", "<", ">="]),
                           st.one_of(st.sampled_from(CONSTANTS), path)).map(" ".join)
    has = st.sampled_from(["has(c.a)", "has(c.a.b)", "has(c.b)", "has(object.a)"])
    member = st.tuples(path, st.sampled_from(["['x', 'y']", "[1, 2]"])).map(
        lambda t: f"{t[0]} in {t[1]}")
    return st.one_of(comparison, has, member, st.just("true"))


ITEM_CONDITIONS = st.one_of(st.sampled_from([
    "has(c.a)", "!has(c.a) || !has(c.a.b)", "has(c.b) && c.b > 0", "!has(c.a.b)",
    "c.a == 'x' || has(c.b)"]), st.recursive(item_atoms(), lambda inner: st.one_of(
    inner.map(lambda e: f"!({e})"),
    st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
        lambda t: f"({t[0]}) {t[1]} ({t[2]})")), max_leaves=4))
ITEMS = st.one_of(
    st.lists(st.one_of(PLAIN, CONTAINERS), max_size=4), CONTAINERS,
    # items like containers: the condition finds what it reads, or has() does not
    st.lists(st.fixed_dictionaries({}, optional={
        "a": st.one_of(st.sampled_from(["x", "y", "x\x00"]), st.fixed_dictionaries(
            {}, optional={"b": st.one_of(st.integers(-2, 2), st.just(2 ** 64))})),
        "b": st.integers(-2, 2)}), max_size=4))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.filter_too_much])
@given(ITEM_CONDITIONS, st.booleans(), ITEMS, DATA, DATA)
def test_quick_filter_items_are_the_programs(condition: str, tight: bool, items: Any,
                                             a: Any, x: Any) -> None:
    """`<path>.filter(c, <condition>)`: the quick items equal the program's list wherever
    they are given; where the program errs or refuses the data, none are given."""
    source = f"object.spec.items.filter(c, {condition})"
    try:
        program = compile_expression(source, where=WHERE, limits=TIGHT if tight else None)
    except CompileError:
        assume(False)
        return
    variables = {"object": {"spec": {"items": items}, "a": a}, "params": {"x": x}}
    quick = program.quick_items(variables)
    if quick is SLOW:
        return
    expected = evaluated(program, variables)
    assert not isinstance(expected, Exception), (source, variables, quick, expected)
    assert quick == expected, (source, variables)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.filter_too_much])
@given(ITEM_CONDITIONS, ITEMS, DATA, DATA)
def test_a_generated_filter_is_its_closures(condition: str, items: Any, a: Any, x: Any
                                            ) -> None:
    """A filter whose condition is compiled into one function (`_generated_filter`) gives
    exactly what the closures give: the very items, in order, or `SLOW` where they
    decline — on any data, checked or not."""
    source = f"object.spec.items.filter(c, {condition})"
    try:
        program = compile_expression(source, where=WHERE)
    except CompileError:
        assume(False)
        return
    generated = filter_of(program._tree, generated=True)
    closures = filter_of(program._tree, generated=False)
    assume(closures is not None)
    assert generated is not None and closures is not None
    for variables in ({"object": {"spec": {"items": items}, "a": a}, "params": {"x": x}},
                      {"object": {"spec": {"items": items}}}, {"object": {"spec": items}}):
        got, expected = generated(variables), closures(variables)
        assert got is SLOW if expected is SLOW else (
            type(got) is list and len(got) == len(expected)
            and all(g is e for g, e in zip(got, expected, strict=True))), (
            source, variables, got, expected)


@pytest.mark.parametrize("condition", [
    "!has(c.resources) || !has(c.resources.limits)", "has(c.a) && !has(object.a)",
    "true", "!(has(c.a.b) || false)"])
def test_filters_of_has_and_logic_are_generated(condition: str) -> None:
    program = compile_expression(f"object.spec.items.filter(c, {condition})", where=WHERE)
    assert filter_of(program._tree).__qualname__ == "run"  # not `filter_of.<locals>.run`
    assert filter_of(program._tree, generated=False).__qualname__ == "filter_of.<locals>.run"


def test_the_corpus_filter_is_quick() -> None:
    program = compile_expression("object.spec.template.spec.containers.filter(c, "
                                 "!has(c.resources) || !has(c.resources.limits))", where=WHERE)
    containers = [{"name": "a", "resources": {"limits": {"cpu": "1"}}}, {"name": "b"},
                  {"name": "c", "resources": {}}]
    variables = {"object": {"spec": {"template": {"spec": {"containers": containers}}}}}
    assert program.quick_items(variables) == [containers[1], containers[2]]
    assert program.evaluate(variables) == [containers[1], containers[2]]
    containers.append({"name": "d\x00"})  # refused by the input check: the program's call
    assert program.quick_items(variables) is SLOW


def _accepts_by_sizes(program: Any, variables: dict[str, Any]) -> bool:
    """`Program._accepts` as it was written before its tuple fast path: `Sizes` from
    `plain_bounds`, `_fits` on them, then on the exact sizes."""
    view = program._seen()
    projected = view.project(variables)
    read = {name: projected[name] for name in view.reads if name in projected}
    values = program.limits.runtime_cost_limit / cost.CONVERT
    sizes = plain_bounds(read, program.limits, max_values=values)
    if sizes is None:
        return False
    if program._fits(sizes):
        return True
    try:
        return bool(program._fits(inspect(read, program.limits, max_values=values)))
    except InputRejected:
        return False


# data on both sides of a cost bound: lists of 0 to 40 items (a filter at a budget of
# 1000 accepts 16 items, not 32; a null check at 60 accepts few values)
SIZED = st.fixed_dictionaries({
    "object": st.fixed_dictionaries({"spec": st.fixed_dictionaries({"items": st.one_of(
        st.lists(st.fixed_dictionaries({"a": st.sampled_from(["x", "yy"])}), max_size=40),
        CONTAINERS)})}),
    "namespaceObject": st.one_of(CONTAINERS, st.dictionaries(
        st.sampled_from(KEYS), st.lists(st.sampled_from(["x", 1, "zzz"]), max_size=20),
        max_size=3)),
    "context": st.fixed_dictionaries({"settings": st.one_of(CONTAINERS, PLAIN)})})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example("object.spec.items.filter(c, has(c.a))", CelLimits(runtime_cost_limit=1000),
         [{"object": {"spec": {"items": [{"a": "x"}] * n}}} for n in (1, 16, 32, 8)])
@given(st.one_of(st.just("object.spec.items.filter(c, has(c.a))"),
                 st.sampled_from(NULL_CHECKS)),
       st.sampled_from([None, TIGHT, CelLimits(runtime_cost_limit=60),
                        CelLimits(runtime_cost_limit=400), CelLimits(runtime_cost_limit=1000)]),
       st.lists(SIZED, min_size=1, max_size=8))
def test_accepting_on_measures_is_accepting_on_sizes(source: str, limits: Any,
                                                     sequence: list[dict[str, Any]]) -> None:
    """The quick forms' check of plain data (`_accepts`, on `plain_measures` tuples)
    answers what `_fits` on `plain_bounds`' `Sizes` answers, call after call (both
    programs remember the sizes they accepted)."""
    fast = compile_expression(source, where=WHERE, limits=limits)
    reference = compile_expression(source, where=WHERE, limits=limits)
    for variables in sequence:
        assert fast._accepts(variables) == _accepts_by_sizes(reference, variables), (
            source, variables)
