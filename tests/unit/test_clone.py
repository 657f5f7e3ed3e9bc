"""`generate.clone`: a child copied from a source object, a template merged over it,
kept in step with the source (owned exactly), skipped while the source is missing."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import CompileError, SchemaError, Where
from engine.evaluate import clone
from engine.evaluate.compile import compile_rule
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction, ChildPlan, Result, Status
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK, ObjectKey
from engine.rules import model as m
from engine.rules.load import parse_rule_set

NAMESPACES = {"resources": [{"apiVersion": "v1", "kinds": ["Namespace"]}]}
SECRET = GVK("", "v1", "Secret")
SOURCE = {"apiVersion": "v1", "kind": "Secret", "namespace": "platform",
          "name": "registry-pull"}


def rule_set(generate: dict[str, Any], *, kind: str = "ClusterRuleSet",
             namespace: str | None = None) -> m.RuleSet:
    metadata: dict[str, Any] = {"name": "pull"}
    if namespace:
        metadata["namespace"] = namespace
    match = NAMESPACES if kind == "ClusterRuleSet" else {
        "resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": kind, "metadata": metadata,
           "spec": {"rules": [{"name": "copy", "match": match, "generate": generate}]}}
    return parse_rule_set(doc, source="pull.yaml", check_rule=check_rule)


def source(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry-pull", "namespace": "platform", "uid": "src",
                         "resourceVersion": "7", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace",
                                              "name": "platform", "uid": "p"}],
                         "finalizers": ["x/y"], "managedFields": [{"manager": "kubectl"}],
                         "labels": {"team": "platform",
                                    "app.kubernetes.io/managed-by": "helm",
                                    "edict.dev/rule": "other"},
                         "annotations": {"note": "shared", "edict.dev/trigger": "v1/X//y",
                                         "kubectl.kubernetes.io/last-applied-configuration":
                                         "{}"}},
            "data": dict(data), "status": {"x": 1}}


def namespace(name: str = "team-a") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": name}}


def evaluate(rs: m.RuleSet, *objects: dict[str, Any],
             trigger: dict[str, Any] | None = None) -> Result:
    trigger = trigger or namespace()
    return Engine([rs]).evaluate(trigger, world=ManifestWorld([trigger, *objects]))


def one_child(result: Result) -> ChildPlan:
    (plan,) = result.children
    return plan


def test_copy_of_keeps_data_labels_and_annotations_never_identity_or_bookkeeping() -> None:
    copied = clone.copy_of(source(a="1"))
    assert copied == {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "data": {"a": "1"},
        "metadata": {"name": "registry-pull", "labels": {"team": "platform"},
                     "annotations": {"note": "shared"}}}
    original = source(a="1")
    clone.copy_of(original)["data"]["a"] = "changed"
    assert original["data"] == {"a": "1"}  # a copy, never the cached object


def test_the_child_is_the_copy_in_the_triggers_namespace_stamped_as_ours() -> None:
    result = evaluate(rule_set({"clone": SOURCE}), source(a="1"))
    plan = one_child(result)
    assert plan.action is ChildAction.CREATE
    assert plan.key == ObjectKey(SECRET, "team-a", "registry-pull")
    child = plan.desired
    assert child is not None
    assert child["data"] == {"a": "1"} and child["type"] == "kubernetes.io/dockerconfigjson"
    labels = child["metadata"]["labels"]
    assert labels["team"] == "platform"
    assert labels["app.kubernetes.io/managed-by"] == "edict"
    assert labels["edict.dev/rule"] == "copy"
    assert child["metadata"]["ownerReferences"][0]["uid"] == "team-a"
    assert "status" not in child and "uid" not in child["metadata"]
    assert ObjectKey(SECRET, "platform", "registry-pull") in result.lookups


def test_the_template_is_merged_over_the_copy_and_may_rename_it() -> None:
    generate = {"clone": SOURCE, "template": {
        "metadata": {"name": "pull-{{ object.metadata.name }}", "labels": {"x": "y"}},
        "data": {"b": "Mg=="}}}
    child = one_child(evaluate(rule_set(generate), source(a="1"))).desired
    assert child is not None
    assert child["metadata"]["name"] == "pull-team-a"
    assert child["data"] == {"a": "1", "b": "Mg=="}
    assert child["metadata"]["labels"]["x"] == "y"


def test_keys_removed_from_the_source_go_from_the_copy_and_a_steady_state_writes_nothing(
) -> None:
    rs = rule_set({"clone": SOURCE})
    made = one_child(evaluate(rs, source(a="1", b="2"))).desired
    assert made is not None
    existing = {**made, "metadata": {**made["metadata"], "uid": "copy", "resourceVersion": "3"}}
    steady = one_child(evaluate(rs, source(a="1", b="2"), existing))
    assert steady.action is ChildAction.NONE
    changed = one_child(evaluate(rs, source(a="9"), existing))
    assert changed.action is ChildAction.PATCH
    assert changed.desired is not None and changed.desired["data"] == {"a": "9"}
    assert {"op": "remove", "path": "/data/b"} in changed.patch


def test_a_missing_source_skips_the_rule_and_prunes_the_copies() -> None:
    rs = rule_set({"clone": SOURCE})
    result = evaluate(rs)
    (outcome,) = result.outcomes
    assert outcome.status is Status.SKIPPED
    assert "generate.clone" in outcome.message and not result.children
    made = one_child(evaluate(rs, source(a="1"))).desired
    assert made is not None
    gone = one_child(evaluate(rs, made))
    assert gone.action is ChildAction.DELETE
    kept = one_child(evaluate(rule_set({"clone": SOURCE, "synchronize": False}), source(a="1"),
                              made))
    assert kept.action is ChildAction.NONE


def test_a_namespaced_rule_set_only_clones_from_its_own_namespace() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "app", "namespace": "team-a", "uid": "cm"}}
    own = {**SOURCE, "namespace": "team-a"}
    rs = rule_set({"clone": SOURCE}, kind="RuleSet", namespace="team-a")
    (outcome,) = evaluate(rs, source(a="1"), trigger=config).outcomes
    assert outcome.status is Status.ERROR
    assert "generate.clone looks up Secret registry-pull in namespace 'platform'" in (
        outcome.message)
    inside = {**source(a="1"), "metadata": {**source()["metadata"], "namespace": "team-a"}}
    result = evaluate(rule_set({"clone": own, "template": {"metadata": {"name": "copy"}}},
                               kind="RuleSet", namespace="team-a"), inside, trigger=config)
    assert one_child(result).action is ChildAction.CREATE


@pytest.mark.parametrize(("template", "problem"), [
    ([{"metadata": {"name": "a"}}], "not a list"),
    ({"kind": "ConfigMap"}, "not the clone source's 'Secret'"),
])
def test_a_clone_template_is_one_object_of_the_sources_kind(template: Any,
                                                            problem: str) -> None:
    rs = rule_set({"clone": SOURCE, "template": template})
    (error,) = compile_rule(rs, rs.rules[0]).errors
    assert problem in error.message and error.where.field == "generate.template"


def test_clone_kinds_and_the_schema() -> None:
    rs = rule_set({"clone": SOURCE})
    assert compile_rule(rs, rs.rules[0]).generates == (SECRET,)
    assert rs.rules[0].lookups[-1].alias == m.CLONE_ALIAS
    with pytest.raises(SchemaError, match="generate: needs template or clone"):
        rule_set({"synchronize": True})
    with pytest.raises(SchemaError, match="'name' is a required property"):
        rule_set({"clone": {"apiVersion": "v1", "kind": "Secret"}})
    with pytest.raises(CompileError, match="a copy keeps its kind"):
        clone.generated_kinds(m.Generate({"apiVersion": "v2"}, clone=rs.rules[0].lookups[-1]),
                              where=Where())


def test_the_clone_alias_is_no_context_name() -> None:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": "x"}, "spec": {"rules": [{
               "name": "r", "match": NAMESPACES,
               "context": {m.CLONE_ALIAS: {"apiVersion": "v1", "kind": "Secret", "name": "s"}},
               "mutate": {"template": {}}}]}}
    with pytest.raises(SchemaError, match="reserved"):
        parse_rule_set(doc, check_rule=check_rule)


def test_the_live_engine_watches_the_source_kind() -> None:
    assert SECRET in Engine([rule_set({"clone": SOURCE})]).watched_kinds()
