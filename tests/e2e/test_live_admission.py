"""Admission on the suite's real API server, which calls the engine's webhook at
`--webhook-url` (https://127.0.0.1:PORT, a certificate from Edict's own CA).

Objects are created with kubectl, as users create them: they are stored already as the
rules want them, and the background then has nothing to write (writes counted by the
engine's own metric). Each test's engine is stopped, and the two configurations named
`edict` deleted, before the next test runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK
from engine.runtime.manager import Manager
from engine.testing.pytest_plugin import TestCluster
from tests.support import eventually

from .conftest import Objects
from .live import CLUSTER_RULE_SET, NAMESPACE, ROOT, cluster_rule_set, metric, unique

pytestmark = pytest.mark.cluster

MUTATING = GVK("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration")
VALIDATING = GVK("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration")
POD = GVK("", "v1", "Pod")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
CONFIGMAP = GVK("", "v1", "ConfigMap")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """kubectl as a user runs it; the caller looks at the exit code."""
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def webhook_resources(admin: Cluster, gvk: GVK) -> dict[str, list[str]]:
    """webhook name -> the resources it asks for; {} when there is no configuration."""
    try:
        config = admin.get(gvk, None, "edict")
    except NotFound:
        return {}
    return {w["name"]: sorted(r for rule in w.get("rules") or () for r in rule["resources"])
            for w in config.get("webhooks") or ()}


def delete_configurations(admin: Cluster) -> None:
    for gvk in (MUTATING, VALIDATING):
        with contextlib.suppress(NotFound):
            admin.delete(gvk, None, "edict")


@pytest.fixture
def own_namespace(objects: Objects) -> str:
    """Edict's own namespace (the certificate Secret; never gated)."""
    name = unique("edict-own")
    objects.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def webhook_engine(admin: Cluster, start_engine: Callable[..., Manager],
                   own_namespace: str) -> Iterator[Callable[..., Manager]]:
    """Start an in-process engine serving the webhooks; at the end stop it and delete
    the configurations, so no later test meets a webhook that no longer answers."""
    started: list[Manager] = []

    def start(**settings: Any) -> Manager:
        port = free_port()
        manager = start_engine(webhook_addr=("127.0.0.1", port),
                               webhook_url=f"https://127.0.0.1:{port}",
                               own_namespace=own_namespace, **settings)
        started.append(manager)
        eventually(lambda: manager.ready()[0], what="the engine ready and serving")
        return manager

    try:
        yield start
    finally:
        for manager in started:
            manager.stop()
        delete_configurations(admin)


def rule_set_matched(admin: Cluster, name: str, rule: str) -> int:
    status = admin.get(CLUSTER_RULE_SET, None, name).get("status") or {}
    for entry in status.get("rules") or ():
        if entry["name"] == rule:
            return int(entry.get("matched", 0))
    return 0


