"""The trigger's Namespace object is read only when some rule of its kind can see it.

Every way a rule sees `namespaceObject` (match and exclude `namespaceSelector`, a
condition, a template, a variable, a lookup's name, a validate message, `readyWhen`)
reads it and decides with it; a kind whose rules see none of it never reads it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Result, Status
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK, Obj
from engine.rules import model as m
from engine.rules.load import parse_rule_set

NAMESPACE = GVK("", "v1", "Namespace")
CONFIGMAPS = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
SHOP = {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "blue"}}}
LABEL = {"template": {"metadata": {"labels": {"seen": "yes"}}}}


class CountingWorld(ManifestWorld):
    """Counts the reads of Namespace objects."""

    def __init__(self, objects: list[Obj]) -> None:
        super().__init__(objects)
        self.namespace_reads = 0

    def get(self, gvk: GVK, namespace: str, name: str) -> Obj | None:
        if gvk == NAMESPACE:
            self.namespace_reads += 1
        return super().get(gvk, namespace, name)


def configmap() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web", "namespace": "shop"}, "data": {"a": "1"}}


def rule_set(*rules: dict[str, Any]) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": "ns"}, "spec": {"rules": list(rules)}}
    return parse_rule_set(doc, source="ns.yaml", check_rule=check_rule)


def evaluate(*rules: dict[str, Any], namespace: dict[str, Any] | None = SHOP
             ) -> tuple[Result, int]:
    obj = configmap()
    world = CountingWorld([obj] + ([copy.deepcopy(namespace)] if namespace else []))
    engine = Engine([rule_set(*rules)])
    assert all(r.enabled for c in engine.rule_sets for r in c.rules), [
        r.errors for c in engine.rule_sets for r in c.rules]
    return engine.evaluate(obj, world=world), world.namespace_reads


def statuses(result: Result) -> list[tuple[Status, str]]:
    return [(o.status, o.message) for o in result.outcomes]


def test_rules_that_cannot_see_the_namespace_never_read_it() -> None:
    result, reads = evaluate(
        {"name": "label", "match": CONFIGMAPS, "condition": "object.data.a == '1'",
         "mutate": LABEL},
        {"name": "check", "match": {**CONFIGMAPS, "namespaces": ["shop"]},
         "validate": {"expression": "has(object.data)"}})
    assert [s for s, _ in statuses(result)] == [Status.APPLIED, Status.UNCHANGED]
    assert reads == 0


SEES = {
    "match namespaceSelector": {
        "match": {**CONFIGMAPS, "namespaceSelector": {"matchLabels": {"team": "blue"}}},
        "mutate": LABEL},
    "exclude namespaceSelector": {
        "match": {**CONFIGMAPS, "exclude": {
            "namespaceSelector": {"matchLabels": {"team": "blue"}}}},
        "mutate": LABEL},
    "condition": {"match": CONFIGMAPS,
                  "condition": "namespaceObject.metadata.labels.team == 'blue'",
                  "mutate": LABEL},
    "template": {"match": CONFIGMAPS, "mutate": {"template": {"metadata": {"labels": {
        "seen": "{{ namespaceObject.metadata.labels.team }}"}}}}},
    "variable": {"match": CONFIGMAPS,
                 "variables": [{"name": "team",
                                "expression": "namespaceObject.metadata.labels.team"}],
                 "condition": "variables.team == 'blue'", "mutate": LABEL},
    "validate message": {"match": CONFIGMAPS, "validate": {
        "expression": "false",
        "messageExpression": "'team ' + namespaceObject.metadata.labels.team"}},
}


@pytest.mark.parametrize("how", sorted(SEES))
def test_each_way_of_seeing_the_namespace_reads_it_and_decides_with_it(how: str) -> None:
    rule = {"name": "r", **SEES[how]}
    seen, reads = evaluate(rule)
    assert reads >= 1
    unseen, _ = evaluate(rule, namespace=None)  # the same rule, no Namespace cached
    assert (statuses(seen), seen.patch) != (statuses(unseen), unseen.patch), how


def test_ready_when_alone_makes_the_namespace_read() -> None:
    child = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret"}}
    rule = {"name": "gen", "match": CONFIGMAPS, "generate": {
        "template": child,
        "readyWhen": "namespaceObject.metadata.labels.team == 'blue'"}}
    engine = Engine([rule_set(rule)])
    (compiled,) = engine.rule_sets[0].rules
    assert compiled.enabled, compiled.errors
    assert "namespaceObject" not in compiled.reads_variables  # only readyWhen reads it
    _, reads = evaluate(rule)
    assert reads >= 1
