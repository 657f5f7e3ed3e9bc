"""Schemas from the real API server: the shipped catalogue is current, `LiveSchemas`
reads the same markers from ``/openapi/v3``, and follows a CRD as it is created and
changed."""

from __future__ import annotations

import contextlib
import copy
import difflib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from engine.kube import Cluster
from engine.kube.errors import NotFound
from engine.kube.openapi import LiveSchemas, builtin_catalogue_document
from engine.objects import GVK, Obj
from engine.schemas.catalogue import BUILTIN_PATH, builtin
from engine.schemas.generate import dumps
from engine.schemas.model import Node, outline
from tests.support import eventually

pytestmark = pytest.mark.cluster

CRD_GVK = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")


def test_the_shipped_catalogue_is_what_the_server_serves(admin: Cluster) -> None:
    served = dumps(builtin_catalogue_document(admin))
    shipped = BUILTIN_PATH.read_text()
    diff = list(difflib.unified_diff(shipped.splitlines(), served.splitlines(),
                                     "shipped", "served", lineterm="", n=0))
    assert served == shipped, (
        f"{BUILTIN_PATH} is stale: regenerate it with `python scripts/generate_schemas.py`"
        "\n" + "\n".join(line[:200] for line in diff[:40]))


def test_live_schemas_of_built_in_kinds_equal_the_shipped_catalogue(admin: Cluster) -> None:
    shipped = builtin()
    live = LiveSchemas(admin)
    live.ensure(shipped.kinds())
    differing = [str(gvk) for gvk in sorted(shipped.kinds())
                 if outline(live.for_kind(gvk)) != outline(shipped.for_kind(gvk))]
    assert not differing, f"markers differ for {differing}"
    deployment = live.for_kind(GVK("apps", "v1", "Deployment"))
    assert deployment is not None
    ports = deployment.field("spec").field("template").field("spec").field(  # type: ignore[union-attr]
        "containers").items().field("ports")  # type: ignore[union-attr]
    assert ports is not None and ports.keys == ("containerPort", "protocol")


def widget_crd(group: str, spec_properties: dict[str, Any]) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": spec_properties}}}}}],
        },
    }


FIRST = {
    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    "selector": {"type": "object", "additionalProperties": {"type": "string"},
                 "x-kubernetes-map-type": "atomic"},
}
SECOND = {
    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
    "routes": {"type": "array", "x-kubernetes-list-type": "map",
               "x-kubernetes-list-map-keys": ["host", "port"],
               "items": {"type": "object", "required": ["host"], "properties": {
                   "host": {"type": "string"}, "port": {"type": "integer", "default": 80}}}},
    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
               "properties": {"level": {"type": "string"}}},
}


@pytest.fixture
def group(admin: Cluster) -> Iterator[str]:
    name = f"w{uuid.uuid4().hex[:8]}.edict.dev"
    yield name
    with contextlib.suppress(NotFound):
        admin.delete(CRD_GVK, None, f"widgets.{name}")


def spec_of(schemas: LiveSchemas, gvk: GVK) -> Node | None:
    """The live schema's spec node, after asking the server again."""
    schemas.refresh()
    schemas.ensure([gvk])
    root = schemas.for_kind(gvk)
    return None if root is None else root.field("spec")


def test_a_crd_is_seen_once_created_and_again_after_its_schema_changes(
        admin: Cluster, group: str) -> None:
    widget = GVK(group, "v1", "Widget")
    schemas = LiveSchemas(admin)
    schemas.ensure([widget])
    assert schemas.for_kind(widget) is None  # no such group-version yet

    crd = widget_crd(group, FIRST)
    admin.create(crd)

    def first_seen() -> bool:
        spec = spec_of(schemas, widget)
        return spec is not None and "tags" in spec.field_names()

    eventually(first_seen, timeout=60, what="the new CRD's schema in /openapi/v3")
    live = schemas.for_kind(widget)
    assert live is not None
    assert live.field("spec").field("tags").list_type == "set"  # type: ignore[union-attr]
    assert live.field("spec").field("selector").atomic  # type: ignore[union-attr]
    assert outline(live) == outline(builtin().with_crds([crd]).for_kind(widget))

    changed = copy.deepcopy(admin.get(CRD_GVK, None, f"widgets.{group}"))
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"] = SECOND
    admin.replace(changed)

    def change_seen() -> bool:
        spec = spec_of(schemas, widget)
        return spec is not None and "routes" in spec.field_names()

    eventually(change_seen, timeout=60, what="the changed CRD's schema in /openapi/v3")
    live = schemas.for_kind(widget)
    assert live is not None
    spec = live.field("spec")
    assert spec is not None
    assert spec.field("tags").list_type == "atomic"  # type: ignore[union-attr]
    assert spec.field("routes").keys == ("host", "port")  # type: ignore[union-attr]
    assert spec.field("routes").items().field("port").default == 80  # type: ignore[union-attr]
    assert spec.field("config").preserves_unknown  # type: ignore[union-attr]
    assert "selector" not in spec.field_names()
    assert outline(live) == outline(builtin().with_crds([changed]).for_kind(widget))
