"""Loading an operator rule set: `spec.api` (checked by the CRD schema and by the short
language), rules naming the kind without apiVersion, `generate.readyWhen` and
`generate.after`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import SchemaError, Where
from engine.evaluate import validation
from engine.objects import GVK
from engine.rules.api import crd_for, defaulted
from engine.rules.load import parse_rule_set
from engine.rules.model import Generate

DATABASE = GVK("example.edict.dev", "v1alpha1", "Database")


def operator(**api: Any) -> dict[str, Any]:
    return {
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "db"},
        "spec": {
            "api": {"group": "example.edict.dev", "kind": "Database",
                    "spec": {"storageGB": "integer | default=1"}, **api},
            "rules": [
                {"name": "secret", "match": {"resources": [{"kinds": ["Database"]}]},
                 "generate": {"template": {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": "{{ object.metadata.name }}"}},
                              "readyWhen": "has(child.data)"}},
                {"name": "server",
                 "match": {"resources": [{"kinds": ["Database"]},
                                         {"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
                 "generate": {"template": {"apiVersion": "v1", "kind": "Service",
                                           "metadata": {"name": "x"}},
                              "after": ["secret"]}},
            ],
        },
    }


def load(doc: dict[str, Any]) -> Any:
    return parse_rule_set(doc, source="db.yaml", check_rule=validation.check_rule)


def test_an_operator_loads_with_its_api_kind_filled_in() -> None:
    doc = operator()
    before = copy.deepcopy(doc)
    rule_set = load(doc)
    assert doc == before  # the document is not changed
    assert rule_set.api["kind"] == "Database"
    assert rule_set.rules[0].match.kinds == (DATABASE,)
    assert rule_set.rules[1].match.kinds == (DATABASE, GVK("", "v1", "ConfigMap"))
    secret, server = (r.action for r in rule_set.rules)
    assert isinstance(secret, Generate) and secret.ready_when == "has(child.data)"
    assert isinstance(server, Generate) and server.after == ("secret",)
    assert server.ready_when is None and secret.after == ()


def test_a_version_given_in_the_api_is_the_one_filled_in() -> None:
    rule_set = load(operator(version="v2"))
    assert rule_set.rules[0].match.kinds == (GVK("example.edict.dev", "v2", "Database"),)


def test_another_kind_without_apiversion_is_refused() -> None:
    doc = operator()
    doc["spec"]["rules"][0]["match"]["resources"][0]["kinds"] = ["Database", "Secret"]
    with pytest.raises(SchemaError) as caught:
        load(doc)
    assert caught.value.where.rule == "secret"
    assert "kind 'Secret' needs an apiVersion" in caught.value.message


def test_without_api_every_resource_needs_its_apiversion() -> None:
    doc = operator()
    del doc["spec"]["api"]
    with pytest.raises(SchemaError, match="'Database' needs an apiVersion"):
        load(doc)


def test_a_bad_api_refuses_the_rule_set_naming_the_field() -> None:
    doc = operator(spec={"storageGB": "integr"})
    with pytest.raises(SchemaError) as caught:
        load(doc)
    assert caught.value.where.field == "spec.api.spec.storageGB"


def test_the_crd_schema_refuses_unknown_api_fields_and_api_on_a_rule_set() -> None:
    doc = operator(onDelete="Sometimes")
    with pytest.raises(SchemaError, match="onDelete"):
        load(doc)
    doc = operator(specs={})
    with pytest.raises(SchemaError, match="unknown field 'specs'"):
        load(doc)
    namespaced = operator()
    namespaced["kind"] = "RuleSet"
    namespaced["metadata"]["namespace"] = "team"
    with pytest.raises(SchemaError, match="unknown field 'api'"):
        load(namespaced)


def test_offline_objects_get_the_defaults_the_api_server_would_give() -> None:
    crd = crd_for({"group": "example.edict.dev", "kind": "Database",
                   "spec": {"storageGB": "integer | default=10", "users": "[]string",
                            "backup": {"keep": "integer | default=7", "at": "string"},
                            "labels": "map[string]string"}}, where=Where())
    bare = {"apiVersion": "example.edict.dev/v1alpha1", "kind": "Database",
            "metadata": {"name": "a"}}
    given = {**bare, "spec": {"storageGB": 2, "backup": {"at": "3"}}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    out = defaulted([bare, given, other], [crd])
    assert out[0]["spec"] == {"storageGB": 10}  # spec itself defaults to {}
    assert out[1]["spec"] == {"storageGB": 2, "backup": {"at": "3", "keep": 7}}
    assert out[2] is other
    assert "spec" not in bare  # the input is not changed


def test_a_rule_without_match_is_about_the_rule_sets_own_kind() -> None:
    doc = operator()
    del doc["spec"]["rules"][0]["match"]
    assert load(doc).rules[0].match.kinds == (DATABASE,)
    del doc["spec"]["api"]
    doc["spec"]["rules"] = doc["spec"]["rules"][:1]
    with pytest.raises(SchemaError, match="match is required"):
        load(doc)
    namespaced = operator()
    del namespaced["spec"]["api"]
    namespaced["kind"] = "RuleSet"
    namespaced["metadata"]["namespace"] = "team"
    del namespaced["spec"]["rules"][0]["match"]
    with pytest.raises(SchemaError, match="'match' is a required property"):
        load(namespaced)
