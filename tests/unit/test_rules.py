"""Loading rule sets: schema validation with clear messages, defaults, the CRD files."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InputError, SchemaError
from engine.evaluate.validation import _program, check_rule
from engine.rules import model as m
from engine.rules.documents import Document, parse_stream
from engine.rules.load import load_documents, parse_rule_set
from engine.rules.schema import crd, schema

ROOT = Path(__file__).resolve().parents[2]


def rule_set(kind: str = "ClusterRuleSet", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rules": [{
            "name": "owner",
            "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
            "mutate": {"template": {"metadata": {"labels": {"owner": "x"}}}},
        }],
    }
    base.update(spec)
    metadata: dict[str, Any] = {"name": "team"}
    if kind == "RuleSet":
        metadata["namespace"] = "team-a"
    return {"apiVersion": "edict.dev/v1alpha1", "kind": kind, "metadata": metadata, "spec": base}


def with_rule(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["spec"]["rules"][0].update(changes)
    for key, value in changes.items():
        if value is None:
            del doc["spec"]["rules"][0][key]
    return doc


def test_a_valid_rule_set_gets_the_api_servers_defaults() -> None:
    loaded = parse_rule_set(rule_set(), source="f.yaml", check_rule=check_rule)
    assert loaded.mode is m.Mode.ENFORCE
    assert loaded.priority == m.DEFAULT_PRIORITY
    assert loaded.rules[0].match.kinds == (m.GVK("apps", "v1", "Deployment"),)
    spec = schema("ClusterRuleSet")["properties"]["spec"]["properties"]
    assert spec["mode"]["default"] == m.DEFAULT_MODE
    assert spec["priority"]["default"] == m.DEFAULT_PRIORITY
    generate = spec["rules"]["items"]["properties"]["generate"]["properties"]
    assert generate["synchronize"]["default"] is m.DEFAULT_SYNCHRONIZE


INVALID = [
    ("unknown mode", rule_set(mode="Sometimes"), "spec.mode", "'Sometimes' is not one of"),
    ("no action", with_rule(rule_set(), mutate=None), "rule 'owner'",
     "exactly one action"),
    ("two actions", with_rule(rule_set(), status={"template": {}}), "rule 'owner'",
     "exactly one action"),
    ("mutate with neither template nor jsonPatch", with_rule(rule_set(), mutate={}),
     "spec.rules[0].mutate", "exactly one of template and jsonPatch"),
    ("duplicate rule names",
     rule_set(rules=[rule_set()["spec"]["rules"][0], rule_set()["spec"]["rules"][0]]),
     "spec.rules[1]", "Duplicate value"),
    ("bad rule name", with_rule(rule_set(), name="Not_A_Label"), "spec.rules[0].name",
     "does not match"),
    ("no kinds", with_rule(rule_set(), match={"resources": []}),
     "spec.rules[0].match.resources", "non-empty"),
    ("an expression that is too long", with_rule(rule_set(), condition="x" * 5001),
     "spec.rules[0].condition", "is too long"),
    ("namespaces on a RuleSet",
     with_rule(rule_set("RuleSet"), match={
         "resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}], "namespaces": ["*"]}),
     "spec.rules[0].match", "only ever matches objects in its own namespace"),
    ("In without values", with_rule(rule_set(), match={
        "resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
        "selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
     "matchExpressions[0]", "In and NotIn need values"),
    ("no rules", rule_set(rules=[]), "spec.rules", "should be non-empty"),
]


@pytest.mark.parametrize(("case", "doc", "field", "message"), INVALID,
                         ids=[c[0] for c in INVALID])
def test_invalid_rule_sets_are_rejected_naming_rule_and_field(
        case: str, doc: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SchemaError) as raised:
        parse_rule_set(doc, source="rules.yaml", check_rule=check_rule)
    text = str(raised.value)
    assert "rules.yaml" in text and "rule set 'team'" in text
    assert field in text
    assert message in text


def test_one_bad_rule_set_does_not_hide_the_others() -> None:
    good = rule_set()
    good["metadata"]["name"] = "good"
    bad = rule_set(mode="Never")
    loaded = load_documents([Document(bad, "a.yaml#1"), Document(good, "a.yaml#2"),
                             Document({"apiVersion": "v1", "kind": "ConfigMap"}, "a.yaml#3")],
                            check_rule=check_rule)
    assert [rs.ref.name for rs in loaded.rule_sets] == ["good"]
    assert len(loaded.errors) == 1 and "a.yaml#1" in str(loaded.errors[0])
    assert len(loaded.others) == 1


def test_a_rule_set_defined_twice_is_an_error() -> None:
    loaded = load_documents([Document(rule_set(), "a#1"), Document(rule_set(), "b#1")])
    assert len(loaded.rule_sets) == 1
    assert "defined twice" in str(loaded.errors[0])


def test_invalid_yaml_names_the_file() -> None:
    with pytest.raises(InputError, match=r"broken\.yaml"):
        parse_stream("a: [1, 2", source="broken.yaml")


def test_every_validation_rule_of_the_crds_compiles_offline() -> None:
    rules: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(v["rule"] for v in node.get("x-kubernetes-validations", ()))
            for child in node.values():
                collect(child)
        elif isinstance(node, list):
            for child in node:
                collect(child)

    for kind in m.KINDS:
        collect(crd(kind))
    assert len(rules) >= 4
    for rule in rules:
        assert _program(rule) is not None, rule


def test_the_crd_files_are_generated_from_crds_generate_py() -> None:
    script = ROOT / "crds" / "generate.py"
    sys.path.insert(0, str(script.parent))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    for filename, (kind, cluster) in generate.FILES.items():
        assert (ROOT / "crds" / filename).read_text() == generate.render(kind, cluster=cluster), (
            f"crds/{filename} is stale: run python crds/generate.py")
