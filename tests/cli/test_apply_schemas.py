"""`edict apply` merges by the schemas of CRDs found next to the rule sets and among the
manifests, and prunes what its own earlier output shows a rule no longer produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object", "properties": {"parts": {
                         "type": "array", "x-kubernetes-list-type": "map",
                         "x-kubernetes-list-map-keys": ["slot"],
                         "items": {"type": "object", "required": ["slot"], "properties": {
                             "slot": {"type": "integer"}, "name": {"type": "string"}}}}}}}}}}]},
}
RULES = {
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet", "metadata": {"name": "parts"},
    "spec": {"rules": [{"name": "add-part",
                        "match": {"resources": [{"apiVersion": "example.com/v1",
                                                 "kinds": ["Gadget"]}]},
                        "mutate": {"template": {"spec": {"parts": [
                            {"slot": 2, "name": "added"}]}}}}]},
}
GADGET = {"apiVersion": "example.com/v1", "kind": "Gadget",
          "metadata": {"name": "g", "namespace": "n"},
          "spec": {"parts": [{"slot": 1, "name": "mine"}]}}


def apply(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "apply", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)


def dump(path: Path, *docs: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def parts(output: str) -> list[Any]:
    (gadget,) = [d for d in yaml.safe_load_all(output) if d and d["kind"] == "Gadget"]
    result: list[Any] = gadget["spec"]["parts"]
    return result


def test_a_crd_next_to_the_rule_sets_gives_its_list_markers(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    dump(rules / "ruleset.yaml", RULES)
    dump(rules / "crd.yaml", CRD)
    out = apply("-r", str(rules), "-f", dump(tmp_path / "g.yaml", GADGET))
    assert out.returncode == 0, out.stderr
    assert parts(out.stdout) == [{"slot": 1, "name": "mine"}, {"slot": 2, "name": "added"}]


def test_a_crd_among_the_manifests_gives_its_list_markers(tmp_path: Path) -> None:
    rules = dump(tmp_path / "rules.yaml", RULES)
    out = apply("-r", rules, "-f", dump(tmp_path / "g.yaml", CRD, GADGET))
    assert out.returncode == 0, out.stderr
    assert parts(out.stdout) == [{"slot": 1, "name": "mine"}, {"slot": 2, "name": "added"}]
    # Without its CRD the kind's schema is unknown: the list is atomic, as the API
    # server treats a list it knows nothing of.
    alone = apply("-r", rules, "-f", dump(tmp_path / "alone.yaml", GADGET))
    assert parts(alone.stdout) == [{"slot": 2, "name": "added"}]


def test_apply_fed_its_own_output_converges_and_prunes(tmp_path: Path) -> None:
    first = apply("-r", "rules/namespace-bootstrap/", "-f",
                  dump(tmp_path / "ns.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": "team-a", "labels": {
                                                  "edict.dev/bootstrap": "true"}}}))
    assert first.returncode == 0, first.stderr
    docs = [d for d in yaml.safe_load_all(first.stdout) if d]
    assert {d["kind"] for d in docs} >= {"Namespace", "ResourceQuota", "NetworkPolicy"}
    again = apply("-r", "rules/namespace-bootstrap/", "-f",
                  dump(tmp_path / "again.yaml", *docs), "-o", "patch")
    assert again.returncode == 0, again.stderr
    assert [d for d in yaml.safe_load_all(again.stdout) if d] == []  # nothing to change
    docs[0]["metadata"]["labels"] = {}  # the Namespace no longer asks for bootstrapping
    pruned = apply("-r", "rules/namespace-bootstrap/", "-f",
                   dump(tmp_path / "pruned.yaml", *docs), "-o", "patch")
    deleted = {d["object"]["kind"] for d in yaml.safe_load_all(pruned.stdout)
               if d and d.get("delete")}
    assert deleted >= {"ResourceQuota", "NetworkPolicy"}
