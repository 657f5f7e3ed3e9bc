"""deploy/ for the admission webhooks: the Service, the port and probes, and RBAC for
exactly the two configurations named `edict` and the certificate Secret — checked in the
rendered manifests and, with `kubectl auth can-i`, on the real API server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.kube.client import Cluster
from engine.objects import GVK
from tests.support import eventually

from .live import unique
from .test_deploy import free_port, service_account_kubeconfig
from .test_live_admission import (
    MUTATING,
    VALIDATING,
    delete_configurations,
    webhook_resources,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SA = "system:serviceaccount:edict-system:edict"
SECRET = GVK("", "v1", "Secret")


def rendered() -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True,
                         text=True, timeout=60, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_every_replica_serves_the_webhook_behind_the_service() -> None:
    docs = rendered()
    deployment = find(docs, "Deployment", "edict")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--webhook-addr=:9443" in container["args"]
    assert "--engine-namespace=$(POD_NAMESPACE)" in container["args"]
    assert not any(a.startswith("--webhook-url") for a in container["args"]), (
        "in a cluster the API server goes through the Service")
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in (
        container["ports"])
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "webhook",
                                                    "scheme": "HTTPS"}
    service = find(docs, "Service", "edict-webhook")
    assert service["metadata"]["namespace"] == "edict-system"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443,
                                         "targetPort": "webhook", "protocol": "TCP"}]
    # the PodDisruptionBudget keeps one replica serving through a drain
    assert find(docs, "PodDisruptionBudget", "edict")["spec"]["minAvailable"] == 1


def test_the_webhook_rbac_names_only_edicts_own_objects() -> None:
    docs = rendered()
    role = find(docs, "ClusterRole", "edict-webhook")
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["admissionregistration.k8s.io"]
        assert rule["resources"] == ["mutatingwebhookconfigurations",
                                     "validatingwebhookconfigurations"]
        assert rule.get("resourceNames") == ["edict"] or rule["verbs"] == ["create"]
    secrets = find(docs, "Role", "edict-webhook-certs")
    assert secrets["metadata"]["namespace"] == "edict-system"
    for rule in secrets["rules"]:
        assert rule.get("resourceNames") == ["edict-webhook-certs"] or (
            rule["verbs"] == ["create"])


def kubectl(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.cluster
def test_the_service_account_may_do_exactly_what_the_webhook_needs(kubeconfig: str) -> None:
    for args in (("apply", "-f", str(DEPLOY / "namespace.yaml")),
                 ("apply", "-f", str(DEPLOY / "serviceaccount.yaml")),
                 ("apply", "-f", str(DEPLOY / "rbac-webhook.yaml"))):
        done = kubectl(kubeconfig, *args)
        assert done.returncode == 0, done.stderr

    def can(verb: str, *what: str) -> bool:
        out = kubectl(kubeconfig, "auth", "can-i", verb, *what, "--as", SA)
        return out.stdout.strip() == "yes"

    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        assert can("create", kind)
        assert can("get", f"{kind}/edict") and can("update", f"{kind}/edict")
        assert not can("get", f"{kind}/other") and not can("update", f"{kind}/other")
        assert not can("list", kind) and not can("delete", f"{kind}/edict")
    assert can("create", "secrets", "-n", "edict-system")
    assert can("get", "secrets/edict-webhook-certs", "-n", "edict-system")
    assert can("update", "secrets/edict-webhook-certs", "-n", "edict-system")
    assert not can("get", "secrets/other", "-n", "edict-system")
    assert not can("list", "secrets", "-n", "edict-system")
    assert not can("get", "secrets/edict-webhook-certs", "-n", "kube-system")


CONFIGMAP_ACCESS = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: edict-test-admission-configmaps}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: edict-test-admission-configmaps}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,
          name: edict-test-admission-configmaps}
subjects:
- {kind: ServiceAccount, name: edict, namespace: edict-system}
"""


