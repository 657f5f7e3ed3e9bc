"""The live engine: rule sets in, a converging cluster out.

`edict run` builds one `Manager` and calls `run()`. The manager
* watches RuleSets, ClusterRuleSets and Namespaces, and recompiles the engine whenever a
  rule set changes (`rulesets.py`), starting and stopping the informers of the kinds
  the rules name (ref-counted by `WatchManager`) and pruning children of rules that are
  gone;
* turns informer events into queue keys: a trigger's own key, the trigger of a changed
  child (its `edict.dev/trigger` annotation), the triggers that looked up a changed
  object (`Dependencies`), the objects of a Namespace whose labels changed;
* runs worker threads that hand keys to the `Reconciler` and act on its decision;
* writes rule-set status when it changes, serves /healthz, /readyz and /metrics, and
  optionally runs only while holding a Lease (leader election);
* on `stop()` finishes in-flight keys, writes the last statuses and releases the Lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from engine.evaluate.children import (
    RULE_LABEL,
    RULE_SET_LABEL,
    RULE_SET_NAMESPACE_LABEL,
    TRIGGER_ANNOTATION,
    label_value,
)
from engine.evaluate.engine import Engine
from engine.kube.client import Cluster
from engine.kube.errors import ApiError, NotFound
from engine.objects import GVK, Obj, ObjectKey, key_of, labels_of, meta
from engine.rules.model import CLUSTER_RULE_SET, RULE_SET, Generate, Mode, RuleSet, RuleSetRef

from .clock import Clock, RealClock
from .dependencies import Dependencies
from .events import Recorder
from .health import HealthServer
from .informer import EventHandler, Informer, InformerSettings
from .leader import LeaderElector, LeaderSettings
from .metrics import EngineMetrics, ReconcileResult
from .queue import WorkQueue
from .reconciler import (
    CHILD_OF_INDEX,
    REFUSED_RETRY,
    Current,
    Decision,
    Reconciler,
    child_of_index,
    generated_kinds,
    owner_of,
)
from .rulesets import (
    CLUSTER_RULE_SET_GVK,
    NAMESPACE_GVK,
    RULE_SET_GVK,
    compile_cluster_rule_sets,
    kind_exists,
    rule_kinds,
)
from .status import StatusBoard
from .watches import NotWatched, WatchManager
from .world import TRIGGER_INDEX, CacheWorld, Scopes, trigger_index

log = logging.getLogger(__name__)
ENGINE = "engine"  # the watch holder for everything the engine itself needs


@dataclass(frozen=True, kw_only=True)
class ManagerSettings:
    namespace: str | None = None
    workers: int = 4
    resync: float = 300.0
    leader_elect: bool = False
    lease_name: str = "edict-engine"
    lease_namespace: str = "edict-system"
    identity: str = "edict"
    health_addr: tuple[str, int] | None = None
    metrics_addr: tuple[str, int] | None = None
    status_interval: float = 1.0
    sync_timeout: float = 60.0
    recheck_unknown_kinds: float = 30.0
    refused_retry: float = REFUSED_RETRY
    """Seconds before retrying a write the API server refused (403, 400...)."""


class Manager:
    def __init__(self, cluster: Cluster, settings: ManagerSettings, *,
                 clock: Clock | None = None, registry: CollectorRegistry | None = None) -> None:
        self.cluster = cluster
        self.settings = settings
        self.clock = clock or RealClock()
        self.registry = registry or CollectorRegistry()
        self.metrics = EngineMetrics(self.registry)
        self.board = StatusBoard(now=lambda: datetime.now(UTC))
        self.dependencies = Dependencies()
        self.queue: WorkQueue[ObjectKey] = WorkQueue(clock=self.clock)
        self.watches = WatchManager(source=cluster, clock=self.clock,
                                    settings=InformerSettings(resync_period=settings.resync),
                                    namespace=settings.namespace, on_started=self._prepare)
        self.world = CacheWorld(self.watches, Scopes(cluster.resource_for))
        self.recorder = Recorder(cluster, instance=settings.identity)
        self._current = Current(Engine([]), {})
        self.reconciler = Reconciler(cluster=cluster, watches=self.watches, world=self.world,
                                     current=lambda: self._current, board=self.board,
                                     dependencies=self.dependencies, metrics=self.metrics,
                                     recorder=self.recorder)
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self._leading = threading.Event()
        self._lost = threading.Event()
        self._requeue_everything = threading.Event()
        self._stopped = False
        self._ready = False
        self._threads: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []
        self._written: dict[RuleSetRef, Any] = {}
        self._unknown: frozenset[GVK] = frozenset()
        self._failing: frozenset[GVK] = frozenset()  # kinds whose caches cannot list
        self._last_rebuild = 0.0
        self._elector: LeaderElector | None = None
        self._servers: list[HealthServer] = []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        for address in {self.settings.health_addr, self.settings.metrics_addr} - {None}:
            assert address is not None
            server = HealthServer(host=address[0], port=address[1], registry=self.registry,
                                  ready=self.ready)
            server.start()
            self._servers.append(server)
        self.recorder.start()
        for gvk in (RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK):
            self.watches.acquire(gvk, ENGINE)
        self._rebuild.set()  # compile at start, leader or not (standbys are ready too)
        self._spawn(self._rebuild_loop, "rebuild")
        self._spawn(self._status_loop, "status")
        if self.settings.leader_elect:
            self._elector = LeaderElector(
                api=self.cluster, clock=self.clock,
                settings=LeaderSettings(namespace=self.settings.lease_namespace,
                                        name=self.settings.lease_name,
                                        identity=self.settings.identity),
                on_started_leading=self._start_leading,
                on_stopped_leading=self._lost_lease)
            self._elector.start()
        else:
            self._start_leading()

    def stop(self) -> None:
        """Graceful: finish in-flight keys, write statuses, release the Lease."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._rebuild.set()
        self.queue.shutdown()
        for thread in self._workers:
            thread.join(timeout=30)
        if self._leading.is_set():
            self._flush_statuses()
        if self._elector is not None:
            self._elector.stop(release=True)
        for thread in self._threads:
            thread.join(timeout=10)
        self.watches.stop()
        self.recorder.stop()
        for server in self._servers:
            server.stop()

    def request_stop(self) -> None:
        """Ask `run()` to stop (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Block until `stop()` (a signal handler calls it); 1 if the lease was lost."""
        self.start()
        while not self._stop.wait(0.5):
            pass
        self.stop()
        return 1 if self._lost.is_set() else 0

    def ready(self) -> tuple[bool, str]:
        """Ready once the engine's own caches synced and the rule sets were compiled;
        a kind one rule set cannot list is reported on that rule set, not here."""
        own = {RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK}
        unsynced = self.watches.unsynced() & own
        if unsynced or not self._ready:
            waiting = ", ".join(str(g) for g in sorted(unsynced)) or "rule sets"
            return False, f"waiting for {waiting}"
        return True, "ok"

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_leading(self) -> None:
        self._requeue_everything.set()
        self._leading.set()
        self.metrics.leader.set(1)
        self._rebuild.set()
        for number in range(self.settings.workers):
            thread = threading.Thread(target=self._work, name=f"worker-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def _lost_lease(self) -> None:
        self._leading.clear()
        self.metrics.leader.set(0)
        if self._stopped:  # we released it ourselves, shutting down
            return
        log.error("lost the leader lease: stopping (another instance takes over)")
        self._lost.set()
        self._stop.set()

    # -- informers and events ----------------------------------------------------------

    def _prepare(self, informer: Informer) -> None:
        informer.add_index(TRIGGER_INDEX, trigger_index)
        informer.add_index(CHILD_OF_INDEX, child_of_index)
        gvk = informer.gvk
        if gvk in (RULE_SET_GVK, CLUSTER_RULE_SET_GVK):
            def changed(*_: Obj) -> None:
                self._rebuild.set()
            informer.add_handler(EventHandler(on_add=changed, on_update=self._rule_set_update,
                                              on_delete=changed))
            return
        informer.add_handler(EventHandler(
            on_add=lambda obj: self._enqueue_for(gvk, obj),
            on_update=lambda old, new: self._enqueue_for(gvk, new, old),
            on_delete=lambda obj: self._enqueue_for(gvk, obj)))

    def _rule_set_update(self, old: Obj, new: Obj) -> None:
        if old is not new and (meta(old).get("generation") != meta(new).get("generation")
                               or old.get("spec") != new.get("spec")):
            self._rebuild.set()

    def _enqueue_for(self, gvk: GVK, obj: Obj, old: Obj | None = None) -> None:
        engine = self._current.engine
        key = key_of(obj)
        if gvk in engine.trigger_kinds() and not (
                old is not None and old is not obj and self.reconciler.is_own_write(
                    key, str(meta(obj).get("resourceVersion") or ""))):
            self.queue.add(key)
        trigger = (meta(obj).get("annotations") or {}).get(TRIGGER_ANNOTATION)
        if trigger and RULE_SET_LABEL in labels_of(obj):
            parsed = parse_trigger(trigger)
            if parsed is not None:
                self.queue.add(parsed)
        for dependent in self.dependencies.dependents(key):
            self.queue.add(dependent)
        if gvk == NAMESPACE_GVK and (old is None or (old is not obj and labels_of(old)
                                                     != labels_of(obj))):
            self._enqueue_namespace(str(meta(obj).get("name")))

    def _enqueue_namespace(self, namespace: str) -> None:
        for gvk in self._current.engine.trigger_kinds():
            for obj in self.watches.cached(gvk, namespace):
                self.queue.add(key_of(obj))

    def _enqueue_all(self, kinds: set[GVK]) -> None:
        for gvk in kinds:
            for obj in self.watches.cached(gvk):
                self.queue.add(key_of(obj))

    # -- rule sets ---------------------------------------------------------------------

    def _rebuild_loop(self) -> None:
        while not self._stop.is_set():
            fired = self._rebuild.wait(timeout=1.0)
            if self._stop.is_set():
                return
            recheck = (self._unknown or self._failing) and (
                time.monotonic() - self._last_rebuild > self.settings.recheck_unknown_kinds)
            if not fired and not recheck:
                continue
            self._rebuild.clear()
            try:
                self.rebuild()
            except Exception:  # a bug must not kill the loop; the next change retries
                log.exception("recompiling rule sets failed")

    def rebuild(self) -> None:
        self._last_rebuild = time.monotonic()
        if not self.watches.wait_synced([RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK],
                                        timeout=self.settings.sync_timeout):
            self._rebuild.set()
            return
        objects = [*self.watches.informer(RULE_SET_GVK).store.list(),
                   *self.watches.informer(CLUSTER_RULE_SET_GVK).store.list()]
        present = {RuleSetRef(str(o.get("kind")), str(meta(o).get("namespace") or ""),
                              str(meta(o).get("name"))) for o in objects}
        for ref in set(self._written) - present:
            self.board.removed(ref)
            self._written.pop(ref, None)
        compiled = compile_cluster_rule_sets(objects, board=self.board,
                                             exists=kind_exists(self.cluster.resource_for))
        self._unknown = compiled.unknown_kinds
        old_kinds = self.watches.held_by(ENGINE) - {RULE_SET_GVK, CLUSTER_RULE_SET_GVK,
                                                     NAMESPACE_GVK}
        new_kinds = compiled.engine.watched_kinds() - compiled.unknown_kinds
        for gvk in new_kinds - old_kinds:
            self.watches.acquire(gvk, ENGINE)
        failing = self._await_caches(new_kinds)
        self._failing = frozenset(failing)
        for ref, rule_set in compiled.rule_sets.items():
            self.board.access(ref, {
                rule: "; ".join(f"cannot list/watch {gvk}: {failing[gvk]}"
                                for gvk in sorted(kinds) if gvk in failing)
                for rule, kinds in rule_kinds(rule_set).items()
                if any(gvk in failing for gvk in kinds)})
        previous = self._current
        self._current = Current(compiled.engine, compiled.rule_sets)
        for ref in compiled.rule_sets:
            self.board.mark_dirty(ref)
        if self._leading.is_set():
            self._prune_orphans(generated_kinds(previous.engine)
                                | generated_kinds(compiled.engine))
        for gvk in old_kinds - new_kinds:
            self.watches.release(gvk, ENGINE)
        self.metrics.watched_kinds.set(len(self.watches.watched()))
        self._ready = True
        if self._requeue_everything.is_set():  # at start, or just became the leader
            self._requeue_everything.clear()
            self._enqueue_all(compiled.engine.trigger_kinds())
        else:  # only the objects of the rule sets that changed
            self._enqueue_all(changed_kinds(previous.rule_sets, compiled.rule_sets))

    def _await_caches(self, kinds: set[GVK]) -> dict[GVK, str]:
        """Wait for the caches of `kinds`; return those that fail to list (e.g. 403),
        with why, as soon as every cache has either synced or failed."""
        deadline = time.monotonic() + self.settings.sync_timeout
        while True:
            failing: dict[GVK, str] = {}
            pending = False
            for gvk in kinds:
                try:
                    informer = self.watches.informer(gvk)
                except NotWatched:
                    continue
                if informer.has_synced():
                    continue
                if informer.last_error is not None:
                    failing[gvk] = str(informer.last_error)
                else:
                    pending = True
            if not pending or time.monotonic() > deadline or self._stop.is_set():
                return failing
            time.sleep(0.05)

    def _prune_orphans(self, kinds: set[GVK]) -> None:
        """Delete children of generate rules that no longer exist (or stopped syncing)."""
        wanted: set[tuple[str, str, str]] = set()
        suspended: set[tuple[str, str]] = set()
        for ref, rule_set in self._current.rule_sets.items():
            ident = (label_value(ref.name), ref.namespace if ref.namespaced else "")
            if rule_set.mode is not Mode.ENFORCE:
                suspended.add(ident)
            for rule in rule_set.rules:
                if isinstance(rule.action, Generate) and rule.action.synchronize:
                    wanted.add((*ident, rule.name))
                elif isinstance(rule.action, Generate):
                    suspended.add(ident)
        for gvk in kinds:
            for obj in self.watches.cached(gvk):
                labels = labels_of(obj)
                if RULE_SET_LABEL not in labels:
                    continue
                ident = (labels[RULE_SET_LABEL], labels.get(RULE_SET_NAMESPACE_LABEL, ""))
                if ident in suspended or (*ident, labels.get(RULE_LABEL, "")) in wanted:
                    continue
                log.info("pruning %s: its rule is gone", key_of(obj))
                # As the rule set's ServiceAccount when it still exists and names one;
                # a deleted rule set's children are pruned by the engine itself.
                api = self.reconciler.api_for(owner_of(obj, self._current), self._current)
                try:
                    api.delete(gvk, meta(obj).get("namespace"), meta(obj)["name"],
                               uid=meta(obj).get("uid"))
                except NotFound:
                    pass
                except ApiError as error:
                    log.warning("could not prune %s: %s", key_of(obj), error)

    # -- workers -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            key = self.queue.get(timeout=0.5)
            if key is None:
                if self.queue.shutting_down:
                    return
                continue
            started = time.monotonic()
            try:
                decision = self.reconciler.reconcile(key)
            except Exception:  # a bug in one reconcile must not kill the worker
                log.exception("reconciling %s failed", key)
                decision = Decision.REQUEUE
            finally:
                self.queue.done(key)
            elapsed = time.monotonic() - started
            if decision is Decision.DONE:
                self.queue.forget(key)
                self.metrics.reconciled(ReconcileResult.SUCCESS, elapsed)
            elif decision is Decision.REQUEUE:
                self.queue.add_rate_limited(key)
                self.metrics.reconciled(ReconcileResult.REQUEUE, elapsed)
            else:
                self.queue.add_after(key, self.settings.refused_retry)
                self.metrics.reconciled(ReconcileResult.ERROR, elapsed)
            self.metrics.queue_depth.set(len(self.queue))

    # -- rule-set status ---------------------------------------------------------------

    def _status_loop(self) -> None:
        while not self._stop.wait(self.settings.status_interval):
            if self._leading.is_set():
                self._flush_statuses()

    def _flush_statuses(self) -> None:
        for ref in self.board.dirty():
            body = self.board.render(ref)
            if body is None or self._written.get(ref) == body:
                continue
            gvk = RULE_SET_GVK if ref.kind == RULE_SET else CLUSTER_RULE_SET_GVK
            assert ref.kind in (RULE_SET, CLUSTER_RULE_SET)
            try:
                self.cluster.patch_merge_status(gvk, ref.namespace or None, ref.name,
                                                {"status": body})
                self._written[ref] = body
            except NotFound:
                self.board.removed(ref)
            except ApiError as error:
                log.warning("could not write the status of %s: %s", ref, error)
                self.board.mark_dirty(ref)


def changed_kinds(before: dict[RuleSetRef, RuleSet], after: dict[RuleSetRef, RuleSet]
                  ) -> set[GVK]:
    """Trigger kinds of the rule sets that were added, changed or removed."""
    kinds: set[GVK] = set()
    for ref in before.keys() | after.keys():
        old, new = before.get(ref), after.get(ref)
        if old != new:
            for rule_set in (old, new):
                if rule_set is not None:
                    kinds.update(k for rule in rule_set.rules for k in rule.match.kinds)
    return kinds


def parse_trigger(value: str) -> ObjectKey | None:
    """`apps/v1/Deployment/ns/name` (or `v1/Namespace//name`) back into a key."""
    parts = value.rsplit("/", 3)
    if len(parts) != 4:
        return None
    api_version, kind, namespace, name = parts
    return ObjectKey(GVK.of(api_version, kind), namespace, name)
