"""Helpers for live-engine tests: a fresh namespace, rule sets that clean up after
themselves, an in-process engine, and polling with a deadline (never fixed sleeps)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

from engine.kube.client import Cluster
from engine.kube.errors import UnknownKind
from engine.objects import GVK
from tests.support import wait_established

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = GVK("", "v1", "ConfigMap")
NAMESPACE = GVK("", "v1", "Namespace")
EVENT = GVK("", "v1", "Event")
CLUSTER_RULE_SET = GVK("edict.dev", "v1alpha1", "ClusterRuleSet")
RULE_SET = GVK("edict.dev", "v1alpha1", "RuleSet")


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def install_crds(kubeconfig: str) -> None:
    kubectl(kubeconfig, "apply", "-f", str(ROOT / "crds/edict.dev_rulesets.yaml"),
            "-f", str(ROOT / "crds/edict.dev_clusterrulesets.yaml"),
            "-f", str(ROOT / "rules/webapp-operator/crd.yaml"))
    wait_established(kubeconfig, "rulesets.edict.dev", "clusterrulesets.edict.dev",
                     "webapps.example.edict.dev")


def kind_served(cluster: Cluster, gvk: GVK) -> bool:
    """Discovery serves `gvk` (a CRD's Established condition comes before that)."""
    try:
        cluster.resource_for(gvk)
    except UnknownKind:
        return False
    return True


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def configmap(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"a": "1"}}


def cluster_rule_set(name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
            "metadata": {"name": name}, "spec": {"rules": rules, **spec}}


def rule_set(namespace: str, name: str, rules: list[dict[str, Any]],
             **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "edict.dev/v1alpha1", "kind": "RuleSet",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rules": rules, **spec}}


def labels_of(cluster: Cluster, gvk: GVK, namespace: str | None, name: str) -> dict[str, str]:
    labels: dict[str, str] = cluster.get(gvk, namespace, name)["metadata"].get("labels") or {}
    return labels


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def metric(manager: Any, name: str, **labels: str) -> float:
    value = manager.registry.get_sample_value(name, labels or None)
    return float(value or 0.0)