def ruleset(namespace: str) -> str:
    return f"""
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {{name: admission-under-rbac}}
spec:
  rules:
  - name: label
    match:
      resources: [{{apiVersion: v1, kinds: [ConfigMap]}}]
      namespaces: [{namespace}]
    mutate:
      template: {{metadata: {{labels: {{admitted-by: edict}}}}}}
"""


def labels_of_dry_run(kubeconfig: str, namespace: str) -> dict[str, str]:
    """The labels a ConfigMap would be stored with now (a server-side dry run)."""
    done = kubectl(kubeconfig, "create", "configmap", "probe", "-n", namespace,
                   "--dry-run=server", "-o", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["metadata"].get("labels") or {})


@pytest.mark.cluster
def test_the_engine_serves_admission_with_deploys_rbac_only(kubeconfig: str,
                                                             tmp_path: Path) -> None:
    """`edict run --webhook-addr` as deploy/'s ServiceAccount (plus read and patch of the
    one kind its rule set needs, which a rule set's rbac.yaml would grant): it creates
    its certificate Secret and both configurations, and the API server calls it."""
    admin = Cluster.connect(kubeconfig)
    namespace = unique("admission-rbac")
    for args, stdin in ((("apply", "-f", str(DEPLOY / "namespace.yaml")), None),
                        (("apply", "-k", str(DEPLOY)), None),
                        (("apply", "-f", "-"), CONFIGMAP_ACCESS),
                        (("create", "namespace", namespace), None)):
        done = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    config = service_account_kubeconfig(kubeconfig, tmp_path / "kubeconfig")
    port, health = free_port(), free_port()
    log = tmp_path / "edict.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", str(config),
             "--webhook-addr", f"127.0.0.1:{port}", "--webhook-url",
             f"https://127.0.0.1:{port}", "--engine-namespace", "edict-system",
             "--health-addr", f"127.0.0.1:{health}", "--metrics-addr", "0"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "KUBECONFIG": "/nonexistent", "PYTHONPATH": str(ROOT)})
    try:
        done = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-"],
                              input=ruleset(namespace), capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        # The leader writes the mutating configuration, then the validating one: wait
        # for both, as written by the ServiceAccount.
        eventually(lambda: webhook_resources(admin, MUTATING) == {
            "mutate.edict.dev": ["configmaps"]} and admin.get(VALIDATING, None, "edict"),
            timeout=60, what="the configurations written as the ServiceAccount",
            detail=lambda: log.read_text()[-3000:])
        assert admin.get(VALIDATING, None, "edict").get("webhooks") in (None, [])
        assert admin.get(SECRET, "edict-system", "edict-webhook-certs")["data"]["tls.crt"]
        # A stored configuration is not yet one the API server calls: its admission
        # plugin reads configurations through a watch of its own, and a create that
        # arrives before that watch delivered it is stored unmutated. Server-side dry
        # runs, which store nothing, show when the API server calls the webhook.
        eventually(lambda: labels_of_dry_run(kubeconfig, namespace) == {
            "admitted-by": "edict"}, timeout=60, what="the API server to call the webhook",
            detail=lambda: log.read_text()[-3000:])
        made = kubectl(kubeconfig, "create", "configmap", "admitted", "-n", namespace,
                       "-o", "json")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["metadata"]["labels"] == {"admitted-by": "edict"}
        assert "forbidden" not in log.read_text().lower(), log.read_text()[-3000:]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        delete_configurations(admin)
        for args in (("delete", "clusterruleset", "admission-under-rbac", "--ignore-not-found"),
                     ("delete", "-f", "-", "--ignore-not-found"),
                     ("delete", "secret", "edict-webhook-certs", "-n", "edict-system",
                      "--ignore-not-found"),
                     ("delete", "namespace", namespace, "--wait=false")):
            subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args],
                           input=CONFIGMAP_ACCESS, capture_output=True, text=True,
                           timeout=60, check=False)
        admin.close()
