"""The live engine: rule sets in, a converging cluster out.

`edict run` builds one `Manager` and calls `run()`. The manager
* watches RuleSets, ClusterRuleSets and Namespaces, and recompiles the engine whenever a
  rule set changes (`rulesets.py`), starting and stopping the informers of the kinds
  the rules name (ref-counted by `WatchManager`) and pruning children of rules that are
  gone (`prune.py`);
* lets `Router` (routing.py) turn informer events into queue keys;
* runs worker threads that hand keys to the `Reconciler` and act on its decision;
* writes rule-set status when it changes (`StatusWriter`), serves /healthz, /readyz and
  /metrics, and optionally runs only while holding a Lease (leader election);
* with a webhook address, serves AdmissionReviews on every replica and, while leading,
  keeps the two webhook configurations named `edict` in step with the rule sets
  (`webhooks.py`);
* on `stop()` finishes in-flight keys, writes the last statuses and releases the Lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from engine.evaluate.engine import Engine
from engine.kube.client import Cluster
from engine.kube.errors import ApiError
from engine.kube.openapi import LiveSchemas
from engine.objects import GVK, ObjectKey, meta
from engine.rules.model import RuleSetRef

from .admission.webhook_config import Endpoint
from .admission.webhooks import WebhookOptions, Webhooks
from .clock import Clock, RealClock
from .controller.concurrency import WriteGate
from .controller.dependencies import Dependencies
from .controller.events import Recorder
from .controller.queue import WorkQueue
from .controller.reconciler import (
    REFUSED_RETRY,
    Decision,
    Reconciler,
    generated_kinds,
)
from .controller.routing import Router
from .current import Current
from .health import HealthServer
from .leader import LeaderElector, LeaderSettings
from .metrics import EngineMetrics, ReconcileResult
from .ratelimit import Breaker
from .rulesets.apis import ApiInstaller
from .rulesets.compile import (
    CLUSTER_RULE_SET_GVK,
    NAMESPACE_GVK,
    RULE_SET_GVK,
    changed_kinds,
    compile_cluster_rule_sets,
    kind_exists,
    rule_kinds,
)
from .rulesets.prune import prune_orphans
from .rulesets.status_writer import StatusWriter
from .source.informer import InformerSettings
from .source.watches import NotWatched, WatchManager
from .source.world import CacheWorld, Scopes
from .status import StatusBoard

log = logging.getLogger(__name__)
ENGINE = "engine"  # the watch holder for everything the engine itself needs


@dataclass(frozen=True, kw_only=True)
class ManagerSettings:
    namespace: str | None = None
    workers: int = 16
    """Worker threads: the most writes ever in flight; how many are follows the server's
    answers (`concurrency.WriteGate`, starting at `initial_writes`)."""
    initial_writes: int = 4
    full_resync_every: int = 10
    """A resync reconciles only objects not known converged on their current version;
    every this many resyncs, everything (what no event can report, such as a changed
    schema, is caught within that time)."""
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
    own_namespace: str = "edict-system"
    """Edict's own namespace: never gated by its webhooks; holds the certificate Secret."""
    webhook_addr: tuple[str, int] | None = None
    """Serve AdmissionReviews here (every replica); None: no admission webhooks."""
    webhook_url: str | None = None
    """How the API server reaches the webhook; None: the edict-webhook Service."""
    webhook_service: str = "edict-webhook"
    webhook_cert_dir: str | None = None
    """tls.crt/tls.key (and ca.crt) to serve; None: Edict's own CA, in a Secret."""
    webhook_timeout: int = 3
    """The configurations' timeoutSeconds."""
    webhook_resync: float = 30.0
    """Seconds between re-reading the certificate Secret and checking the configurations
    for drift (a rule-set change syncs them at once)."""


