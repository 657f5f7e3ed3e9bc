"""`match.podTemplates`: a rule written for Pods runs on the pod templates of workloads."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import SchemaError
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Result, Status
from engine.evaluate.overlaps import overlaps
from engine.evaluate.request import Phase, Request
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK
from engine.rules import model as m
from engine.rules.load import parse_rule_set

PODS = {"resources": [{"apiVersion": "v1", "kinds": ["Pod"]}], "podTemplates": True}
NON_ROOT = {"name": "non-root", "match": PODS, "mutate": {"template": {"spec": {
    "securityContext": {"runAsNonRoot": True}}}}}
SIDECAR = {"name": "sidecar", "match": PODS, "mutate": {"template": {"spec": {
    "containers": [{"name": "proxy", "image": "proxy:1.0"}]}}}}


def rule_set(rules: list[dict[str, Any]], name: str = "pods", **spec: Any) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


def pod_spec(*images: str) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}


def workload(kind: str, **labels: str) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "web", **labels}}, "spec": pod_spec("web:1")}
    group = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    return {"apiVersion": group, "kind": kind,
            "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"}},
            "spec": spec}


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
            "spec": pod_spec("web:1")}


def evaluate(sets: list[m.RuleSet], obj: dict[str, Any], request: Request | None = None
             ) -> Result:
    frozen = copy.deepcopy(obj)
    result = Engine(sets).evaluate(obj, world=ManifestWorld([obj]), request=request)
    assert obj == frozen
    return result


def template_of(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    found: dict[str, Any] = (spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob"
                             else spec["template"])
    return found


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                                  "Job", "CronJob"])
def test_a_pod_rule_fixes_every_workloads_template(kind: str) -> None:
    sets = [rule_set([NON_ROOT, SIDECAR])]
    result = evaluate(sets, workload(kind))
    template = template_of(result.desired)
    assert template["spec"]["securityContext"] == {"runAsNonRoot": True}
    assert [c["name"] for c in template["spec"]["containers"]] == ["c0", "proxy"]
    assert template["metadata"] == {"labels": {"app": "web"}}, "no name or namespace leaks"
    assert result.desired["metadata"] == workload(kind)["metadata"]
    prefix = "/spec/jobTemplate/spec/template" if kind == "CronJob" else "/spec/template"
    assert {op["path"] for op in result.patch if op["op"] != "test"} == {
        f"{prefix}/spec/securityContext", f"{prefix}/spec/containers/1"}
    assert {o.rule: o.paths for o in result.outcomes} == {
        "non-root": (f"{prefix}/spec/securityContext/runAsNonRoot",),
        "sidecar": (f"{prefix}/spec/containers/name=proxy/image",)}
    assert evaluate(sets, result.desired).converged


def test_the_same_rule_still_runs_on_pods_themselves() -> None:
    result = evaluate([rule_set([NON_ROOT])], pod())
    assert result.desired["spec"]["securityContext"] == {"runAsNonRoot": True}


def test_without_pod_templates_workloads_are_left_alone() -> None:
    plain = copy.deepcopy(NON_ROOT)
    del plain["match"]["podTemplates"]
    assert evaluate([rule_set([plain])], workload("Deployment")).outcomes == ()
    assert rule_set([plain]).rules[0].match.trigger_kinds == (GVK("", "v1", "Pod"),)
    assert set(rule_set([NON_ROOT]).rules[0].match.trigger_kinds) == {
        GVK("", "v1", "Pod"), *m.POD_TEMPLATES}


def test_the_rule_sees_the_template_as_a_pod_of_the_workloads_namespace() -> None:
    seen = {"name": "see", "match": PODS, "mutate": {"template": {"metadata": {"annotations": {
        "seen": "{{ object.apiVersion }} {{ object.kind }} {{ object.metadata.namespace }}/"
                "{{ object.metadata.name }} {{ object.metadata.labels.app }}"}}}}}
    result = evaluate([rule_set([seen])], workload("Deployment"))
    assert template_of(result.desired)["metadata"]["annotations"] == {
        "seen": "v1 Pod shop/web web"}


def test_match_filters_see_the_template_labels() -> None:
    only_db = copy.deepcopy(NON_ROOT)
    only_db["match"]["selector"] = {"matchLabels": {"app": "db"}}
    assert evaluate([rule_set([only_db])], workload("Deployment")).outcomes == ()
    only_db["match"]["selector"] = {"matchLabels": {"app": "web"}}
    assert [o.status for o in evaluate([rule_set([only_db])], workload("Deployment")
                                       ).outcomes] == [Status.APPLIED]


def test_a_workload_rule_and_a_pod_rule_on_the_same_path_conflict() -> None:
    deployment_rule = {"name": "root", "match": {"resources": [
        {"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}, "mutate": {"template": {
            "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": False}}}}}}}
    result = evaluate([rule_set([deployment_rule, NON_ROOT])], workload("Deployment"))
    (conflict,) = result.conflicts
    assert conflict.path == "/spec/template/spec/securityContext/runAsNonRoot"
    assert conflict.winner[1] == "non-root"
    assert template_of(result.desired)["spec"]["securityContext"] == {"runAsNonRoot": True}


def test_changing_the_pods_identity_is_a_rule_error() -> None:
    rename = {"name": "rename", "match": PODS, "mutate": {"template": {
        "metadata": {"name": "other"}}}}
    (outcome,) = evaluate([rule_set([rename])], workload("Deployment")).outcomes
    assert outcome.status is Status.ERROR
    assert "metadata.name" in outcome.message and "pod template" in outcome.message


def test_a_validate_rule_judges_the_template_and_names_it() -> None:
    pinned = {"name": "pinned", "match": PODS, "validate": {
        "expression": "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "message": "pin your images"}}
    obj = workload("CronJob")
    template_of(obj)["spec"] = pod_spec("web:latest")
    (outcome,) = evaluate([rule_set([pinned])], obj).outcomes
    assert (outcome.status, outcome.message, outcome.paths) == (
        Status.VIOLATION, "pin your images", ("/spec/jobTemplate/spec/template",))


def test_at_admission_old_object_is_the_old_template_as_a_pod() -> None:
    kept = {"name": "kept", "match": PODS, "condition": "oldObject != null",
            "mutate": {"template": {"metadata": {"annotations": {
                "was": "{{ oldObject.kind }}:{{ oldObject.metadata.labels.app }}"}}}}}
    old = workload("Deployment")
    template_of(old)["metadata"]["labels"]["app"] = "before"
    request = Request(phase=Phase.MUTATE, operation="UPDATE", old_object=old)
    result = evaluate([rule_set([kept])], workload("Deployment"), request)
    assert template_of(result.desired)["metadata"]["annotations"] == {"was": "Pod:before"}


def test_pod_templates_needs_pods_and_a_mutate_or_validate_rule() -> None:
    not_pods = copy.deepcopy(NON_ROOT)
    not_pods["match"]["resources"] = [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]
    with pytest.raises(SchemaError, match="must match v1 Pod"):
        rule_set([not_pods])
    status_rule = {"name": "s", "match": PODS, "status": {"template": {"phase": "x"}}}
    with pytest.raises(SchemaError, match="podTemplates is for mutate and validate"):
        rule_set([status_rule])


def test_lint_sees_a_pod_rule_and_a_workload_rule_writing_one_template_path() -> None:
    deployment_rule = {"name": "root", "match": {"resources": [
        {"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}, "mutate": {"template": {
            "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": False}}}}}}}
    engine = Engine([rule_set([deployment_rule, NON_ROOT])])
    (overlap,) = overlaps([r for c in engine.rule_sets for r in c.rules])
    assert overlap.path == "/spec/template/spec/securityContext/runAsNonRoot"
    assert overlap.kinds == (GVK("apps", "v1", "Deployment"),)
