"""`Engine.evaluate` at admission: the rules of each phase, the `request` variable, and
the same fixed point as in the background."""

from __future__ import annotations

from typing import Any

import pytest

from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Result, Status
from engine.evaluate.request import ADMISSION_ONLY, Phase, Request
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.patching import make_patch
from engine.rules import model as m
from engine.rules.load import parse_rule_set

CONFIGMAPS = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}


def rule_set(name: str, rules: list[dict[str, Any]], **spec: Any) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


def label(name: str, key: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "match": CONFIGMAPS,
            "mutate": {"template": {"metadata": {"labels": {key: value}}}}, **extra}


def configmap(**labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop", "labels": labels},
            "data": {"a": "1"}}


def request(phase: Phase = Phase.MUTATE, **fields: Any) -> Request:
    return Request(phase=phase, operation=fields.pop("operation", "CREATE"),
                   username=fields.pop("username", "alice"),
                   groups=fields.pop("groups", ("team-a",)), **fields)


def evaluate(sets: list[m.RuleSet], obj: dict[str, Any], req: Request | None) -> Result:
    return Engine(sets).evaluate(obj, world=ManifestWorld([obj]), request=req)


def statuses(result: Result) -> dict[str, Status]:
    return {o.rule: o.status for o in result.outcomes}


def test_the_mutate_phase_reaches_the_background_fixed_point() -> None:
    sets = [rule_set("a", [
        label("tier", "tier", "web"),
        # reads what the first rule wrote: needs a second pass
        {"name": "copy", "match": CONFIGMAPS, "condition": "has(object.metadata.labels.tier)",
         "mutate": {"template": {"metadata": {"labels": {
             "tier-copy": "{{ object.metadata.labels.tier }}"}}}}},
    ])]
    background = evaluate(sets, configmap(), None)
    admitted = evaluate(sets, configmap(), request())
    assert admitted.desired == background.desired
    assert admitted.desired["metadata"]["labels"] == {"tier": "web", "tier-copy": "web"}
    # what is stored is converged: the background then has nothing to write
    assert evaluate(sets, admitted.desired, None).converged


def test_only_admission_rules_of_enforce_rule_sets_mutate() -> None:
    sets = [
        rule_set("enforced", [label("on", "a", "1"),
                              label("off", "b", "2", admission=False)]),
        rule_set("audited", [label("audit", "c", "3")], mode="Audit"),
        rule_set("suspended", [label("never", "d", "4")], mode="Suspended"),
        rule_set("children", [{"name": "copy", "match": CONFIGMAPS, "generate": {
            "template": {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "copy"}}}}]),
    ]
    result = evaluate(sets, configmap(), request())
    assert result.desired["metadata"]["labels"] == {"a": "1"}
    assert statuses(result) == {"on": Status.APPLIED}
    assert result.children == ()


def test_the_validate_phase_runs_validations_and_audit_mutations_only() -> None:
    sets = [
        rule_set("enforced", [
            label("mutates", "a", "1"),
            {"name": "must-have-owner", "match": CONFIGMAPS, "validate": {
                "expression": "has(object.metadata.labels.owner)", "message": "no owner"}}]),
        rule_set("audited", [
            label("would", "c", "3"),
            {"name": "audit-check", "match": CONFIGMAPS, "validate": {
                "expression": "false", "message": "audit says no"}}], mode="Audit"),
    ]
    result = evaluate(sets, configmap(), request(Phase.VALIDATE))
    assert result.desired == configmap(), "the validating webhook changes nothing"
    assert statuses(result) == {"must-have-owner": Status.VIOLATION,
                                "would": Status.WOULD_APPLY,
                                "audit-check": Status.VIOLATION}
    assert [op["path"] for op in result.audit_patch] == ["/metadata/labels/c"]


