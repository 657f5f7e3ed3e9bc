"""A JSON patch of literal operations applied as a writer gives exactly what rendering
the operations and `apply_patch` give; what such a rule reads lets the loop skip it
without changing any conclusion.

`engine.evaluate.patch_writers`: on random objects (maps, lists, scalars where maps are
expected), random operations (``add``, ``replace``, ``remove``, paths through maps,
lists and missing members) and random values (constants, templated strings that render
scalars, maps, lists, ``omit`` or fail), the writer's object (keys in the same order, the
very object back when nothing changes), assignments and outcome paths equal the generic
path's; where the generic path raises, the writer declines (None) so that it raises.
Then whole evaluations with and without writers (`Settings(writers=False)`), and with
and without skipping rules whose inputs did not change, must conclude the same.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import EdictError, Where
from engine.evaluate.compile import compile_rule_set
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.patch_writers import patch_reads, patch_writer_of
from engine.evaluate.run import _patch_assignments, _paths
from engine.evaluate.world import ManifestWorld
from engine.patching import DELETE, apply_patch, json_equal
from engine.rules.load import parse_rule_set
from engine.templating import DEFAULT_LIMITS, TemplateLimits, compile_template
from tests.support import assert_concludes_alike, assert_writers_change_nothing

WHERE = Where(rule_set="random", rule="r", field="mutate.jsonPatch")
KEYS = ["metadata", "labels", "spec", "a", "b", "0", "-", "x/y", "m~n"]
SCALARS = st.one_of(st.text(max_size=3).filter(lambda t: "{" not in t),
                    st.integers(-2, 2), st.booleans(), st.sampled_from([1.0, 0.5]), st.none())
JSON = st.recursive(SCALARS,
                    lambda inner: st.one_of(st.lists(inner, max_size=2),
                                            st.dictionaries(st.sampled_from(KEYS), inner,
                                                            max_size=3)),
                    max_leaves=8)
LEAVES = ["{{ params.v }}", "{{ params.w }}-x", "{{ object.metadata.name }}",
          "{{ params.missing }}", "{{ object.a | default('d') }}", "{{ omit }}",
          "{{ params.v | string }}{{ params.v | string }}",
          "{% if params.v %}yes{% else %}no{% endif %}"]
VALUES = st.one_of(JSON, st.sampled_from(LEAVES),
                   st.sampled_from([{"k": "{{ params.v }}"}, ["{{ params.w }}"]]))


def pointer(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


@st.composite
def operations(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["add", "replace", "remove"]))
    tokens = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
    op: dict[str, Any] = {"op": kind, "path": pointer(tokens)}
    if kind != "remove":
        op["value"] = draw(VALUES)
    return op


def objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"name": st.sampled_from(["x", "y"])},
                                           optional={"labels": JSON})},
        optional={k: JSON for k in ("spec", "a", "b", "0", "x/y")})


def strict(value: Any) -> str:
    """`value` as text that tells 1 from 1.0 and True and keeps the order of keys."""
    return json.dumps(value, default=lambda v: "<DELETE>" if v is DELETE else repr(v))


def generic(ops: list[Any], obj: dict[str, Any], variables: dict[str, Any],
            limits: TemplateLimits = DEFAULT_LIMITS) -> tuple[Any, list[Any]]:
    """What `run._render_onto` does with a jsonPatch rule's operations."""
    rendered = compile_template(ops, where=WHERE, limits=limits).render(variables)
    return apply_patch(obj, rendered, where=WHERE), _patch_assignments(rendered)


def check(ops: list[Any], obj: dict[str, Any], variables: dict[str, Any],
          limits: TemplateLimits = DEFAULT_LIMITS) -> Any:
    """The writer against the generic path; the writer's answer."""
    writer = patch_writer_of(ops, where=WHERE, limits=limits)
    if writer is None:
        return None
    before = copy.deepcopy(obj)
    try:
        expected, assignments = generic(ops, obj, variables, limits)
    except EdictError:
        assert writer.apply(obj, variables, None) is None  # the generic path raises
        assert obj == before
        return None
    written = writer.apply(obj, variables, None)
    assert obj == before
    if written is None:
        return None
    result, done = written
    if json_equal(expected, obj):  # the generic path reports the rule unchanged
        assert result is obj
    else:
        assert result is not obj
        assert strict(result) == strict(expected)
        # only maps on the written paths are copies
        written_keys = {a.path[0] for a in done}
        assert all(result[k] is obj[k] for k in obj if k not in written_keys and k in result)
    assert [(a.path, strict(a.value)) for a in done] == [
        (a.path, strict(a.value)) for a in assignments]
    assert writer.path_set == frozenset(tuple(a.path) for a in done)
    assert writer.pointers == _paths(done)
    return written


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations(), max_size=3), objects(), JSON, JSON)
def test_the_writer_gives_what_render_and_apply_patch_give(
        ops: list[dict[str, Any]], obj: dict[str, Any], v: Any, w: Any) -> None:
    check(ops, obj, {"object": obj, "params": {"v": v, "w": w}})