def pod_rules(namespace: str) -> list[dict[str, Any]]:
    pods = {"resources": [{"apiVersion": "v1", "kinds": ["Pod"]}], "namespaces": [namespace],
            "podTemplates": True}
    return [
        {"name": "sidecar", "match": pods, "mutate": {"template": {"spec": {
            "containers": [{"name": "proxy", "image": "registry.example/proxy:1.0"}]}}}},
        {"name": "non-root", "match": pods, "mutate": {"template": {"spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000}}}}},
    ]


def wait_for_webhook(admin: Cluster, resource: str, gvk: GVK = MUTATING) -> None:
    eventually(lambda: any(resource in r for r in webhook_resources(admin, gvk).values()),
               what=f"the {gvk.kind} to ask for {resource}")


def test_a_pod_is_stored_mutated_and_never_patched_afterwards(
        admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
        webhook_engine: Callable[..., Manager]) -> None:
    engine = webhook_engine()
    name = unique("pods")
    objects.create(cluster_rule_set(name, pod_rules(namespace)))
    wait_for_webhook(admin, "pods")
    made = kubectl(kubeconfig, "run", "web", "-n", namespace, "--image=nginx:1.27",
                   "-o", "json")
    assert made.returncode == 0, made.stderr
    stored = json.loads(made.stdout)
    spec = stored["spec"]
    assert [c["name"] for c in spec["containers"]] == ["web", "proxy"]
    assert spec["containers"][1]["image"] == "registry.example/proxy:1.0"
    assert spec["containers"][1]["imagePullPolicy"] == "IfNotPresent", (
        "the API server defaults what the webhook added")
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000}
    # The background evaluates the stored Pod (the rule set's status counts it) and
    # finds nothing to do: no patch, the stored version untouched.
    eventually(lambda: rule_set_matched(admin, name, "sidecar") == 1,
               what="the background to evaluate the Pod")
    eventually(lambda: metric(engine, "edict_reconciles_total", result="success") >= 1,
               what="a reconcile")
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    assert admin.get(POD, namespace, "web")["metadata"]["resourceVersion"] == (
        stored["metadata"]["resourceVersion"])
    assert metric(engine, "edict_admission_requests_total", webhook="mutate",
                  result="patched") >= 1
    # the memo was consulted for the Pod (a miss when the API server defaulted fields of
    # the added container: then the background evaluated it in full, as above)
    assert metric(engine, "edict_admission_memo_total", result="hit") + metric(
        engine, "edict_admission_memo_total", result="miss") == 1


def test_a_deployment_is_stored_with_its_labels_and_rolled_out_once(
        admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
        webhook_engine: Callable[..., Manager]) -> None:
    engine = webhook_engine()
    name = unique("labels")
    deployments = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}],
                   "namespaces": [namespace]}
    objects.create(cluster_rule_set(name, [
        {"name": "team", "match": deployments, "mutate": {"template": {"metadata": {
            "labels": {"team": "platform"}}}}},
        {"name": "template-team", "match": deployments,
         "condition": "has(object.metadata.labels.team)",
         "mutate": {"template": {"spec": {"template": {"metadata": {"labels": {
             "team": "{{ object.metadata.labels.team }}"}}}}}}},
        *pod_rules(namespace)]))
    wait_for_webhook(admin, "deployments")
    made = kubectl(kubeconfig, "create", "deployment", "web", "-n", namespace,
                   "--image=nginx:1.27", "-o", "json")
    assert made.returncode == 0, made.stderr
    stored = json.loads(made.stdout)
    assert stored["metadata"]["labels"] == {"app": "web", "team": "platform"}
    template = stored["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "web", "team": "platform"}
    assert [c["name"] for c in template["spec"]["containers"]] == ["nginx", "proxy"]
    assert template["spec"]["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000}
    assert stored["metadata"]["generation"] == 1
    eventually(lambda: rule_set_matched(admin, name, "team") == 1,
               what="the background to evaluate the Deployment")
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    assert admin.get(DEPLOYMENT, namespace, "web")["metadata"]["generation"] == 1


def test_admitted_objects_are_not_evaluated_again_by_the_background(
        admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
        webhook_engine: Callable[..., Manager]) -> None:
    """The mutating webhook's answers are remembered (admission/memo.py): the background
    evaluates each stored ConfigMap without the mutate rules the webhook settled on it,
    finds nothing to write, and counts a memo hit; a dry run is remembered nowhere."""
    engine = webhook_engine()
    name = unique("memo")
    configmaps = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace]}
    objects.create(cluster_rule_set(name, [
        {"name": "team", "match": configmaps, "mutate": {"template": {"metadata": {
            "labels": {"team": "platform"}}}}},
        {"name": "creator", "match": configmaps, "condition": "request != null",
         "mutate": {"template": {"metadata": {"annotations": {
             "example.com/creator": "{{ request.userInfo.username }}"}}}}}]))
    wait_for_webhook(admin, "configmaps")

    def dry_run() -> dict[str, Any]:
        done = kubectl(kubeconfig, "create", "configmap", "dry", "-n", namespace,
                       "--dry-run=server", "-o", "json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout)["metadata"].get("labels") or {})

    # also: until the API server's own watch of the configuration calls the webhook
    eventually(lambda: dry_run() == {"team": "platform"},
               what="a dry run answered by the webhook")
    names = [f"cm-{i}" for i in range(5)]
    for cm in names:
        made = kubectl(kubeconfig, "create", "configmap", cm, "-n", namespace, "-o", "json")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["metadata"]["labels"] == {"team": "platform"}
    eventually(lambda: metric(engine, "edict_admission_memo_total", result="hit") == 5,
               what="five memo hits")
    eventually(lambda: rule_set_matched(admin, name, "team") == 5,
               what="the background to evaluate every ConfigMap")
    assert metric(engine, "edict_admission_memo_total", result="miss") == 0
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    for cm in names:
        stored = admin.get(CONFIGMAP, namespace, cm)["metadata"]
        assert stored["labels"] == {"team": "platform"}
        assert stored["annotations"]["example.com/creator"], "set at admission, kept"


def pinned_rule(namespace: str) -> dict[str, Any]:
    return {"name": "pinned-images",
            "match": {"resources": [{"apiVersion": "v1", "kinds": ["Pod"]}],
                      "namespaces": [namespace], "podTemplates": True},
            "validate": {
                "expression": "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
                "message": "images must be pinned to a tag or digest"}}


def test_latest_is_denied_under_enforce_and_warned_about_under_audit(
        admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
        webhook_engine: Callable[..., Manager]) -> None:
    webhook_engine()
    name = unique("pinned")
    objects.create(cluster_rule_set(name, [pinned_rule(namespace)]))
    wait_for_webhook(admin, "deployments", VALIDATING)
    denied = kubectl(kubeconfig, "create", "deployment", "web", "-n", namespace,
                     "--image=nginx:latest")
    assert denied.returncode != 0
    assert "denied the request" in denied.stderr
    assert (f"ClusterRuleSet {name}, rule 'pinned-images': images must be pinned to a tag "
            "or digest") in denied.stderr, denied.stderr
    with pytest.raises(NotFound):
        admin.get(DEPLOYMENT, namespace, "web")
    assert kubectl(kubeconfig, "run", "pinned", "-n", namespace,
                   "--image=nginx:1.27").returncode == 0
    # The same rule set in Audit: admitted, with the message as a warning.
    admin.patch_merge(CLUSTER_RULE_SET, None, name, {"spec": {"mode": "Audit"}})

    def admitted_with_warning() -> str:
        made = kubectl(kubeconfig, "create", "deployment", "audited", "-n", namespace,
                       "--image=nginx:latest")
        return made.stderr if made.returncode == 0 else ""

    stderr = eventually(admitted_with_warning, what="Audit to admit")
    assert (f"Warning: ClusterRuleSet {name} (Audit), rule 'pinned-images': images must be "
            "pinned") in stderr, stderr
    assert admin.get(DEPLOYMENT, namespace, "audited")


def test_request_drives_a_rule(admin: Cluster, control_plane: TestCluster,
                               objects: Objects, namespace: str,
                               webhook_engine: Callable[..., Manager]) -> None:
    webhook_engine()
    name = unique("creator")
    objects.create(cluster_rule_set(name, [{
        "name": "created-by",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace]},
        "condition": "request.operation == 'CREATE' && 'team-a' in request.userInfo.groups",
        "mutate": {"template": {"metadata": {"annotations": {
            "example.com/created-by": "{{ request.userInfo.username }}"}}}}}]))
    # (ClusterRole edit is aggregated, and the suite's control plane does not aggregate)
    objects.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "configmaps", "namespace": namespace},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["create", "get"]}]})
    objects.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "alice-configmaps", "namespace": namespace},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                "kind": "Role", "name": "configmaps"},
                    "subjects": [{"kind": "User", "name": "alice",
                                  "apiGroup": "rbac.authorization.k8s.io"}]})
    wait_for_webhook(admin, "configmaps")
    alice = control_plane.add_user("alice", ["team-a"])
    made = kubectl(alice, "create", "configmap", "mine", "-n", namespace,
                   "--from-literal=a=b", "-o", "json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["metadata"]["annotations"] == {
        "example.com/created-by": "alice"}
    # The admin is in no such group: the rule is skipped for it, at admission and after.
    admins = kubectl(control_plane.kubeconfig, "create", "configmap", "theirs", "-n",
                     namespace, "-o", "json")
    assert admins.returncode == 0, admins.stderr
    assert "annotations" not in json.loads(admins.stdout)["metadata"]


