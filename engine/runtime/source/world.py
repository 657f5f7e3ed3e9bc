"""The live engine's `World`: lookups, Namespaces and children, read from informer caches.

The reconciler hands a `CacheWorld` to `Engine.evaluate`, so evaluation never calls the
API server: lookups and namespace selectors read the shared informers of the watch
manager, scope comes from what discovery already knows (filled outside evaluation:
compiling rule sets asks discovery about every kind they name, and an informer's list
does too; a kind discovery has not seen has an unknown scope, None), children are found
through the trigger index every informer of a generated kind carries, and schemas come
from the cluster's ``/openapi/v3`` (fetched outside evaluation), with the shipped
catalogue of the built-in kinds for what has not been fetched: the same one `edict
apply` uses. Reads go to thread-safe stores; `CacheWorld` itself holds no state of its
own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from engine.evaluate.children import RULE_SET_LABEL
from engine.evaluate.world import TRIGGER_ANNOTATION, TRIGGER_UID_LABEL
from engine.kube.discovery import Resource
from engine.objects import GVK, Obj, labels_of
from engine.schemas import Node, SchemaSource
from engine.schemas.catalogue import builtin

from .store import MetadataIndex, index_by_label
from .watches import NotWatched, WatchManager

TRIGGER_INDEX = "edict-trigger-uid"
trigger_index = index_by_label(TRIGGER_UID_LABEL)
CHILD_OF_INDEX = "edict-child-of"
RULE_SET_INDEX = "edict-rule-set"
rule_set_index = index_by_label(RULE_SET_LABEL)
"""Objects Edict generated (its rule-set label): what the sweep for orphans reads."""


def _child_of(obj: Obj) -> list[str]:
    """Index values: the trigger a child was generated for (its annotation)."""
    # trigger_of(obj), inlined: asked of every object on every change
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not annotations:
        return []
    value = annotations.get(TRIGGER_ANNOTATION)
    return [value] if value and isinstance(value, str) else []


child_of_index = MetadataIndex("annotations", TRIGGER_ANNOTATION, _child_of)


class Scopes:
    """Which kinds are namespaced, from discovery's cache; unknown kinds answer None.

    `known` must answer without a request (`Cluster.known_resource`): this is asked on
    the evaluation path, by every worker at once.
    """

    def __init__(self, known: Callable[[GVK], Resource | None]) -> None:
        self._known = known

    def namespaced(self, gvk: GVK) -> bool | None:
        resource = self._known(gvk)
        return None if resource is None else resource.namespaced


class CacheWorld:
    def __init__(self, watches: WatchManager, scopes: Scopes,
                 schemas: SchemaSource | None = None) -> None:
        self._watches = watches
        self._scopes = scopes
        self._schemas = schemas

    def get(self, gvk: GVK, namespace: str, name: str) -> Obj | None:
        try:
            store = self._watches.informer(gvk).store
        except NotWatched:
            return None
        return store.get(namespace if self.namespaced(gvk) is not False else None, name)

    def namespaced(self, gvk: GVK) -> bool | None:
        return self._scopes.namespaced(gvk)

    def children(self, gvk: GVK, trigger_ref: str) -> Iterable[Obj]:
        try:
            store = self._watches.informer(gvk).store
        except NotWatched:
            return []
        return store.by_index(CHILD_OF_INDEX, trigger_ref)

    def schema(self, gvk: GVK) -> Node | None:
        live = self._schemas.for_kind(gvk) if self._schemas is not None else None
        return live if live is not None else builtin().for_kind(gvk)

    def list(self, gvk: GVK, *, labels: Mapping[str, str]) -> Iterable[Obj]:
        try:
            store = self._watches.informer(gvk).store
        except NotWatched:
            return []
        uid = labels.get(TRIGGER_UID_LABEL)
        candidates = store.by_index(TRIGGER_INDEX, uid) if uid else store.list()
        return [obj for obj in candidates
                if all(labels_of(obj).get(k) == v for k, v in labels.items())]
