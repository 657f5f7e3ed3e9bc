"""engine.kube.openapi.LiveSchemas on a seam fake of the API server's ``/openapi/v3``.

What it fetches and when: the index, then only the documents of group-versions asked
for; nothing on `for_kind`; a document again only when its hash changes. The real
server's documents are tested in tests/e2e/test_schemas_live.py.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.kube.openapi import LiveSchemas, index_key, parse_index
from engine.kube.transport import Query
from engine.objects import GVK

DEPLOYMENT = GVK("apps", "v1", "Deployment")
CONFIGMAP = GVK("", "v1", "ConfigMap")
WIDGET = GVK("test.edict.dev", "v1", "Widget")


def document(group: str, kind: str, list_type: str) -> dict[str, Any]:
    return {"components": {"schemas": {f"x.{kind}": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"},
                                 "x-kubernetes-list-type": list_type}},
        "x-kubernetes-group-version-kind": [{"group": group, "version": "v1", "kind": kind}],
    }}}}


class FakeServer:
    """Answers GETs of /openapi/v3 and its documents; anything else fails the test."""

    def __init__(self) -> None:
        self.documents: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
            ("apps", "v1"): ("A1", document("apps", "Deployment", "set")),
            ("", "v1"): ("C1", document("", "ConfigMap", "atomic")),
        }
        self.calls: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self.lock = threading.Lock()

    def publish(self, group: str, kind: str, list_type: str, hash_: str) -> None:
        self.documents[group, "v1"] = (hash_, document(group, kind, list_type))

    def get_path(self, path: str, *, query: Query = ()) -> Any:
        with self.lock:
            self.calls.append((path, tuple(query)))
        if path == "/openapi/v3":
            return {"paths": {
                "apis": {"serverRelativeURL": "/openapi/v3/apis?hash=X"},
                "version": {"serverRelativeURL": "/openapi/v3/version?hash=Y"},
                **{index_key(group, version): {
                    "serverRelativeURL": f"/openapi/v3/{index_key(group, version)}?hash={h}"}
                   for (group, version), (h, _) in self.documents.items()}}}
        for (group, version), (hash_, body) in self.documents.items():
            if path == f"/openapi/v3/{index_key(group, version)}":
                assert query == [("hash", hash_)], f"stale URL for {path}: {query}"
                return body
        raise AssertionError(f"unexpected GET {path} {query}")

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


def items_list_type(schemas: LiveSchemas, gvk: GVK) -> str | None:
    node = schemas.for_kind(gvk)
    assert node is not None, gvk
    items = node.field("items")
    assert items is not None
    return items.list_type


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def test_the_index_names_group_versions_with_their_hashes(server: FakeServer) -> None:
    index = parse_index(server.get_path("/openapi/v3"))
    assert index == {("apps", "v1"): "/openapi/v3/apis/apps/v1?hash=A1",
                     ("", "v1"): "/openapi/v3/api/v1?hash=C1"}
    assert parse_index(None) == {}
    assert parse_index({"paths": {"api/v1": "broken"}}) == {}


def test_nothing_is_known_and_nothing_fetched_before_ensure(server: FakeServer) -> None:
    schemas = LiveSchemas(server)
    assert schemas.for_kind(DEPLOYMENT) is None
    assert server.calls == []


def test_ensure_fetches_the_index_then_only_the_group_versions_asked_for(
        server: FakeServer) -> None:
    schemas = LiveSchemas(server)
    schemas.ensure([DEPLOYMENT])
    assert server.paths() == ["/openapi/v3", "/openapi/v3/apis/apps/v1"]
    assert items_list_type(schemas, DEPLOYMENT) == "set"
    assert schemas.for_kind(CONFIGMAP) is None  # not asked for: not fetched
    assert schemas.for_kind(GVK("apps", "v1", "StatefulSet")) is None
    server.calls.clear()
    schemas.ensure([DEPLOYMENT, GVK("apps", "v1", "StatefulSet")])
    assert server.calls == []  # cached: no request at all
    schemas.ensure([CONFIGMAP])
    assert server.paths() == ["/openapi/v3/api/v1"]  # the index it has still names it


def test_a_group_version_the_server_does_not_serve_is_remembered_as_absent(
        server: FakeServer) -> None:
    schemas = LiveSchemas(server)
    schemas.ensure([WIDGET])
    assert schemas.for_kind(WIDGET) is None
    server.calls.clear()
    schemas.ensure([WIDGET])
    assert server.calls == []


def test_refresh_refetches_what_changed_and_what_appeared(server: FakeServer) -> None:
    schemas = LiveSchemas(server)
    schemas.ensure([DEPLOYMENT, CONFIGMAP, WIDGET])
    server.calls.clear()
    schemas.refresh()
    assert server.paths() == ["/openapi/v3"]  # nothing changed: the index only

    server.publish("test.edict.dev", "Widget", "map", "W1")  # a CRD is installed
    server.publish("apps", "Deployment", "atomic", "A2")  # a document changes
    server.calls.clear()
    schemas.refresh()
    assert sorted(server.paths()) == ["/openapi/v3", "/openapi/v3/apis/apps/v1",
                                      "/openapi/v3/apis/test.edict.dev/v1"]
    assert items_list_type(schemas, DEPLOYMENT) == "atomic"
    assert items_list_type(schemas, WIDGET) == "map"

    del server.documents["test.edict.dev", "v1"]  # the CRD is removed
    schemas.refresh()
    assert schemas.for_kind(WIDGET) is None


def test_concurrent_ensures_fetch_each_document_once(server: FakeServer) -> None:
    schemas = LiveSchemas(server)
    threads = [threading.Thread(target=schemas.ensure, args=([DEPLOYMENT, CONFIGMAP],))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(server.paths()) == ["/openapi/v3", "/openapi/v3/api/v1",
                                      "/openapi/v3/apis/apps/v1"]
    assert schemas.for_kind(CONFIGMAP) is not None