def test_a_rule_set_change_updates_the_configurations_within_seconds(
        admin: Cluster, objects: Objects, namespace: str, own_namespace: str,
        webhook_engine: Callable[..., Manager], caplog: pytest.LogCaptureFixture) -> None:
    # a failure shows each rebuild's steps and each configuration write, with times
    caplog.set_level(logging.INFO, logger="engine.runtime")
    engine = webhook_engine()

    def seen() -> str:
        current = engine.loaded.get()
        return (f"configurations: {webhook_resources(admin, MUTATING)} / "
                f"{webhook_resources(admin, VALIDATING)}; the engine's rule sets: "
                f"{sorted(str(ref) for ref in current.rule_sets)}, trigger kinds "
                f"{sorted(str(gvk) for gvk in current.engine.trigger_kinds())}")
    name = unique("follow")
    rule = {"name": "label", "match": {"resources": [{"apiVersion": "v1",
                                                      "kinds": ["ConfigMap"]}],
                                       "namespaces": [namespace]},
            "mutate": {"template": {"metadata": {"labels": {"a": "b"}}}}}
    objects.create(cluster_rule_set(name, [rule]))
    eventually(lambda: webhook_resources(admin, MUTATING) == {
        "mutate.edict.dev": ["configmaps"]}, timeout=10, what="configmaps asked for",
        detail=seen)
    config = admin.get(MUTATING, None, "edict")
    (webhook,) = config["webhooks"]
    assert webhook["failurePolicy"] == "Ignore" and webhook["sideEffects"] == "None"
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == sorted(
        [own_namespace, "kube-system"])
    assert webhook["clientConfig"]["caBundle"]
    admin.patch_merge(CLUSTER_RULE_SET, None, name, {"spec": {
        "admission": {"failurePolicy": "Fail"},
        "rules": [{**rule, "match": {**rule["match"], "resources": [
            {"apiVersion": "v1", "kinds": ["Service"]}]}}]}})
    eventually(lambda: webhook_resources(admin, MUTATING) == {
        "mutate-fail.edict.dev": ["services"]}, timeout=10, what="services, failing closed",
        detail=seen)
    admin.delete(CLUSTER_RULE_SET, None, name)
    eventually(lambda: webhook_resources(admin, MUTATING) == {}, timeout=10,
               what="no webhook once no rule needs one", detail=seen)
    assert not admin.get(MUTATING, None, "edict").get("webhooks"), "kept, empty"