class Manager:
    def __init__(self, cluster: Cluster, settings: ManagerSettings, *,
                 clock: Clock | None = None, registry: CollectorRegistry | None = None) -> None:
        self.cluster = cluster
        self.settings = settings
        self.clock = clock or RealClock()
        self.registry = registry or CollectorRegistry()
        self.metrics = EngineMetrics(self.registry)
        self.board = StatusBoard(now=lambda: datetime.now(UTC))
        self.metrics.count_violations(self.board.violations)
        self.dependencies = Dependencies()
        self.queue: WorkQueue[ObjectKey] = WorkQueue(clock=self.clock)
        self.metrics.queue_depth.set_function(lambda: len(self.queue))  # read when scraped
        self.watches = WatchManager(source=cluster, clock=self.clock,
                                    settings=InformerSettings(resync_period=settings.resync),
                                    namespace=settings.namespace,
                                    on_started=lambda informer: self.router.prepare(informer))
        self.breaker = Breaker(clock=self.clock, pause=self.queue.pause,
                               reconnect=self.watches.retry_now)
        cluster.observe_requests(self.metrics.api_request, self.breaker.observe)
        self.schemas = LiveSchemas(cluster)
        self.world = CacheWorld(self.watches, Scopes(cluster.known_resource), self.schemas)
        self.recorder = Recorder(cluster, instance=settings.identity,
                                 busy=lambda: len(self.queue) > 0)
        self.status_writer = StatusWriter(cluster, self.board)
        self._current = Current(Engine([]), {})
        self.write_gate = WriteGate(initial=min(settings.initial_writes, settings.workers),
                                    maximum=settings.workers)
        self.reconciler = Reconciler(cluster=cluster, watches=self.watches, world=self.world,
                                     current=lambda: self._current, board=self.board,
                                     dependencies=self.dependencies, metrics=self.metrics,
                                     recorder=self.recorder, requeue=self.queue.add,
                                     writes=self.write_gate, hold=self.queue.hold)
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self.apis = ApiInstaller(cluster, board=self.board, wait=self._stop.wait,
                                 clock=time.monotonic)  # spec.api CRDs (apis.py)
        self.router = Router(queue=self.queue, watches=self.watches,
                             dependencies=self.dependencies, reconciler=self.reconciler,
                             current=lambda: self._current,
                             rule_sets_changed=self._rebuild.set)
        self._leading = threading.Event()
        self._lost = threading.Event()
        self._requeue_everything = threading.Event()
        self._stopped = False
        self._ready = False
        self._threads: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []
        self._unknown: frozenset[GVK] = frozenset()
        self._failing: frozenset[GVK] = frozenset()  # kinds whose caches cannot list
        self._last_rebuild = 0.0
        self._last_sweep = 0.0
        self._resyncs = 0
        self._elector: LeaderElector | None = None
        self._servers: list[HealthServer] = []
        self.webhooks: Webhooks | None = None
        if settings.webhook_addr is not None:
            self.webhooks = Webhooks(cluster, WebhookOptions(
                address=settings.webhook_addr,
                endpoint=Endpoint(url=settings.webhook_url,
                                  service_namespace=settings.own_namespace,
                                  service_name=settings.webhook_service),
                own_namespace=settings.own_namespace, cert_dir=settings.webhook_cert_dir,
                timeout_seconds=settings.webhook_timeout, resync=settings.webhook_resync),
                current=lambda: self._current, world=self.world, metrics=self.metrics,
                loaded=lambda: self._ready, leading=self._leading.is_set)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        for address in {self.settings.health_addr, self.settings.metrics_addr} - {None}:
            assert address is not None
            server = HealthServer(host=address[0], port=address[1], registry=self.registry,
                                  ready=self.ready, alive=self.alive)
            server.start()
            self._servers.append(server)
        self.recorder.start()
        for gvk in (RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK):
            self.watches.acquire(gvk, ENGINE)
        self._rebuild.set()  # compile at start, leader or not (standbys are ready too)
        self._spawn(self._rebuild_loop, "rebuild")
        self._spawn(self._status_loop, "status")
        if self.webhooks is not None:
            self.webhooks.start()
        if self.settings.leader_elect:
            self._elector = LeaderElector(
                api=self.cluster, clock=self.clock,
                settings=LeaderSettings(namespace=self.settings.lease_namespace,
                                        name=self.settings.lease_name,
                                        identity=self.settings.identity),
                on_started_leading=self._start_leading,
                on_stopped_leading=self._lost_lease)
            self.cluster.fence_writes(self._elector.holds_lease)
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
            self.status_writer.flush()
        if self._elector is not None:
            self._elector.stop(release=True)
        for thread in self._threads:
            thread.join(timeout=10)
        self.watches.stop()
        self.recorder.stop()
        for server in self._servers:
            server.stop()
        if self.webhooks is not None:
            self.webhooks.stop()  # last: the API server may call until the very end

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
        if self.webhooks is not None:
            return self.webhooks.ready()
        return True, "ok"

    def alive(self) -> tuple[bool, str]:
        """Alive unless the webhook server, once started, has stopped serving."""
        return self.webhooks.alive() if self.webhooks is not None else (True, "ok")

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

    # -- rule sets ---------------------------------------------------------------------

    def _rebuild_loop(self) -> None:
        while not self._stop.is_set():
            fired = self._rebuild.wait(timeout=1.0)
            if self._stop.is_set():
                return
            recheck = (self._unknown or self._failing) and (
                time.monotonic() - self._last_rebuild > self.settings.recheck_unknown_kinds)
            if not fired and not recheck:
                if self._leading.is_set():
                    self.apis.retry()  # spec.api CRDs kept until their last object goes
                if self._leading.is_set() and self._current.rule_sets and (
                        self.clock.now() - self._last_sweep >= self.settings.resync):
                    try:  # at every resync, as the caches re-deliver everything
                        self._fetch_schemas(set(), refresh=True)
                        self._sweep(generated_kinds(self._current.engine))
                        self._resyncs += 1
                        if self._resyncs % self.settings.full_resync_every == 0:
                            self.reconciler.forget_converged()  # a full pass now and then
                    except Exception:
                        log.exception("sweeping for orphaned children failed")
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
        self.status_writer.forget(present)
        compiled = compile_cluster_rule_sets(objects, board=self.board,
                                             exists=kind_exists(self.cluster.resource_for))
        self._unknown = compiled.unknown_kinds
        if self._leading.is_set() and self.apis.sync(compiled.rule_sets, present=present):
            self._rebuild.set()  # a spec.api CRD was installed or changed: compile again
        old_kinds = self.watches.held_by(ENGINE) - {RULE_SET_GVK, CLUSTER_RULE_SET_GVK,
                                                     NAMESPACE_GVK}
        new_kinds = compiled.engine.watched_kinds() - compiled.unknown_kinds
        for gvk in new_kinds - old_kinds:
            self.watches.acquire(gvk, ENGINE)
        self._fetch_schemas(new_kinds, refresh=bool(new_kinds - old_kinds))
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
            self._sweep(generated_kinds(previous.engine) | generated_kinds(compiled.engine))
        for gvk in old_kinds - new_kinds:
            self.watches.release(gvk, ENGINE)
        self.metrics.watched_kinds.set(len(self.watches.watched()))
        self._ready = True
        if self._leading.is_set() and self.webhooks is not None:
            self.webhooks.sync()
        if self._requeue_everything.is_set():  # at start, or just became the leader
            self._requeue_everything.clear()
            self.router.enqueue(compiled.engine.trigger_kinds(), unless_converged=True)
        else:  # only the objects of the rule sets that changed
            self.router.enqueue(changed_kinds(previous.rule_sets, compiled.rule_sets),
                                unless_converged=True)

    def _fetch_schemas(self, kinds: set[GVK], *, refresh: bool) -> None:
        """Fetch (or, when new kinds are watched, refresh) the kinds' schemas from
        ``/openapi/v3`` before their objects are evaluated; evaluation never asks the
        server. Until a kind's schema is fetched, the shipped catalogue answers for it."""
        try:
            if refresh:
                self.schemas.refresh()
            self.schemas.ensure(kinds)
        except ApiError as error:
            log.warning("could not read the cluster's OpenAPI schemas (the shipped "
                        "catalogue of built-in kinds answers meanwhile): %s", error)

    def _sweep(self, kinds: set[GVK]) -> None:
        """Prune children whose rule, rule set or trigger is gone (`prune.py`)."""
        self._last_sweep = self.clock.now()
        prune_orphans(kinds, current=self._current, watches=self.watches,
                      api_for=self.reconciler.api_for)

    def _await_caches(self, kinds: set[GVK]) -> dict[GVK, str]:
        """Wait for the caches of `kinds`; return those that fail to list (e.g. 403),
        with why, as soon as every cache has either synced or failed."""
        deadline = time.monotonic() + self.settings.sync_timeout
        failing: dict[GVK, str] = {}
        for gvk in kinds:
            try:
                informer = self.watches.informer(gvk)
            except NotWatched:
                continue
            # in slices, so that stop() is not kept waiting by a cache that never lists
            while not informer.wait_synced(min(max(deadline - time.monotonic(), 0.0), 0.25),
                                           or_failing=True):
                if informer.last_error is not None or self._stop.is_set() or (
                        time.monotonic() >= deadline):
                    break
            if not informer.has_synced() and informer.last_error is not None:
                failing[gvk] = str(informer.last_error)
        return failing

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

    # -- rule-set status ---------------------------------------------------------------

    def _status_loop(self) -> None:
        while not self._stop.wait(self.settings.status_interval):
            if self._leading.is_set():
                self.status_writer.flush()

