"""Rules whose writes can meet no other rule's are not recorded, and nothing changes.

`engine.evaluate.regions`: from a rule's source, paths at or beneath which all its
assignments land; a rule whose region is not at, above or beneath any other rule's
(`alone`) can never conflict, and the engine skips its records. On random rule lists
(templates of literal and templated keys, lists, nulls, status templates, JSON patches
of literal and templated paths, rules on pod templates; conditions true, false or
failing) the engine concludes exactly what it concludes recording every rule
(`Settings(regions=False)`): desired object, patches, outcomes, conflicts in order,
oscillation — with steps and without, with the fixed-point skips and without.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate.engine import Engine, Settings
from engine.evaluate.regions import alone, region
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK
from engine.rules.load import parse_rule_set

DEPLOYMENT = GVK("apps", "v1", "Deployment")
MATCH = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}
POD_MATCH = {"resources": [{"apiVersion": "v1", "kinds": ["Pod"]}], "podTemplates": True}

# (action, value, on pod templates)
ACTIONS: list[tuple[str, Any, bool]] = [
    ("template", {"metadata": {"labels": {"a": "1"}}}, False),
    ("template", {"metadata": {"labels": {"a": "2"}}}, False),
    ("template", {"metadata": {"labels": {"b": "{{ object.metadata.name }}"}}}, False),
    ("template", {"metadata": {"labels": {"{{ 'a' }}": "3"}}}, False),  # a templated key
    ("template", {"metadata": {"labels": "{{ {'a': '4', 'c': '1'} }}"}}, False),
    ("template", {"metadata": {"labels": None}}, False),  # a delete above the others
    ("template", {"metadata": {"labels": {}}}, False),
    ("template", {"metadata": {"annotations": {"n": "x"}}}, False),
    ("template", {"spec": {"replicas": 3}}, False),
    ("template", {"spec": {"replicas": "{{ object.spec.replicas + 1 }}"}}, False),
    ("template", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "x:2"}]}}}}, False),
    ("template", {"spec": "{{ {'replicas': 5} }}"}, False),
    ("template", {"{{ 'spec' }}": {"paused": True}}, False),
    ("template", {"metadata": {"labels": {"d": "{{ object.missing.x }}"}}}, False),  # fails
    ("status", {"ready": "yes"}, False),
    ("status", {"ready": "no", "n": 1}, False),
    ("status", {"{{ 'ready' }}": "maybe"}, False),
    ("patch", [{"op": "add", "path": "/metadata/labels/a", "value": "5"}], False),
    ("patch", [{"op": "replace", "path": "/spec/replicas", "value": 7}], False),
    ("patch", [{"op": "add", "path": "{{ '/metadata/labels/e' }}", "value": "1"}], False),
    ("patch", [{"op": "add", "path": "/metadata/annotations/n", "value": "{{ 'y' }}"}],
     False),
    ("patch", [{"op": "test", "path": "/spec/replicas", "value": 1},
               {"op": "remove", "path": "/spec/paused"}], False),
    ("patch", [{"op": "add", "path": "/spec/template/spec/containers/0/image",
                "value": "x:3"}], False),
    ("template", {"spec": {"containers": [{"name": "app", "image": "x:4"}]}}, True),
    ("template", {"metadata": {"labels": {"a": "p"}}}, True),
]
CONDITIONS = [None, "true", "false", "object.spec.replicas > 2", "object.metadata.name"]


def _rule_set(drawn: list[tuple[int, int]]) -> Any:
    rules = []
    for i, (action, condition) in enumerate(drawn):
        kind, value, on_pods = ACTIONS[action]
        rule: dict[str, Any] = {"name": f"r{i}", "match": POD_MATCH if on_pods else MATCH}
        if kind == "template":
            rule["mutate"] = {"template": value}
        elif kind == "patch":
            rule["mutate"] = {"jsonPatch": value}
        else:
            rule["status"] = {"template": value}
        if CONDITIONS[condition] is not None:
            rule["condition"] = CONDITIONS[condition]
        rules.append(rule)
    return parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                           "metadata": {"name": "random"}, "spec": {"rules": rules}})


def _deployment(replicas: int, labels: dict[str, str], paused: bool) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "n", "resourceVersion": "1",
                         **({"labels": labels} if labels else {})},
            "spec": {"replicas": replicas, **({"paused": True} if paused else {}),
                     "template": {"spec": {"containers": [{"name": "app", "image": "x:1"}]}}}}


def _same(fast: Any, slow: Any) -> None:
    assert fast.desired == slow.desired
    assert fast.patch == slow.patch
    assert fast.status_patch == slow.status_patch
    assert fast.outcomes == slow.outcomes
    assert fast.conflicts == slow.conflicts
    assert fast.oscillating == slow.oscillating


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(range(len(ACTIONS))),
                          st.sampled_from(range(len(CONDITIONS)))), min_size=1, max_size=7),
       st.sampled_from([1, 3]),
       st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])),
       st.booleans())
def test_rules_left_unrecorded_conclude_what_recording_every_rule_concludes(
        drawn: list[tuple[int, int]], replicas: int, labels: dict[str, str],
        paused: bool) -> None:
    rule_set = _rule_set(drawn)
    obj = _deployment(replicas, labels, paused)
    given_obj = copy.deepcopy(obj)
    world = ManifestWorld([obj])
    for base in (Settings(), Settings(batch=False),
                 Settings(batch=False, skip_unchanged=False)):
        fast = Engine([rule_set], settings=base).evaluate(obj, world=world)
        slow = Engine([rule_set], settings=Settings(
            batch=base.batch, skip_unchanged=base.skip_unchanged, regions=False)
                      ).evaluate(obj, world=world)
        _same(fast, slow)
    assert obj == given_obj


def _rules(*indexes: int) -> tuple[Any, ...]:
    engine = Engine([_rule_set([(i, 0) for i in indexes])])
    return tuple(engine.rules_for(DEPLOYMENT))


def test_regions_follow_literal_keys_and_stop_at_anything_else() -> None:
    rules = _rules(0, 3, 4, 10, 11, 12, 14, 16, 17, 19, 20, 21, 23)
    assert [region(rule, DEPLOYMENT) for rule in rules] == [
        {("metadata", "labels", "a")},
        {("metadata", "labels")},  # the key is templated: anything in the map
        {("metadata", "labels")},  # a templated string may render a map
        {("spec", "template", "spec", "containers")},  # a list: assigned at or beneath
        {("spec",)},
        {()},  # a templated top-level key: anywhere
        {("status", "ready")},
        {("status",)},  # a templated key
        {("metadata", "labels", "a")},
        None,  # a templated path
        {("metadata", "annotations", "n")},  # a templated value, a literal path
        {("spec", "paused")},  # a test assigns nothing
        {("spec", "template", "spec", "containers")},  # on the pod template
    ]


def test_only_rules_whose_regions_meet_no_other_are_alone() -> None:
    rules = _rules(0, 2, 7, 8, 14)  # labels.a, labels.b, annotations.n, replicas, status
    assert alone(rules, DEPLOYMENT) == {id(rule) for rule in rules}
    rules = _rules(0, 2, 5, 8)  # labels: null is above both labels
    assert alone(rules, DEPLOYMENT) == {id(rules[3])}
    rules = _rules(8, 17, 0)  # the patch writes labels.a too
    assert alone(rules, DEPLOYMENT) == {id(rules[0])}
    assert alone(_rules(0, 8, 19), DEPLOYMENT) == frozenset()  # one region unknown


def test_a_conflict_between_rules_is_still_reported() -> None:
    rule_set = _rule_set([(0, 0), (8, 0), (1, 0)])
    obj = _deployment(1, {}, False)
    result = Engine([rule_set]).evaluate(obj, world=ManifestWorld([obj]))
    assert [(c.path, c.winner[1], c.loser[1]) for c in result.conflicts] == [
        ("/metadata/labels/a", "r2", "r0")]