def test_request_is_what_rules_see_at_admission() -> None:
    sets = [rule_set("creator", [{
        "name": "created-by", "match": CONFIGMAPS,
        "condition": "request != null && request.operation == 'CREATE' && "
                     "'team-a' in request.userInfo.groups",
        "mutate": {"template": {"metadata": {"annotations": {
            "edict.dev/created-by": "{{ request.userInfo.username }}",
            "dry-run": "{{ request.dryRun | string | lower }}"}}}}}])]
    result = evaluate(sets, configmap(), request(dry_run=True))
    assert result.desired["metadata"]["annotations"] == {
        "edict.dev/created-by": "alice", "dry-run": "true"}
    assert statuses(evaluate(sets, configmap(), request(operation="UPDATE"))) == {
        "created-by": Status.SKIPPED}
    background = evaluate(sets, configmap(), None)
    assert statuses(background) == {"created-by": Status.SKIPPED}


@pytest.mark.parametrize("condition", [
    "request.?userInfo.?username.orValue('') == 'alice'",
    "request.operation == 'CREATE'",
])
def test_an_unguarded_read_of_request_is_skipped_in_the_background(condition: str) -> None:
    sets = [rule_set("a", [label("who", "seen", "yes", condition=condition)])]
    assert statuses(evaluate(sets, configmap(), request())) == {"who": Status.APPLIED}
    (outcome,) = evaluate(sets, configmap(), None).outcomes
    assert (outcome.status, outcome.message) == (Status.SKIPPED, ADMISSION_ONLY)


def test_a_template_reading_request_in_the_background_is_skipped_not_an_error() -> None:
    sets = [rule_set("a", [label("who", "by", "{{ request.userInfo.username }}")])]
    (outcome,) = evaluate(sets, configmap(), None).outcomes
    assert (outcome.status, outcome.message) == (Status.SKIPPED, ADMISSION_ONLY)


def test_a_rule_that_does_not_read_request_still_fails_loudly() -> None:
    sets = [rule_set("a", [label("broken", "x", "{{ object.metadata.nothing.here }}")])]
    assert statuses(evaluate(sets, configmap(), None)) == {"broken": Status.ERROR}


def test_old_object_on_update() -> None:
    sets = [rule_set("a", [{
        "name": "keep-owner", "match": CONFIGMAPS,
        "condition": "oldObject != null && has(oldObject.metadata.labels.owner) && "
                     "!has(object.metadata.labels.owner)",
        "mutate": {"template": {"metadata": {"labels": {
            "owner": "{{ request.oldObject.metadata.labels.owner }}"}}}}}])]
    old = configmap(owner="team-a")
    result = evaluate(sets, configmap(), request(operation="UPDATE", old_object=old))
    assert result.desired["metadata"]["labels"] == {"owner": "team-a"}
    assert make_patch(configmap(), result.desired, guard_resource_version=False) == [
        {"op": "add", "path": "/metadata/labels/owner", "value": "team-a"}]


def test_rule_errors_at_admission_are_outcomes() -> None:
    sets = [rule_set("a", [label("broken", "x", "{{ object.metadata.nothing.here }}"),
                           label("fine", "y", "1")])]
    result = evaluate(sets, configmap(), request())
    assert statuses(result) == {"broken": Status.ERROR, "fine": Status.APPLIED}
    assert result.desired["metadata"]["labels"] == {"y": "1"}


def test_the_shipped_namespace_owner_records_the_creator_at_admission_only() -> None:
    from pathlib import Path

    from engine.cli.common import load_rule_sets
    from engine.evaluate.outcomes import ChildAction

    root = Path(__file__).resolve().parents[2]
    loaded = load_rule_sets([str(root / "rules" / "namespace-owner")])
    assert not loaded.errors
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}
    created = evaluate(loaded.rule_sets, namespace, request(username="bob@example.com"))
    assert created.desired["metadata"]["annotations"] == {
        "edict.dev/created-by": "bob@example.com"}
    assert created.children == (), "the ConfigMap is the background's job"
    # an UPDATE by someone else never rewrites it
    updated = evaluate(loaded.rule_sets, created.desired,
                       request(operation="UPDATE", username="eve"))
    assert updated.desired == created.desired
    stored = created.desired
    background = Engine(loaded.rule_sets).evaluate(stored, world=ManifestWorld([stored]))
    (child,) = background.children
    assert child.action is ChildAction.CREATE and child.desired is not None
    assert child.desired["data"] == {"createdBy": "bob@example.com"}
    assert statuses(background)["record-creator"] is Status.SKIPPED
