"""`spec.api`'s short schema language (`engine.rules.api`): the CRD it makes, and a
clear error naming the field for every mistake. The real API server's view of the
generated CRDs is in tests/e2e/test_api_crd.py."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import SchemaError, Where
from engine.rules.api import crd_for, kind_of

WHERE = Where(file="db.yaml", rule_set="db")
API: dict[str, Any] = {
    "group": "example.edict.dev", "kind": "Database",
    "spec": {"engine": "string | enum=postgres,mysql default=postgres",
             "storageGB": "integer | minimum=1 maximum=1000 default=10",
             "users": "[]string | maxItems=20",
             "labels": "map[string]string",
             "name": 'string | required minLength=1 pattern=^[a-z]+$ description="the name"',
             "backup": {"schedule": "string | required", "keep": "integer | default=7"},
             "extra": "object"},
    "status": {"endpoint": "string"},
    "printerColumns": [{"name": "Engine", "jsonPath": ".spec.engine"}],
}


def schema(api: dict[str, Any]) -> dict[str, Any]:
    crd = crd_for(api, where=WHERE)
    found: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return found


def test_the_crd() -> None:
    crd = crd_for(API, where=WHERE)
    assert crd["metadata"]["name"] == "databases.example.edict.dev"
    assert crd["spec"]["names"] == {"kind": "Database", "listKind": "DatabaseList",
                                    "plural": "databases", "singular": "database"}
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Ready", "Engine", "Age"]
    spec = schema(API)["properties"]["spec"]
    assert spec["properties"]["engine"] == {"type": "string", "enum": ["postgres", "mysql"],
                                            "default": "postgres"}
    assert spec["properties"]["storageGB"] == {"type": "integer", "minimum": 1,
                                               "maximum": 1000, "default": 10}
    assert spec["properties"]["users"] == {"type": "array", "items": {"type": "string"},
                                           "maxItems": 20}
    assert spec["properties"]["labels"] == {"type": "object",
                                            "additionalProperties": {"type": "string"}}
    assert spec["properties"]["name"] == {"type": "string", "minLength": 1,
                                          "pattern": "^[a-z]+$", "description": "the name"}
    assert spec["required"] == ["name"]
    assert spec["properties"]["backup"]["required"] == ["schedule"]
    assert spec["properties"]["extra"]["x-kubernetes-preserve-unknown-fields"] is True
    status = schema(API)["properties"]["status"]["properties"]
    assert set(status) == {"endpoint", "observedGeneration", "conditions"}
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert kind_of(API) == ("example.edict.dev/v1alpha1", "Database")


MISTAKES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no group", {"kind": "A"}, "spec.api.group", "is not an API group"),
    ("a group without a dot", {"group": "local", "kind": "A"}, "spec.api.group", "dot"),
    ("a lower-case kind", {"group": "a.b", "kind": "db"}, "spec.api.kind", "CamelCase"),
    ("a bad version", {"group": "a.b", "kind": "A", "version": "1"}, "spec.api.version",
     "is not a version"),
    ("a bad scope", {"group": "a.b", "kind": "A", "scope": "Global"}, "spec.api.scope",
     "Namespaced or Cluster"),
    ("an unknown field", {"group": "a.b", "kind": "A", "specs": {}}, "spec.api.specs",
     "unknown field"),
    ("an unknown type", {"group": "a.b", "kind": "A", "spec": {"x": "strin"}},
     "spec.api.spec.x", "unknown type 'strin'"),
    ("an unknown marker", {"group": "a.b", "kind": "A", "spec": {"x": "string | requird"}},
     "spec.api.spec.x", "unknown marker 'requird'"),
    ("a default of the wrong type", {"group": "a.b", "kind": "A",
                                     "spec": {"x": "integer | default=ten"}},
     "spec.api.spec.x", "'ten' is not a value of type integer"),
    ("a default outside the enum", {"group": "a.b", "kind": "A",
                                    "spec": {"x": "string | enum=a,b default=c"}},
     "spec.api.spec.x", "default 'c' is not one of enum"),
    ("a minimum that is no number", {"group": "a.b", "kind": "A",
                                     "spec": {"x": "integer | minimum=low"}},
     "spec.api.spec.x", "minimum needs a number"),
    ("a negative maxItems", {"group": "a.b", "kind": "A",
                             "spec": {"x": "[]string | maxItems=-1"}},
     "spec.api.spec.x", "whole number"),
    ("a marker without its value", {"group": "a.b", "kind": "A",
                                    "spec": {"x": "string | default"}},
     "spec.api.spec.x", "default needs a value"),
    ("a field that is neither type nor map", {"group": "a.b", "kind": "A",
                                              "spec": {"x": 3}},
     "spec.api.spec.x", "must be a type"),
    ("a printer column without jsonPath", {"group": "a.b", "kind": "A",
                                           "printerColumns": [{"name": "X"}]},
     "spec.api.printerColumns[0]", "needs name and jsonPath"),
]


@pytest.mark.parametrize(("api", "field", "message"), [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_mistakes_name_the_field(api: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        crd_for(api, where=WHERE)
    assert caught.value.where.field == field
    assert message in caught.value.message
    assert "rule set 'db'" in str(caught.value)
