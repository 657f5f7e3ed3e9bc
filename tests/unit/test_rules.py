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


# --- hardened YAML loading (engine.rules.yamlsafe, engine.rules.documents) -------------

def _nine_by_nine() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


LOAD_ERROR_CASES = [
    ("alias bomb", _nine_by_nine(), "aliases would make the document"),
    ("recursive alias", "a: &a [*a]", "recursive alias"),
    ("too many aliases", "a: &a [1]\nb: [" + ", ".join(["*a"] * 1500) + "]",
     "1500 aliases of mappings or lists, over the limit of 1000"),
    # lines count in the whole stream: the case starts on line 3
    ("duplicate key", "a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first at line 3)"),
    ("duplicate condition", "rules:\n- name: x\n  condition: 'true'\n  condition: 'false'\n",
     "duplicate key 'condition' (first at line 5): YAML keys must be unique (line 6"),
    ("duplicate after key conversion", "1: a\n'1': b\n", "duplicate key '1'"),
    ("deep flow", "[" * 600 + "]" * 600, "nest deeper than the limit of 100"),
    ("very deep flow", "[" * 500_000, "nest deeper than the limit of 100"),
    ("deep block sequence", "- " * 50_000 + "x", "nest deeper than the limit of 100"),
    ("deep block mapping", "".join("  " * i + "a:\n" for i in range(150)),
     "nest deeper than the limit of 100"),
    ("deep through aliases", "a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 50 + "*a"
     + "]" * 50, "nest 1"),
    ("binary", "data: !!binary aGk=", "tag 'tag:yaml.org,2002:binary' is not supported"),
    ("set", "s: !!set {a, b}", "tag 'tag:yaml.org,2002:set' is not supported"),
    ("omap", "s: !!omap [a: 1]", "tag 'tag:yaml.org,2002:omap' is not supported"),
    ("python object", "!!python/object/apply:os.system [ls]", "could not determine"),
    ("nan", "a: .nan", "not a JSON number"),
    ("infinity", "a: -.inf", "not a JSON number"),
    ("huge integer", "a: " + "9" * 5000, "too many digits"),
    ("list as a key", "[a]: b", "a mapping key must be a string, not a list"),
    ("merge of a scalar", "a: {<<: 1}", "a merge key (<<) takes mappings"),
    ("syntax", "a: [1, 2", "not valid YAML: while parsing a flow sequence"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in LOAD_ERROR_CASES],
                         ids=[c[0] for c in LOAD_ERROR_CASES])
def test_hostile_yaml_is_one_line_error_naming_file_and_document(text: str,
                                                                 fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_stream("kind: first\n---\n" + text, source="in.yaml")
    message = str(caught.value)
    assert message.startswith("in.yaml: document 2")
    assert fragment in message
    assert "\n" not in message


LOAD_VALUE_CASES = [
    ("dates stay strings", "a: 2024-01-01\nb: 2024-01-01T10:00:00Z",
     {"a": "2024-01-01", "b": "2024-01-01T10:00:00Z"}),
    ("keys become strings as Kubernetes spells them", "1: a\ntrue: b\nnull: c\n1.5: d",
     {"1": "a", "true": "b", "null": "c", "1.5": "d"}),
    ("merge keys: explicit wins, then the first source",
     "x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\nz: {<<: [*x, *y], a: 0}",
     {"x": {"a": 1, "b": 1}, "y": {"b": 2, "c": 2}, "z": {"a": 0, "b": 1, "c": 2}}),
    ("a merge of merges does not multiply",
     "a: &a {k: 1}\nb: &b {<<: [*a, *a, *a]}\nc: &c {<<: [*b, *b, *b]}\nd: {<<: [*c, *c]}",
     {"a": {"k": 1}, "b": {"k": 1}, "c": {"k": 1}, "d": {"k": 1}}),
    ("a few aliases are fine", "base: &b {cpu: 1}\none: *b\ntwo: *b",
     {"base": {"cpu": 1}, "one": {"cpu": 1}, "two": {"cpu": 1}}),
    ("= is a string", "a: =", {"a": "="}),
    ("&& is not an anchor", "condition: a && b", {"condition": "a && b"}),
    ("100 levels are fine", "[" * 99 + "1" + "]" * 99, None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in LOAD_VALUE_CASES],
                         ids=[c[0] for c in LOAD_VALUE_CASES])
def test_yaml_loads_to_json_values(text: str, expected: Any) -> None:
    (doc,) = parse_stream(text, source="in.yaml")
    if expected is not None:
        assert doc.value == expected


def test_load_limits_are_settable() -> None:
    from engine.rules.documents import LoadLimits

    text = "a: {b: {c: {d: 1}}}"
    assert parse_stream(text, source="x")[0].value == {"a": {"b": {"c": {"d": 1}}}}
    with pytest.raises(InputError, match="limit of 3"):
        parse_stream(text, source="x", limits=LoadLimits(max_depth=3))
    with pytest.raises(InputError, match="document text is 19 characters long"):
        parse_stream(text, source="x", limits=LoadLimits(max_document_chars=10))


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    import os

    from engine.rules.documents import LoadLimits, read_documents

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file \\(a FIFO\\)"):
        read_documents([str(fifo)])
    with pytest.raises(InputError, match="not a regular file \\(a character device\\)"):
        read_documents(["/dev/zero"])
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 100)
    with pytest.raises(InputError, match="more than 50 bytes"):
        read_documents([str(big)], limits=LoadLimits(max_file_bytes=50))
    # in a directory, the FIFO and a link to a device are skipped, and a link to the
    # directory itself does not loop
    (tmp_path / "ok.yaml").write_text("a: 1")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "loop").symlink_to(tmp_path)
    assert [d.value for d in read_documents([str(tmp_path)])] == [
        {"a": "x" * 100}, {"a": 1}]