def test_dry_run_requests_are_answered_the_same_and_store_nothing(
        admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
        webhook_engine: Callable[..., Manager]) -> None:
    engine = webhook_engine()
    name = unique("dry")
    objects.create(cluster_rule_set(name, [*pod_rules(namespace), pinned_rule(namespace)]))
    wait_for_webhook(admin, "pods")
    wait_for_webhook(admin, "pods", VALIDATING)
    dry = kubectl(kubeconfig, "run", "web", "-n", namespace, "--image=nginx:1.27",
                  "--dry-run=server", "-o", "yaml")
    assert dry.returncode == 0, dry.stderr
    answered = yaml.safe_load(dry.stdout)
    assert [c["name"] for c in answered["spec"]["containers"]] == ["web", "proxy"]
    with pytest.raises(NotFound):
        admin.get(POD, namespace, "web")
    denied = kubectl(kubeconfig, "run", "bad", "-n", namespace, "--image=nginx:latest",
                     "--dry-run=server")
    assert denied.returncode != 0 and "images must be pinned" in denied.stderr
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    events, _ = admin.list(GVK("", "v1", "Event"), namespace=namespace)
    assert events == [], "answering a review posts no Event"


def test_edicts_own_namespace_and_kube_system_are_never_gated(
        admin: Cluster, kubeconfig: str, objects: Objects, own_namespace: str,
        webhook_engine: Callable[..., Manager]) -> None:
    webhook_engine()
    name = unique("everywhere")
    objects.create(cluster_rule_set(name, [{
        "name": "label-everything",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "names": ["gate-probe-*"]},
        "mutate": {"template": {"metadata": {"labels": {"gated": "yes"}}}}}]))
    wait_for_webhook(admin, "configmaps")
    for target in (own_namespace, "kube-system"):
        probe = unique("gate-probe")
        made = kubectl(kubeconfig, "create", "configmap", probe, "-n", target, "-o", "json")
        assert made.returncode == 0, made.stderr
        try:
            assert "labels" not in json.loads(made.stdout)["metadata"], target
        finally:
            admin.delete(CONFIGMAP, target, probe)
    assert admin.get(NAMESPACE, None, own_namespace)


