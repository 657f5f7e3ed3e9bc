"""Live engine on the real API server: Kubernetes-exact merges, children owned exactly,
pruning whenever a rule stops producing a child (also after the engine was down), and
refused writes that are reported instead of retried hot.

The offline twins of these tests are in tests/unit/test_exact_semantics.py: the same
rule sets give the same objects whether `edict apply` or `edict run` computes them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from engine.evaluate.children import OWNED_ANNOTATION
from engine.kube.client import Cluster
from engine.objects import GVK, ObjectKey
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import CLUSTER_RULE_SET, cluster_rule_set, condition, metric, unique
from .test_live_generate import gone

pytestmark = pytest.mark.cluster
DEPLOYMENT = GVK("apps", "v1", "Deployment")
NAMESPACE = GVK("", "v1", "Namespace")
ROLE_BINDING = GVK("rbac.authorization.k8s.io", "v1", "RoleBinding")
SECRET = GVK("", "v1", "Secret")
CONFIGMAP = GVK("", "v1", "ConfigMap")


def deployment(namespace: str, container: dict[str, Any], **pod: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [container], **pod}}}}


def test_mutate_merges_ports_and_mounts_by_their_keys(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(deployment(namespace, {
        "name": "app", "image": "nginx",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "volumeMounts": [{"name": "certs", "mountPath": "/other", "subPath": "a"}]},
        volumes=[{"name": "certs", "emptyDir": {}}]))
    objects.create(cluster_rule_set(unique("ports"), [{
        "name": "metrics-and-certs",
        "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}],
                  "namespaces": [namespace]},
        "mutate": {"template": {"spec": {"template": {"spec": {
            "containers": [{"name": "app",
                            "ports": [{"name": "metrics", "containerPort": 9090}],
                            "volumeMounts": [{"name": "certs",
                                              "mountPath": "/etc/ssl/certs"}]}]}}}}},
    }]))

    def container() -> dict[str, Any]:
        found: dict[str, Any] = admin.get(DEPLOYMENT, namespace, "web")["spec"]["template"][
            "spec"]["containers"][0]
        return found

    eventually(lambda: len(container().get("ports", [])) == 2, what="metrics port added")
    app = container()
    assert [(p["containerPort"], p.get("name")) for p in app["ports"]] == [
        (80, None), (9090, "metrics")]
    assert [(m["mountPath"], m.get("subPath")) for m in app["volumeMounts"]] == [
        ("/other", "a"), ("/etc/ssl/certs", None)]
    managers = {entry["manager"] for entry in
                admin.get(DEPLOYMENT, namespace, "web")["metadata"]["managedFields"]}
    assert "edict" in managers


def binding_rule(label: str) -> dict[str, Any]:
    return {
        "name": "binding",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["Namespace"]}],
                  "selector": {"matchLabels": {label: "yes"}}},
        "generate": {"template": {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": "{{ object.metadata.name }}-admins"}]}}}


def test_bindings_are_owned_exactly_and_pruned_when_the_trigger_stops_matching(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    label = unique("team")
    admin.patch_merge(NAMESPACE, None, namespace, {"metadata": {"labels": {label: "yes"}}})
    rule_set_name = unique("admins")
    objects.create(cluster_rule_set(rule_set_name, [binding_rule(label)]))
    binding = eventually(lambda: admin.get(ROLE_BINDING, namespace, "admins"),
                         what="binding generated")
    assert OWNED_ANNOTATION in binding["metadata"]["annotations"]
    expected = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                 "name": f"{namespace}-admins"}]

    # A hand-added subject is removed (the child's watch event re-queues its trigger).
    admin.patch_merge(ROLE_BINDING, namespace, "admins", {"subjects": [
        *expected, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                    "name": "mallory"}]})
    eventually(lambda: admin.get(ROLE_BINDING, namespace, "admins")["subjects"] == expected,
               what="mallory removed")

    # The Namespace loses the label the selector needs: the binding is pruned.
    admin.patch_merge(NAMESPACE, None, namespace, {"metadata": {"labels": {label: None}}})
    eventually(lambda: gone(admin, ROLE_BINDING, namespace, "admins"),
               what="pruned when the trigger stops matching")

    # It comes back with the label, and goes when the rule set is deleted.
    admin.patch_merge(NAMESPACE, None, namespace, {"metadata": {"labels": {label: "yes"}}})
    eventually(lambda: admin.get(ROLE_BINDING, namespace, "admins"), what="generated again")
    admin.delete(CLUSTER_RULE_SET, None, rule_set_name)
    eventually(lambda: gone(admin, ROLE_BINDING, namespace, "admins"),
               what="pruned with its rule set")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_key_removed_from_the_source_goes_from_the_copy(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    source = objects.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                             "metadata": {"name": "source", "namespace": namespace},
                             "data": {"a": b64("1"), "b": b64("2")}})
    objects.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "want-copy", "namespace": namespace}})
    objects.create(cluster_rule_set(unique("copy"), [{
        "name": "copy",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace], "names": ["want-copy"]},
        "context": {"source": {"apiVersion": "v1", "kind": "Secret", "name": "source"}},
        "condition": "context.source != null",
        "generate": {"template": {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                  "metadata": {"name": "copy"},
                                  "data": "{{ context.source.data }}"}}}]))
    eventually(lambda: admin.get(SECRET, namespace, "copy")["data"] == source["data"],
               what="copy made")
    admin.patch_merge(SECRET, namespace, "copy", {"metadata": {"annotations": {"x": "kept"}}})
    admin.patch_merge(SECRET, namespace, "source", {"data": {"b": None}})
    eventually(lambda: admin.get(SECRET, namespace, "copy")["data"] == {"a": b64("1")},
               what="removed key removed from the copy")
    annotations = admin.get(SECRET, namespace, "copy")["metadata"]["annotations"]
    assert annotations["x"] == "kept"


def test_children_of_a_trigger_deleted_while_no_engine_ran_are_swept(
        admin: Cluster, objects: Objects, namespace: str,
        start_engine: Callable[..., Manager]) -> None:
    # The child lives in another namespace than its trigger: no ownerReference, so the
    # garbage collector cannot reach it; only Edict's sweep can.
    other = objects.create({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": unique("other")}})["metadata"]["name"]
    objects.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "trigger", "namespace": namespace,
                                 "labels": {"mirror": "yes"}}})
    objects.create(cluster_rule_set(unique("mirror"), [{
        "name": "mirror",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace], "selector": {"matchLabels": {"mirror": "yes"}}},
        "generate": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": f"mirror-of-{namespace}",
                                               "namespace": other},
                                  "data": {"from": "{{ object.metadata.name }}"}}}}]))
    first = start_engine()
    child = eventually(lambda: admin.get(CONFIGMAP, other, f"mirror-of-{namespace}"),
                       what="child in the other namespace")
    assert "ownerReferences" not in child["metadata"]
    first.stop()
    admin.delete(CONFIGMAP, namespace, "trigger")
    start_engine()
    eventually(lambda: gone(admin, CONFIGMAP, other, f"mirror-of-{namespace}"),
               what="orphan swept at start")


def test_an_immutable_field_is_a_refused_write_not_a_hot_loop(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(deployment(namespace, {"name": "app", "image": "nginx"}))
    name = unique("selector")
    objects.create(cluster_rule_set(name, [{
        "name": "selector",
        "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}],
                  "namespaces": [namespace]},
        "mutate": {"template": {"spec": {"selector": {"matchLabels": {"tier": "web"}},
                                         "template": {"metadata": {"labels": {
                                             "tier": "web"}}}}}}}]))

    def degraded() -> str:
        found = condition(admin.get(CLUSTER_RULE_SET, None, name), "Degraded")
        assert found is not None and found["status"] == "True", found
        return str(found["message"])

    message = eventually(degraded, what="refused write reported on the rule set")
    assert "spec.selector" in message and "field is immutable" in message
    assert metric(engine, "edict_reconciles_total", result="error") >= 1
    # Not re-queued at once with backoff (a guard failure would be): the key waits out the
    # refused-write delay.
    key = ObjectKey(DEPLOYMENT, namespace, "web")
    eventually(lambda: engine.queue.delayed >= 1 and engine.queue.in_progress == 0,
               what="the refused key waiting out its delay")
    assert engine.queue.num_requeues(key) == 0
