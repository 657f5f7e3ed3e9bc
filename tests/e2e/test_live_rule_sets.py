"""Live engine: status and lookups, priorities and conflicts, oscillation, modes, broken
rules, rule-set updates and deletion, and what rule-set status says."""

from __future__ import annotations

from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.objects import GVK
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import (
    CLUSTER_RULE_SET,
    CONFIGMAP,
    EVENT,
    cluster_rule_set,
    condition,
    configmap,
    labels_of,
    metric,
    unique,
)

pytestmark = pytest.mark.cluster
WEBAPP = GVK("example.edict.dev", "v1", "WebApp")
SECRET = GVK("", "v1", "Secret")


def configmaps(namespace: str, *names: str) -> dict[str, Any]:
    match: dict[str, Any] = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                             "namespaces": [namespace]}
    if names:
        match["names"] = list(names)
    return match


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.get(CLUSTER_RULE_SET, None, name).get("status") or {})


def rule_status(cluster: Cluster, name: str, rule: str) -> dict[str, Any]:
    rules = {r["name"]: r for r in status_of(cluster, name).get("rules") or []}
    return dict(rules.get(rule) or {})


def test_status_rule_reads_a_lookup_and_follows_it(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create({"apiVersion": "example.edict.dev/v1", "kind": "WebApp",
                    "metadata": {"name": "shop", "namespace": namespace},
                    "spec": {"image": "shop:1"}})
    objects.create(configmap(namespace, "shop-settings"))
    rule = {"name": "report", "match": {"resources": [
                {"apiVersion": "example.edict.dev/v1", "kinds": ["WebApp"]}],
                "namespaces": [namespace]},
            "context": {"settings": {"apiVersion": "v1", "kind": "ConfigMap",
                                     "name": "{{ object.metadata.name }}-settings"}},
            "status": {"template": {"url": "v{{ context.settings.data.a }}"}}}
    objects.create(cluster_rule_set(unique("status"), [rule]))
    eventually(lambda: (admin.get(WEBAPP, namespace, "shop").get("status") or {}).get("url")
               == "v1", what="status written")
    spec_version = admin.get(WEBAPP, namespace, "shop")["metadata"]["generation"]
    admin.patch_merge(CONFIGMAP, namespace, "shop-settings", {"data": {"a": "2"}})
    eventually(lambda: (admin.get(WEBAPP, namespace, "shop").get("status") or {}).get("url")
               == "v2", what="a change to the looked-up object re-triggers")
    # Only the status subresource was written: the spec's generation did not move.
    assert admin.get(WEBAPP, namespace, "shop")["metadata"]["generation"] == spec_version


def test_priorities_decide_and_the_conflict_is_reported_on_both(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "contested"))
    low, high = unique("low"), unique("high")
    for name, priority, value in ((low, 10, "low"), (high, 20, "high")):
        objects.create(cluster_rule_set(name, [{
            "name": "tier", "match": configmaps(namespace),
            "mutate": {"template": {"metadata": {"labels": {"tier": value}}}}}],
            priority=priority))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "contested").get("tier")
               == "high", what="the higher priority wins")
    for name in (low, high):
        found = eventually(lambda name=name: (condition(admin.get(CLUSTER_RULE_SET, None, name),
                                                        "Conflict") or {}).get("status")
                           == "True" and condition(admin.get(CLUSTER_RULE_SET, None, name),
                                                   "Conflict"), what=f"Conflict on {name}")
        assert "/metadata/labels/tier" in found["message"]


def test_an_oscillating_rule_set_is_reported_and_writes_nothing(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "flip"))
    name = unique("flip")
    objects.create(cluster_rule_set(name, [{
        "name": "toggle", "match": configmaps(namespace),
        "mutate": {"template": {"data": {"a": "{{ '2' if object.data.a == '1' else '1' }}"}}}}]))
    eventually(lambda: (condition(admin.get(CLUSTER_RULE_SET, None, name), "Oscillating")
                        or {}).get("status") == "True", what="Oscillating reported")
    assert admin.get(CONFIGMAP, namespace, "flip")["data"] == {"a": "1"}
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    assert "no fixed point" in rule_status(admin, name, "toggle")["lastError"]


def test_audit_reports_and_writes_nothing_and_suspended_does_nothing(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "watched"))
    audit, suspended = unique("audit"), unique("suspended")
    objects.create(cluster_rule_set(audit, [{
        "name": "would", "match": configmaps(namespace),
        "mutate": {"template": {"metadata": {"labels": {"audited": "yes"}}}}}], mode="Audit"))
    objects.create(cluster_rule_set(suspended, [{
        "name": "never", "match": configmaps(namespace),
        "mutate": {"template": {"metadata": {"labels": {"suspended": "yes"}}}}}],
        mode="Suspended"))
    eventually(lambda: rule_status(admin, audit, "would").get("wouldApply") == 1,
               what="Audit counts the would-be change")

    def audit_event() -> list[str]:
        items, _ = admin.list(EVENT, namespace=namespace)
        return [e["message"] for e in items if e.get("reason") == "WouldApply"]

    assert "/metadata/labels" in eventually(audit_event, what="WouldApply event")[0]
    assert metric(engine, "edict_rule_outcomes_total", rule_set=f"ClusterRuleSet {audit}",
                  rule="would", outcome="would-apply") >= 1
    assert labels_of(admin, CONFIGMAP, namespace, "watched") == {}
    assert metric(engine, "edict_writes_total", kind="patch") == 0
    assert rule_status(admin, suspended, "never").get("matched", 0) == 0


