"""A realistic corpus for the offline benchmark: objects and rule sets of every action.

`objects(n)` gives n objects — 70% Deployments, 20% ConfigMaps, 10% Namespaces — spread
over namespaces, some labelled, some with container limits already set. `rule_sets(m)`
gives m rules across a few rule sets: label rules with conditions, a forEach rule that
merges container limits by name, a JSON patch rule, a rule reading a ConfigMap through
`context`, a rule reading the Namespace, and generate rules (a ConfigMap per Deployment, a
ResourceQuota per labelled Namespace). `bench/offline.py` times the engine on it against a
hand-written function making the same changes (`bench/handwritten.py`).
"""

from __future__ import annotations

import random
from typing import Any


def namespace_name(i: int, count: int) -> str:
    return f"team-{i % count:05d}"


def objects(n: int, *, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    n_namespaces = max(1, n // 10)  # each a distinct Namespace, ~9 objects in each
    for i in range(n_namespaces):
        labels = {"env": rng.choice(["prod", "dev"])}
        if i % 2 == 0:
            labels["bench/bootstrap"] = "true"
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": namespace_name(i, n_namespaces), "uid": f"ns-uid-{i}",
                                 "resourceVersion": str(1000 + i), "labels": labels}})
    n_configmaps = n // 5
    for i in range(n_configmaps):
        name = "settings" if i < n_namespaces else f"cm-{i}"
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": namespace_name(i, n_namespaces),
                                 "uid": f"cm-uid-{i}", "resourceVersion": str(5000 + i)},
                    "data": {"tier": rng.choice(["gold", "silver"]), "size": str(i)}})
    for i in range(n - n_namespaces - n_configmaps):
        containers = []
        for c in range(rng.randint(1, 3)):
            container: dict[str, Any] = {
                "name": f"c{c}", "image": f"registry.example/app-{i}:{c}",
                "ports": [{"name": "http", "containerPort": 8080 + c}],
                "env": [{"name": "MODE", "value": "prod"}, {"name": "INDEX", "value": str(i)}],
            }
            if rng.random() < 0.3:
                container["resources"] = {"limits": {"cpu": "2", "memory": "1Gi"}}
            containers.append(container)
        labels = {"app": f"app-{i}"}
        if rng.random() < 0.5:
            labels["tier"] = "web"
        out.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"app-{i}", "namespace": namespace_name(i, n_namespaces),
                         "uid": f"dep-uid-{i}", "resourceVersion": str(10000 + i),
                         "labels": labels, "annotations": {"team": "bench"}},
            "spec": {"replicas": rng.randint(1, 5),
                     "selector": {"matchLabels": {"app": f"app-{i}"}},
                     "template": {"metadata": {"labels": {"app": f"app-{i}"}},
                                  "spec": {"containers": containers}}},
            "status": {"replicas": 1, "availableReplicas": 1},
        })
    return out


DEPLOYMENTS = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}
CONFIGMAPS = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
NAMESPACE_KIND = {"resources": [{"apiVersion": "v1", "kinds": ["Namespace"]}]}
FIXED_RULES = 8


def label_rule(k: int) -> dict[str, Any]:
    """Label rule k: Deployments with more than k % 4 replicas get bench/l<k>=v<k>."""
    return {"name": f"label-{k}", "match": DEPLOYMENTS,
            "condition": f"object.spec.replicas > {k % 4}",
            "mutate": {"template": {"metadata": {"labels": {f"bench/l{k}": f"v{k}"}}}}}


def rule_sets(m: int) -> list[dict[str, Any]]:
    fixed: list[dict[str, Any]] = [
        {"name": "container-limits", "match": DEPLOYMENTS,
         "mutate": {"forEach": "object.spec.template.spec.containers.filter(c, "
                               "!has(c.resources) || !has(c.resources.limits))",
                    "template": {"spec": {"template": {"spec": {"containers": [
                        {"name": "{{ item.name }}",
                         "resources": {"limits": {"cpu": "{{ params.cpu }}",
                                                  "memory": "{{ params.memory }}"}}}]}}}}}},
        {"name": "history-limit", "match": DEPLOYMENTS,
         "condition": "!has(object.spec.revisionHistoryLimit)",
         "mutate": {"jsonPatch": [{"op": "add", "path": "/spec/revisionHistoryLimit",
                                   "value": 3}]}},
        {"name": "web-tier", "match": {**DEPLOYMENTS, "selector": {"matchLabels": {
            "tier": "web"}}},
         "mutate": {"template": {"metadata": {"annotations": {
             "bench/exposed": "{{ object.metadata.name }}.{{ object.metadata.namespace }}"}}}}},
        {"name": "env-from-namespace", "match": DEPLOYMENTS,
         "condition": "namespaceObject != null",
         "mutate": {"template": {"metadata": {"labels": {
             "bench/env": "{{ namespaceObject.metadata.labels.env }}"}}}}},
        {"name": "tier-from-settings", "match": DEPLOYMENTS,
         "context": {"settings": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "name": "settings"}},
         "condition": "context.settings != null",
         "mutate": {"template": {"metadata": {"labels": {
             "bench/tier": "{{ context.settings.data.tier }}"}}}}},
        {"name": "configmap-owner", "match": CONFIGMAPS,
         "mutate": {"template": {"metadata": {"labels": {"bench/owner": "platform"}}}}},
        {"name": "app-config", "match": DEPLOYMENTS,
         "generate": {"template": {
             "apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "{{ object.metadata.name }}-config"},
             "data": {"replicas": "{{ object.spec.replicas | string }}"}}}},
        {"name": "quota", "match": {**NAMESPACE_KIND, "selector": {"matchLabels": {
            "bench/bootstrap": "true"}}},
         "generate": {"template": {
             "apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "quota"},
             "spec": {"hard": {"pods": "{{ params.pods }}"}}}}},
    ]
    assert len(fixed) == FIXED_RULES
    rules = (fixed + [label_rule(k) for k in range(max(0, m - FIXED_RULES))])[:m]
    params = {"cpu": "500m", "memory": "256Mi", "pods": "50"}
    half = len(rules) // 2
    return [
        {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
         "metadata": {"name": "bench-a"}, "spec": {"priority": 10, "params": params,
                                                   "rules": rules[:half]}},
        {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
         "metadata": {"name": "bench-b"}, "spec": {"priority": 20, "params": params,
                                                   "rules": rules[half:]}},
    ]
