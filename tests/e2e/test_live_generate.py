"""Live engine, generate rules: ownership, drift repair, and every kind of pruning."""

from __future__ import annotations

from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import CLUSTER_RULE_SET, CONFIGMAP, cluster_rule_set, configmap, unique

pytestmark = pytest.mark.cluster
CLUSTER_ROLE = GVK("rbac.authorization.k8s.io", "v1", "ClusterRole")


def exists(cluster: Cluster, gvk: GVK, namespace: str | None, name: str) -> bool:
    try:
        cluster.get(gvk, namespace, name)
    except NotFound:
        return False
    return True


def gone(cluster: Cluster, gvk: GVK, namespace: str | None, name: str) -> bool:
    return not exists(cluster, gvk, namespace, name)


def child_rule(namespace: str, *, condition: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": "child",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace], "selector": {"matchLabels": {"role": "parent"}}},
        "generate": {"template": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "{{ object.metadata.name }}-child"},
            "data": {"copy": "{{ object.data.a }}"}}},
    }
    if condition:
        rule["condition"] = condition
    return rule


def test_children_are_owned_kept_in_sync_and_pruned(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    parent = objects.create(configmap(namespace, "p", role="parent"))
    rule_set_name = unique("gen")
    objects.create(cluster_rule_set(rule_set_name, [child_rule(
        namespace, condition="!has(object.metadata.annotations) || "
                             "object.metadata.annotations[?'off'].orValue('') != 'yes'")]))
    child = eventually(lambda: admin.get(CONFIGMAP, namespace, "p-child"), what="child")
    labels = child["metadata"]["labels"]
    assert labels["edict.dev/rule-set"] == rule_set_name
    assert labels["edict.dev/rule"] == "child"
    assert labels["edict.dev/trigger-uid"] == parent["metadata"]["uid"]
    assert child["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "p",
        "uid": parent["metadata"]["uid"], "controller": True}]
    assert child["data"] == {"copy": "1"}

    # Drift: a hand edit is put back.
    admin.patch_merge(CONFIGMAP, namespace, "p-child", {"data": {"copy": "edited"}})
    eventually(lambda: admin.get(CONFIGMAP, namespace, "p-child")["data"]["copy"] == "1",
               what="drift reverted")
    # The trigger changes: the child follows.
    admin.patch_merge(CONFIGMAP, namespace, "p", {"data": {"a": "2"}})
    eventually(lambda: admin.get(CONFIGMAP, namespace, "p-child")["data"]["copy"] == "2",
               what="child follows its trigger")
    # The condition turns false: the child is pruned.
    admin.patch_merge(CONFIGMAP, namespace, "p", {"metadata": {"annotations": {"off": "yes"}}})
    eventually(lambda: gone(admin, CONFIGMAP, namespace, "p-child"), what="pruned")
    # ...and comes back when it turns true again.
    admin.patch_merge(CONFIGMAP, namespace, "p", {"metadata": {"annotations": {"off": None}}})
    eventually(lambda: exists(admin, CONFIGMAP, namespace, "p-child"), what="regenerated")


def test_children_are_pruned_when_the_rule_or_rule_set_goes(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "q", role="parent"))
    name = unique("gen")
    keep = {"name": "keep", "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                                      "namespaces": [namespace], "names": ["q"]},
            "generate": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "q-kept"}}}}
    created = objects.create(cluster_rule_set(name, [child_rule(namespace), keep]))
    eventually(lambda: exists(admin, CONFIGMAP, namespace, "q-child")
               and exists(admin, CONFIGMAP, namespace, "q-kept"), what="children")
    # Remove one rule: only its child goes.
    spec = created["spec"]
    admin.patch_merge(CLUSTER_RULE_SET, None, name, {"spec": {"rules": [spec["rules"][1]]}})
    eventually(lambda: gone(admin, CONFIGMAP, namespace, "q-child"), what="rule's child pruned")
    assert exists(admin, CONFIGMAP, namespace, "q-kept")
    # Remove the rule set: the rest goes.
    admin.delete(CLUSTER_RULE_SET, None, name)
    eventually(lambda: gone(admin, CONFIGMAP, namespace, "q-kept"), what="rule set's child")


def test_children_ownerreferences_cannot_cover_are_pruned_with_their_trigger(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    other = unique("e2e-other")
    objects.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    role_name = unique("e2e-role")
    rule = {
        "name": "spread",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                  "namespaces": [namespace], "names": ["origin"]},
        "generate": {"template": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "copy", "namespace": other}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": role_name},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        ]},
    }
    objects.create(cluster_rule_set(unique("spread"), [rule]))
    objects.create(configmap(namespace, "origin"))
    eventually(lambda: exists(admin, CONFIGMAP, other, "copy")
               and exists(admin, CLUSTER_ROLE, None, role_name), what="children elsewhere")
    cross = admin.get(CONFIGMAP, other, "copy")
    assert "ownerReferences" not in cross["metadata"]  # Kubernetes would not allow one
    admin.delete(CONFIGMAP, namespace, "origin")
    eventually(lambda: gone(admin, CONFIGMAP, other, "copy")
               and gone(admin, CLUSTER_ROLE, None, role_name), what="pruned with trigger")


def test_an_object_edict_did_not_create_is_not_adopted(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "mine-child", keep="me"))
    objects.create(configmap(namespace, "mine", role="parent"))
    name = unique("adopt")
    objects.create(cluster_rule_set(name, [child_rule(namespace)]))

    def reported() -> str:
        status = admin.get(CLUSTER_RULE_SET, None, name).get("status") or {}
        rules = {r["name"]: r for r in status.get("rules") or []}
        return str(rules.get("child", {}).get("lastError", ""))

    assert "not created by this rule" in eventually(reported, what="conflict reported")
    foreign = admin.get(CONFIGMAP, namespace, "mine-child")
    assert foreign["metadata"]["labels"] == {"keep": "me"}
    assert "data" not in foreign or foreign["data"] == {"a": "1"}
