"""The evaluation engine: ordering, fixed points, conflicts, modes, actions, errors as values."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import Where
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.outcomes import ChildAction, Result, Status
from engine.evaluate.world import ManifestWorld
from engine.patching import apply_patch
from engine.rules.load import parse_rule_set


def rule_set(name: str, rules: list[dict[str, Any]], *, kind: str = "ClusterRuleSet",
             namespace: str | None = None, **spec: Any) -> Any:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": kind, "metadata": metadata,
           "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml")


DEPLOYMENTS = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}


def rule(name: str, **body: Any) -> dict[str, Any]:
    return {"name": name, "match": body.pop("match", DEPLOYMENTS), **body}


def labels(**values: Any) -> dict[str, Any]:
    return {"mutate": {"template": {"metadata": {"labels": values}}}}


def deployment(**meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", **meta},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx"}, {"name": "log", "image": "fluent"}]}}},
    }


def evaluate(rule_sets: list[Any], obj: dict[str, Any], *objects: dict[str, Any],
             **settings: Any) -> Result:
    frozen = copy.deepcopy(obj)
    engine = Engine(rule_sets, settings=Settings(**settings))
    result = engine.evaluate(obj, world=ManifestWorld([obj, *objects]))
    assert obj == frozen, "evaluate must never change its input"
    return result


def statuses(result: Result) -> dict[str, str]:
    return {o.rule: o.status.value for o in result.outcomes}


def test_a_mutate_rule_yields_one_guarded_patch() -> None:
    result = evaluate([rule_set("a", [rule("owner", **labels(owner="team"))])], deployment())
    assert result.patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert apply_patch(result.current, result.patch, where=Where()) == result.desired
    assert result.desired["metadata"]["labels"] == {"owner": "team"}
    assert statuses(result) == {"owner": "applied"}


def test_a_converged_object_yields_no_patch() -> None:
    sets = [rule_set("a", [rule("owner", **labels(owner="team"))])]
    first = evaluate(sets, deployment())
    again = evaluate(sets, first.desired)
    assert again.patch == () and again.status_patch == () and again.converged
    assert statuses(again) == {"owner": "unchanged"}


def test_rules_run_in_priority_then_name_then_position_order() -> None:
    sets = [
        rule_set("zeta", [rule("z", **labels(who="zeta"))], priority=10),
        rule_set("alpha", [rule("a1", **labels(who="alpha-1")),
                           rule("a2", **labels(who="alpha-2"))], priority=10),
        rule_set("first", [rule("f", **labels(who="first"))], priority=1),
    ]
    result = evaluate(sets, deployment())
    assert result.desired["metadata"]["labels"]["who"] == "zeta"
    assert [o.rule for o in result.outcomes] == ["f", "a1", "a2", "z"]
    conflicted = {(c.loser[1], c.winner[1]) for c in result.conflicts}
    assert ("a2", "z") in conflicted and ("f", "a1") in conflicted


def test_each_rule_sees_the_object_as_the_previous_rule_left_it() -> None:
    sets = [rule_set("a", [
        rule("second", condition="has(object.metadata.labels) && "
             "object.metadata.labels.owner == 'team'", **labels(seen="yes")),
        rule("first", **labels(owner="team")),
    ])]
    result = evaluate(sets, deployment())
    # "second" runs before "first" in pass 1 (skipped), then applies in pass 2.
    assert result.desired["metadata"]["labels"] == {"owner": "team", "seen": "yes"}
    assert statuses(result) == {"second": "applied", "first": "applied"}


def test_an_oscillation_writes_nothing_and_names_the_rules() -> None:
    sets = [rule_set("flip", [
        rule("toggle", mutate={"template": {"spec": {
            "replicas": "{{ 3 - object.spec.replicas }}"}}}),
        rule("label", **labels(x="1")),
    ])]
    result = evaluate(sets, deployment(), max_passes=4)
    assert result.oscillating and result.patch == () and result.desired == result.current
    assert statuses(result) == {"toggle": "oscillating", "label": "applied"}
    assert "'toggle'" in result.outcomes[0].message and "4 passes" in result.outcomes[0].message


def test_two_rules_undoing_each_other_in_one_pass_are_a_conflict() -> None:
    sets = [rule_set("tug", [
        rule("up", condition="object.spec.replicas == 1",
             mutate={"template": {"spec": {"replicas": 2}}}),
        rule("down", condition="object.spec.replicas == 2",
             mutate={"template": {"spec": {"replicas": 1}}}),
    ])]
    result = evaluate(sets, deployment())
    assert [(c.path, c.winner[1], c.loser[1]) for c in result.conflicts] == [
        ("/spec/replicas", "down", "up")]


def test_one_broken_rule_never_stops_the_others() -> None:
    sets = [rule_set("a", [
        rule("bad-template", mutate={"template": {"metadata": {"labels": {
            "x": "{{ object.nope.deeper }}"}}}}),
        rule("bad-cel", condition="object.spec.replicas + 'x' == 1", **labels(y="1")),
        rule("not-a-list", mutate={"forEach": "object.spec.replicas",
                                   "template": {"metadata": {"labels": {"z": "1"}}}}),
        rule("fine", **labels(ok="yes")),
    ])]
    result = evaluate(sets, deployment())
    got = statuses(result)
    assert got["fine"] == "applied"
    assert got["bad-template"] == "error" and got["not-a-list"] == "error"
    assert got["bad-cel"] == "disabled"  # a type error is caught when the rule compiles
    assert result.desired["metadata"]["labels"] == {"ok": "yes"}
    messages = {o.rule: o.message for o in result.outcomes}
    assert "rule 'bad-template'" in messages["bad-template"]
    assert "forEach" in messages["not-a-list"] and "must give a list" in messages["not-a-list"]


def test_missing_data_skips_the_rule_with_the_reason() -> None:
    sets = [rule_set("a", [rule("r", condition="object.spec.paused == true",
                                **labels(x="1"))])]
    result = evaluate(sets, deployment())
    assert statuses(result) == {"r": "skipped"}
    assert "not there" in result.outcomes[0].message


def test_for_each_merges_by_name() -> None:
    sets = [rule_set("a", [rule("limits", mutate={
        "forEach": "object.spec.template.spec.containers.filter(c, !has(c.resources))",
        "template": {"spec": {"template": {"spec": {"containers": [
            {"name": "{{ item.name }}", "resources": {"limits": {"cpu": "1"}}}]}}}},
    })])]
    result = evaluate(sets, deployment())
    containers = result.desired["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "log"]
    assert all(c["resources"] == {"limits": {"cpu": "1"}} for c in containers)
    assert containers[0]["image"] == "nginx"


def test_json_patch_rules() -> None:
    sets = [rule_set("a", [rule("scale", mutate={"jsonPatch": [
        {"op": "replace", "path": "/spec/replicas", "value": "{{ params.n }}"}]})],
        params={"n": 3})]
    result = evaluate(sets, deployment())
    assert result.desired["spec"]["replicas"] == 3
    assert {"op": "replace", "path": "/spec/replicas", "value": 3} in result.patch


def test_status_rules_patch_the_status_subresource_only() -> None:
    sets = [rule_set("a", [rule("ready", status={"template": {"phase": "Ready"}})])]
    result = evaluate(sets, deployment())
    assert result.patch == ()
    assert result.status_patch[0]["op"] == "test"
    assert {"op": "add", "path": "/status", "value": {"phase": "Ready"}} in result.status_patch


def test_audit_mode_reports_and_changes_nothing() -> None:
    sets = [rule_set("a", [rule("owner", **labels(owner="x"))], mode="Audit")]
    result = evaluate(sets, deployment())
    assert result.patch == () and result.desired == result.current
    assert statuses(result) == {"owner": "would-apply"}
    assert {"op": "add", "path": "/metadata/labels", "value": {"owner": "x"}} in result.audit_patch


def test_suspended_rule_sets_do_nothing() -> None:
    sets = [rule_set("a", [rule("owner", **labels(owner="x"))], mode="Suspended")]
    result = evaluate(sets, deployment())
    assert result.patch == () and result.outcomes == ()


def test_a_context_lookup_is_null_when_absent_and_read_when_present() -> None:
    lookup_rule = rule("cfg", context={"cfg": {"apiVersion": "v1", "kind": "ConfigMap",
                                               "name": "settings"}},
                       condition="context.cfg != null", **labels(
                           tier="{{ context.cfg.data.tier }}"))
    sets = [rule_set("a", [lookup_rule])]
    assert statuses(evaluate(sets, deployment())) == {"cfg": "skipped"}
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "settings", "namespace": "shop"}, "data": {"tier": "gold"}}
    result = evaluate(sets, deployment(), config)
    assert result.desired["metadata"]["labels"] == {"tier": "gold"}
    assert any(k.name == "settings" for k in result.lookups)


def test_a_rule_set_is_confined_to_its_namespace() -> None:
    peek = rule("peek", context={"other": {"apiVersion": "v1", "kind": "ConfigMap",
                                           "namespace": "kube-system", "name": "x"}},
                **labels(a="1"))
    escape = rule("escape", generate={"template": {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "kube-system"}}})
    sets = [rule_set("team", [peek, escape], kind="RuleSet", namespace="shop")]
    result = evaluate(sets, deployment())
    got = {o.rule: o for o in result.outcomes}
    assert got["peek"].status is Status.ERROR and "own namespace" in got["peek"].message
    assert got["escape"].status is Status.ERROR and "own namespace" in got["escape"].message
    assert result.children == () and result.patch == ()
    # And it never even sees objects elsewhere.
    elsewhere = deployment(namespace="other")
    assert evaluate(sets, elsewhere).outcomes == ()


def generate_rule(**extra: Any) -> dict[str, Any]:
    return rule("cm", generate={"template": {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "{{ object.metadata.name }}-cfg"},
        "data": {"replicas": "{{ object.spec.replicas }}"}}, **extra})


def test_generate_plans_create_then_nothing_then_patch_on_drift_then_prune() -> None:
    sets = [rule_set("gen", [generate_rule()])]
    trigger = deployment(uid="u-1")
    created = evaluate(sets, trigger)
    (plan,) = created.children
    assert plan.action is ChildAction.CREATE
    child = plan.desired
    assert child is not None
    assert child["metadata"]["namespace"] == "shop"
    assert child["metadata"]["labels"]["edict.dev/rule"] == "cm"
    assert child["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert evaluate(sets, trigger, child).children[0].action is ChildAction.NONE
    drifted = copy.deepcopy(child)
    drifted["data"]["replicas"] = "9"
    fix = evaluate(sets, trigger, drifted).children[0]
    assert fix.action is ChildAction.PATCH and fix.desired == child
    off = [rule_set("gen", [generate_rule(), ])]
    gone = evaluate([rule_set("gen", [{**generate_rule(), "condition": "false"}])], trigger,
                    child)
    assert [c.action for c in gone.children] == [ChildAction.DELETE]
    assert statuses(evaluate(off, trigger, child)) == {"cm": "unchanged"}


def test_an_object_edict_did_not_create_is_never_adopted() -> None:
    foreign = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web-cfg", "namespace": "shop"}}
    result = evaluate([rule_set("gen", [generate_rule()])], deployment(), foreign)
    assert statuses(result) == {"cm": "error"}
    assert "not created by this rule" in result.outcomes[0].message
    assert result.children == ()


def test_generate_needs_literal_kinds() -> None:
    sets = [rule_set("gen", [rule("x", generate={"template": {
        "apiVersion": "v1", "kind": "{{ params.kind }}", "metadata": {"name": "a"}}})])]
    result = evaluate(sets, deployment())
    assert statuses(result) == {"x": "disabled"}
    assert "literal apiVersion and kind" in result.outcomes[0].message


@pytest.mark.parametrize("template", ["{{ object.nope }}", "{% if %}"])
def test_a_template_that_does_not_compile_disables_only_its_rule(template: str) -> None:
    sets = [rule_set("a", [rule("broken", **labels(x=template)), rule("ok", **labels(y="1"))])]
    engine = Engine(sets)
    result = engine.evaluate(deployment(), world=ManifestWorld())
    got = statuses(result)
    assert got["ok"] == "applied"
    if template == "{% if %}":
        assert got["broken"] == "disabled" and engine.rule_sets[0].errors
    else:
        assert got["broken"] == "error"


def test_a_json_patch_and_a_template_on_one_escaped_path_conflict() -> None:
    sets = [rule_set("a", [
        rule("by-template", **labels(**{"app.kubernetes.io/name": "one"})),
        rule("by-patch", mutate={"jsonPatch": [
            {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "two"}]}),
    ])]
    result = evaluate(sets, deployment())
    assert result.desired["metadata"]["labels"] == {"app.kubernetes.io/name": "two"}
    assert [(c.path, c.winner[1]) for c in result.conflicts] == [
        ("/metadata/labels/app.kubernetes.io~1name", "by-patch")]


def test_true_and_1_are_different_values() -> None:
    sets = [rule_set("a", [
        rule("one", mutate={"template": {"spec": {"paused": 1}}}),
        rule("true", mutate={"template": {"spec": {"paused": True}}}),
    ])]
    result = evaluate(sets, deployment())
    assert result.desired["spec"]["paused"] is True
    assert [c.path for c in result.conflicts] == ["/spec/paused"]


def test_a_cel_bug_at_run_time_is_a_rule_error_naming_rule_and_field() -> None:
    sets = [rule_set("a", [rule("bad-int", condition="int(object.metadata.name) > 1",
                                **labels(x="1"))])]
    result = evaluate(sets, deployment())
    assert statuses(result) == {"bad-int": "error"}
    assert "rule 'bad-int'" in result.outcomes[0].message
    assert "field condition" in result.outcomes[0].message


def test_a_merge_error_is_a_rule_error_and_changes_nothing() -> None:
    sets = [rule_set("a", [
        rule("twice", mutate={"template": {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "a"}, {"name": "web", "image": "b"}]}}}}}),
        rule("fine", **labels(ok="yes"))])]
    result = evaluate(sets, deployment())
    assert statuses(result) == {"twice": "error", "fine": "applied"}
    assert "appears twice" in result.outcomes[0].message
    containers = result.desired["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["nginx", "fluent"]


def test_a_cel_limit_is_a_rule_error() -> None:
    ten = "[1,2,3,4,5,6,7,8,9,10]"
    nested = f"{ten}.map(a, {ten}.map(b, {ten}.map(c, {ten}.map(d, d)))).size() > 0"
    sets = [rule_set("a", [rule("huge", condition=nested, **labels(x="1"))])]
    result = evaluate(sets, deployment())
    assert statuses(result) == {"huge": "error"}
    assert "limit" in result.outcomes[0].message


def test_context_lookups_by_a_literal_name_and_by_a_templated_one() -> None:
    """A literal name and namespace are rendered once, at load; a templated name per
    trigger: both find what they name."""
    settings = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "shop"}, "data": {"tier": "gold"}}
    own = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "web-extra", "namespace": "other"}, "data": {"tier": "iron"}}
    rs = rule_set("lookups", [
        rule("literal", context={"s": {"apiVersion": "v1", "kind": "ConfigMap",
                                      "name": "settings"}},
             **labels(a="{{ context.s.data.tier }}")),
        rule("literal-namespace", context={"s": {"apiVersion": "v1", "kind": "ConfigMap",
                                                "name": "web-extra", "namespace": "other"}},
             **labels(b="{{ context.s.data.tier }}")),
        rule("templated", context={"s": {"apiVersion": "v1", "kind": "ConfigMap",
                                        "name": "{{ object.metadata.name }}-extra",
                                        "namespace": "{{ 'oth' ~ 'er' }}"}},
             **labels(c="{{ context.s.data.tier }}")),
    ])
    for name, expected in (("web", {"a": "gold", "b": "iron", "c": "iron"}),
                           ("api", {"a": "gold", "b": "iron"})):
        result = evaluate([rs], deployment(name=name), settings, own)
        found = result.desired["metadata"]["labels"]
        assert {k: v for k, v in found.items() if k in "abc"} == expected
