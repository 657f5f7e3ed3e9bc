"""Writer rules run as one step conclude what they conclude one by one.

`engine.evaluate.batch`: consecutive writer rules none of which reads or writes what an
earlier one of them writes share one step — each evaluated against the object as the
step found it, writing into the maps the step copied. On random rule lists (conditions
true, false, erroring or reading what others write; templates writing the same or
nested paths, reading other rules' labels, declining to the generic path) the engine
with steps and without (`Settings(batch=False)`) gives the same desired object, patch,
outcomes, conflicts and oscillation, and never changes the object it was given; and
what every rule run in every pass concludes (`skip_unchanged=False`), which also checks
that a write making a map above a read (`labels.b` making `labels` for a rule reading
`labels.a`) runs the reading rule again.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate.batch import steps
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK
from engine.rules.load import parse_rule_set
from tests.support import assert_concludes_alike, drawn_mutate_rules

CONFIGMAP = GVK("", "v1", "ConfigMap")
MATCH = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}

TEMPLATES = [
    {"metadata": {"labels": {"a": "1"}}},
    {"metadata": {"labels": {"b": "2"}}},
    {"metadata": {"labels": {"a": "2"}}},  # the same path as the first, another value
    {"metadata": {"labels": {"c": "{{ object.metadata.labels.a | default('none') }}"}}},
    {"metadata": {"annotations": {"d": "{{ object.data.v }}"}}},
    {"metadata": {"labels": None}},  # a delete: merged generically
    {"metadata": {"labels": {"e": "{{ object.data }}"}}},  # a map: the writer declines
    {"data": {"v": "{{ object.metadata.labels.b | default('0') }}"}},
    {"data": {"w": "x", "v": "y"}},
    {"metadata": {"labels": {"f": 1}}},  # an int where labels hold strings
]
CONDITIONS = [
    None,
    "true",
    "false",
    "object.data.v == '1'",
    "has(object.metadata.labels) && 'a' in object.metadata.labels",
    "object.metadata.name",  # not a bool: the rule errors
    "object.data.missing == 'x'",  # no such key: data not there
]


def _rule_set(drawn: list[tuple[int, int]]) -> Any:
    rules = drawn_mutate_rules(drawn, MATCH, TEMPLATES, CONDITIONS)
    return parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                           "metadata": {"name": "random"}, "spec": {"rules": rules}})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(range(len(TEMPLATES))),
                          st.sampled_from(range(len(CONDITIONS)))), min_size=1, max_size=8),
       st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"])),
       st.sampled_from(["1", "2"]))
def test_steps_conclude_what_rules_one_by_one_conclude(
        drawn: list[tuple[int, int]], labels: dict[str, str], data: str) -> None:
    rule_set = _rule_set(drawn)
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1",
                        **({"labels": labels} if labels else {})},
           "data": {"v": data}}
    given_obj = copy.deepcopy(obj)
    world = ManifestWorld([obj])
    stepped = Engine([rule_set]).evaluate(obj, world=world)
    single = Engine([rule_set], settings=Settings(batch=False)).evaluate(obj, world=world)
    # and every rule in every pass (the fixed-point loop's skips checked too)
    every = Engine([rule_set], settings=Settings(batch=False, skip_unchanged=False)
                   ).evaluate(obj, world=world)
    assert obj == given_obj
    assert stepped.desired == single.desired
    assert stepped.patch == single.patch
    assert stepped.outcomes == single.outcomes
    assert stepped.conflicts == single.conflicts
    assert stepped.oscillating == single.oscillating
    assert_concludes_alike(stepped, every)
    again = Engine([rule_set]).evaluate(obj, world=world)
    assert again.desired == stepped.desired


def _rules(templates: list[dict[str, Any]], conditions: list[str | None] | None = None
           ) -> tuple[Any, ...]:
    drawn = []
    for i, template in enumerate(templates):
        TEMPLATES.append(template)
        condition = (conditions or [None] * len(templates))[i]
        CONDITIONS.append(condition)
        drawn.append((len(TEMPLATES) - 1, len(CONDITIONS) - 1))
    try:
        engine = Engine([_rule_set(drawn)])
    finally:
        del TEMPLATES[-len(templates):]
        del CONDITIONS[-len(templates):]
    return tuple(engine.rules_for(CONFIGMAP))


def test_label_rules_that_cannot_see_each_other_share_a_step() -> None:
    rules = _rules([{"metadata": {"labels": {f"l{k}": "v"}}} for k in range(5)],
                   ["object.data.v == '1'"] * 5)
    cut = steps(rules, CONFIGMAP)
    assert [len(step.rules) for step in cut] == [5]
    assert cut[0].together
    assert cut[0].writes == {("metadata", "labels", f"l{k}") for k in range(5)}
    assert cut[0].reads == {("data", "v")}


def test_a_rule_reading_or_writing_what_an_earlier_one_writes_starts_a_new_step() -> None:
    rules = _rules([
        {"metadata": {"labels": {"a": "1"}}},
        {"metadata": {"labels": {"b": "1"}}},
        {"metadata": {"labels": {"c": "{{ object.metadata.labels.a }}"}}},  # reads metadata
        {"metadata": {"labels": {"d": "1"}}},
        {"metadata": {"labels": {"d": "2"}}},  # writes d again
        {"metadata": {"annotations": {"e": "1"}}},
        {"metadata": {"labels": {"f": "1"}}, "data": "{{ object.data }}"},  # writes data
        {"metadata": {"labels": {"g": "{{ object.data.v }}"}}},  # reads data
        {"data": {"h": [1]}},  # not a writer
        {"data": {"i": "1"}},
    ])
    assert [[rule.rule.name for rule in step.rules] for step in steps(rules, CONFIGMAP)] == [
        ["r0", "r1"], ["r2", "r3"], ["r4", "r5", "r6"], ["r7"], ["r8"], ["r9"]]
    assert [step.together for step in steps(rules, CONFIGMAP)] == [
        True, True, True, False, False, False]
    assert all(not step.together for step in steps(rules, CONFIGMAP, together=False))


def test_a_rule_reading_beneath_a_map_another_makes_runs_again() -> None:
    """`labels.a | default(...)` fails while the object has no labels; a later rule
    making `labels` (by writing `labels.b`) must make it run again in the next pass
    (the change log counts the made map as written), with or without steps."""
    rule_set = _rule_set([(3, 0), (1, 0)])  # reads labels.a, then writes labels.b
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1"},
           "data": {"v": "1"}}
    for settings_ in (Settings(), Settings(batch=False),
                      Settings(batch=False, skip_unchanged=False)):
        result = Engine([rule_set], settings=settings_).evaluate(
            obj, world=ManifestWorld([obj]))
        assert result.desired["metadata"]["labels"] == {"b": "2", "c": "none"}
        # the first pass's error sticks (`RuleRun.merged_with`), the second pass wrote
        assert [(o.rule, o.status.value) for o in result.outcomes] == [
            ("r0", "error"), ("r1", "applied")]
