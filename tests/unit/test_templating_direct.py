"""engine.templating.direct: leaves rendered straight from the variables, against
`Template.render_leaves`.

`Template.leaf_renderer` must be invisible: for any variables and limits, it gives the
values `render_leaves` gives (the same types, all the way down) or fails with the same
error; and it must answer directly in the plain case, or it saves nothing.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import TemplateError, Where
from engine.evaluate.writers import shape_leaves
from engine.templating import TemplateLimits, compile_template, direct, rendering
from tests.support import same

WHERE = Where(file="rules.yaml", rule_set="direct", rule="r", field="mutate.template")

KEYS = ["name", "a", "b", "items", "get", "_x"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
           | st.sampled_from([2**70, 10**4001, 1.5, math.inf, math.nan, -0.0])
           | st.text(max_size=6) | st.sampled_from(["x" * 70, "x" * 700, "{{ 1 }}", "é"]))
VALUES = st.recursive(
    SCALARS | st.sampled_from([(1, 2), b"bytes", frozenset({1})]),
    lambda inner: (st.lists(inner, max_size=2)
                   | st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=3)),
    max_leaves=10)
MAPPINGS = st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=4)
VARIABLES = st.fixed_dictionaries({"object": MAPPINGS, "params": MAPPINGS},
                                  optional={"item": VALUES, "omit": VALUES, "range": VALUES})

STEP = st.one_of(st.sampled_from([".name", ".a", ".b", ".items", ".get", "['a']", "['_x']",
                                  "[0]", "[1]"]))
PATH = st.tuples(st.sampled_from(["object", "object", "params", "item", "omit", "range",
                                  "missing"]),
                 st.lists(STEP, max_size=3)).map(lambda t: t[0] + "".join(t[1]))
EXPRESSION = st.one_of(PATH, PATH.map(lambda p: f"{p} | string"))
STRINGS = st.one_of(
    EXPRESSION.map(lambda e: "{{ " + e + " }}"),
    st.tuples(EXPRESSION, st.sampled_from(["-config", "", "a.b"]), EXPRESSION).map(
        lambda t: "pre-{{ " + t[0] + " }}" + t[1] + "{{ " + t[2] + " }}"),
    EXPRESSION.map(lambda e: "{{ " + e + " }}-x"),
    # not plans: rendered the ordinary way
    st.sampled_from(["{{ object.name | upper }}", "{{ params.a ~ 'x' }}",
                     "{% if 1 %}y{% endif %}"]))
LIMITS = st.sampled_from([
    TemplateLimits(), TemplateLimits(max_string=8), TemplateLimits(max_operations=5),
    TemplateLimits(max_operations=12), TemplateLimits(max_string=700, max_operations=300)])


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return ("value", call())
    except TemplateError as error:
        return (type(error).__name__, str(error))



def _alike(got: tuple[str, Any], expected: tuple[str, Any], strings: list[str],
           variables: dict[str, Any]) -> None:
    """The same outcome: the same value with the same types, or the same error."""
    assert got[0] == expected[0], (strings, variables, got, expected)
    if got[0] == "value":
        assert same(got[1], expected[1]), (strings, variables, got, expected)
    else:
        assert got[1] == expected[1]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STRINGS, min_size=1, max_size=4), VARIABLES, LIMITS, st.booleans())
def test_leaves_render_as_render_leaves_renders_them(strings: list[str],
                                                     variables: dict[str, Any],
                                                     limits: TemplateLimits,
                                                     under_way: bool) -> None:
    template = compile_template({f"k{i}": s for i, s in enumerate(strings)}, where=WHERE,
                                limits=limits)
    shape = template.shape()
    assert shape is not None
    leaves = tuple(shape_leaves(shape))
    renderer = template.leaf_renderer(leaves)
    if under_way:  # a budget already open: both render on it
        with rendering(TemplateLimits(max_string=9)):
            got = outcome(lambda: renderer(variables))
        with rendering(TemplateLimits(max_string=9)):
            expected = outcome(lambda: template.render_leaves(leaves, variables))
    else:
        got = outcome(lambda: renderer(variables))
        expected = outcome(lambda: template.render_leaves(leaves, variables))
    _alike(got, expected, strings, variables)


@pytest.mark.parametrize(("strings", "variables", "expected"), [
    (["{{ item.name }}", "{{ params.cpu }}"], {"item": {"name": "c0"}, "params": {"cpu": 1}},
     ["c0", 1]),
    (["{{ object.spec.replicas | string }}", "{{ object.metadata.name }}-config"],
     {"object": {"spec": {"replicas": 3}, "metadata": {"name": "web"}}}, ["3", "web-config"]),
    (["{{ object.a }}.{{ object['b'] }}", "{{ params.x }}"],
     {"object": {"a": "x", "b": 2}, "params": {"x": None}}, ["x.2", None]),
    (["{{ params.t | string }}", "v{{ params.n }}"], {"params": {"t": True, "n": None}},
     ["True", "v"]),
])
def test_the_plain_case_is_rendered_directly(strings: list[str], variables: dict[str, Any],
                                            expected: list[Any]) -> None:
    template = compile_template({f"k{i}": s for i, s in enumerate(strings)}, where=WHERE)
    shape = template.shape()
    assert shape is not None
    leaves = tuple(shape_leaves(shape))
    plans = [leaf.compiled.direct for leaf in leaves]
    assert None not in plans
    assert direct.render(plans, variables, template.limits) == expected
    assert template.leaf_renderer(leaves)(variables) == expected
    assert template.render_leaves(leaves, variables) == expected


@pytest.mark.parametrize(("strings", "variables"), [
    (["{{ object.a }}"], {"object": {"a": {"b": 1}}}),  # a map: copied by to_plain
    (["{{ object.a }}"], {"object": {"a": 1.5e400}}),  # inf: refused
    (["{{ object.a.b }}"], {"object": {"a": [1]}}),  # the sandbox's getattr
    (["{{ omit }}"], {}),  # a global
    (["x{{ object.a }}"], {"object": {"a": [1]}}),  # printing a list: checked
    (["{{ object.a | string }}"], {"object": {"a": "x" * 64 * 130}}),  # past the clock check
])
def test_anything_else_is_rendered_the_ordinary_way(strings: list[str],
                                                    variables: dict[str, Any]) -> None:
    template = compile_template({f"k{i}": s for i, s in enumerate(strings)}, where=WHERE)
    shape = template.shape()
    assert shape is not None
    plans = [leaf.compiled.direct for leaf in shape_leaves(shape)]
    assert None not in plans
    assert direct.render(plans, variables, template.limits) is None


# paths over two keys only: leaves of one template share prefixes (a prefix followed once
# by the compiled renderer serves every leaf below it)
SHARED_PATH = st.tuples(st.sampled_from(["object", "item"]),
                        st.lists(st.sampled_from([".a", ".b", "['a']"]), max_size=2)).map(
    lambda t: t[0] + "".join(t[1]))
SHARED_EXPRESSION = st.one_of(SHARED_PATH, SHARED_PATH.map(lambda p: f"{p} | string"))
SHARED_STRINGS = st.one_of(
    SHARED_EXPRESSION.map(lambda e: "{{ " + e + " }}"),
    st.tuples(SHARED_EXPRESSION, SHARED_EXPRESSION).map(
        lambda t: "{{ " + t[0] + " }}-{{ " + t[1] + " }}"))
SHARED_VALUES = st.recursive(
    st.none() | st.integers(-10**20, 10**20) | st.sampled_from(["x", "x" * 70, 1.5, True])
    | st.sampled_from([[1], (1,)]),
    lambda inner: st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
    max_leaves=8)
SHARED_MAPS = st.dictionaries(st.sampled_from(["a", "b"]), SHARED_VALUES, min_size=1, max_size=2)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SHARED_STRINGS, min_size=2, max_size=5),
       st.fixed_dictionaries({"object": SHARED_MAPS, "item": SHARED_MAPS}),
       LIMITS)
def test_leaves_sharing_prefixes_render_as_render_leaves_renders_them(
        strings: list[str], variables: dict[str, Any], limits: TemplateLimits) -> None:
    template = compile_template({f"k{i}": s for i, s in enumerate(strings)}, where=WHERE,
                                limits=limits)
    shape = template.shape()
    assert shape is not None
    leaves = tuple(shape_leaves(shape))
    got = outcome(lambda: template.leaf_renderer(leaves)(variables))
    expected = outcome(lambda: template.render_leaves(leaves, variables))
    _alike(got, expected, strings, variables)


@pytest.mark.parametrize(("strings", "variables", "expected"), [
    # the shared prefix is a map for the first leaf and the second steps below a list
    (["{{ object.a.b }}", "{{ object.a.b.c }}"], {"object": {"a": {"b": [1]}}}, None),
    (["{{ object.a.b | string }}", "{{ object.a.b }}"], {"object": {"a": {"b": 3}}},
     ["3", 3]),
    (["{{ object.a }}-{{ object.b }}", "{{ object.a }}"], {"object": {"a": "x", "b": 2}},
     ["x-2", "x"]),
    (["{{ object.a }}", "{{ object.c }}"], {"object": {"a": "x"}}, None),  # undefined
])
def test_compiled_renderer_on_shared_prefixes(strings: list[str], variables: dict[str, Any],
                                             expected: list[Any] | None) -> None:
    template = compile_template({f"k{i}": s for i, s in enumerate(strings)}, where=WHERE)
    shape = template.shape()
    assert shape is not None
    plans = tuple(leaf.compiled.direct for leaf in shape_leaves(shape))
    assert None not in plans
    assert direct.renderer(plans, template.limits)(variables) == expected  # type: ignore[arg-type]
