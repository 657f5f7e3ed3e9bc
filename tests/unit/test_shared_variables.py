"""The variables made once per evaluation are those made anew for each rule.

`run.variables` keeps, per evaluation (`Pass.seen`), the variables of rules without
lookups or variables of their own by rule set, object and pod template, and hands them
to the next rule of that rule set on that object. On random rule lists (mutate and
status rules, JSON patches, rules on pod templates, two rule sets, a generate rule),
every call gives what a call with nothing kept gives: the very object asked about, the
same values.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import batch, run
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.world import ManifestWorld
from engine.rules.load import parse_rule_set
from tests.unit.test_regions import ACTIONS, CONDITIONS, MATCH, _deployment, _rule_set

GENERATE = parse_rule_set({
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
    "metadata": {"name": "children"},
    "spec": {"rules": [
        {"name": "config", "match": MATCH, "generate": {"template": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "{{ object.metadata.name }}-config"},
            "data": {"replicas": "{{ object.spec.replicas | string }}"}}}},
        {"name": "label", "match": MATCH,
         "mutate": {"template": {"metadata": {"labels": {"g": "1"}}}}}]}})

calls: list[tuple[Any, Any, bool]] = []


@pytest.fixture(autouse=True)
def checked(monkeypatch: pytest.MonkeyPatch) -> None:
    original = run.variables

    def checking(rule: Any, obj: Any, p: run.Pass, *, template: Any = None) -> Any:
        was_kept = (id(rule.rule_set), id(obj), template) in p.seen
        got = original(rule, obj, p, template=template)
        kept, p.seen = p.seen, {}
        try:
            fresh = original(rule, obj, p, template=template)
        finally:
            p.seen = kept
        assert got["object"] is obj
        assert got.keys() == fresh.keys()
        for name, value in got.items():
            assert value is fresh[name] or value == fresh[name], name
        calls.append((rule, obj, was_kept))
        return got

    monkeypatch.setattr(run, "variables", checking)
    monkeypatch.setattr(batch, "variables", checking)


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(range(len(ACTIONS))),
                          st.sampled_from(range(len(CONDITIONS)))), min_size=1, max_size=6),
       st.sampled_from([1, 3]), st.booleans(), st.booleans())
def test_variables_kept_for_the_evaluation_are_those_made_anew(
        drawn: list[tuple[int, int]], replicas: int, batched: bool, skip: bool) -> None:
    obj = _deployment(replicas, {}, False)
    engine = Engine([_rule_set(drawn), GENERATE],
                    settings=Settings(batch=batched, skip_unchanged=skip))
    engine.evaluate(obj, world=ManifestWorld([obj]))


def test_a_rule_of_the_same_rule_set_on_the_same_object_gets_the_kept_variables() -> None:
    calls.clear()
    obj = _deployment(1, {}, False)
    Engine([GENERATE], settings=Settings(skip_unchanged=False)).evaluate(
        obj, world=ManifestWorld([obj]))
    # the label rule in two passes (the second on the object it made), then the
    # generate rule on that object: the last two share what the first of them made
    assert [(rule.rule.name, shared) for rule, _, shared in calls] == [
        ("label", False), ("label", False), ("config", True)]
