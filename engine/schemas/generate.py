"""Building the shipped catalogue (``builtin.json``) from what a cluster serves.

`catalogue_document` takes the ``/openapi/v3`` document and the discovery answer of every
built-in group-version and keeps, for each kind discovery lists, its type and scope plus
every type those kinds reach, in the compact form of `engine.schemas.model`. `dumps`
writes it reproducibly: sorted keys, one kind or type per line, so a new Kubernetes
version shows up as a readable diff.

Fetching is the live side's job (`engine.kube.openapi.builtin_catalogue_document`); the
script ``scripts/generate_schemas.py`` starts a control plane, fetches and writes the
file, and a cluster test fails when the committed file is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from engine.objects import GVK
from engine.schemas.model import ANY, SCALARS
from engine.schemas.openapi import ConversionError, convert_document

FORMAT = 1
"""Version of the file's layout; `engine.schemas.catalogue` refuses other versions."""

GroupVersion = tuple[str, str]


def catalogue_document(documents: Mapping[GroupVersion, Mapping[str, Any]],
                       scopes: Mapping[GroupVersion, Mapping[str, bool]], *,
                       kubernetes: str) -> dict[str, Any]:
    """The catalogue of the kinds in `scopes` (group-version → kind → namespaced).

    Raises `ConversionError` when two documents convert one type name differently.
    """
    types: dict[str, Any] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for group_version in sorted(documents):
        converted = convert_document(documents[group_version], group_version=group_version)
        for name, node in converted.types.items():
            if types.setdefault(name, node) != node:
                raise ConversionError(f"type {name} differs between group-versions")
        served = scopes.get(group_version, {})
        for gvk, name in converted.kinds.items():
            if gvk.kind in served:
                kinds[kind_key(gvk)] = {"type": name, "namespaced": served[gvk.kind]}
    reachable = _reachable(types, (entry["type"] for entry in kinds.values()))
    return {"format": FORMAT, "kubernetes": kubernetes, "kinds": kinds,
            "types": {name: types[name] for name in reachable}}


def kind_key(gvk: GVK) -> str:
    """How the file names a kind: ``apps/v1 Deployment``."""
    return f"{gvk.api_version} {gvk.kind}"


def parse_kind_key(key: str) -> GVK:
    api_version, _, kind = key.partition(" ")
    return GVK.of(api_version, kind)


def dumps(document: Mapping[str, Any]) -> str:
    """The file's text: stable for equal documents, one kind or type per line."""
    def line(key: str, value: Any) -> str:
        return f"{json.dumps(key)}:{json.dumps(value, sort_keys=True, separators=(',', ':'))}"

    def block(entries: Mapping[str, Any]) -> str:
        return ",\n".join(line(key, entries[key]) for key in sorted(entries))

    head = ",\n".join(line(key, document[key]) for key in sorted(document)
                      if key not in ("kinds", "types"))
    return (f"{{{head},\n\"kinds\":{{\n{block(document['kinds'])}\n}},\n"
            f"\"types\":{{\n{block(document['types'])}\n}}}}\n")


def _reachable(types: Mapping[str, Any], roots: Iterable[str]) -> list[str]:
    """Names of the types `roots` refer to, directly or not, sorted."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in types:
            continue
        seen.add(name)
        stack.extend(_names_in(types[name]))
    return sorted(seen)


def _names_in(ref: Any) -> Iterator[str]:
    if isinstance(ref, str):
        if ref != ANY and ref not in SCALARS:
            yield ref
        return
    if not isinstance(ref, dict):
        return
    for child in (ref.get("f") or {}).values():
        yield from _names_in(child)
    for key in ("v", "i"):
        if key in ref:
            yield from _names_in(ref[key])
