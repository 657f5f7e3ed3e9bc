"""`edict plan` against the suite's real API server: right counts, and not one write.

The plan runs as a user who may only read (get/list/watch on the kinds involved), so a
write could not even succeed; the API server's own request counters
(`apiserver_request_total` by verb and resource, from /metrics) prove none was tried,
and every object keeps its resourceVersion.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.testing.pytest_plugin import TestCluster
from tests.support import wait_established

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
GROUP = "plan.e2e.edict.dev"
WRITES = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}}


RULES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: probes}
spec:
  rules:
  - name: label
    match:
      resources: [{apiVersion: plan.e2e.edict.dev/v1, kinds: [Probe]}]
      namespaces: [NAMESPACE]
    mutate:
      template:
        metadata: {labels: {planned: "yes"}}
  - name: children
    match:
      resources: [{apiVersion: plan.e2e.edict.dev/v1, kinds: [Probe]}]
      namespaces: [NAMESPACE]
    condition: "object.spec.wanted"
    generate:
      template:
        apiVersion: plan.e2e.edict.dev/v1
        kind: ProbeChild
        metadata: {name: "{{ object.metadata.name }}-child"}
        spec: {size: "{{ object.spec.size }}"}
"""


def probe(namespace: str, name: str, *, wanted: bool, size: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Probe",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"wanted": wanted, "size": size}}


def child(namespace: str, trigger: dict[str, Any], *, size: int) -> dict[str, Any]:
    """A child as an earlier run of the `children` rule left it."""
    name = trigger["metadata"]["name"]
    return {"apiVersion": f"{GROUP}/v1", "kind": "ProbeChild",
            "metadata": {
                "name": f"{name}-child", "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "edict",
                           "edict.dev/rule-set": "probes", "edict.dev/rule": "children",
                           "edict.dev/trigger-uid": trigger["metadata"]["uid"]},
                "annotations": {"edict.dev/trigger":
                                f"{GROUP}/v1/Probe/{namespace}/{name}"},
                "ownerReferences": [{"apiVersion": f"{GROUP}/v1", "kind": "Probe",
                                     "name": name, "uid": trigger["metadata"]["uid"],
                                     "controller": True}]},
            "spec": {"size": size}}


def as_list(items: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def requests(kubeconfig: str) -> dict[tuple[str, str], float]:
    """apiserver_request_total summed by (verb, resource) for this test's kinds."""
    text = kubectl(kubeconfig, "get", "--raw", "/metrics")
    totals: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{") or f'group="{GROUP}"' not in line:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        key = (labels["verb"], labels["resource"])
        totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


@pytest.fixture
def cluster(control_plane: TestCluster) -> Iterator[tuple[str, str]]:
    """(admin kubeconfig, namespace) with the CRDs installed; cleaned up afterwards."""
    admin = control_plane.kubeconfig
    crds = [crd("Probe", "probes"), crd("ProbeChild", "probechildren")]
    kubectl(admin, "apply", "-f", "-", stdin=as_list(crds))
    wait_established(admin, f"probes.{GROUP}", f"probechildren.{GROUP}")
    namespace = f"plan-{uuid.uuid4().hex[:6]}"
    kubectl(admin, "create", "namespace", namespace)
    yield admin, namespace
    kubectl(admin, "delete", "namespace", namespace, "--wait=false")
    kubectl(admin, "delete", "clusterrolebinding,clusterrole", "edict-plan-reader",
            "--ignore-not-found")


def reader(control_plane: TestCluster, admin: str) -> str:
    """A kubeconfig of a user who may only read what the plan reads."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "edict-plan-reader"},
            "rules": [{"apiGroups": [GROUP], "resources": ["probes", "probechildren"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": [""], "resources": ["namespaces"],
                       "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "edict-plan-reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "edict-plan-reader"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "edict-planner"}]}
    kubectl(admin, "apply", "-f", "-", stdin=as_list([role, binding]))
    return control_plane.add_user("edict-planner")


def versions(kubeconfig: str, namespace: str) -> dict[str, str]:
    listing = json.loads(kubectl(kubeconfig, "get", f"probes.{GROUP},probechildren.{GROUP}",
                                 "-n", namespace, "-o", "json"))
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for o in listing["items"]}


def test_plan_counts_what_would_change_and_writes_nothing(
        control_plane: TestCluster, cluster: tuple[str, str], tmp_path: Path) -> None:
    admin, namespace = cluster
    made = {}
    for name, wanted, size in (("p1", True, 2), ("p2", False, 1), ("p3", True, 3)):
        made[name] = json.loads(kubectl(admin, "create", "-o", "json", "-f", "-",
                                        stdin=json.dumps(probe(namespace, name,
                                                               wanted=wanted, size=size))))
    for name in ("p1", "p2"):  # p1's child is out of date; p2 no longer wants one
        kubectl(admin, "create", "-f", "-",
                stdin=json.dumps(child(namespace, made[name], size=1)))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("NAMESPACE", namespace))
    user = reader(control_plane, admin)
    kubectl(user, "auth", "can-i", "list", f"probes.{GROUP}", "-A")  # the grant is live
    before = versions(admin, namespace)
    counted = requests(admin)

    out = subprocess.run([sys.executable, "-m", "engine.cli.main", "plan", "--kubeconfig",
                          user, "-r", str(rules)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=False)

    assert out.returncode == 0, out.stdout + out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()
            if line.startswith("  ")}
    assert rows["label"] == ["3", "0", "0", "0"], out.stdout
    assert rows["children"] == ["0", "1", "1", "1"], out.stdout
    assert ("total: 3 objects patched, 1 children created, 1 updated, 1 pruned"
            in out.stdout)
    assert f"+++ b/ProbeChild {namespace}/p3-child" in out.stdout  # the diff follows
    assert f"--- a/ProbeChild {namespace}/p2-child" in out.stdout
    assert "+    planned: 'yes'" in out.stdout

    after = requests(admin)
    assert versions(admin, namespace) == before
    for verb in WRITES:
        for resource in ("probes", "probechildren"):
            assert after.get((verb, resource), 0) == counted.get((verb, resource), 0), (
                verb, resource)
    for resource in ("probes", "probechildren"):  # the counters do see this plan's reads
        assert after.get(("LIST", resource), 0) > counted.get(("LIST", resource), 0)