def test_a_broken_rule_degrades_its_rule_set_and_the_others_keep_working(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "target"))
    name = unique("broken")
    objects.create(cluster_rule_set(name, [
        {"name": "bad-template", "match": configmaps(namespace),
         "mutate": {"template": {"metadata": {"labels": {"x": "{{ object.no.such }}"}}}}},
        {"name": "bad-cel", "match": configmaps(namespace), "condition": "object.data.a ==",
         "mutate": {"template": {"metadata": {"labels": {"y": "1"}}}}},
        {"name": "unknown-kind", "match": {"resources": [
            {"apiVersion": "example.com/v1", "kinds": ["Nope"]}]},
         "mutate": {"template": {"metadata": {"labels": {"z": "1"}}}}},
        {"name": "good", "match": configmaps(namespace),
         "mutate": {"template": {"metadata": {"labels": {"good": "yes"}}}}},
    ]))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "target") == {"good": "yes"},
               what="the good rule works")
    def degraded_by_all() -> dict[str, Any] | None:
        # The disabled rules are known at load, the template error once an object ran
        # into it: wait for the condition that names both.
        found = condition(admin.get(CLUSTER_RULE_SET, None, name), "Degraded") or {}
        ready = found.get("status") == "True" and "bad-template" in found.get("message", "")
        return found if ready else None

    degraded = eventually(degraded_by_all, what="Degraded naming every broken rule")
    assert "bad-template" in degraded["message"] and "bad-cel" in degraded["message"]
    assert "does not exist in this cluster" in degraded["message"]
    assert rule_status(admin, name, "bad-cel")["enabled"] is False
    assert "no.such" in eventually(
        lambda: rule_status(admin, name, "bad-template").get("lastError"), what="lastError")
    ready = condition(admin.get(CLUSTER_RULE_SET, None, name), "Ready")
    assert ready is not None and ready["status"] == "True"
    for cond in admin.get(CLUSTER_RULE_SET, None, name)["status"]["conditions"]:
        assert set(cond) >= {"type", "status", "lastTransitionTime", "reason", "message",
                             "observedGeneration"}


def test_updates_take_effect_and_deleting_a_rule_set_stops_its_watches(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "updated"))
    name = unique("update")
    objects.create(cluster_rule_set(name, [{
        "name": "label", "match": configmaps(namespace),
        "mutate": {"template": {"metadata": {"labels": {"version": "one"}}}}}]))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "updated").get("version")
               == "one", what="first version")
    admin.patch_merge(CLUSTER_RULE_SET, None, name, {"spec": {"rules": [{
        "name": "label", "match": configmaps(namespace),
        "mutate": {"template": {"metadata": {"labels": {"version": "two"}}}}}]}})
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "updated").get("version")
               == "two", what="the update takes effect")
    generation = admin.get(CLUSTER_RULE_SET, None, name)["metadata"]["generation"]
    eventually(lambda: status_of(admin, name).get("observedGeneration") == generation,
               what="observedGeneration follows")
    # A kind only this rule set names is watched while it exists, and not after.
    secrets = unique("secrets")
    objects.create(cluster_rule_set(secrets, [{
        "name": "s", "match": {"resources": [{"apiVersion": "v1", "kinds": ["Secret"]}],
                               "namespaces": [namespace]},
        "mutate": {"template": {"metadata": {"labels": {"seen": "yes"}}}}}]))
    eventually(lambda: SECRET in engine.watches.watched(), what="Secrets watched")
    admin.delete(CLUSTER_RULE_SET, None, secrets)
    eventually(lambda: SECRET not in engine.watches.watched(), what="Secrets unwatched")
    assert CONFIGMAP in engine.watches.watched()


def test_rule_set_status_has_counters_and_no_report_objects_are_made(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    for i in range(3):
        objects.create(configmap(namespace, f"c{i}"))
    name = unique("counts")
    objects.create(cluster_rule_set(name, [{
        "name": "label", "match": configmaps(namespace),
        "condition": "object.metadata.name != 'c2'",
        "mutate": {"template": {"metadata": {"labels": {"counted": "yes"}}}}}]))
    eventually(lambda: rule_status(admin, name, "label") == {
        "name": "label", "enabled": True, "matched": 3, "applied": 2, "errors": 0,
        "wouldApply": 0}, what="counters")
    status = status_of(admin, name)
    assert status["ruleCount"] == 1
    ready = condition(admin.get(CLUSTER_RULE_SET, None, name), "Ready")
    assert ready is not None and ready["status"] == "True"
    # No per-object report objects: the namespace holds what the test made, and Edict
    # defines no kinds but its two rule-set kinds.
    items, _ = admin.list(CONFIGMAP, namespace=namespace)
    assert {i["metadata"]["name"] for i in items} - {"kube-root-ca.crt"} == {"c0", "c1", "c2"}
    crds, _ = admin.list(GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition"))
    assert sorted(c["metadata"]["name"] for c in crds if c["spec"]["group"] == "edict.dev") == [
        "clusterrulesets.edict.dev", "rulesets.edict.dev"]
