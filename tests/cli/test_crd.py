"""`edict crd` prints the CRD a rule set declares in `spec.api`, and the offline
commands merge by that CRD's schema as they would by one shipped beside the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli.main import main

OPERATOR: dict[str, Any] = {
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
    "metadata": {"name": "gadgets"},
    "spec": {
        "api": {"group": "example.com", "kind": "Gadget", "version": "v1",
                "shortNames": ["gd"], "onDelete": "Keep",
                "spec": {"size": "integer | default=1"},
                "status": {"phase": "string"}},
        "rules": [{"name": "report", "match": {"resources": [{"kinds": ["Gadget"]}]},
                   "status": {"template": {"phase": "Running", "conditions": [
                       {"type": "Sized", "status": "True", "reason": "Sized",
                        "message": "size {{ object.spec.size }}"}]}}}],
    },
}
GADGET = {"apiVersion": "example.com/v1", "kind": "Gadget",
          "metadata": {"name": "g", "namespace": "n"}, "spec": {"size": 3},
          "status": {"conditions": [{"type": "Other", "status": "False"}]}}


def write(path: Path, *docs: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_edict_crd_prints_the_crd_the_engine_installs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd", write(tmp_path / "op.yaml", OPERATOR)]) == 0
    (crd,) = list(yaml.safe_load_all(capsys.readouterr().out))
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "gadgets.example.com"
    assert crd["metadata"]["labels"]["edict.dev/api-of"] == "gadgets"
    assert crd["metadata"]["annotations"] == {"edict.dev/on-delete": "Keep"}
    assert crd["spec"]["names"]["shortNames"] == ["gd"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["size"] == {"type": "integer",
                                                                  "default": 1}


def test_edict_crd_without_any_api_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = {**OPERATOR, "spec": {"rules": [{
        "name": "r", "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "mutate": {"template": {"metadata": {"labels": {"a": "b"}}}}}]}}
    assert main(["crd", write(tmp_path / "plain.yaml", plain)]) == 2
    assert "no ClusterRuleSet with spec.api" in capsys.readouterr().err


def test_apply_merges_by_the_schema_of_the_rule_sets_own_api(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The generated CRD keys `status.conditions` by type: the rule's condition is added
    beside the one already there. Without the schema the list would be replaced."""
    rules = write(tmp_path / "op.yaml", OPERATOR)
    assert main(["apply", "-r", rules, "-f", write(tmp_path / "g.yaml", GADGET)]) == 0
    (gadget,) = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert gadget["status"]["phase"] == "Running"
    assert [c["type"] for c in gadget["status"]["conditions"]] == ["Other", "Sized"]
    assert gadget["status"]["conditions"][1]["message"] == "size 3"
    # The same rule without the api: no schema for Gadget, the list is replaced whole.
    bare = {**OPERATOR, "spec": {"rules": [{
        **OPERATOR["spec"]["rules"][0],
        "match": {"resources": [{"apiVersion": "example.com/v1", "kinds": ["Gadget"]}]}}]}}
    rules = write(tmp_path / "bare.yaml", bare)
    assert main(["apply", "-r", rules, "-f", str(tmp_path / "g.yaml")]) == 0
    (gadget,) = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [c["type"] for c in gadget["status"]["conditions"]] == ["Sized"]
