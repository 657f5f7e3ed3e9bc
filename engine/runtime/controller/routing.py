"""From informer events to queue keys: which objects an event concerns.

The manager registers `Router.prepare` with the `WatchManager`, so it runs for every
informer started. An event on an
object queues: the object itself when rules match its kind (except the watch echo of the
engine's own write, see `echoes.py`); its trigger when it is a generated
child (the `edict.dev/trigger` annotation); the triggers that looked it up
(`Dependencies`); and, for a Namespace whose labels changed, every trigger in it
(namespaceSelector, namespaceObject). Events on RuleSets and ClusterRuleSets ask the
rule-set controller to recompile instead (`rule_sets_changed`). Handlers run on
informer threads and only queue keys.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from engine.evaluate.children import RULE_SET_LABEL, TRIGGER_ANNOTATION, parse_trigger_ref
from engine.objects import GVK, Obj, ObjectKey, labels_of, meta

from ..current import Current
from ..kinds import CLUSTER_RULE_SET_GVK, NAMESPACE_GVK, RULE_SET_GVK
from ..source.informer import EventHandler, Informer
from ..source.watches import WatchManager
from ..source.world import (
    CHILD_OF_INDEX,
    RULE_SET_INDEX,
    TRIGGER_INDEX,
    child_of_index,
    rule_set_index,
    trigger_index,
)
from .dependencies import Dependencies
from .queue import WorkQueue
from .reconciler import Reconciler

_NAMESPACE = frozenset({NAMESPACE_GVK})  # a set: its hash decides, no field comparison


class Router:
    def __init__(self, *, queue: WorkQueue[ObjectKey], watches: WatchManager,
                 dependencies: Dependencies, reconciler: Reconciler,
                 current: Callable[[], Current], rule_sets_changed: Callable[[], None]
                 ) -> None:
        self._queue = queue
        self._watches = watches
        self._dependencies = dependencies
        self._reconciler = reconciler
        self._current = current
        self._rule_sets_changed = rule_sets_changed

    def prepare(self, informer: Informer) -> None:
        """Indexes and handlers for a new informer, before its first list."""
        informer.add_index(TRIGGER_INDEX, trigger_index)
        informer.add_index(CHILD_OF_INDEX, child_of_index)
        informer.add_index(RULE_SET_INDEX, rule_set_index)
        gvk = informer.gvk
        if gvk in (RULE_SET_GVK, CLUSTER_RULE_SET_GVK):
            def changed(*_: Obj) -> None:
                self._rule_sets_changed()
            informer.add_handler(EventHandler(on_add=changed, on_update=self._rule_set_update,
                                              on_delete=changed))
            return
        informer.add_handler(EventHandler(
            on_add=lambda obj: self.route(gvk, obj),
            on_update=lambda old, new: self.route(gvk, new, old),
            on_delete=lambda obj: self.route(gvk, obj),
            # a resync of a state already found converged: nothing to do (and nothing
            # to decode from the cache)
            resync_wanted=lambda key, version: not self._reconciler.known_converged(
                ObjectKey(gvk, *key), version)))

    def _rule_set_update(self, old: Obj, new: Obj) -> None:
        # Our own status writes and resyncs change nothing that needs recompiling.
        if old is not new and (meta(old).get("generation") != meta(new).get("generation")
                               or old.get("spec") != new.get("spec")):
            self._rule_sets_changed()

    def route(self, gvk: GVK, obj: Obj, old: Obj | None = None) -> None:
        metadata = meta(obj)  # read once: what key_of, labels_of... would read
        # `gvk`: the informer's, the kind of everything it delivers (`GVK.of`'s one
        # instance). One string per namespace: keys outlive the event (the converged
        # memo and the status board keep one per object), and each event brings its own.
        key = ObjectKey(gvk, sys.intern(str(metadata.get("namespace") or "")),
                        str(metadata.get("name") or ""))
        if old is obj and self._reconciler.known_converged(
                key, str(metadata.get("resourceVersion") or "")):
            return  # a resync of a state already found converged: nothing to do
        if gvk in self._current().engine.trigger_kinds() and not (
                old is not None and old is not obj and self._reconciler.own_writes.is_echo(
                    key, str(metadata.get("resourceVersion") or ""))):
            self._queue.add(key)
        trigger = (metadata.get("annotations") or {}).get(TRIGGER_ANNOTATION)
        if trigger and RULE_SET_LABEL in labels_of(obj):
            parsed = parse_trigger_ref(trigger)
            if parsed is not None:
                self._queue.add(ObjectKey(*parsed))
        for dependent in self._dependencies.dependents(key):
            self._queue.add(dependent)
        if gvk in _NAMESPACE and (old is None or (old is not obj and labels_of(old)
                                                     != labels_of(obj))):
            self.enqueue(self._current().engine.trigger_kinds(),
                         namespace=str(meta(obj).get("name")))

    def enqueue(self, kinds: Iterable[GVK], *, namespace: str | None = None,
                unless_converged: bool = False) -> None:
        """Queue every cached object of `kinds` (of one namespace, if given); with
        `unless_converged`, not those the rules now loaded already found converged at
        their cached version (after a recompile: a cache still filling then delivers
        its objects itself, and some were reconciled before this runs)."""
        for gvk in kinds:
            for (ns, name), version in sorted(self._watches.cached_versions(gvk, namespace)):
                key = ObjectKey(gvk, ns, name)
                if not (unless_converged and self._reconciler.known_converged(key, version)):
                    self._queue.add(key)