LOOP = "{% for i in range(params.n) %}x{% endfor %}"  # about n operations


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([LOOP, "{{ params.v }}"]), min_size=1, max_size=3),
       st.sampled_from([500, 1500, 2000, 3000]))
def test_templated_values_share_one_budget(leaves: list[str], n: int) -> None:
    """Values render on one budget, as the whole list of operations does: going over it
    is the generic path's error, also when each value alone would fit."""
    ops = [{"op": "add", "path": f"/a/k{i}", "value": leaf} for i, leaf in enumerate(leaves)]
    obj = {"metadata": {"name": "x"}, "a": {}}
    check(ops, obj, {"object": obj, "params": {"v": "1", "n": n}},
          TemplateLimits(max_operations=5000))


def test_two_values_over_the_budget_together_are_the_generic_path_s_error() -> None:
    ops = [{"op": "add", "path": f"/a/k{i}", "value": LOOP} for i in range(2)]
    obj: dict[str, Any] = {"a": {}}
    variables = {"object": obj, "params": {"n": 2000}}
    limits = TemplateLimits(max_operations=5000)
    assert check(ops[:1], obj, variables, limits) is not None  # one alone fits
    with pytest.raises(EdictError, match="max_operations"):
        generic(ops, obj, variables, limits)
    writer = patch_writer_of(ops, where=WHERE, limits=limits)
    assert writer is not None
    assert writer.apply(obj, variables, None) is None


def test_literal_writes_answer_without_the_generic_path() -> None:
    obj = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 1}}
    ops = [{"op": "add", "path": "/spec/revisionHistoryLimit", "value": 3},
           {"op": "replace", "path": "/metadata/labels/a", "value": "{{ params.v }}"},
           {"op": "remove", "path": "/spec/replicas"}]
    written = check(ops, obj, {"object": obj, "params": {"v": "2"}})
    assert written is not None
    assert written[0] == {"metadata": {"name": "x", "labels": {"a": "2"}},
                          "spec": {"revisionHistoryLimit": 3}}
    # the same values again: nothing changes, the very object comes back
    same = [{"op": "add", "path": "/spec/replicas", "value": 1.0},
            {"op": "replace", "path": "/metadata/labels/a", "value": "1"}]
    assert check(same, obj, {"object": obj})[0] is obj


@pytest.mark.parametrize("ops", [
    "{{ object.spec.ops }}",
    [{"op": "test", "path": "/a", "value": 1}],
    [{"op": "move", "from": "/a", "path": "/b"}],
    [{"op": "copy", "from": "/a", "path": "/b"}],
    [{"op": "{{ params.op }}", "path": "/a", "value": 1}],
    [{"op": "add", "path": "/{{ params.key }}", "value": 1}],
    [{"op": "add", "path": "", "value": {}}],  # the whole document
    [{"op": "add", "path": "a", "value": 1}],  # not a pointer
    [{"op": "add", "path": "/a", "value": {"b": "{{ params.v }}"}}],
    [{"op": "add", "path": "/a", "value": 1, "note": "x"}],
    [{"op": "remove", "path": "/a", "value": 1}],
    [{"op": "add", "path": "/a"}],
    [{"op": "add", "path": "/a", "value": 1}, {"op": "add", "path": "/a/b", "value": 2}],
    [{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/a"}],
    ["add /a"],
])
def test_other_patches_are_rendered_and_applied(ops: Any) -> None:
    assert patch_writer_of(ops, where=WHERE, limits=DEFAULT_LIMITS) is None


def test_writes_through_a_list_are_left_to_apply_patch() -> None:
    writer = patch_writer_of([{"op": "add", "path": "/a/0", "value": 1}], where=WHERE,
                             limits=DEFAULT_LIMITS)
    assert writer is not None
    assert writer.apply({"a": [5]}, {}, None) is None
    written = writer.apply({"a": {"0": 5}}, {}, None)  # a map's key "0" is a key
    assert written is not None
    assert written[0] == {"a": {"0": 1}}


@pytest.mark.parametrize(("ops", "reads"), [
    ([{"op": "add", "path": "/spec/revisionHistoryLimit", "value": 3}], {("spec",)}),
    ([{"op": "add", "path": "/spec", "value": {}}], {("spec",)}),
    ([{"op": "replace", "path": "/metadata/labels/a~1b", "value": "x"},
      {"op": "remove", "path": "/data/k"}, {"op": "test", "path": "/data/v", "value": 1}],
     {("metadata", "labels", "a/b"), ("data", "k"), ("data", "v")}),
    ([{"op": "add", "path": "/spec/containers/-", "value": {}}], {("spec", "containers")}),
    ([{"op": "replace", "path": "/spec/containers/0/image", "value": "i"}],
     {("spec", "containers")}),
    ([{"op": "add", "path": "", "value": {}}], {()}),
    ([{"op": "move", "from": "/a", "path": "/b"}], None),
    ([{"op": "add", "path": "/{{ params.k }}", "value": 1}], None),
    ("{{ params.ops }}", None),
])
def test_what_literal_operations_read(ops: Any, reads: set[tuple[str, ...]] | None) -> None:
    assert patch_reads(ops) == (None if reads is None else frozenset(reads))


def rule_set(rules: list[dict[str, Any]]) -> Any:
    return parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                           "metadata": {"name": "random"},
                           "spec": {"params": {"v": "2"},
                                    "rules": [{"name": f"r{i}", **rule}
                                              for i, rule in enumerate(rules)]}})


