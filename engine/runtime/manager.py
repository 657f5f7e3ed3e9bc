"""The live engine: rule sets in, a converging cluster out. The manager only wires.

`edict run` builds one `Manager` and calls `run()`. The manager is the one module of
the runtime that imports its parts (an import-linter contract checks it); it builds
them, hands each what it needs, starts them and stops them:

* the *source* (`source/`): a `WatchManager` of informers over the API server and the
  `CacheWorld` evaluation reads from;
* the *object controller* (`controller/`): the `Router` turns informer events into
  keys of one `WorkQueue`; `ObjectController` workers give each key to the
  `Reconciler`, which evaluates and writes through the one `Writer`;
* the *rule-set controller* (`rulesets/`): recompiles when a rule set changes, starts
  and stops the informers the rules need, prunes orphaned children and writes rule-set
  status;
* *admission* (`admission/`, with a webhook address): AdmissionReviews answered on
  every replica; the leader keeps the webhook configurations in step;
* leader election (`leader.py`: the object workers, pruning, status and the webhook
  configurations only run while this replica holds the Lease), /healthz, /readyz and
  /metrics (`health.py`).

Two pieces of state cross the parts, each with one owner: the loaded engine (`Loaded`,
published by the rule-set controller) and the "rule sets changed" signal (set by the
router, consumed by the rule-set controller). `stop()` finishes in-flight keys, writes
the last statuses and releases the Lease. docs/architecture.md draws the map.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import partial

from prometheus_client import CollectorRegistry

from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.kube.answers import Answers
from engine.kube.client import Cluster
from engine.kube.openapi import LiveSchemas
from engine.objects import ObjectKey

from .admission.memo import AdmissionMemo
from .admission.webhook_config import Endpoint
from .admission.webhooks import WebhookOptions, Webhooks
from .clock import Clock, RealClock
from .concurrency import WriteGate
from .controller.dependencies import Dependencies
from .controller.events import Recorder
from .controller.objects import ObjectController
from .controller.queue import WorkQueue
from .controller.reconciler import REFUSED_RETRY, Reconciler
from .controller.routing import Router
from .current import Loaded
from .health import HealthServer
from .kinds import ENGINE_KINDS
from .leader import LeaderElector, LeaderSettings
from .metrics import EngineMetrics
from .ratelimit import Breaker
from .rulesets.controller import RuleSetController, RuleSetSettings
from .source.informer import InformerSettings
from .source.watches import WatchManager
from .source.world import CacheWorld, Scopes
from .status import StatusBoard
from .writer import Writer

__all__ = ["Manager", "ManagerSettings"]

log = logging.getLogger(__name__)


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
    limits: Limits = DEFAULT_LIMITS
    """What every CEL program and template of the rules may do (``--limits FILE``)."""


class Manager:
    def __init__(self, cluster: Cluster, settings: ManagerSettings, *,
                 clock: Clock | None = None, registry: CollectorRegistry | None = None) -> None:
        self.cluster = cluster
        self.settings = settings
        self.clock = clock or RealClock()
        self.registry = registry or CollectorRegistry()
        self.metrics = EngineMetrics(self.registry)
        self.board = StatusBoard(now=self.clock.wall)
        self.metrics.count_violations(self.board.violations)
        self.loaded = Loaded()
        self._leading = threading.Event()
        self._lost = threading.Event()
        self._stop = threading.Event()
        rule_sets_changed = threading.Event()  # set by the router, consumed by rule sets

        # source
        self.watches = WatchManager(source=cluster, clock=self.clock,
                                    settings=InformerSettings(resync_period=settings.resync),
                                    namespace=settings.namespace)
        self.schemas = LiveSchemas(cluster)
        self.world = CacheWorld(self.watches, Scopes(cluster.known_resource), self.schemas)

        # the object controller
        self.queue: WorkQueue[ObjectKey] = WorkQueue(clock=self.clock)
        self.metrics.queue_depth.set_function(lambda: len(self.queue))  # read when scraped
        self.breaker = Breaker(clock=self.clock, pause=self.queue.pause,
                               reconnect=self.watches.retry_now)
        cluster.observe_requests(self.metrics.api_request, self.breaker.observe)
        # the informers take the watch echo of a write from its decoded answer
        self.answers = Answers()
        cluster.remember_answers(self.answers)
        self.writer = Writer(cluster, metrics=self.metrics, gate=WriteGate(
            initial=min(settings.initial_writes, settings.workers), maximum=settings.workers))
        self.recorder = Recorder(cluster, instance=settings.identity, clock=self.clock,
                                 busy=lambda: self.queue.busy)
        self.dependencies = Dependencies()
        # what the mutating webhook settled, for the background (admission/memo.py)
        self.memo = AdmissionMemo() if settings.webhook_addr is not None else None
        self.reconciler = Reconciler(writer=self.writer, watches=self.watches,
                                     world=self.world, current=self.loaded.get,
                                     board=self.board, dependencies=self.dependencies,
                                     metrics=self.metrics, recorder=self.recorder,
                                     requeue=self.queue.add, hold=self.queue.hold,
                                     admitted=self.memo)
        self.router = Router(queue=self.queue, watches=self.watches,
                             dependencies=self.dependencies, reconciler=self.reconciler,
                             current=self.loaded.get, rule_sets_changed=rule_sets_changed.set)
        self.watches.on_started(self.router.prepare)
        self.objects = ObjectController(queue=self.queue, reconciler=self.reconciler,
                                        metrics=self.metrics, clock=self.clock,
                                        refused_retry=settings.refused_retry)

        # admission
        self.webhooks: Webhooks | None = None
        if settings.webhook_addr is not None:
            self.webhooks = Webhooks(cluster, WebhookOptions(
                address=settings.webhook_addr,
                endpoint=Endpoint(url=settings.webhook_url,
                                  service_namespace=settings.own_namespace,
                                  service_name=settings.webhook_service),
                own_namespace=settings.own_namespace, cert_dir=settings.webhook_cert_dir,
                timeout_seconds=settings.webhook_timeout, resync=settings.webhook_resync),
                current=self.loaded.get, world=self.world, metrics=self.metrics,
                loaded=self.loaded.ready, leading=self._leading.is_set, memo=self.memo)

        # the rule-set controller
        self.rulesets = RuleSetController(
            cluster, RuleSetSettings(resync=settings.resync,
                                     full_resync_every=settings.full_resync_every,
                                     sync_timeout=settings.sync_timeout,
                                     recheck_unknown_kinds=settings.recheck_unknown_kinds,
                                     status_interval=settings.status_interval,
                                     limits=settings.limits),
            clock=self.clock, watches=self.watches, loaded=self.loaded, board=self.board,
            writer=self.writer, schemas=self.schemas, metrics=self.metrics,
            changed=rule_sets_changed, leading=self._leading.is_set,
            enqueue=partial(self.router.enqueue, unless_converged=True),
            forget_converged=self.reconciler.forget_converged,
            rules_replaced=lambda old, new, changed: self.reconciler.rules_replaced(
                old, new, changed=changed),
            on_compiled=self.webhooks.sync if self.webhooks is not None else lambda: None)

        self._stopped = False
        self._elector: LeaderElector | None = None
        self._servers: list[HealthServer] = []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        for address in {self.settings.health_addr, self.settings.metrics_addr} - {None}:
            assert address is not None
            server = HealthServer(host=address[0], port=address[1], registry=self.registry,
                                  ready=self.ready, alive=self.alive)
            server.start()
            self._servers.append(server)
        self.recorder.start()
        self.rulesets.start()
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
        self.rulesets.signal_stop()
        self.objects.stop(timeout=30)
        if self._leading.is_set():
            self.rulesets.flush_status()
        if self._elector is not None:
            self._elector.stop(release=True)
        self.rulesets.join(timeout=10)
        self.watches.stop()
        self.cluster.forget_answers(self.answers)
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
        unsynced = self.watches.unsynced() & ENGINE_KINDS
        if unsynced or not self.loaded.ready():
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

    def rebuild(self) -> None:
        """Recompile the rule sets now, on the caller's thread (tests, benchmarks)."""
        self.rulesets.rebuild()

    def _start_leading(self) -> None:
        self.rulesets.requeue_everything()
        self._leading.set()
        self.metrics.leader.set(1)
        self.objects.start(self.settings.workers)

    def _lost_lease(self) -> None:
        self._leading.clear()
        self.metrics.leader.set(0)
        if self._stopped:  # we released it ourselves, shutting down
            return
        log.error("lost the leader lease: stopping (another instance takes over)")
        self._lost.set()
        self._stop.set()
