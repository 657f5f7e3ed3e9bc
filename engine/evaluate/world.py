"""What the engine may read besides the trigger: lookups, Namespaces, existing children.

`World` is the seam between the pure evaluator and where objects come from. Offline,
`ManifestWorld` answers from the manifests given on the command line; live, the runtime
answers from its informer caches. Scope (namespaced or not) of well-known kinds is built
in; CRDs among the manifests add theirs. Schemas (for merging by each field's list
markers) come from the shipped catalogue of built-in kinds plus the CRDs among the
manifests offline, from the cluster's ``/openapi/v3`` live.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from engine.objects import GVK, Obj, ObjectKey, gvk_of, key_of, meta
from engine.schemas import Node
from engine.schemas.catalogue import Catalogue, builtin

NAMESPACE = GVK.of("v1", "Namespace")  # the one instance: a map keyed by kinds finds it by identity
_SCOPES_KEPT = 4096  # kinds whose scope (and schema) a `ManifestWorld` remembers
TRIGGER_UID_LABEL = "edict.dev/trigger-uid"  # on every child of a trigger that has a uid
TRIGGER_ANNOTATION = "edict.dev/trigger"  # on every child: apiVersion/Kind/namespace/name

CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "PriorityClass",
    "RuntimeClass", "IngressClass", "CustomResourceDefinition", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRuleSet",
    "CertificateSigningRequest", "FlowSchema", "PriorityLevelConfiguration",
})


class World(Protocol):
    def get(self, gvk: GVK, namespace: str, name: str) -> Obj | None:
        """The object, or None when it does not exist (or cannot be seen)."""

    def namespaced(self, gvk: GVK) -> bool | None:
        """Whether a kind lives in namespaces; None when the world does not know it."""

    def children(self, gvk: GVK, trigger_ref: str) -> Iterable[Obj]:
        """Objects of a kind whose trigger annotation names `trigger_ref` (an index, not
        a scan: every trigger's evaluation asks)."""

    def schema(self, gvk: GVK) -> Node | None:
        """The kind's schema for merging; None when nothing is known of it."""


def trigger_of(obj: Obj) -> str | None:
    """The trigger a generated object names in its annotation."""
    value = (meta(obj).get("annotations") or {}).get(TRIGGER_ANNOTATION)
    return value if isinstance(value, str) else None


class ManifestWorld:
    """A world made of the objects in some manifests (offline commands and tests).

    Schemas: `schemas` when given, else the shipped catalogue of the built-in kinds;
    either way the CRDs among the objects add (or override) theirs.
    """

    def __init__(self, objects: Iterable[Obj] = (), *, schemas: Catalogue | None = None
                 ) -> None:
        self._objects: dict[ObjectKey, Obj] = {}
        self._by_kind: dict[GVK, dict[ObjectKey, Obj]] = {}
        self._by_trigger: dict[str, dict[ObjectKey, Obj]] = {}
        self._scopes: dict[tuple[str, str], bool] = {}
        # `namespaced`'s answers, asked several times per generated child; forgotten
        # whenever an object comes or goes (a CRD, or the first object of a kind)
        self._namespaced: dict[GVK, bool | None] = {}
        self._crds: dict[ObjectKey, Obj] = {}
        self._given_schemas = schemas
        self._schemas: Catalogue | None = None
        self._kind_schemas: dict[GVK, Node | None] = {}  # `schema`'s answers from `_schemas`
        for obj in objects:
            self.put(obj)

    def put(self, obj: Obj) -> None:
        key = key_of(obj)
        self.remove(key)
        self._namespaced.clear()
        self._objects[key] = obj
        self._by_kind.setdefault(key.gvk, {})[key] = obj
        trigger = trigger_of(obj)
        if trigger:
            self._by_trigger.setdefault(trigger, {})[key] = obj
        if obj.get("kind") == "CustomResourceDefinition" and isinstance(obj.get("spec"), dict):
            spec: dict[str, Any] = obj["spec"]
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                self._scopes[(str(spec.get("group", "")), kind)] = spec.get("scope") != "Cluster"
            self._crds[key] = obj
            self._schemas = None

    def remove(self, key: ObjectKey) -> None:
        old = self._objects.pop(key, None)
        if old is None:
            return
        self._namespaced.clear()
        self._by_kind.get(key.gvk, {}).pop(key, None)
        trigger = trigger_of(old)
        if trigger:
            self._by_trigger.get(trigger, {}).pop(key, None)
        if self._crds.pop(key, None) is not None:
            self._schemas = None

    def objects(self) -> list[Obj]:
        return list(self._objects.values())

    def get(self, gvk: GVK, namespace: str, name: str) -> Obj | None:
        found = self._objects.get(ObjectKey(gvk, namespace, name))
        if found is None and namespace and self.namespaced(gvk) is False:
            found = self._objects.get(ObjectKey(gvk, "", name))
        return found

    def namespaced(self, gvk: GVK) -> bool | None:
        try:
            return self._namespaced[gvk]
        except KeyError:
            if len(self._namespaced) >= _SCOPES_KEPT:
                self._namespaced.clear()
            scope = self._namespaced[gvk] = self._scope(gvk)
            return scope

    def _scope(self, gvk: GVK) -> bool | None:
        scope = self._scopes.get((gvk.group, gvk.kind))
        if scope is not None:
            return scope
        if gvk.kind in CLUSTER_SCOPED_KINDS:
            return False
        for key in self._by_kind.get(gvk, {}):
            return bool(key.namespace)
        return None

    def children(self, gvk: GVK, trigger_ref: str) -> Iterable[Obj]:
        return [obj for key, obj in self._by_trigger.get(trigger_ref, {}).items()
                if key.gvk == gvk]

    def children_of(self, trigger_ref: str) -> list[ObjectKey]:
        """The keys of the objects of any kind whose trigger annotation names
        `trigger_ref` (what a removed trigger leaves behind)."""
        return list(self._by_trigger.get(trigger_ref, {}))

    def schema(self, gvk: GVK) -> Node | None:
        if self._schemas is None:
            base = self._given_schemas or builtin()
            self._schemas = base.with_crds(list(self._crds.values()))
            self._kind_schemas = {}
        try:  # asked several times per evaluation: each kind's found once per catalogue
            return self._kind_schemas[gvk]
        except KeyError:
            if len(self._kind_schemas) >= _SCOPES_KEPT:
                self._kind_schemas.clear()
            found = self._kind_schemas[gvk] = self._schemas.for_kind(gvk)
            return found


def namespace_object(world: World, obj: Obj) -> Obj | None:
    """The trigger's Namespace object (a Namespace is its own)."""
    if gvk_of(obj) == NAMESPACE:
        return obj
    namespace = (obj.get("metadata") or {}).get("namespace")
    return world.get(NAMESPACE, "", namespace) if namespace else None