def test_background_violations_are_counted_named_and_evented_but_never_written(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    """No webhook here: a validate rule in the background only reports."""
    objects.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "debug", "namespace": namespace},
                    "data": {"mode": "debug"}})
    name = unique("validate")
    objects.create(cluster_rule_set(name, [{
        "name": "no-debug",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace]},
        "validate": {"expression": "object.data.?mode.orValue('') != 'debug'",
                     "message": "debug mode is not for this cluster"}}]))

    def rule_status() -> dict[str, Any]:
        status = admin.get(CLUSTER_RULE_SET, None, name).get("status") or {}
        return next((r for r in status.get("rules") or () if r["name"] == "no-debug"), {})

    found = eventually(lambda: rule_status().get("violations") == 1 and rule_status(),
                       what="the violation on the status")
    assert found["violating"] == [f"ConfigMap {namespace}/debug"]
    warning = eventually(lambda: [e for e in admin.list(GVK("", "v1", "Event"),
                                                        namespace=namespace)[0]
                                  if e["reason"] == "PolicyViolation"],
                         what="a PolicyViolation event")
    assert warning[0]["type"] == "Warning"
    assert "debug mode is not for this cluster" in warning[0]["message"]
    assert metric(engine, "edict_violations", rule_set=f"ClusterRuleSet {name}",
                  rule="no-debug") == 1
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    admin.patch_merge(CONFIGMAP, namespace, "debug", {"data": {"mode": "prod"}})
    eventually(lambda: "violations" not in rule_status() and rule_status(),
               what="the violation gone")
    assert metric(engine, "edict_violations", rule_set=f"ClusterRuleSet {name}",
                  rule="no-debug") == 0


def test_the_shipped_namespace_owner_remembers_who_created_a_namespace(
        admin: Cluster, control_plane: TestCluster, objects: Objects,
        webhook_engine: Callable[..., Manager]) -> None:
    """rules/namespace-owner: the creator recorded at admission (an annotation), then
    published by a background generate rule."""
    webhook_engine()
    shipped = yaml.safe_load((ROOT / "rules/namespace-owner/ruleset.yaml").read_text())
    objects.create(shipped)
    creator = unique("creator")
    objects.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": creator},
                    "rules": [{"apiGroups": [""], "resources": ["namespaces"],
                               "verbs": ["create"]}]})
    objects.create({"apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding", "metadata": {"name": creator},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                "kind": "ClusterRole", "name": creator},
                    "subjects": [{"kind": "User", "name": "carol",
                                  "apiGroup": "rbac.authorization.k8s.io"}]})
    wait_for_webhook(admin, "namespaces")
    carol = control_plane.add_user("carol", ["developers"])
    name = unique("carols")
    made = kubectl(carol, "create", "namespace", name, "-o", "json")
    assert made.returncode == 0, made.stderr
    try:
        assert json.loads(made.stdout)["metadata"]["annotations"] == {
            "edict.dev/created-by": "carol"}
        published = eventually(lambda: admin.get(CONFIGMAP, name, "namespace-owner"),
                               what="the owner ConfigMap")
        assert published["data"] == {"createdBy": "carol"}
    finally:
        admin.delete(NAMESPACE, None, name)
