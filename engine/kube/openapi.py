"""`LiveSchemas`: the cluster's own ``/openapi/v3`` schemas of the kinds rules touch.

The live engine merges templates by the markers the API server itself uses, CRDs
included. The index at ``/openapi/v3`` names one document per group-version, with a
``?hash=`` in its URL that changes whenever the document does. `LiveSchemas` fetches
only the documents of group-versions it is asked about (`ensure`), converts them with
`engine.schemas.openapi` (the converter the shipped catalogue is built with, so both
give one result), and keeps them until `refresh` finds a changed hash — the runtime
calls `refresh` when discovery changes (a CRD installed, updated or removed).

`for_kind` answers from the cache only: evaluation never waits on HTTP. `ensure` and
`refresh` send requests and run outside evaluation. All three are safe to call from
several threads; fetches are serialised so a document is read once.

`builtin_catalogue_document` reads every built-in group-version (CRD groups and
aggregated APIs left out) for the shipped catalogue's generator and its staleness test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from engine.objects import GVK
from engine.schemas.generate import catalogue_document
from engine.schemas.model import Node, Table
from engine.schemas.openapi import convert_document

from .client import Cluster
from .discovery import group_version_path, parse_resource_list
from .transport import Query

INDEX_PATH = "/openapi/v3"
API_SERVICE = GVK("apiregistration.k8s.io", "v1", "APIService")
AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"

GroupVersion = tuple[str, str]


class Reader(Protocol):
    """What `LiveSchemas` needs of a `Cluster`: plain GETs."""

    def get_path(self, path: str, *, query: Query = ()) -> Any: ...


def index_key(group: str, version: str) -> str:
    """The index's name for a group-version: ``api/v1``, ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def parse_index(body: Any) -> dict[GroupVersion, str]:
    """Group-version → document URL (with its ``?hash=``) from the ``/openapi/v3`` index;
    entries that are no group-version (``apis``, ``version``…) are left out."""
    paths = body.get("paths") if isinstance(body, dict) else None
    found: dict[GroupVersion, str] = {}
    for key, entry in (paths or {}).items():
        url = entry.get("serverRelativeURL") if isinstance(entry, dict) else None
        parts = str(key).split("/")
        if not isinstance(url, str):
            continue
        if len(parts) == 2 and parts[0] == "api":
            found["", parts[1]] = url
        elif len(parts) == 3 and parts[0] == "apis":
            found[parts[1], parts[2]] = url
    return found


def _split(url: str) -> tuple[str, Query]:
    parts = urlsplit(url)
    return parts.path, parse_qsl(parts.query)


@dataclass(frozen=True)
class _Document:
    """One converted group-version document, as fetched from `url`."""

    url: str | None  # None: the index had no such group-version
    table: Table
    kinds: dict[GVK, str]


_ABSENT = _Document(None, Table({}), {})


class LiveSchemas:
    """Schemas of one cluster, cached per group-version."""

    def __init__(self, cluster: Reader) -> None:
        self._cluster = cluster
        self._lock = threading.Lock()  # guards the two dicts below
        self._fetch_lock = threading.Lock()  # one fetch at a time
        self._index: dict[GroupVersion, str] | None = None
        self._documents: dict[GroupVersion, _Document] = {}

    def for_kind(self, gvk: GVK) -> Node | None:
        """The cached schema of `gvk`; None when not fetched yet or unknown. No HTTP."""
        with self._lock:
            document = self._documents.get((gvk.group, gvk.version))
        if document is None:
            return None
        name = document.kinds.get(gvk)
        return None if name is None else document.table.node(name)

    def ensure(self, gvks: Iterable[GVK]) -> None:
        """Fetch the documents of the group-versions of `gvks` not cached yet.

        Raises `engine.kube.errors.ApiError` when the server cannot be read; what was
        cached stays.
        """
        wanted = {(gvk.group, gvk.version) for gvk in gvks}
        with self._fetch_lock:
            with self._lock:
                missing = wanted - self._documents.keys()
                index = self._index
            if not missing:
                return
            if index is None or not missing <= index.keys():
                index = self._read_index()
            for group_version in sorted(missing):
                self._store(group_version, index.get(group_version))

    def refresh(self) -> None:
        """Re-read the index; fetch again each cached group-version whose document
        changed (or appeared), forget those gone."""
        with self._fetch_lock:
            index = self._read_index()
            with self._lock:
                cached = {gv: doc.url for gv, doc in self._documents.items()}
            for group_version, url in sorted(cached.items()):
                if index.get(group_version) != url:
                    self._store(group_version, index.get(group_version))

    def _read_index(self) -> dict[GroupVersion, str]:
        index = parse_index(self._cluster.get_path(INDEX_PATH))
        with self._lock:
            self._index = index
        return index

    def _store(self, group_version: GroupVersion, url: str | None) -> None:
        if url is None:
            document = _ABSENT
        else:
            path, query = _split(url)
            body = self._cluster.get_path(path, query=query)
            converted = convert_document(body if isinstance(body, dict) else {},
                                         group_version=group_version)
            document = _Document(url, Table(converted.types), converted.kinds)
        with self._lock:
            self._documents[group_version] = document


def builtin_catalogue_document(cluster: Cluster) -> dict[str, Any]:
    """The shipped catalogue's content as this cluster serves it: every built-in
    group-version's ``/openapi/v3`` document, with discovery's scopes and the server's
    version.

    Built-in group-versions are those whose APIService the API server registered when it
    started (label ``kube-aggregator.kubernetes.io/automanaged: onstart``, no service),
    plus the aggregator's own ``apiregistration.k8s.io``, which has no APIService: CRDs'
    group-versions are registered later (``"true"``) and aggregated APIs have a service.
    Asking the APIServices, rather than leaving out the groups of the CRDs listed, stays
    right while a CRD is being deleted and its group is still in the index.
    """
    index = parse_index(cluster.get_path(INDEX_PATH))
    built_in = sorted({
        *((str(spec.get("group") or ""), str(spec.get("version") or ""))
          for api in cluster.list(API_SERVICE)[0]
          if isinstance(spec := api.get("spec"), dict) and not spec.get("service")
          and api.get("metadata", {}).get("labels", {}).get(AUTOMANAGED) == "onstart"),
        *(gv for gv in index if gv[0] == API_SERVICE.group),
    })
    documents: dict[GroupVersion, Any] = {}
    scopes: dict[GroupVersion, dict[str, bool]] = {}
    for group, version in built_in:
        path, query = _split(index[group, version])
        documents[group, version] = cluster.get_path(path, query=query)
        probe = GVK(group, version, "")
        resources = parse_resource_list(probe, cluster.get_path(group_version_path(probe)))
        scopes[group, version] = {kind: resource.namespaced
                                  for kind, resource in resources.items()}
    version = cluster.get_path("/version")
    return catalogue_document(documents, scopes,
                              kubernetes=str(version.get("gitVersion") or ""))
