"""`Catalogue`: the schema and scope of every kind Edict knows without a cluster.

The shipped catalogue (`builtin`, read from ``builtin.json`` beside this module) holds
the built-in kinds of the Kubernetes version the file was generated from
(``scripts/generate_schemas.py``); `Catalogue.with_crds` lays the CRDs found beside the
rules or among the manifests over it, a CRD's kind winning over a built-in one.
Offline commands merge templates by `for_kind` (the live engine asks the cluster's
``/openapi/v3`` instead, through `engine.kube.openapi`, with the same converter), and
lint checks kinds and field paths against `kinds` and the nodes' field names.

Loading is one JSON parse (a few milliseconds), done once, on first use; nodes are
built lazily as a merge or lint reaches them. A catalogue is read-only and may be
shared between threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.objects import GVK, Obj
from engine.schemas.generate import FORMAT, parse_kind_key
from engine.schemas.model import Node, Table
from engine.schemas.openapi import convert_crd

BUILTIN_PATH = Path(__file__).with_name("builtin.json")


class Catalogue:
    """Kinds → schema nodes and scopes, over one table of named types."""

    def __init__(self, types: Mapping[str, Any], kinds: Mapping[GVK, str],
                 scopes: Mapping[GVK, bool], *, kubernetes: str = "") -> None:
        self._types = types
        self._table = Table(types)
        self._kinds = dict(kinds)
        self._scopes = dict(scopes)
        self.kubernetes = kubernetes
        """The Kubernetes version the built-in kinds come from ("" when unknown)."""

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Catalogue:
        """A catalogue from the layout `engine.schemas.generate` writes."""
        if document.get("format") != FORMAT:
            raise ValueError(f"schema catalogue format {document.get('format')!r} is not "
                             f"{FORMAT}: regenerate it with scripts/generate_schemas.py")
        kinds: dict[GVK, str] = {}
        scopes: dict[GVK, bool] = {}
        for key, entry in document["kinds"].items():
            gvk = parse_kind_key(key)
            kinds[gvk] = entry["type"]
            scopes[gvk] = bool(entry["namespaced"])
        return cls(document["types"], kinds, scopes,
                   kubernetes=str(document.get("kubernetes") or ""))

    def for_kind(self, gvk: GVK) -> Node | None:
        """The schema of `gvk`; None for a kind not in the catalogue or without a schema."""
        name = self._kinds.get(gvk)
        return None if name is None else self._table.node(name)

    def kinds(self) -> set[GVK]:
        return set(self._kinds)

    def namespaced(self, gvk: GVK) -> bool | None:
        """Whether `gvk` lives in namespaces; None when the catalogue does not know it."""
        return self._scopes.get(gvk)

    def with_crds(self, objects: Iterable[Obj]) -> Catalogue:
        """This catalogue plus the kinds of the CustomResourceDefinitions among
        `objects` (other objects are ignored); a CRD's kind replaces a built-in one."""
        crds = [obj for obj in objects if obj.get("kind") == "CustomResourceDefinition"
                and str(obj.get("apiVersion", "")).startswith("apiextensions.k8s.io/")]
        if not crds:
            return self
        types = dict(self._types)
        kinds = dict(self._kinds)
        scopes = dict(self._scopes)
        for obj in crds:
            converted = convert_crd(obj)
            types.update(converted.types)
            kinds.update(converted.kinds)
            spec = obj.get("spec")
            namespaced = isinstance(spec, dict) and spec.get("scope", "Namespaced") != "Cluster"
            scopes.update(dict.fromkeys(converted.kinds, namespaced))
        return Catalogue(types, kinds, scopes,
                         kubernetes=self.kubernetes)


_lock = threading.Lock()
_builtin: list[Catalogue] = []


def builtin() -> Catalogue:
    """The shipped catalogue of built-in kinds, read once, on first use."""
    if not _builtin:
        with _lock:
            if not _builtin:
                _builtin.append(Catalogue.from_document(json.loads(BUILTIN_PATH.read_bytes())))
    return _builtin[0]
