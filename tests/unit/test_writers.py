"""A mutate template applied as a writer gives exactly what rendering and merging gives.

`engine.evaluate.writers`: for every template shape a writer accepts (literal keys over
scalar constants and templated strings), on random objects, variables and schemas
(ConfigMap, Deployment, none), the writer's object, assignments and identity (the very
object back when nothing changes) equal `merge`'s, and its errors equal `render`'s; it
declines (None) where the generic path must decide. Then whole evaluations with and
without writers (`Settings(writers=False)`) must conclude the same: desired object,
patch, outcomes with their paths, conflicts.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import TemplateError, Where
from engine.evaluate.writers import writer_of
from engine.objects import GVK
from engine.patching import merge
from engine.rules.load import parse_rule_set
from engine.schemas import Node
from engine.schemas.catalogue import builtin
from engine.templating import compile_template
from tests.support import assert_writers_change_nothing

WHERE = Where(rule_set="random", rule="r")
# names the schemas know (maps, structs, an atomic struct: the selector) and others
KEYS = ["metadata", "labels", "annotations", "spec", "selector", "matchLabels", "template",
        "replicas", "data", "a", "b"]
LEAVES = ["{{ params.v }}", "{{ params.w }}-x", "{{ object.metadata.name }}",
          "{{ params.missing }}", "{{ object.data.a | default('d') }}",
          "{% if params.v %}yes{% else %}no{% endif %}"]
SCALARS = st.one_of(st.text(max_size=3).filter(lambda t: "{" not in t),  # no Jinja2
                    st.integers(-2, 2), st.booleans(),
                    st.sampled_from([1.0, 0.5]))
JSON = st.recursive(st.one_of(st.none(), SCALARS),
                    lambda inner: st.one_of(st.lists(inner, max_size=2),
                                            st.dictionaries(st.sampled_from(KEYS), inner,
                                                            max_size=3)),
                    max_leaves=8)
SCHEMAS: dict[str, Node | None] = {
    "none": None,
    "ConfigMap": builtin().for_kind(GVK("", "v1", "ConfigMap")),
    "Deployment": builtin().for_kind(GVK("apps", "v1", "Deployment")),
}


def shapes() -> st.SearchStrategy[dict[str, Any]]:
    """Templates a writer accepts: non-empty maps of literal keys over scalars and
    templated strings."""
    leaf = st.one_of(SCALARS, st.sampled_from(LEAVES))
    return st.recursive(leaf, lambda inner: st.dictionaries(
        st.sampled_from(KEYS), inner, min_size=1, max_size=3), max_leaves=6).filter(
        lambda value: isinstance(value, dict))


def objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"name": st.sampled_from(["x", "y"])},
                                           optional={"labels": JSON})},
        optional={k: JSON for k in ("spec", "data", "a")})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes(), objects(), JSON, JSON, st.sampled_from(sorted(SCHEMAS)))
def test_the_writer_gives_what_render_and_merge_give(
        template: dict[str, Any], obj: dict[str, Any], v: Any, w: Any, schema_name: str
) -> None:
    compiled = compile_template(template, where=WHERE)
    writer = writer_of(compiled)
    assert writer is not None
    schema = SCHEMAS[schema_name]
    variables = {"object": obj, "params": {"v": v, "w": w}}
    before = copy.deepcopy(obj)
    try:
        expected, done = merge(obj, compiled.render(variables), where=WHERE, schema=schema)
    except TemplateError as exc:
        try:
            declined = writer.apply(obj, variables, schema)
        except TemplateError as raised:
            assert str(raised) == str(exc)
        else:  # an atomic map on a written path: it declines before rendering, and the
            assert declined is None  # generic path raises this error
        return
    written = writer.apply(obj, variables, schema)
    assert obj == before
    if written is None:  # the generic path decides: a non-scalar leaf or an atomic map
        return
    result, assignments = written
    assert result == expected
    assert (result is obj) == (expected is obj)
    assert [(a.path, a.value) for a in assignments] == [(a.path, a.value) for a in done]
    assert [type(a.value) for a in assignments] == [type(a.value) for a in done]


@pytest.mark.parametrize("template", [
    {"metadata": {"labels": {"a": "1"}}},  # static: frozen at compile time
    {"metadata": {"labels": {"a": "{{ object.metadata.name }}", "b": 2}}, "data": {"a": True}},
])
def test_literal_keys_over_scalars_become_writers(template: dict[str, Any]) -> None:
    assert writer_of(compile_template(template, where=WHERE)) is not None


@pytest.mark.parametrize("template", [
    {},
    {"metadata": {}},
    {"metadata": {"labels": {"a": None}}},  # null deletes
    {"metadata": {"labels": {"{{ object.metadata.name }}": "x"}}},  # templated key
    {"spec": {"list": [1, 2]}},  # lists merge by the schema
    {"spec": {"list": ["{{ params.v }}"]}},
    {1: "x"},
])
def test_other_templates_are_rendered_and_merged(template: dict[Any, Any]) -> None:
    assert writer_of(compile_template(template, where=WHERE)) is None


def test_a_map_the_schema_calls_atomic_is_left_to_merge() -> None:
    writer = writer_of(compile_template({"spec": {"selector": {"matchLabels": {"a": "1"}}}},
                                        where=WHERE))
    assert writer is not None
    obj = {"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"b": "2"}}}}
    assert writer.apply(obj, {"object": obj}, SCHEMAS["Deployment"]) is None
    result, _ = writer.apply(obj, {"object": obj}, None) or (None, None)
    assert result == {"metadata": {"name": "x"},
                      "spec": {"selector": {"matchLabels": {"a": "1", "b": "2"}}}}


RULE_TEMPLATES = [
    {"metadata": {"labels": {"a": "1"}}},
    {"metadata": {"labels": {"a": "2", "b": "{{ object.metadata.name }}"}}},
    {"metadata": {"labels": {"b": "{{ object.data.v }}"}}},
    {"metadata": {"labels": {"a": None}}},
    {"metadata": {"annotations": {"c": "{{ object.metadata.labels.a | default('none') }}"}}},
    {"data": {"v": "{{ object.metadata.labels.b | default('0') }}"}},
    {"data": {"v": "{{ object.data }}"}},  # a map where a scalar was: merged generically
    {"metadata": {"labels": "{{ object.data }}"}},
    {"metadata": {"name": "{{ object.data.v }}"}},  # the identity check: an error
    {"metadata": {"labels": {"a": 1}}},  # an int where a string was
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(range(len(RULE_TEMPLATES))), st.booleans()),
                min_size=1, max_size=6),
       st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])),
       st.sampled_from(["1", "2"]))
def test_evaluations_with_and_without_writers_conclude_the_same(
        drawn: list[tuple[int, bool]], labels: dict[str, str], data: str) -> None:
    rules = []
    for i, (which, guarded) in enumerate(drawn):
        rule: dict[str, Any] = {
            "name": f"r{i}", "match": {"resources": [{"apiVersion": "v1",
                                                      "kinds": ["ConfigMap"]}]},
            "mutate": {"template": RULE_TEMPLATES[which]}}
        if guarded:
            rule["condition"] = "has(object.metadata.labels)"
        rules.append(rule)
    rule_set = parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                               "metadata": {"name": "random"}, "spec": {"rules": rules}})
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1",
                        **({"labels": labels} if labels else {})},
           "data": {"v": data}}
    assert_writers_change_nothing(rule_set, obj)
