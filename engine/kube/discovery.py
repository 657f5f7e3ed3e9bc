"""Which REST resource serves an apiVersion/kind: plural, scope, verbs, status subresource.

`Cluster` asks `Discovery.resource_for` before every request to build the URL. Answers
are cached per group/version; a kind that is not in the cache re-reads its group/version
once (a CRD may have been installed since), and a kind the server still does not know
raises `UnknownKind` naming the apiVersion and kind. `cached` answers from the cache
alone, never with a request: evaluation asks it (through the runtime's `Scopes`), and
the cache is filled before, when rule sets are compiled and when informers list.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from urllib.parse import quote

from engine.objects import GVK

from .errors import NotFound, UnknownKind
from .transport import Transport

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
"""Text `quote` leaves as it is: most object names (not "system:nodes", say)."""


def path_segment(text: str) -> str:
    """`quote(text, safe="")`, at once for a name of unreserved characters."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


@dataclass(frozen=True)
class Resource:
    """One REST resource as discovery describes it."""

    gvk: GVK
    plural: str
    namespaced: bool
    verbs: frozenset[str]
    has_status: bool

    def path(self, *, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """URL path of the collection, or of one object (and its subresource).

        `namespace` is ignored for cluster-scoped resources, as kubectl ignores -n there.
        """
        group, version = self.gvk.group, self.gvk.version
        parts = [f"/apis/{group}/{version}" if group else f"/api/{version}"]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{path_segment(namespace)}")
        parts.append(self.plural)
        if name is not None:
            parts.append(path_segment(name))
            if subresource is not None:
                parts.append(subresource)
        return "/".join(parts)


def group_version_path(gvk: GVK) -> str:
    return f"/apis/{gvk.group}/{gvk.version}" if gvk.group else f"/api/{gvk.version}"


def parse_resource_list(gvk: GVK, body: object) -> dict[str, Resource]:
    """Resources by kind from an APIResourceList (subresources folded into their parent)."""
    entries = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return {}
    names = {str(entry.get("name", "")) for entry in entries if isinstance(entry, dict)}
    found: dict[str, Resource] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name", ""))
        if "/" in name:
            continue
        kind = str(entry.get("kind", ""))
        found[kind] = Resource(
            gvk=GVK(gvk.group, gvk.version, kind),
            plural=name,
            namespaced=bool(entry.get("namespaced")),
            verbs=frozenset(str(verb) for verb in entry.get("verbs") or ()),
            has_status=f"{name}/status" in names,
        )
    return found


class Discovery:
    """Cached discovery of one cluster; safe to share between threads."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._by_group_version: dict[tuple[str, str], dict[str, Resource]] = {}

    def resource_for(self, gvk: GVK) -> Resource:
        """The resource serving `gvk`; raises `UnknownKind` when the server has none."""
        key = (gvk.group, gvk.version)
        with self._lock:
            cached = self._by_group_version.get(key, {}).get(gvk.kind)
        if cached is not None:
            return cached
        resources = self._refresh(gvk)
        resource = resources.get(gvk.kind)
        if resource is None:
            known = ", ".join(sorted(resources)) or "none"
            raise UnknownKind(
                f"the API server has no kind {gvk.kind!r} in apiVersion "
                f"{gvk.api_version!r} (kinds there: {known}); is its CRD installed?",
                status=404, reason="NotFound")
        return resource

    def cached(self, gvk: GVK) -> Resource | None:
        """The resource serving `gvk` if discovery has already seen it; no request."""
        with self._lock:
            return self._by_group_version.get((gvk.group, gvk.version), {}).get(gvk.kind)

    def invalidate(self, gvk: GVK | None = None) -> None:
        """Forget cached answers (for one group/version, or all)."""
        with self._lock:
            if gvk is None:
                self._by_group_version.clear()
            else:
                self._by_group_version.pop((gvk.group, gvk.version), None)

    def _refresh(self, gvk: GVK) -> dict[str, Resource]:
        try:
            body = self._transport.request("GET", group_version_path(gvk))
        except NotFound:
            body = None  # the whole group/version is unknown
        resources = parse_resource_list(gvk, body)
        with self._lock:
            self._by_group_version[(gvk.group, gvk.version)] = resources
        return resources