def test_the_rule_reads_its_condition_its_values_and_its_paths() -> None:
    compiled = compile_rule_set(rule_set([{
        "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
        "condition": "!has(object.spec.revisionHistoryLimit)",
        "mutate": {"jsonPatch": [
            {"op": "add", "path": "/spec/revisionHistoryLimit", "value": 3},
            {"op": "add", "path": "/metadata/labels/b", "value": "{{ object.data.v }}"}]}}]))
    rule = compiled.rules[0]
    assert rule.writer is not None
    assert rule.reads == frozenset({("spec", "revisionHistoryLimit"), ("spec",),
                                    ("metadata", "labels"), ("data", "v")})


MATCH = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
PATCHES = [
    [{"op": "add", "path": "/metadata/labels/a", "value": "1"}],
    [{"op": "add", "path": "/metadata/labels/b", "value": "{{ object.data.v }}"}],
    [{"op": "replace", "path": "/metadata/labels/a", "value": "2"}],  # fails without a
    [{"op": "remove", "path": "/metadata/labels/b"}],  # fails without b
    [{"op": "add", "path": "/data/v", "value": "{{ object.metadata.labels.a }}"}],
    [{"op": "add", "path": "/data/w", "value": {"x": [1]}}],
    [{"op": "add", "path": "/metadata/labels", "value": {"c": "3"}}],
    [{"op": "add", "path": "/metadata/annotations/n", "value": 1}],  # no annotations
    [{"op": "add", "path": "/metadata/name", "value": "{{ object.data.v }}"}],  # identity
    [{"op": "add", "path": "/metadata/labels/a", "value": "{{ params.v }}"},
     {"op": "remove", "path": "/data/v"}],
    [{"op": "test", "path": "/data/v", "value": "1"},
     {"op": "add", "path": "/metadata/labels/t", "value": "1"}],
    [{"op": "add", "path": "/metadata/labels/{{ object.data.v }}", "value": "x"}],
]
TEMPLATES = [
    {"metadata": {"labels": {"a": "{{ object.data.v }}"}}},
    {"metadata": {"labels": {"b": "1"}}},
    {"data": {"v": "{{ object.metadata.labels.a | default('0') }}"}},
    {"metadata": {"annotations": {"n": "2"}}},
]
# `!has(object.metadata.labels.b)` selects through a map that may be missing: the change
# log counts a map a write makes as written (`changes.created`), so the skip notices
CONDITIONS = [None, "has(object.metadata.labels)",
              "!has(object.metadata.labels) || !has(object.metadata.labels.b)",
              "!has(object.metadata.labels.b)",
              "object.data.v == '1'"]


@st.composite
def rules(draw: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"match": MATCH}
    if draw(st.integers(0, 3)):
        rule["mutate"] = {"jsonPatch": draw(st.sampled_from(PATCHES))}
    else:
        rule["mutate"] = {"template": draw(st.sampled_from(TEMPLATES))}
    condition = draw(st.sampled_from(CONDITIONS))
    if condition is not None:
        rule["condition"] = condition
    return rule


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rules(), min_size=1, max_size=6),
       st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])),
       st.sampled_from(["1", "2"]))
def test_evaluations_with_and_without_patch_writers_conclude_the_same(
        drawn: list[dict[str, Any]], labels: dict[str, str], data: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1",
                        **({"labels": labels} if labels else {})},
           "data": {"v": data}}
    rules_ = rule_set(drawn)
    assert_writers_change_nothing(rules_, obj)
    world = ManifestWorld([obj])
    fast = Engine([rules_]).evaluate(obj, world=world)
    slow = Engine([rules_], settings=Settings(skip_unchanged=False)).evaluate(obj, world=world)
    assert_concludes_alike(fast, slow)
