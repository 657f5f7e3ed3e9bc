"""Answering AdmissionReviews: patches, denials, warnings and failure policies."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.errors import Where
from engine.evaluate.engine import Engine
from engine.evaluate.request import Phase
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.patching import apply_patch
from engine.rules import model as m
from engine.rules.load import parse_rule_set
from engine.runtime.admission.admission import AdmissionHandler, BadReview, NotReady
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics

PODS = {"resources": [{"apiVersion": "v1", "kinds": ["Pod"]}], "podTemplates": True}
SIDECAR = {"name": "sidecar", "match": PODS, "mutate": {"template": {"spec": {
    "containers": [{"name": "proxy", "image": "proxy:1.0"}],
    "securityContext": {"runAsNonRoot": True}}}}}
PINNED = {"name": "pinned", "match": PODS, "validate": {
    "expression": "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
    "message": "images must be pinned to a tag or digest"}}
BROKEN = {"name": "broken", "match": PODS, "mutate": {"template": {"metadata": {"labels": {
    "x": "{{ object.metadata.nothing.here }}"}}}}}


def rule_set(name: str, rules: list[dict[str, Any]], **spec: Any) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


def handler(*sets: m.RuleSet, ready: bool = True) -> tuple[AdmissionHandler, CollectorRegistry]:
    registry = CollectorRegistry()
    current = Current(Engine(sets), {s.ref: s for s in sets})
    return AdmissionHandler(current=lambda: current, world=ManifestWorld([]),
                            metrics=EngineMetrics(registry), ready=lambda: ready), registry


def pod(image: str = "web:1", **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", **metadata},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def review(obj: dict[str, Any], operation: str = "CREATE", **request: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "shop", "operation": operation, "object": obj,
        "userInfo": {"username": "alice", "groups": ["dev"]}, **request}}


def answer(h: AdmissionHandler, body: dict[str, Any], phase: Phase) -> dict[str, Any]:
    out = json.loads(h.review(json.dumps(body).encode(), phase))
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == "u-1"
    return dict(out["response"])


def patched(obj: dict[str, Any], response: dict[str, Any]) -> Any:
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    return apply_patch(obj, ops, where=Where())


def test_the_mutating_webhook_answers_the_converged_object_as_a_patch() -> None:
    h, registry = handler(rule_set("pods", [SIDECAR]))
    obj = pod()
    response = answer(h, review(obj), Phase.MUTATE)
    assert response["allowed"] is True and "warnings" not in response
    stored = patched(obj, response)
    assert [c["name"] for c in stored["spec"]["containers"]] == ["web", "proxy"]
    assert stored["metadata"] == {"name": "web"}, (
        "rules see the namespace of the request path; the patch leaves it to the server")
    # called again on its own result (reinvocation, or the background): nothing to do
    assert "patch" not in answer(h, review(stored), Phase.MUTATE)
    assert registry.get_sample_value("edict_admission_requests_total",
                                     {"webhook": "mutate", "result": "patched"}) == 1
    assert registry.get_sample_value("edict_admission_requests_total",
                                     {"webhook": "mutate", "result": "allowed"}) == 1


def test_the_patch_leaves_status_alone() -> None:
    status_rule = {"name": "label", "match": PODS, "mutate": {"template": {
        "metadata": {"labels": {"a": "b"}}}}}
    h, _ = handler(rule_set("pods", [status_rule]))
    obj = {**pod(), "status": {"phase": "Pending"}}
    ops = json.loads(base64.b64decode(answer(h, review(obj), Phase.MUTATE)["patch"]))
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]


def test_an_enforced_violation_is_denied_with_the_rules_message() -> None:
    h, registry = handler(rule_set("images", [PINNED]))
    response = answer(h, review(pod("web:latest")), Phase.VALIDATE)
    assert response["allowed"] is False
    assert response["status"] == {
        "code": 403, "reason": "Forbidden",
        "message": "ClusterRuleSet images, rule 'pinned': images must be pinned to a tag or "
                   "digest"}
    assert answer(h, review(pod("web:1")), Phase.VALIDATE) == {"uid": "u-1", "allowed": True}
    assert registry.get_sample_value("edict_admission_requests_total",
                                     {"webhook": "validate", "result": "denied"}) == 1


def test_audit_rule_sets_only_warn() -> None:
    h, _ = handler(rule_set("images", [PINNED, SIDECAR], mode="Audit"))
    response = answer(h, review(pod("web:latest")), Phase.VALIDATE)
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == [
        "ClusterRuleSet images (Audit), rule 'pinned': images must be pinned to a tag or "
        "digest",
        "ClusterRuleSet images (Audit), rule 'sidecar' would change "
        "/spec/containers/name=proxy/image, /spec/securityContext/runAsNonRoot"]
    assert "patch" not in answer(h, review(pod("web:latest")), Phase.MUTATE)


def test_a_rule_error_under_ignore_admits_with_a_warning_and_the_other_changes() -> None:
    h, _ = handler(rule_set("pods", [BROKEN, SIDECAR]))
    response = answer(h, review(pod()), Phase.MUTATE)
    assert response["allowed"] is True
    assert response["warnings"][0].startswith(
        "ClusterRuleSet pods, rule 'broken' failed and was ignored: ")
    assert [c["name"] for c in patched(pod(), response)["spec"]["containers"]] == [
        "web", "proxy"]


def test_a_rule_error_under_fail_denies_naming_rule_set_and_rule() -> None:
    h, _ = handler(rule_set("strict", [BROKEN], admission={"failurePolicy": "Fail"}),
                   rule_set("pods", [SIDECAR]))
    response = answer(h, review(pod()), Phase.MUTATE)
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["message"].startswith(
        "ClusterRuleSet strict, rule 'broken' failed (failurePolicy Fail): ")


def test_dry_run_requests_get_the_same_answer() -> None:
    h, _ = handler(rule_set("pods", [SIDECAR]), rule_set("images", [PINNED]))
    for phase in Phase:
        for image in ("web:1", "web:latest"):
            assert answer(h, review(pod(image), dryRun=True), phase) == answer(
                h, review(pod(image)), phase)


def test_request_and_old_object_reach_the_rules() -> None:
    creator = {"name": "creator", "match": PODS,
               "condition": "request.operation == 'CREATE' && 'dev' in request.userInfo.groups",
               "mutate": {"template": {"metadata": {"annotations": {
                   "created-by": "{{ request.userInfo.username }}"}}}}}
    keep = {"name": "keep", "match": PODS,
            "condition": "request.operation == 'UPDATE' && oldObject.metadata.?annotations"
                         "[?'created-by'].hasValue()",
            "mutate": {"template": {"metadata": {"annotations": {
                "created-by": "{{ oldObject.metadata.annotations['created-by'] }}"}}}}}
    h, _ = handler(rule_set("who", [creator, keep]))
    created = patched(pod(), answer(h, review(pod()), Phase.MUTATE))
    assert created["metadata"]["annotations"] == {"created-by": "alice"}
    update = review(pod(), operation="UPDATE", oldObject=created,
                    userInfo={"username": "bob", "groups": ["dev"]})
    updated = patched(pod(), answer(h, update, Phase.MUTATE))
    assert updated["metadata"]["annotations"] == {"created-by": "alice"}


def test_deletes_and_kinds_without_rules_are_allowed_untouched() -> None:
    h, _ = handler(rule_set("pods", [SIDECAR]))
    assert answer(h, review(pod(), operation="DELETE"), Phase.MUTATE) == {
        "uid": "u-1", "allowed": True}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert answer(h, review(configmap), Phase.MUTATE) == {"uid": "u-1", "allowed": True}


def test_a_body_that_is_no_review_and_an_engine_not_ready_are_refused() -> None:
    h, _ = handler(rule_set("pods", [SIDECAR]))
    for bad in (b'{"kind": "Something"}', b"not json", b"[]"):
        with pytest.raises(BadReview):
            h.review(bad, Phase.MUTATE)
    not_ready, _ = handler(rule_set("pods", [SIDECAR]), ready=False)
    with pytest.raises(NotReady):
        not_ready.review(json.dumps(review(pod())).encode(), Phase.MUTATE)


def test_a_workload_is_answered_with_its_pod_template_fixed() -> None:
    h, _ = handler(rule_set("pods", [SIDECAR]))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": "shop"},
                  "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "web",
                                                                 "image": "web:1"}]}}}}
    body = review(deployment, kind={"group": "apps", "version": "v1", "kind": "Deployment"})
    stored = patched(deployment, answer(h, body, Phase.MUTATE))
    assert stored["spec"]["template"]["spec"]["securityContext"] == {"runAsNonRoot": True}
    assert stored["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}


def test_an_update_is_patched_without_the_resource_version_guard() -> None:
    h, _ = handler(rule_set("pods", [SIDECAR]))
    stored = pod(resourceVersion="41", namespace="shop")
    response = answer(h, review(stored, operation="UPDATE", oldObject=stored), Phase.MUTATE)
    ops = json.loads(base64.b64decode(response["patch"]))
    assert [op["op"] for op in ops] == ["add", "add"]
    assert patched(stored, response)["metadata"]["resourceVersion"] == "41"
