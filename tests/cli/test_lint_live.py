"""`edict lint --kubeconfig`: kinds and fields checked against what a real API server
serves — a CRD installed there is known (and its schema checked), one that is not is an
unknown kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import wait_established

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
GROUP = "lint.e2e.edict.dev"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gadgets.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget",
                       "listKind": "GadgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object",
                               "properties": {"spec": {
                                   "type": "object",
                                   "properties": {"size": {"type": "integer"},
                                                  "colour": {"type": "string"}}}}}}}]}}

RULES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: gadgets}
spec:
  rules:
  - name: big
    match: {resources: [{apiVersion: lint.e2e.edict.dev/v1, kinds: [KIND]}]}
    condition: "CONDITION"
    mutate: {template: {spec: {colour: red}}}
"""


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def lint(kubeconfig: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "lint", "--kubeconfig",
                           kubeconfig, str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)


def test_lint_knows_the_kinds_and_schemas_a_cluster_serves(kubeconfig: str,
                                                          tmp_path: Path) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(CRD))
    wait_established(kubeconfig, f"gadgets.{GROUP}")
    try:
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES.replace("KIND", "Gadget").replace("CONDITION",
                                                                  "object.spec.size > 3"))
        offline = subprocess.run([sys.executable, "-m", "engine.cli.main", "lint",
                                  str(rules)], capture_output=True, text=True, cwd=ROOT,
                                 timeout=120, check=False)
        assert offline.returncode == 1 and ": unknown-api-version: " in offline.stdout
        clean = lint(kubeconfig, rules)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        rules.write_text(RULES.replace("KIND", "Gadjet").replace(
            "CONDITION", "object.spec.size > '3'"))
        typo = lint(kubeconfig, rules)
        assert typo.returncode == 1
        assert (f"{rules}:8:69: unknown-kind: ClusterRuleSet gadgets, rule 'big', "
                "spec.rules[0].match.resources[0].kinds[0]: apiVersion lint.e2e.edict.dev/v1 "
                "has no kind 'Gadjet' (did you mean 'Gadget'?)") in typo.stdout
        rules.write_text(RULES.replace("KIND", "Gadget").replace(
            "CONDITION", "object.spec.size > '3'"))
        typed = lint(kubeconfig, rules)
        assert typed.returncode == 1
        assert ("type-mismatch: ClusterRuleSet gadgets, rule 'big', spec.rules[0].condition: "
                "object.spec.size is an integer in lint.e2e.edict.dev/v1 Gadget") in (
            typed.stdout)
    finally:
        kubectl(kubeconfig, "delete", "crd", f"gadgets.{GROUP}", "--wait=false")


def test_the_api_server_refuses_the_fields_lint_refuses(kubeconfig: str,
                                                        tmp_path: Path) -> None:
    """The CRDs keep no unknown field where a typo would hide: `kubectl apply` (strict
    field validation) refuses what `edict lint` reports as unknown-field."""
    kubectl(kubeconfig, "apply", "-f", str(ROOT / "crds" / "edict.dev_clusterrulesets.yaml"))
    wait_established(kubeconfig, "clusterrulesets.edict.dev")
    for name in ("unknown-field-condition", "unknown-field-json-patch",
                 "unknown-field-selector"):
        path = ROOT / "tests" / "lint_corpus" / f"{name}.yaml"
        out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "--dry-run=server",
                              "-f", str(path)], capture_output=True, text=True, timeout=120,
                             check=False)
        assert out.returncode != 0, f"the API server accepted {name}: {out.stdout}"
        assert "unknown field" in out.stderr, out.stderr
    good = tmp_path / "good.yaml"
    good.write_text((ROOT / "tests" / "lint_corpus" / "unknown-field-condition.yaml")
                    .read_text().replace("condtion:", "condition:"))
    kubectl(kubeconfig, "apply", "--dry-run=server", "-f", str(good))
