"""Small helpers on Kubernetes objects as plain JSON-like dicts.

Every layer passes objects as the dicts `json.loads` gives (the CEL runtime wants exactly
that). These helpers read identity out of them: group/version/kind, namespace, name and
the key a work queue or an index uses. Nothing here talks to a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = Any
Obj = dict[str, Any]


@dataclass(frozen=True, order=True)
class GVK:
    """apiVersion split into group and version, plus the kind. Its hash is computed
    once (kinds key most of the engine's maps: every cached object, queue entry and
    index key holds one)."""

    group: str
    version: str
    kind: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.group, self.version, self.kind)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: Any) -> bool:
        # the dataclass's own comparison of its fields, without the two tuples it makes:
        # the same object first (kinds come from `of`'s one instance per kind), then
        # the hash, which differs for most different kinds
        if self is other:
            return True
        if other.__class__ is not GVK:
            return NotImplemented
        return (self._hash == other._hash and self.kind == other.kind
                and self.version == other.version and self.group == other.group)

    def __reduce__(self) -> tuple[Any, ...]:  # a string's hash is per process: made anew
        return (GVK, (self.group, self.version, self.kind))

    @classmethod
    def of(cls, api_version: str, kind: str) -> GVK:
        found = _GVKS.get((api_version, kind))
        if found is None:
            group, _, version = api_version.rpartition("/")
            found = cls(group, version, kind)
            if len(_GVKS) < 10_000:  # one instance per kind: every cached key holds one
                _GVKS[(api_version, kind)] = found
        return found

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.api_version} {self.kind}"


_GVKS: dict[tuple[str, str], GVK] = {}


@dataclass(frozen=True, order=True, init=False)
class ObjectKey:
    """Identity of one object: kind, namespace ("" when cluster-scoped) and name (its
    hash computed once, as a key of caches, queues and indexes)."""

    gvk: GVK
    namespace: str
    name: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __init__(self, gvk: GVK, namespace: str, name: str) -> None:
        # the fields written straight into the instance's dict: a frozen dataclass's
        # own __init__ sets each through object.__setattr__, three times the cost, and
        # several keys are made per evaluation
        fields = self.__dict__
        fields["gvk"] = gvk
        fields["namespace"] = namespace
        fields["name"] = name
        fields["_hash"] = hash((gvk, namespace, name))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: Any) -> bool:
        # as `GVK.__eq__`: the fields compared without making tuples of them (a key
        # is compared with its equal at every hit of a map it keys)
        if self is other:
            return True
        if other.__class__ is not ObjectKey:
            return NotImplemented
        return (self._hash == other._hash and self.name == other.name
                and self.namespace == other.namespace
                and (self.gvk is other.gvk or self.gvk == other.gvk))

    def __reduce__(self) -> tuple[Any, ...]:  # a string's hash is per process: made anew
        return (ObjectKey, (self.gvk, self.namespace, self.name))

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.gvk.kind} {where}"


def gvk_of(obj: Obj) -> GVK:
    return GVK.of(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str(meta(obj).get("namespace") or "")


def labels_of(obj: Obj) -> dict[str, str]:
    labels = meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def key_of(obj: Obj) -> ObjectKey:
    m = meta(obj)
    return ObjectKey(gvk_of(obj), str(m.get("namespace") or ""), str(m.get("name") or ""))


def describe(obj: Obj) -> str:
    """`Deployment team-a/web`: how messages name an object."""
    return str(key_of(obj))
