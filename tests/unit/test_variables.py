"""A rule's `variables`: named CEL expressions, computed once per evaluation, read as
`variables.<name>` by the condition, templates, forEach, validations and readyWhen."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import SchemaError
from engine.evaluate import variables as named
from engine.evaluate.compile import compile_rule
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Result, Status
from engine.evaluate.request import Phase, Request
from engine.evaluate.run import Pass, variables
from engine.evaluate.validation import check_rule
from engine.evaluate.variables import CompiledVariable
from engine.evaluate.world import ManifestWorld
from engine.rules import model as m
from engine.rules.load import parse_rule_set

DEPLOYMENTS = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}
TEAM = {"name": "team", "expression": "object.metadata.?labels.?team.orValue('none')"}


def rule_set(*rules: dict[str, Any], name: str = "named") -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": list(rules)}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


def rule(name: str = "r", *, variables: list[dict[str, str]] | None = None,
         **body: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "match": DEPLOYMENTS, **body}
    if variables is not None:
        out["variables"] = variables
    return out


def deployment(**labels: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": labels},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]}}}}


def evaluate(rs: m.RuleSet, obj: dict[str, Any]) -> Result:
    frozen = copy.deepcopy(obj)
    result = Engine([rs]).evaluate(obj, world=ManifestWorld([obj]))
    assert obj == frozen
    return result


def outcome(result: Result, name: str = "r") -> tuple[Status, str]:
    (found,) = [o for o in result.outcomes if o.rule == name]
    return found.status, found.message


def label_rule(**extra: Any) -> dict[str, Any]:
    return rule(variables=[TEAM, {"name": "owner", "expression": "variables.team + '-owners'"}],
                condition="variables.team != 'none'",
                mutate={"template": {"metadata": {"annotations": {
                    "owner": "{{ variables.owner }}"}}}}, **extra)


def test_the_condition_and_the_template_read_variables_and_a_later_one_an_earlier_one(
) -> None:
    result = evaluate(rule_set(label_rule()), deployment(team="blue"))
    assert result.desired["metadata"]["annotations"] == {"owner": "blue-owners"}
    assert outcome(result)[0] is Status.APPLIED
    assert outcome(evaluate(rule_set(label_rule()), deployment()))[0] is Status.SKIPPED


def test_for_each_and_validations_read_variables() -> None:
    names = {"name": "names", "expression":
             "object.spec.template.spec.containers.map(c, c.name)"}
    for_each = rule("each", variables=[names], mutate={
        "forEach": "variables.names.filter(n, n != 'web')",
        "template": {"metadata": {"labels": {"{{ item }}": "n{{ variables.names | length }}"}}}})
    check = rule("check", variables=[names, {"name": "most", "expression": "2"}], validate={
        "expression": "size(variables.names) < variables.most",
        "messageExpression": "'containers: ' + variables.names.join(', ')"})
    result = evaluate(rule_set(for_each, check), deployment())
    assert result.desired["metadata"]["labels"] == {"log": "n2"}
    assert outcome(result, "check") == (Status.VIOLATION, "containers: web, log")


def test_ready_when_reads_variables() -> None:
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}}
    ready = rule("cm", variables=[{"name": "key", "expression": "'ready'"}], generate={
        "template": child, "readyWhen": "has(child.data) && variables.key in child.data"})
    compiled = Engine([rule_set(ready)]).rule_sets[0].rules[0]
    assert compiled.enabled, compiled.errors
    assert compiled.ready_when is not None
    assert compiled.ready_when.evaluate({"child": {"data": {"ready": "1"}},
                                         "variables": {"key": "ready"}}) is True


def test_each_rule_sees_its_own_variables() -> None:
    """Rules of one rule set share CEL bindings of the trigger: never their variables."""
    first = rule("first", variables=[{"name": "v", "expression": "'one'"}],
                 condition="variables.v == 'one'",
                 mutate={"template": {"metadata": {"labels": {"first": "{{ variables.v }}"}}}})
    second = rule("second", variables=[{"name": "v", "expression": "'two'"}],
                  condition="variables.v == 'two'",
                  mutate={"template": {"metadata": {"labels": {"second": "{{ variables.v }}"}}}})
    result = evaluate(rule_set(first, second), deployment())
    assert result.desired["metadata"]["labels"] == {"first": "one", "second": "two"}


@pytest.mark.parametrize(("body", "field", "problem"), [
    ({"condition": "variables.teem == 'x'"}, "condition",
     "variables.teem is not a variable of this rule (its variables: team)"),
    ({"mutate": {"template": {"metadata": {"labels": {"a": "{{ variables.tem }}"}}}}},
     "mutate.template", "variables.tem is not a variable of this rule"),
    ({"validate": {"expression": "true", "messageExpression": "variables.nope"}},
     "validate.messageExpression", "variables.nope is not a variable"),
])
def test_an_unknown_variable_is_a_load_error_naming_the_field(
        body: dict[str, Any], field: str, problem: str) -> None:
    body = {"mutate": {"template": {}}, **body} if "validate" not in body else body
    rs = rule_set(rule(variables=[TEAM], **body))
    compiled = compile_rule(rs, rs.rules[0])
    assert not compiled.enabled
    (error,) = compiled.errors
    assert error.where.rule_set == "named" and error.where.rule == "r"
    assert error.where.field == field
    assert problem in error.message


@pytest.mark.parametrize(("variables", "field", "problem"), [
    ([{"name": "a", "expression": "variables.b"}, {"name": "b", "expression": "1"}],
     "variables[0] 'a'", "only read the ones before them"),
    ([{"name": "a", "expression": "variables.a"}], "variables[0] 'a'", "not defined here"),
    ([{"name": "a", "expression": "item.name"}], "variables[0] 'a'", "cannot read item"),
    ([{"name": "a", "expression": "object.("}], "variables[0] 'a'", "does not compile"),
])
def test_variables_that_cannot_be_computed_in_order_do_not_load(
        variables: list[dict[str, str]], field: str, problem: str) -> None:
    rs = rule_set(rule(variables=variables, mutate={"template": {}}))
    errors = compile_rule(rs, rs.rules[0]).errors
    assert [e.where.field for e in errors] == [field]
    assert problem in errors[0].message


@pytest.mark.parametrize(("variables", "problem"), [
    ([TEAM, TEAM], "Duplicate value"),
    ([{"name": "has-dash", "expression": "1"}], "does not match"),
    ([{"name": "x"}], "'expression' is a required property"),
    ([{"name": "in", "expression": "1"}], "a reserved word of CEL"),
])
def test_the_schema_refuses_bad_variable_lists(variables: list[dict[str, str]],
                                               problem: str) -> None:
    with pytest.raises(SchemaError, match=problem):
        rule_set(rule(variables=variables, mutate={"template": {}}))


def test_an_error_in_a_variable_names_it_and_missing_data_skips() -> None:
    broken = rule(variables=[TEAM, {"name": "ports", "expression": "int(variables.team)"}],
                  mutate={"template": {"metadata": {"labels": {"p": "{{ variables.ports }}"}}}})
    status, message = outcome(evaluate(rule_set(broken), deployment(team="blue")))
    assert status is Status.ERROR
    assert "field variables[1] 'ports'" in message and "rule 'r'" in message
    missing = rule(variables=[{"name": "port", "expression": "object.spec.ports[0]"}],
                   mutate={"template": {"metadata": {"labels": {"p": "{{ variables.port }}"}}}})
    status, message = outcome(evaluate(rule_set(missing), deployment()))
    assert status is Status.SKIPPED
    assert "variables[0] 'port'" in message


def test_a_rule_without_variables_binds_none() -> None:
    rs = rule_set(rule(mutate={"template": {}}), label_rule(name="with"))
    without, with_ = (compile_rule(rs, r) for r in rs.rules)
    p = Pass(ManifestWorld(), None, set())
    assert "variables" not in variables(without, deployment(team="a"), p)
    assert variables(with_, deployment(team="a"), p)["variables"] == {
        "team": "a", "owner": "a-owners"}


def test_what_variables_read_of_the_object_counts_as_read_by_the_rule() -> None:
    """A rule reruns in a later pass when what its variables read changed."""
    rs = rule_set(label_rule())
    compiled = compile_rule(rs, rs.rules[0])
    assert compiled.reads is not None
    assert ("metadata", "labels", "team") in compiled.reads or (
        ("metadata", "labels") in compiled.reads)


def test_variables_at_admission_read_the_request() -> None:
    """The same engine at admission: a variable may read `request` (and is skipped in the
    background, where there is none, like any expression that reads it)."""
    rs = rule_set(rule(variables=[{"name": "who", "expression": "request.userInfo.username"}],
                       mutate={"template": {"metadata": {"annotations": {
                           "created-by": "{{ variables.who }}"}}}}))
    obj = deployment()
    request = Request(phase=Phase.MUTATE, operation="CREATE", username="alice",
                      groups=("team-a",))
    admitted = Engine([rs]).evaluate(obj, world=ManifestWorld([obj]), request=request)
    assert admitted.desired["metadata"]["annotations"] == {"created-by": "alice"}
    assert outcome(evaluate(rs, obj))[0] is Status.SKIPPED


class Counting:
    """A stand-in program that counts its evaluations (and fails on anything else)."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, variables: Any) -> int:
        self.calls += 1
        return self.calls


def test_variables_are_computed_once_per_object_in_a_pass() -> None:
    program = Counting()
    compiled = (CompiledVariable("n", program, reads_earlier=False),)  # type: ignore[arg-type]
    memo: dict[Any, Any] = {}
    first, second = deployment(), deployment()
    assert named.evaluate(compiled, {"object": first}, memo=memo) == {"n": 1}
    assert named.evaluate(compiled, {"object": first}, memo=memo) == {"n": 1}
    assert named.evaluate(compiled, {"object": second}, memo=memo) == {"n": 2}
    assert named.evaluate(compiled, {"object": first}) == {"n": 3}  # no memo: computed
    assert program.calls == 3
