"""The validate action: loading, outcomes in the background, Audit, messages, failures."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import SchemaError
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Result, Status
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.rules import model as m
from engine.rules.load import parse_rule_set

PINNED = "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"
MESSAGE = "images must be pinned to a tag or digest"
DEPLOYMENTS = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}


def rule_set(rules: list[dict[str, Any]], name: str = "policy", **spec: Any) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


def pinned(**validate: Any) -> dict[str, Any]:
    """The rule of the issue; a field given as None is left out."""
    body = {k: v for k, v in {"expression": PINNED, "message": MESSAGE, **validate}.items()
            if v is not None}
    return {"name": "pinned", "match": DEPLOYMENTS, "validate": body}


def deployment(*images: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": labels},
            "spec": {"template": {"spec": {"containers": [
                {"name": f"c{i}", "image": image} for i, image in enumerate(images)]}}}}


def evaluate(rule_sets: list[m.RuleSet], obj: dict[str, Any]) -> Result:
    frozen = copy.deepcopy(obj)
    result = Engine(rule_sets).evaluate(obj, world=ManifestWorld([obj]))
    assert obj == frozen
    return result


def only(result: Result) -> tuple[Status, str]:
    (outcome,) = result.outcomes
    return outcome.status, outcome.message


def test_a_validate_rule_loads_with_its_message() -> None:
    loaded = rule_set([pinned()])
    action = loaded.rules[0].action
    assert isinstance(action, m.Validate)
    assert (action.expression, action.message, action.message_expression) == (
        PINNED, MESSAGE, None)
    assert loaded.rules[0].action_kind is m.ActionKind.VALIDATE
    assert loaded.rules[0].at_admission


@pytest.mark.parametrize(("change", "problem"), [
    ({"mutate": {"template": {"metadata": {"labels": {"a": "b"}}}}}, "exactly one action"),
    ({"validate": {"message": MESSAGE}}, "expression"),
    ({"validate": {"expression": "true", "message": "m", "messageExpression": "'m'"}},
     "message or messageExpression, not both"),
])
def test_invalid_validate_rules_are_refused(change: dict[str, Any], problem: str) -> None:
    raw = {**pinned(), **change}
    with pytest.raises(SchemaError, match=problem):
        rule_set([raw])


def test_a_holding_expression_is_unchanged_and_a_false_one_a_violation() -> None:
    sets = [rule_set([pinned()])]
    assert only(evaluate(sets, deployment("nginx:1.27", "redis@sha256:abc"))) == (
        Status.UNCHANGED, "")
    result = evaluate(sets, deployment("nginx:1.27", "redis:latest"))
    assert only(result) == (Status.VIOLATION, MESSAGE)
    assert result.patch == () and result.converged, "a violation writes nothing"
    assert result.violations == result.outcomes


def test_message_expression_says_which_object() -> None:
    sets = [rule_set([pinned(message=None, messageExpression=(
        "'unpinned images in ' + object.metadata.name + ': ' + "
        "object.spec.template.spec.containers.filter(c, c.image.endsWith(':latest'))"
        ".map(c, c.image).join(', ')"))])]
    assert only(evaluate(sets, deployment("a:latest", "b:1", "c:latest"))) == (
        Status.VIOLATION, "unpinned images in web: a:latest, c:latest")


def test_a_failing_message_expression_falls_back_to_the_expression() -> None:
    sets = [rule_set([pinned(message=None, messageExpression="object.nothing.here")])]
    assert only(evaluate(sets, deployment("a:latest"))) == (
        Status.VIOLATION, f"does not hold: {PINNED}")


def test_missing_data_in_the_expression_is_a_violation_fail_closed() -> None:
    sets = [rule_set([{"name": "team", "match": DEPLOYMENTS, "validate": {
        "expression": "object.metadata.annotations.team != ''",
        "message": "every Deployment names its team"}}])]
    status, message = only(evaluate(sets, deployment("a:1")))
    assert status is Status.VIOLATION
    assert message.startswith("every Deployment names its team (")


def test_the_condition_still_decides_whether_the_rule_applies() -> None:
    sets = [rule_set([pinned() | {"condition": "object.metadata.labels.?tier.orValue('') "
                                               "== 'prod'"}])]
    assert only(evaluate(sets, deployment("a:latest")))[0] is Status.SKIPPED
    assert only(evaluate(sets, deployment("a:latest", tier="prod")))[0] is Status.VIOLATION


def test_a_non_bool_expression_is_a_rule_error() -> None:
    sets = [rule_set([pinned(expression="object.metadata.name")])]
    status, message = only(evaluate(sets, deployment("a:1")))
    assert status is Status.ERROR and "must give a bool" in message


def test_an_expression_that_does_not_compile_disables_the_rule() -> None:
    engine = Engine([rule_set([pinned(expression="object.spec.(")])])
    (compiled,) = engine.rule_sets
    assert not compiled.rules[0].enabled
    assert "validate.expression" in str(compiled.errors[0])


def test_validation_judges_the_object_as_mutate_rules_leave_it() -> None:
    sets = [rule_set([
        {"name": "pin", "match": DEPLOYMENTS, "mutate": {
            "forEach": "object.spec.template.spec.containers.filter(c, "
                       "c.image.endsWith(':latest'))",
            "template": {"spec": {"template": {"spec": {"containers": [
                {"name": "{{ item.name }}",
                 "image": "{{ item.image | replace(':latest', ':1.0') }}"}]}}}}}},
        pinned()])]
    result = evaluate(sets, deployment("nginx:latest"))
    assert {o.rule: o.status for o in result.outcomes} == {
        "pin": Status.APPLIED, "pinned": Status.UNCHANGED}


def test_audit_rule_sets_report_violations_the_same_way() -> None:
    sets = [rule_set([pinned()], mode="Audit")]
    assert only(evaluate(sets, deployment("a:latest"))) == (Status.VIOLATION, MESSAGE)


def test_suspended_rule_sets_do_not_validate() -> None:
    assert evaluate([rule_set([pinned()], mode="Suspended")], deployment("a:latest")
                    ).outcomes == ()
