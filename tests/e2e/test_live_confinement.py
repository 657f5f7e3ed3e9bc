"""Live engine: a namespaced RuleSet stays in its namespace, and writes as its
ServiceAccount when it names one, so RBAC decides what it may do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import CONFIGMAP, RULE_SET, configmap, labels_of, rule_set, unique

pytestmark = pytest.mark.cluster


def ruleset_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return dict(cluster.get(RULE_SET, namespace, name).get("status") or {})


def rule_error(cluster: Cluster, namespace: str, name: str, rule: str) -> str:
    for entry in ruleset_status(cluster, namespace, name).get("rules") or []:
        if entry["name"] == rule:
            return str(entry.get("lastError", ""))
    return ""


def test_a_rule_set_cannot_read_or_write_outside_its_namespace(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    other = unique("e2e-other")
    objects.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    objects.create(configmap(namespace, "home"))
    objects.create(configmap(other, "away"))
    objects.create(configmap(other, "secret-settings"))
    everything = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
    name = unique("team")
    objects.create(rule_set(namespace, name, [
        {"name": "label-all", "match": everything,
         "mutate": {"template": {"metadata": {"labels": {"team": "mine"}}}}},
        {"name": "peek", "match": {**everything, "names": ["home"]},
         "context": {"theirs": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": other,
                                "name": "secret-settings"}},
         "mutate": {"template": {"metadata": {"annotations": {
             "stolen": "{{ context.theirs.data.a }}"}}}}},
        {"name": "plant", "match": {**everything, "names": ["home"]},
         "generate": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "planted", "namespace": other}}}},
    ]))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "home").get("team") == "mine",
               what="its own namespace is served")
    assert "own namespace" in eventually(lambda: rule_error(admin, namespace, name, "peek"),
                                         what="the lookup refused")
    assert "own namespace" in eventually(lambda: rule_error(admin, namespace, name, "plant"),
                                         what="the generate refused")
    assert labels_of(admin, CONFIGMAP, other, "away") == {}
    assert "stolen" not in (admin.get(CONFIGMAP, namespace, "home")["metadata"]
                            .get("annotations") or {})
    names = {i["metadata"]["name"] for i in admin.list(CONFIGMAP, namespace=other)[0]}
    assert "planted" not in names


def test_writes_are_made_as_the_rule_sets_service_account(
        admin: Cluster, objects: Objects, namespace: str,
        start_engine: Callable[..., Manager]) -> None:
    start_engine(refused_retry=1.0)
    objects.create({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "limited", "namespace": namespace}})
    objects.create(configmap(namespace, "guarded"))
    name = unique("as-sa")
    objects.create(rule_set(namespace, name, [{
        "name": "label", "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "mutate": {"template": {"metadata": {"labels": {"by": "limited"}}}}}],
        serviceAccountName="limited"))

    def degraded() -> str:
        for cond in ruleset_status(admin, namespace, name).get("conditions") or []:
            if cond["type"] == "Degraded" and cond["status"] == "True":
                return str(cond["message"])
        return ""

    message = eventually(degraded, what="the refused write reported")
    assert "403" in message and "refused" in message
    assert labels_of(admin, CONFIGMAP, namespace, "guarded") == {}
    # Grant the account what the rule needs: the same rule set now converges.
    objects.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "patch-configmaps", "namespace": namespace},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["get", "list", "watch", "patch"]}]})
    objects.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "limited", "namespace": namespace},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "patch-configmaps"},
                    "subjects": [{"kind": "ServiceAccount", "name": "limited",
                                  "namespace": namespace}]})
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "guarded").get("by") == "limited",
               timeout=30, what="converges once RBAC allows it")
    eventually(lambda: not degraded(), what="Degraded clears")
