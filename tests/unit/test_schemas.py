"""engine.schemas.openapi and engine.schemas.generate: OpenAPI v3 documents and CRD schemas
converted to the compact table, and the catalogue file built from them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.objects import GVK
from engine.schemas.catalogue import Catalogue
from engine.schemas.generate import FORMAT, catalogue_document, dumps, parse_kind_key
from engine.schemas.model import NO_DEFAULT, Table, outline
from engine.schemas.openapi import (
    ConversionError,
    compact_name,
    convert_crd,
    convert_document,
    crd_root_name,
)

CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def ref(name: str, **extra: Any) -> dict[str, Any]:
    """A property referring to a named type the way kube-apiserver writes it."""
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], "default": {}, **extra}


def doc(**schemas: Any) -> dict[str, Any]:
    return {"openapi": "3.0.0", "components": {"schemas": schemas}}


POD_LIKE = doc(**{
    f"{CORE}Pod": {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "metadata": ref(f"{META}ObjectMeta"),
            "spec": ref(f"{CORE}PodSpec"),
        },
        "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Pod"}],
    },
    f"{CORE}PodSpec": {
        "type": "object",
        "properties": {
            "containers": {"type": "array", "items": ref(f"{CORE}Container"),
                           "x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["name"]},
            "tolerations": {"type": "array", "items": ref(f"{CORE}Toleration"),
                            "x-kubernetes-list-type": "atomic"},
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"},
                             "x-kubernetes-map-type": "atomic"},
            "readinessGates": {"type": "array", "items": {"type": "string"}},
            "overhead": {"type": "object", "additionalProperties": ref(
                "io.k8s.apimachinery.pkg.api.resource.Quantity")},
            "claimRef": ref(f"{CORE}ObjectReference", **{"x-kubernetes-map-type": "granular"}),
            "targetRef": ref(f"{CORE}ObjectReference"),
            "lockedRef": ref(f"{CORE}LocalObjectReference",
                             **{"x-kubernetes-map-type": "atomic"}),
            "raw": ref("io.k8s.apimachinery.pkg.runtime.RawExtension"),
            "port": ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            "started": ref(f"{META}Time"),
            "free": {"type": "object"},
        },
    },
    f"{CORE}Container": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": ""},
            "image": {"type": "string"},
            "ports": {"type": "array", "items": ref(f"{CORE}ContainerPort"),
                      "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["containerPort", "protocol"]},
            "env": {"type": "array", "items": ref(f"{CORE}EnvVar"),
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "name"},
            "tags": {"type": "array", "items": {"type": "string"},
                     "x-kubernetes-patch-strategy": "merge"},
            "hints": {"type": "array", "items": {"type": "string"},
                      "x-kubernetes-patch-strategy": "retainKeys"},
        },
    },
    f"{CORE}ContainerPort": {
        "type": "object",
        "properties": {
            "containerPort": {"type": "integer", "format": "int32", "default": 0},
            "protocol": {"type": "string", "default": "TCP", "enum": ["SCTP", "TCP", "UDP"]},
            "name": {"type": "string", "default": "unused: not a key"},
        },
    },
    f"{CORE}EnvVar": {"type": "object", "properties": {"name": {"type": "string"},
                                                       "value": {"type": "string"}}},
    f"{CORE}Toleration": {"type": "object", "properties": {"key": {"type": "string"}}},
    f"{CORE}ObjectReference": {"type": "object", "properties": {"name": {"type": "string"}},
                               "x-kubernetes-map-type": "atomic"},
    f"{CORE}LocalObjectReference": {"type": "object",
                                    "properties": {"name": {"type": "string"}}},
    f"{META}ObjectMeta": {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"},
                           "x-kubernetes-list-type": "set"},
        },
    },
    f"{META}Time": {"type": "string", "format": "date-time"},
    f"{META}DeleteOptions": {
        "type": "object", "properties": {"dryRun": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-group-version-kind": [{"group": "", "version": "v1",
                                             "kind": "DeleteOptions"},
                                            {"group": "apps", "version": "v1",
                                             "kind": "DeleteOptions"}],
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "oneOf": [{"type": "string"}, {"type": "number"}]},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"type": "object"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
})


@pytest.fixture(scope="module")
def pod() -> Any:
    converted = convert_document(POD_LIKE)
    node = Table(converted.types).node(converted.kinds[GVK("", "v1", "Pod")])
    assert node is not None
    return node


def test_type_names_are_shortened() -> None:
    assert compact_name("io.k8s.api.core.v1.PodSpec") == "core.v1.PodSpec"
    assert compact_name("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") == "meta.v1.ObjectMeta"
    assert compact_name("io.k8s.apimachinery.pkg.util.intstr.IntOrString") == \
        "util.intstr.IntOrString"
    assert compact_name("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON") == \
        "apiextensions.v1.JSON"
    assert compact_name("io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService") == \
        "apiregistration.v1.APIService"
    assert compact_name("dev.edict.example.v1.WebApp") == "dev.edict.example.v1.WebApp"
    assert crd_root_name("example.edict.dev", "v1", "WebApp") == "dev.edict.example.v1.WebApp"


def test_kinds_come_from_group_version_kind_and_can_be_limited_to_one_group_version() -> None:
    converted = convert_document(POD_LIKE)
    assert converted.kinds[GVK("", "v1", "Pod")] == "core.v1.Pod"
    assert GVK("apps", "v1", "DeleteOptions") in converted.kinds
    only = convert_document(POD_LIKE, group_version=("", "v1"))
    assert set(only.kinds) == {GVK("", "v1", "Pod"), GVK("", "v1", "DeleteOptions")}


def test_struct_fields_and_references_through_all_of(pod: Any) -> None:
    assert pod.field_names() == ("apiVersion", "metadata", "spec")
    assert pod.field("spec").name == "core.v1.PodSpec"
    assert pod.field("metadata").field("labels").is_map
    assert pod.field("metadata").field("labels").field("anything").scalar == "string"
    assert pod.field("nope") is None


def test_list_markers(pod: Any) -> None:
    spec = pod.field("spec")
    containers = spec.field("containers")
    assert (containers.list_type, containers.keys) == ("map", ("name",))
    assert containers.items().name == "core.v1.Container"
    assert spec.field("tolerations").list_type == "atomic"
    assert spec.field("tolerations").atomic
    assert spec.field("readinessGates").list_type == "atomic"  # unmarked: atomic
    assert pod.field("metadata").field("finalizers").list_type == "set"


def test_patch_strategy_stands_in_for_a_missing_list_type(pod: Any) -> None:
    container = pod.field("spec").field("containers").items()
    assert (container.field("env").list_type, container.field("env").keys) == ("map", ("name",))
    assert container.field("tags").list_type == "set"
    assert container.field("hints").list_type == "atomic"


def test_list_map_keys_keep_their_defaults_and_other_fields_do_not(pod: Any) -> None:
    port = pod.field("spec").field("containers").items().field("ports").items()
    assert port.field("protocol").default == "TCP"
    assert port.field("protocol").scalar == "string"
    assert port.field("containerPort").default == 0
    assert port.field("name").default is NO_DEFAULT
    container = pod.field("spec").field("containers").items()
    assert container.field("name").default == ""
    assert container.field("image").default is NO_DEFAULT


def test_map_types_on_the_type_and_overridden_where_it_is_referred_to(pod: Any) -> None:
    spec = pod.field("spec")
    assert spec.field("nodeSelector").atomic and spec.field("nodeSelector").is_map
    assert spec.field("targetRef").atomic
    assert not spec.field("claimRef").atomic
    assert spec.field("claimRef").field_names() == ("name",)
    assert spec.field("lockedRef").atomic
    assert not pod.field("spec").field("containers").atomic


def test_special_types(pod: Any) -> None:
    spec = pod.field("spec")
    assert spec.field("overhead").field("cpu").scalar == "quantity"
    assert spec.field("port").scalar == "int-or-string"
    assert spec.field("started").scalar == "string"  # a named scalar, written in place
    raw = spec.field("raw")
    assert raw.atomic and not raw.is_struct and not raw.is_map  # replaced whole
    assert spec.field("free") is None  # free-form: SSA's defaults


def test_only_types_the_kinds_reach_are_kept() -> None:
    converted = convert_document(POD_LIKE, group_version=("", "v1"))
    assert "meta.v1.Time" not in converted.types  # a scalar, written in place
    assert "api.resource.Quantity" not in converted.types
    assert "core.v1.EnvVar" in converted.types
    unreachable = doc(**{f"{CORE}Lonely": {"type": "object",
                                           "properties": {"a": {"type": "string"}}}})
    assert convert_document(unreachable).types == {}


def test_a_recursive_type_refers_to_itself_by_name() -> None:
    props = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
    document = doc(**{props: {
        "type": "object",
        "properties": {"properties": {"type": "object", "additionalProperties": ref(props)},
                       "items": ref(props), "type": {"type": "string"}},
        "x-kubernetes-group-version-kind": [{"group": "x", "version": "v1", "kind": "P"}],
    }})
    converted = convert_document(document)
    node = Table(converted.types).node("apiextensions.v1.JSONSchemaProps")
    assert node is not None
    assert node.field("items").field("properties").field("p").name == node.name
    assert outline(node)["fields"]["items"] == {"ref": "apiextensions.v1.JSONSchemaProps"}


def test_two_types_shortened_to_one_name_are_an_error() -> None:
    document = doc(**{
        "io.k8s.api.core.v1.A": {"type": "object", "properties": {
            "b": ref("io.k8s.apimachinery.pkg.apis.core.v1.A")},
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "A"}]},
        "io.k8s.apimachinery.pkg.apis.core.v1.A": {"type": "object",
                                                    "properties": {"c": {"type": "string"}}},
    })
    with pytest.raises(ConversionError, match=r"both shorten to core\.v1\.A"):
        convert_document(document)


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.edict.dev"},
    "spec": {
        "group": "test.edict.dev",
        "scope": "Cluster",
        "names": {"kind": "Widget", "plural": "widgets"},
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {
                    "tags": {"type": "array", "items": {"type": "string"},
                             "x-kubernetes-list-type": "set"},
                    "routes": {"type": "array", "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["host", "port"],
                               "items": {"type": "object", "required": ["host"], "properties": {
                                   "host": {"type": "string"},
                                   "port": {"type": "integer", "default": 80}}}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                                 "additionalProperties": {"type": "string"}},
                    "size": {"x-kubernetes-int-or-string": True,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "known": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                              "properties": {"a": {"type": "array", "items": {}}}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                                 "x-kubernetes-preserve-unknown-fields": True},
                }}},
            }}},
            {"name": "v0", "served": False, "storage": False,
             "schema": {"openAPIV3Schema": {"type": "object"}}},
            {"name": "v2", "served": True, "storage": False},
            {"name": "v3", "served": True, "storage": False, "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
        ],
    },
}


def test_a_crd_version_converts_with_its_markers() -> None:
    converted = convert_crd(WIDGET_CRD)
    v1, v2 = GVK("test.edict.dev", "v1", "Widget"), GVK("test.edict.dev", "v2", "Widget")
    v3 = GVK("test.edict.dev", "v3", "Widget")
    assert converted.kinds == {v1: "dev.edict.test.v1.Widget", v2: "any",
                               v3: "dev.edict.test.v3.Widget"}
    table = Table({**convert_document(POD_LIKE).types, **converted.types})
    root = table.node(converted.kinds[v1])
    assert root is not None
    assert root.field_names() == ("spec", "apiVersion", "kind", "metadata")
    assert root.field("metadata").name == "meta.v1.ObjectMeta"
    spec = root.field("spec")
    assert spec.field("tags").list_type == "set"
    routes = spec.field("routes")
    assert (routes.list_type, routes.keys) == ("map", ("host", "port"))
    assert routes.items().field("port").default == 80
    assert routes.items().field("host").default is NO_DEFAULT
    assert spec.field("selector").atomic
    assert spec.field("size").scalar == "int-or-string"
    assert spec.field("config") is None  # only unknown fields: SSA's defaults
    known = spec.field("known")
    assert known.preserves_unknown and known.field("a").items() is None
    template = spec.field("template")
    assert template.field_names() == ("apiVersion", "kind", "metadata")
    assert template.preserves_unknown
    assert table.node(converted.kinds[v2]) is None
    anything = table.node(converted.kinds[v3])
    assert anything is not None and anything.preserves_unknown
    assert anything.field_names() == ("apiVersion", "kind", "metadata")


def test_the_catalogue_document_keeps_discovered_kinds_and_their_scopes() -> None:
    document = catalogue_document({("", "v1"): POD_LIKE},
                                  {("", "v1"): {"Pod": True, "Binding": True}},
                                  kubernetes="v1.36.3")
    assert document["format"] == FORMAT
    assert document["kubernetes"] == "v1.36.3"
    assert document["kinds"] == {"v1 Pod": {"type": "core.v1.Pod", "namespaced": True}}
    assert "core.v1.PodSpec" in document["types"]
    assert parse_kind_key("apps/v1 Deployment") == GVK("apps", "v1", "Deployment")
    assert parse_kind_key("v1 Pod") == GVK("", "v1", "Pod")


def test_one_type_converted_differently_by_two_group_versions_is_an_error() -> None:
    other = json.loads(json.dumps(POD_LIKE))
    other["components"]["schemas"][f"{CORE}EnvVar"]["properties"]["extra"] = {"type": "string"}
    other["components"]["schemas"][f"{CORE}Pod"]["x-kubernetes-group-version-kind"] = [
        {"group": "x", "version": "v1", "kind": "Pod"}]
    with pytest.raises(ConversionError, match=r"core\.v1\.EnvVar"):
        catalogue_document({("", "v1"): POD_LIKE, ("x", "v1"): other},
                           {("", "v1"): {"Pod": True}, ("x", "v1"): {"Pod": True}},
                           kubernetes="v0")


def test_the_file_is_stable_readable_and_loads_back() -> None:
    document = catalogue_document({("", "v1"): POD_LIKE}, {("", "v1"): {"Pod": True}},
                                  kubernetes="v1.36.3")
    text = dumps(document)
    assert text == dumps(json.loads(text))
    lines = text.splitlines()
    assert '"v1 Pod":{"namespaced":true,"type":"core.v1.Pod"}' in lines
    assert any(line.startswith('"core.v1.PodSpec":{') for line in lines)
    loaded = Catalogue.from_document(json.loads(text))
    pod = loaded.for_kind(GVK("", "v1", "Pod"))
    assert pod is not None and pod.field("spec").field("tolerations").atomic
    with pytest.raises(ValueError, match="regenerate"):
        Catalogue.from_document({**document, "format": FORMAT + 1})
