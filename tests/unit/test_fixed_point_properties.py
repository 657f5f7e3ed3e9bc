"""Skipping rules whose inputs did not change never changes what an evaluation concludes.

Random rule sets over a few shared label paths — rules that read what others write,
rules that read what they write themselves, conflicting rules, toggles — evaluated with
and without the skip: the desired object, the patch, the outcomes and the oscillation
verdict must be identical.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate.engine import Engine, Settings
from engine.evaluate.world import ManifestWorld
from engine.rules.load import parse_rule_set
from tests.support import assert_concludes_alike

KEYS = ["a", "b", "c"]
VALUES = ["1", "2"]
MATCH = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}


@st.composite
def rules(draw: Any) -> dict[str, Any]:
    target = draw(st.sampled_from(KEYS))
    kind = draw(st.sampled_from(["set", "copy", "toggle", "when", "data"]))
    source = draw(st.sampled_from(KEYS))
    value = draw(st.sampled_from(VALUES))
    rule: dict[str, Any] = {"match": MATCH}
    if kind == "set":
        labels = {target: value}
    elif kind == "copy":  # reads another label
        labels = {target: f"{{{{ object.metadata.get('labels', {{}}).get('{source}', 'x') }}}}"}
    elif kind == "toggle":  # reads what it writes
        labels = {target: f"{{{{ '1' if object.metadata.get('labels', {{}}).get('{target}') "
                          f"== '2' else '2' }}}}"}
    elif kind == "when":  # a condition on another label
        labels = {target: value}
        rule["condition"] = (f"object.metadata.?labels[?'{source}'].orValue('') == "
                             f"'{draw(st.sampled_from(VALUES))}'")
    else:  # copies data into a label
        labels = {target: "{{ object.data.v }}"}
    rule["mutate"] = {"template": {"metadata": {"labels": labels}}}
    return rule


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rules(), min_size=1, max_size=6),
       st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES)),
       st.sampled_from(VALUES))
def test_skipping_unchanged_rules_concludes_the_same(
        drawn: list[dict[str, Any]], labels: dict[str, str], data: str) -> None:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": "random"},
           "spec": {"rules": [{"name": f"r{i}", **r} for i, r in enumerate(drawn)]}}
    rule_set = parse_rule_set(doc)
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1",
                        "labels": labels},
           "data": {"v": data}}
    world = ManifestWorld([obj])
    fast = Engine([rule_set], settings=Settings(skip_unchanged=True)).evaluate(obj, world=world)
    slow = Engine([rule_set], settings=Settings(skip_unchanged=False)).evaluate(obj,
                                                                                world=world)
    assert_concludes_alike(fast, slow)
