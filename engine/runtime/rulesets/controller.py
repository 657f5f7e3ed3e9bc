"""The rule-set controller: compile rule sets, watch what they name, prune, write status.

The manager builds one `RuleSetController` and starts it on every replica (a standby
compiles too, so that it is ready and its admission webhook answers). It runs two
threads:

* **rebuild**: waits on `changed` (set by the router on any RuleSet or ClusterRuleSet
  event, and by `requeue_everything`), then `rebuild()`s: compile every rule set
  (`compile.py`), install the CRDs of `spec.api` (`apis.py`, leader only), fetch the
  schemas of the kinds the rules now name, acquire their watches and release the others
  (holder `ENGINE` of the `WatchManager`), wait for their caches (a kind that cannot be
  listed is reported on the rule sets naming it), publish the new `Current` in `Loaded`
  (before the new caches list when no rule reads one of them, or a cache still
  listing, but as its trigger: their objects are then queued as they are listed, not
  after), prune the children no rule produces any more (`prune.py`, leader only), sync
  the admission webhooks (`on_compiled`) and queue the objects of the rule sets that
  changed (`enqueue`). Between changes it sweeps once per `resync` (leader only), and
  recompiles every `recheck_unknown_kinds` seconds while a kind is unknown or unlisted.
* **status**: every `status_interval`, while leading, writes what changed in the rule
  sets' status (`status_writer.py`).

Its state (`_unknown`, `_failing`, the sweep and rebuild times) is only touched by the
rebuild thread; the loaded engine is published through `Loaded`. Time comes from the
injected clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.evaluate.engine import Engine
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.kube.client import Cluster
from engine.kube.errors import ApiError
from engine.kube.openapi import LiveSchemas
from engine.objects import GVK, meta
from engine.rules.model import RuleSetRef

from ..clock import Clock
from ..current import Current, Loaded
from ..kinds import CLUSTER_RULE_SET_GVK, ENGINE_KINDS, NAMESPACE_GVK, RULE_SET_GVK
from ..metrics import EngineMetrics
from ..source.watches import NotWatched, WatchManager
from ..status import StatusBoard
from ..writer import Writer
from .apis import ApiInstaller
from .compile import (
    Compiled,
    changed_kinds,
    compile_cluster_rule_sets,
    kind_exists,
    rule_kinds,
)
from .prune import prune_orphans
from .status_writer import StatusWriter

log = logging.getLogger(__name__)
ENGINE = "engine"  # the watch holder for everything the engine itself needs


@dataclass(frozen=True, kw_only=True)
class RuleSetSettings:
    resync: float = 300.0
    full_resync_every: int = 10
    sync_timeout: float = 60.0
    recheck_unknown_kinds: float = 30.0
    status_interval: float = 1.0
    limits: Limits = DEFAULT_LIMITS
    """What the rules' CEL programs and templates may do (engine.evaluate.limits)."""


