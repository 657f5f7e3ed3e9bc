"""The baseline: the corpus rules of `bench/corpus.py` written by hand in Python.

What a hand-coded operator would do for each object: copy it, make the same changes the
rule sets make, compute the same guarded JSON patch, and build the same children (with
the same ownership labels and ownerReferences) when they do not exist yet. The benchmark
checks that the results are identical to the engine's before it compares times.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from bench.corpus import FIXED_RULES
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK
from engine.patching import make_patch

CONFIGMAP = GVK("", "v1", "ConfigMap")
NAMESPACE = GVK("", "v1", "Namespace")
QUOTA = GVK("", "v1", "ResourceQuota")
PARAMS = {"cpu": "500m", "memory": "256Mi", "pods": "50"}


def _fields(value: Any) -> dict[str, Any]:
    """The record of the fields a child sets (`edict.dev/owned-fields`, managedFields'
    notation): every key of every map, ownerReferences keyed by uid."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "ownerReferences":
            out["f:" + key] = {"k:" + json.dumps({"uid": ref["uid"]}, separators=(",", ":")): {}
                               for ref in item}
        else:
            out["f:" + key] = _fields(item)
    return out


def _owned(child: dict[str, Any], trigger: dict[str, Any], rule_set: str, rule: str,
           namespace: str) -> dict[str, Any]:
    meta = trigger["metadata"]
    child["metadata"].update({
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "edict", "edict.dev/rule-set": rule_set,
                   "edict.dev/rule": rule, "edict.dev/trigger-uid": meta["uid"]},
        "annotations": {"edict.dev/trigger": f"{trigger['apiVersion']}/{trigger['kind']}/"
                                             f"{meta.get('namespace', '')}/{meta['name']}"},
        "ownerReferences": [{"apiVersion": trigger["apiVersion"], "kind": trigger["kind"],
                             "name": meta["name"], "uid": meta["uid"], "controller": True}],
    })
    record = json.dumps(_fields(child), sort_keys=True, separators=(",", ":"))
    child["metadata"]["annotations"]["edict.dev/owned-fields"] = record
    return child


def reconcile(obj: dict[str, Any], world: ManifestWorld, *, label_rules: int,
              generate_rule_set: str, quota_rule_set: str
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(patch, children to create) for one object."""
    desired = copy.deepcopy(obj)
    children: list[dict[str, Any]] = []
    meta = desired["metadata"]
    kind = obj["kind"]
    if kind == "Deployment":
        labels = meta.setdefault("labels", {})
        spec = desired["spec"]
        for container in spec["template"]["spec"]["containers"]:
            resources = container.get("resources")
            if not resources or "limits" not in resources:
                container.setdefault("resources", {})["limits"] = {
                    "cpu": PARAMS["cpu"], "memory": PARAMS["memory"]}
        if "revisionHistoryLimit" not in spec:
            spec["revisionHistoryLimit"] = 3
        if labels.get("tier") == "web":
            meta.setdefault("annotations", {})["bench/exposed"] = (
                f"{meta['name']}.{meta['namespace']}")
        ns = world.get(NAMESPACE, "", meta["namespace"])
        if ns is not None:
            labels["bench/env"] = ns["metadata"]["labels"]["env"]
        settings = world.get(CONFIGMAP, meta["namespace"], "settings")
        if settings is not None:
            labels["bench/tier"] = settings["data"]["tier"]
        for k in range(label_rules):
            if spec["replicas"] > k % 4:
                labels[f"bench/l{k}"] = f"v{k}"
        name = f"{meta['name']}-config"
        if world.get(CONFIGMAP, meta["namespace"], name) is None:
            child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                     "data": {"replicas": str(obj["spec"]["replicas"])}}
            children.append(_owned(child, obj, generate_rule_set, "app-config",
                                   meta["namespace"]))
    elif kind == "ConfigMap":
        meta.setdefault("labels", {})["bench/owner"] = "platform"
    elif kind == "Namespace":
        bootstrap = meta.get("labels", {}).get("bench/bootstrap") == "true"
        if bootstrap and world.get(QUOTA, meta["name"], "quota") is None:
            child = {"apiVersion": "v1", "kind": "ResourceQuota",
                     "metadata": {"name": "quota"}, "spec": {"hard": {"pods": PARAMS["pods"]}}}
            children.append(_owned(child, obj, quota_rule_set, "quota", meta["name"]))
    status = desired.pop("status", None)
    current = {k: v for k, v in obj.items() if k != "status"}
    patch = make_patch(current, desired)
    if status is not None:
        desired["status"] = status
    return patch, children


def label_rule_count(m: int) -> int:
    return max(0, m - FIXED_RULES)
