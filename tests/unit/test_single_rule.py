"""One rule that never reads what it writes is run once (`_Plan.single`), with the same
result as the passes give it.

Each rule below is evaluated on objects that exercise its outcomes (applied, unchanged,
skipped, failed) with `Settings(single=True)` and `Settings(single=False)`; the results
must be equal in every field. The table also pins which rules the plan takes as single
(so the shortcut is what is compared) and which it leaves to the passes: a rule that
reads a path its write can touch, or a map its write can make, runs again in a second
pass and may change its mind there.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate.engine import Engine, Settings, _plan
from engine.evaluate.outcomes import Result
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.objects import gvk_of
from engine.rules import model as m
from engine.rules.load import parse_rule_set

CONFIGMAPS = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}


def mutate(template: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "r", "match": CONFIGMAPS, "mutate": {"template": template}, **extra}


def labels(**values: str) -> dict[str, Any]:
    return {"metadata": {"labels": dict(values)}}


# name -> (rule, whether the plan runs it alone)
RULES: dict[str, tuple[dict[str, Any], bool]] = {
    "a label": (mutate(labels(seen="yes")), True),
    "a label from the data": (mutate(labels(seen="{{ object.data.a }}")), True),
    "a label under a condition on the data": (
        mutate(labels(seen="yes"), condition="object.data.a == '1'"), True),
    "data, reading the name": (mutate({"data": {"name": "{{ object.metadata.name }}"}}), True),
    "a template that fails": (mutate(labels(seen="{{ object.data.missing.deeper }}")), True),
    "a label whose value is not a label": (mutate(labels(seen="{{ 'x' * 70 }}")), True),
    # a JSON patch reads where its operations point
    "a json patch": ({"name": "r", "match": CONFIGMAPS, "mutate": {"jsonPatch": [
        {"op": "add", "path": "/data/patched", "value": "{{ object.metadata.name }}"}]}},
        False),
    # reads beneath a map its write may make (labels; metadata, for all the plan knows
    # of the object): to the passes
    "an annotation, reading a label": (
        mutate({"metadata": {"annotations": {"copy": "{{ object.metadata.labels.app }}"}}}),
        False),
    "a label, reading another label": (
        mutate(labels(seen="{{ object.metadata.labels.app }}")), False),
    "a label under a condition on the labels": (
        mutate(labels(seen="yes"), condition="!has(object.metadata.labels.seen)"), False),
    "a label counting the labels": (
        mutate(labels(count="{{ object.metadata.labels | length }}")), False),
    "a label, reading the whole object": (mutate(labels(seen="{{ object | length }}")), False),
    # renders a map: the writer declines, the shortcut hands over to the passes
    "an annotation made of the data": (
        mutate({"metadata": {"annotations": {"copy": "{{ object.data }}"}}}), True),
    "a status rule": ({"name": "r", "match": CONFIGMAPS,
                       "status": {"template": {"status": {"seen": "yes"}}}}, False),
}


def rule_set(rule: dict[str, Any]) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": "single"}, "spec": {"rules": [rule]}}
    return parse_rule_set(doc, source="single.yaml", check_rule=check_rule)


def configmap(labels: dict[str, str] | None, data: dict[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "shop", "resourceVersion": "7"}
    if labels is not None:
        metadata["labels"] = labels
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    if data is not None:
        obj["data"] = data
    return obj


OBJECTS = [
    configmap(None, None),
    configmap({"app": "web"}, {"a": "1"}),
    configmap({"app": "web", "seen": "yes", "count": "2"}, {"a": "2", "name": "web"}),
    configmap({}, {"patched": "web", "a": "1"}),
]


def both(rule: dict[str, Any], obj: dict[str, Any]) -> tuple[Result, Result]:
    results = []
    for single in (True, False):
        engine = Engine([rule_set(rule)], settings=Settings(single=single))
        frozen = copy.deepcopy(obj)
        results.append(engine.evaluate(obj, world=ManifestWorld([obj])))
        assert obj == frozen
    return results[0], results[1]


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_plan_runs_alone_only_a_rule_that_never_reads_its_writes(name: str) -> None:
    rule, alone = RULES[name]
    engine = Engine([rule_set(rule)])
    (compiled,) = engine.rule_sets[0].rules
    assert compiled.enabled, compiled.errors
    gvk = gvk_of(OBJECTS[0])
    s = engine.settings
    plan = _plan((compiled,), gvk, s.batch, s.regions, s.whole, s.max_passes)
    assert (plan.single is compiled) is alone
    assert _plan((compiled,), gvk, s.batch, s.regions, s.whole, 1).single is None


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("index", range(len(OBJECTS)))
def test_one_rule_alone_gives_what_the_passes_give(name: str, index: int) -> None:
    fast, passes = both(RULES[name][0], OBJECTS[index])
    assert fast == passes


def test_the_table_covers_every_outcome_of_a_single_rule() -> None:
    seen = set()
    for rule, alone in RULES.values():
        if alone:
            for obj in OBJECTS:
                seen.update(o.status for o in both(rule, obj)[0].outcomes)
    assert {s.value for s in seen} >= {"applied", "unchanged", "skipped", "error"}


TEXT = st.text(alphabet="abc-1", min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(RULES)),
       labels=st.none() | st.dictionaries(st.sampled_from(["app", "seen", "count"]), TEXT),
       data=st.none() | st.dictionaries(st.sampled_from(["a", "name", "patched"]), TEXT))
def test_one_rule_alone_gives_what_the_passes_give_on_any_object(
        name: str, labels: dict[str, str] | None, data: dict[str, str] | None) -> None:
    fast, passes = both(RULES[name][0], configmap(labels, data))
    assert fast == passes