class RuleSetController:
    def __init__(self, cluster: Cluster, settings: RuleSetSettings, *, clock: Clock,
                 watches: WatchManager, loaded: Loaded, board: StatusBoard,
                 writer: Writer, schemas: LiveSchemas, metrics: EngineMetrics,
                 changed: threading.Event, leading: Callable[[], bool],
                 enqueue: Callable[[set[GVK]], None],
                 forget_converged: Callable[[], None],
                 rules_replaced: Callable[[Engine, Engine, set[GVK]], None],
                 on_compiled: Callable[[], None] = lambda: None) -> None:
        self._cluster = cluster
        self._settings = settings
        self._clock = clock
        self._watches = watches
        self._loaded = loaded
        self._board = board
        self._writer = writer
        self._schemas = schemas
        self._metrics = metrics
        self._changed = changed
        self._leading = leading
        self._enqueue = enqueue
        self._forget_converged = forget_converged
        self._rules_replaced = rules_replaced  # before publishing: what still holds
        self._on_compiled = on_compiled
        self._stop = threading.Event()
        self.status_writer = StatusWriter(writer, board, clock=clock)
        self.apis = ApiInstaller(cluster, board=board, wait=self._stop.wait,
                                 clock=clock.now)  # spec.api CRDs (apis.py)
        self._requeue_all = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unknown: frozenset[GVK] = frozenset()
        self._failing: frozenset[GVK] = frozenset()  # kinds whose caches cannot list
        self._last_rebuild = 0.0
        self._last_sweep = 0.0
        self._resyncs = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        for gvk in (RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK):
            self._watches.acquire(gvk, ENGINE)
        self._changed.set()  # compile at start, leader or not (standbys are ready too)
        self._spawn(self._rebuild_loop, "rebuild")
        self._spawn(self._status_loop, "status")

    def signal_stop(self) -> None:
        """Wake the threads and ask them to end (`join` waits for them)."""
        self._stop.set()
        self._changed.set()

    def join(self, timeout: float = 10.0) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)

    def requeue_everything(self) -> None:
        """At the next rebuild, queue every trigger, not only those of changed rule sets
        (at start, and when this replica becomes the leader)."""
        self._requeue_all.set()
        self._changed.set()

    def flush_status(self) -> None:
        self.status_writer.flush()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- loops -------------------------------------------------------------------------

    def _rebuild_loop(self) -> None:
        while not self._stop.is_set():
            fired = self._changed.wait(timeout=1.0)
            if self._stop.is_set():
                return
            recheck = (self._unknown or self._failing) and (
                self._clock.now() - self._last_rebuild > self._settings.recheck_unknown_kinds)
            if not fired and not recheck:
                self._idle()
                continue
            self._changed.clear()
            try:
                self.rebuild()
            except Exception:  # a bug must not kill the loop; the next change retries
                log.exception("recompiling rule sets failed")

    def _idle(self) -> None:
        """Between changes: the leader retries `spec.api` CRDs and, once per resync,
        sweeps for orphaned children."""
        if not self._leading():
            return
        self.apis.retry()  # spec.api CRDs kept until their last object goes
        current = self._loaded.get()
        if current.rule_sets and (
                self._clock.now() - self._last_sweep >= self._settings.resync):
            try:  # at every resync, as the caches re-deliver everything
                self._fetch_schemas(set(), refresh=True)
                self._sweep(current.engine.generated_kinds())
                self._resyncs += 1
                if self._resyncs % self._settings.full_resync_every == 0:
                    self._forget_converged()  # a full pass now and then
            except Exception:
                log.exception("sweeping for orphaned children failed")

    def _status_loop(self) -> None:
        while not self._stop.wait(self._settings.status_interval):
            if self._leading():
                self.status_writer.flush()

    # -- one rebuild -------------------------------------------------------------------

    def rebuild(self) -> None:
        self._last_rebuild = started = self._clock.now()
        if not self._watches.wait_synced(ENGINE_KINDS, timeout=self._settings.sync_timeout):
            self._changed.set()
            return
        steps = _Steps(self._clock, started)
        objects = [*self._watches.informer(RULE_SET_GVK).store.list(),
                   *self._watches.informer(CLUSTER_RULE_SET_GVK).store.list()]
        present = {RuleSetRef(str(o.get("kind")), str(meta(o).get("namespace") or ""),
                              str(meta(o).get("name"))) for o in objects}
        self.status_writer.forget(present)
        compiled = compile_cluster_rule_sets(objects, board=self._board,
                                             exists=kind_exists(self._cluster.resource_for),
                                             limits=self._settings.limits)
        self._unknown = compiled.unknown_kinds
        steps.done("compile")
        leading = self._leading()
        if leading and self.apis.sync(compiled.rule_sets, present=present):
            self._changed.set()  # a spec.api CRD was installed or changed: compile again
        old_kinds = self._watches.held_by(ENGINE) - ENGINE_KINDS
        new_kinds = compiled.engine.watched_kinds() - compiled.unknown_kinds
        self._fetch_schemas(new_kinds, refresh=bool(new_kinds - old_kinds))
        steps.done("schemas")
        previous = self._loaded.get()
        changed = changed_kinds(previous.rule_sets, compiled.rule_sets)
        # Caches this rebuild starts. When no rule reads one of them, or any other cache
        # still listing, but as its trigger, the rules are published before those
        # caches list: each object is then queued as its page arrives (a first write
        # after one page, not after the whole list) and evaluated against caches that
        # are complete for all it reads.
        fresh = new_kinds - self._watches.watched()
        early = (fresh | self._watches.unsynced()).isdisjoint(compiled.engine.read_kinds())
        if early:
            self._publish(previous, compiled, changed)
        for gvk in new_kinds - old_kinds:
            self._watches.acquire(gvk, ENGINE)
        failing = self._await_caches(new_kinds)
        steps.done("caches")
        self._failing = frozenset(failing)
        for ref, rule_set in compiled.rule_sets.items():
            self._board.access(ref, {
                rule: "; ".join(f"cannot list/watch {gvk}: {failing[gvk]}"
                                for gvk in sorted(kinds) if gvk in failing)
                for rule, kinds in rule_kinds(rule_set).items()
                if any(gvk in failing for gvk in kinds)})
        if not early:
            self._publish(previous, compiled, changed)
        for ref in compiled.rule_sets:
            self._board.mark_dirty(ref)
        if self._leading():
            self._sweep(previous.engine.generated_kinds() | compiled.engine.generated_kinds())
        steps.done("sweep")
        for gvk in old_kinds - new_kinds:
            self._watches.release(gvk, ENGINE)
        steps.done("unwatch")
        self._metrics.watched_kinds.set(len(self._watches.watched()))
        self._loaded.mark_ready()
        if self._leading():
            self._on_compiled()
            steps.done("admission")
        log.info("rule sets compiled: %d loaded, %d kinds watched; %s",
                 len(compiled.rule_sets), len(new_kinds), steps)
        # the objects of fresh caches listed under these rules were queued as they came
        listed = fresh if early else set()
        if self._requeue_all.is_set():  # at start, or just became the leader
            self._requeue_all.clear()
            self._enqueue(set(compiled.engine.trigger_kinds()) - listed)
        else:  # only the objects of the rule sets that changed
            self._enqueue(changed - listed)

    def _publish(self, previous: Current, compiled: Compiled,
                 changed: set[GVK]) -> None:
        self._rules_replaced(previous.engine, compiled.engine, changed)
        self._loaded.publish(Current(compiled.engine, compiled.rule_sets))

    def _fetch_schemas(self, kinds: set[GVK], *, refresh: bool) -> None:
        """Fetch (or, when new kinds are watched, refresh) the kinds' schemas from
        ``/openapi/v3`` before their objects are evaluated; evaluation never asks the
        server. Until a kind's schema is fetched, the shipped catalogue answers for it."""
        try:
            if refresh:
                self._schemas.refresh()
            self._schemas.ensure(kinds)
        except ApiError as error:
            log.warning("could not read the cluster's OpenAPI schemas (the shipped "
                        "catalogue of built-in kinds answers meanwhile): %s", error)

    def _sweep(self, kinds: set[GVK]) -> None:
        """Prune children whose rule, rule set or trigger is gone (`prune.py`)."""
        self._last_sweep = self._clock.now()
        prune_orphans(kinds, current=self._loaded.get(), watches=self._watches,
                      writer=self._writer)

    def _await_caches(self, kinds: set[GVK]) -> dict[GVK, str]:
        """Wait for the caches of `kinds`; return those that fail to list (e.g. 403),
        with why, as soon as every cache has either synced or failed."""
        deadline = self._clock.now() + self._settings.sync_timeout
        failing: dict[GVK, str] = {}
        for gvk in kinds:
            try:
                informer = self._watches.informer(gvk)
            except NotWatched:
                continue
            # in slices, so that stop() is not kept waiting by a cache that never lists
            while not informer.wait_synced(
                    min(max(deadline - self._clock.now(), 0.0), 0.25), or_failing=True):
                if informer.last_error is not None or self._stop.is_set() or (
                        self._clock.now() >= deadline):
                    break
            if not informer.has_synced() and informer.last_error is not None:
                failing[gvk] = str(informer.last_error)
        return failing


class _Steps:
    """How long each step of a rebuild took, for its log line (a slow rule-set change
    says where the time went: compiling, the OpenAPI schemas, a new kind's list...)."""

    def __init__(self, clock: Clock, started: float) -> None:
        self._clock = clock
        self._last = started
        self._taken: list[tuple[str, float]] = []

    def done(self, step: str) -> None:
        now = self._clock.now()
        self._taken.append((step, now - self._last))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{step} {seconds:.2f}s" for step, seconds in self._taken)
