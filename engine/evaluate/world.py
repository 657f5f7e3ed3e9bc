"""What the engine may read besides the trigger: lookups, Namespaces, existing children.

`World` is the seam between the pure evaluator and where objects come from. Offline,
`ManifestWorld` answers from the manifests given on the command line; live, the runtime
answers from its informer caches. Scope (namespaced or not) of well-known kinds is built
in; CRDs among the manifests add theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from engine.objects import GVK, Obj, ObjectKey, gvk_of, key_of, labels_of

NAMESPACE = GVK("", "v1", "Namespace")
TRIGGER_UID_LABEL = "edict.dev/trigger-uid"  # on every child of a trigger that has a uid

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

    def list(self, gvk: GVK, *, labels: Mapping[str, str]) -> Iterable[Obj]:
        """Objects of a kind that carry all these labels (used to find children)."""


class ManifestWorld:
    """A world made of the objects in some manifests (offline commands and tests)."""

    def __init__(self, objects: Iterable[Obj] = ()) -> None:
        self._objects: dict[ObjectKey, Obj] = {}
        self._by_kind: dict[GVK, dict[ObjectKey, Obj]] = {}
        self._by_trigger: dict[str, dict[ObjectKey, Obj]] = {}
        self._scopes: dict[tuple[str, str], bool] = {}
        for obj in objects:
            self.put(obj)

    def put(self, obj: Obj) -> None:
        key = key_of(obj)
        self.remove(key)
        self._objects[key] = obj
        self._by_kind.setdefault(key.gvk, {})[key] = obj
        trigger = labels_of(obj).get(TRIGGER_UID_LABEL)
        if trigger:
            self._by_trigger.setdefault(trigger, {})[key] = obj
        if obj.get("kind") == "CustomResourceDefinition" and isinstance(obj.get("spec"), dict):
            spec: dict[str, Any] = obj["spec"]
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                self._scopes[(str(spec.get("group", "")), kind)] = spec.get("scope") != "Cluster"

    def remove(self, key: ObjectKey) -> None:
        old = self._objects.pop(key, None)
        if old is None:
            return
        self._by_kind.get(key.gvk, {}).pop(key, None)
        trigger = labels_of(old).get(TRIGGER_UID_LABEL)
        if trigger:
            self._by_trigger.get(trigger, {}).pop(key, None)

    def objects(self) -> list[Obj]:
        return list(self._objects.values())

    def get(self, gvk: GVK, namespace: str, name: str) -> Obj | None:
        found = self._objects.get(ObjectKey(gvk, namespace, name))
        if found is None and namespace and self.namespaced(gvk) is False:
            found = self._objects.get(ObjectKey(gvk, "", name))
        return found

    def namespaced(self, gvk: GVK) -> bool | None:
        scope = self._scopes.get((gvk.group, gvk.kind))
        if scope is not None:
            return scope
        if gvk.kind in CLUSTER_SCOPED_KINDS:
            return False
        for key in self._by_kind.get(gvk, {}):
            return bool(key.namespace)
        return None

    def list(self, gvk: GVK, *, labels: Mapping[str, str]) -> Iterable[Obj]:
        trigger = labels.get(TRIGGER_UID_LABEL)
        candidates = self._by_trigger.get(trigger, {}) if trigger else self._by_kind.get(gvk, {})
        for obj in candidates.values():
            if key_of(obj).gvk != gvk:
                continue
            have = labels_of(obj)
            if all(have.get(k) == v for k, v in labels.items()):
                yield obj


def namespace_object(world: World, obj: Obj) -> Obj | None:
    """The trigger's Namespace object (a Namespace is its own)."""
    if gvk_of(obj) == NAMESPACE:
        return obj
    namespace = (obj.get("metadata") or {}).get("namespace")
    return world.get(NAMESPACE, "", namespace) if namespace else None
