"""A rule may not change its trigger's identity; generated names are valid Kubernetes names.

The pure checks of `engine.evaluate.identity` and `engine.rules.names`, table-driven, and
what the evaluator makes of them: an error outcome naming rule and field, the trigger
left as the rule found it, the other rules still applied.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import MergeError, Where
from engine.evaluate.engine import Engine
from engine.evaluate.identity import check_child_name, check_trigger_identity, field_of
from engine.evaluate.outcomes import Status
from engine.evaluate.world import ManifestWorld
from engine.rules.load import parse_rule_set
from engine.rules.model import Generate, Mutate, StatusAction
from engine.rules.names import name_problem, object_name_problem

WHERE = Where(file="r.yaml", rule_set="team", rule="hostile")
MUTATE = Mutate(template={})
TRIGGER = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"a": "b"}},
           "data": {"x": "1"}}


def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(TRIGGER)
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


IDENTITY_CASES = [
    ("name", ("metadata", "name"), "other", "metadata.name of its trigger from 'web' to 'other'"),
    ("namespace", ("metadata", "namespace"), "kube-system", "metadata.namespace"),
    ("namespace removed", ("metadata", "namespace"), None, "from 'shop' to (none)"),
    ("uid", ("metadata", "uid"), "forged", "metadata.uid"),
    ("kind", ("kind",), "Secret", "changes kind"),
    ("apiVersion", ("apiVersion",), "v2", "changes apiVersion"),
    ("metadata removed", ("metadata",), None, "removes metadata"),
    ("metadata a list", ("metadata",), ["x"], "removes metadata"),
]


@pytest.mark.parametrize(("path", "value", "fragment"), [c[1:] for c in IDENTITY_CASES],
                         ids=[c[0] for c in IDENTITY_CASES])
def test_a_change_of_identity_is_an_error_naming_the_field(path: tuple[str, ...], value: Any,
                                                          fragment: str) -> None:
    with pytest.raises(MergeError) as caught:
        check_trigger_identity(TRIGGER, changed(path, value), action=MUTATE, where=WHERE)
    assert fragment in str(caught.value)
    assert caught.value.where == WHERE.with_field("mutate.template")


def test_other_changes_and_the_same_object_pass() -> None:
    check_trigger_identity(TRIGGER, TRIGGER, action=MUTATE, where=WHERE)
    check_trigger_identity(TRIGGER, changed(("metadata", "labels"), {"c": "d"}),
                           action=MUTATE, where=WHERE)
    check_trigger_identity(TRIGGER, changed(("data",), None), action=MUTATE, where=WHERE)


def test_the_field_is_the_rule_s_own() -> None:
    assert field_of(Mutate(template={})) == "mutate.template"
    assert field_of(Mutate(json_patch=[])) == "mutate.jsonPatch"
    assert field_of(StatusAction(template={})) == "status.template"
    assert field_of(Generate(template={})) == "generate.template"


NAME_CASES = [
    # (apiVersion, kind, name, problem fragment or None)
    ("v1", "ConfigMap", "web-1.example", None),
    ("v1", "ConfigMap", "a" * 253, None),
    ("v1", "ConfigMap", "a" * 254, "longer than 253"),
    ("v1", "ConfigMap", "UPPER_and spaces/..", "may not contain '/'"),
    ("v1", "ConfigMap", "Upper", "not a DNS-1123 subdomain"),
    ("v1", "ConfigMap", "-web", "not a DNS-1123 subdomain"),
    ("v1", "ConfigMap", "web.", "not a DNS-1123 subdomain"),
    ("v1", "ConfigMap", "..", "may not be '.' or '..'"),
    ("v1", "ConfigMap", ".", "may not be '.' or '..'"),
    ("v1", "ConfigMap", "a%2fb", "may not contain '%'"),
    ("v1", "ConfigMap", "", "is empty"),
    ("v1", "ConfigMap", 42, "is a number, not a string"),
    ("v1", "ConfigMap", ["a"], "is a list, not a string"),
    ("v1", "ConfigMap", None, "is missing, not a string"),
    ("v1", "ConfigMap", "42", None),
    ("v1", "Namespace", "team-a", None),
    ("v1", "Namespace", "team.a", "not a DNS-1123 label"),
    ("v1", "Namespace", "a" * 64, "longer than 63"),
    ("v1", "Service", "web.a", "not a DNS-1123 label"),
    ("apps/v1", "Deployment", "web.a", None),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "system:Edict:viewer", None),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "a/b", "may not contain '/'"),
    ("example.com/v1", "Widget", "widget.1", None),
    ("example.com/v1", "Widget", "Widget", "not a DNS-1123 subdomain"),
]


@pytest.mark.parametrize(("api_version", "kind", "name", "fragment"), NAME_CASES)
def test_names_follow_the_api_server(api_version: str, kind: str, name: Any,
                                     fragment: str | None) -> None:
    problem = object_name_problem(api_version, kind, name)
    assert (problem is None) if fragment is None else (fragment in str(problem))


@pytest.mark.parametrize(("namespace", "fragment"), [
    ("shop", None), ("Shop", "not a DNS-1123 label"), ("a.b", "not a DNS-1123 label"),
    ("../x", "may not contain '/'"), (7, "is a number"),
])
def test_a_generated_namespace_is_a_label(namespace: Any, fragment: str | None) -> None:
    child = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "ok", "namespace": namespace}}
    if fragment is None:
        check_child_name(child, where=WHERE)
        assert name_problem(namespace, label=True) is None
        return
    with pytest.raises(MergeError, match=fragment):
        check_child_name(child, where=WHERE)


def engine(*rules: dict[str, Any]) -> Engine:
    return Engine([parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "team"}, "spec": {"rules": list(rules)}}, source="r.yaml")])


def configmaps(name: str, **action: Any) -> dict[str, Any]:
    return {"name": name, "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
            **action}


@pytest.mark.parametrize(("action", "field"), [
    ({"mutate": {"template": {"metadata": {"name": "{{ object.metadata.name }}-x"}}}},
     "mutate.template"),
    ({"mutate": {"template": {"metadata": None}}}, "mutate.template"),
    ({"mutate": {"jsonPatch": [{"op": "replace", "path": "/metadata/namespace",
                                "value": "kube-system"}]}}, "mutate.jsonPatch"),
    ({"mutate": {"jsonPatch": [{"op": "remove", "path": "/metadata"}]}}, "mutate.jsonPatch"),
    ({"mutate": {"forEach": "['a', 'b']", "template": {"kind": "{{ item }}"}}},
     "mutate.template"),
])
def test_the_evaluator_reports_the_rule_and_keeps_the_trigger(action: dict[str, Any],
                                                              field: str) -> None:
    rules = engine(configmaps("hostile", **action), configmaps("label", mutate={
        "template": {"metadata": {"labels": {"ok": "yes"}}}}))
    result = rules.evaluate(TRIGGER, world=ManifestWorld([TRIGGER]))
    outcomes = {o.rule: o for o in result.outcomes}
    assert outcomes["hostile"].status is Status.ERROR
    assert f"rule 'hostile', field {field}: the rule" in outcomes["hostile"].message
    assert outcomes["label"].status is Status.APPLIED
    assert not result.oscillating
    assert result.desired["metadata"]["name"] == "web"
    assert result.desired["metadata"]["namespace"] == "shop"
    assert result.desired["kind"] == "ConfigMap"
    assert result.desired["metadata"]["labels"] == {"a": "b", "ok": "yes"}


def test_an_invalid_generated_name_plans_nothing() -> None:
    rules = engine(configmaps("gen", generate={"template": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "{{ object.data.x }}/.."}}}))
    result = rules.evaluate(TRIGGER, world=ManifestWorld([TRIGGER]))
    (outcome,) = result.outcomes
    assert outcome.status is Status.ERROR
    assert "the generated ConfigMap's metadata.name '1/..' may not contain '/'" in outcome.message
    assert result.children == ()
