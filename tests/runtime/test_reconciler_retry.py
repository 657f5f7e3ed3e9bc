"""A write the server refuses with Retry-After is not retried sooner (429 from API
Priority and Fairness, 503 from a server shutting down).

The reconciler runs on a real WatchManager over a scripted source, a real WorkQueue on a
fake clock, and a seam Cluster that refuses the engine's patch the first time; the test
plays the manager's worker loop (get, reconcile, done, act on the decision).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from runtime_fakes import NS, obj, synced_watches

from engine.evaluate.engine import Engine
from engine.kube.discovery import Resource
from engine.kube.errors import ApiError, ServerError, TooManyRequests
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.load import parse_rule_set
from engine.runtime.clock import FakeClock
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.events import Recorder
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.controller.reconciler import Decision, Reconciler
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from engine.runtime.ratelimit import RateLimitSettings
from engine.runtime.source.world import CacheWorld, Scopes
from engine.runtime.status import StatusBoard
from engine.runtime.writer import Writer

RULES = parse_rule_set({
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet", "metadata": {"name": "t"},
    "spec": {"rules": [{"name": "label", "match": {"resources": [
        {"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "mutate": {"template": {"metadata": {"labels": {"done": "yes"}}}}}]}})
CURRENT = obj("a", "1", namespace="n")
KEY = key_of(CURRENT)


class RefusingCluster:
    """Refuses every patch with `refusal` while it is set; anything else is a bug."""

    def __init__(self) -> None:
        self.refusal: ApiError | None = None
        self.patches = 0

    def resource_for(self, gvk: GVK) -> Resource:
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=gvk != NS,
                        verbs=frozenset(), has_status=False)

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: list[dict[str, Any]]) -> Obj:
        self.patches += 1
        if self.refusal is not None:
            raise self.refusal
        return {}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def setup(clock: FakeClock) -> Iterator[tuple[Reconciler, RefusingCluster, WorkQueue[ObjectKey]]]:
    with synced_watches(CURRENT, clock=clock) as watches:
        cluster = RefusingCluster()
        queue: WorkQueue[ObjectKey] = WorkQueue(clock=clock, settings=RateLimitSettings(
            qps=1e9, burst=10**6))
        board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
        board.loaded(RULES.ref, generation=1, rules={"label": ""})
        reconciler = Reconciler(
            writer=Writer(cluster, metrics=EngineMetrics(CollectorRegistry())),  # type: ignore[arg-type]
            watches=watches,
            world=CacheWorld(watches, Scopes(cluster.resource_for)),
            current=lambda: Current(Engine([RULES]), {RULES.ref: RULES}), board=board,
            dependencies=Dependencies(), metrics=EngineMetrics(CollectorRegistry()),
            recorder=Recorder(cluster, instance="t", enabled=False),  # type: ignore[arg-type]
            requeue=queue.add, hold=queue.hold)
        yield reconciler, cluster, queue


def work_once(reconciler: Reconciler, queue: WorkQueue[ObjectKey]) -> Decision | None:
    """One turn of the manager's worker loop, if a key is ready."""
    key = queue.get(timeout=0)
    if key is None:
        return None
    try:
        decision = reconciler.reconcile(key)
    finally:
        queue.done(key)
    if decision is Decision.REQUEUE:
        queue.add_rate_limited(key)
    elif decision is Decision.DONE:
        queue.forget(key)
    return decision


@pytest.mark.parametrize("refusal", [
    TooManyRequests("too many requests", status=429, retry_after=4.0),
    ServerError("the server is shutting down", status=503, retry_after=4.0),
], ids=["429", "503"])
def test_a_refused_write_is_retried_no_sooner_than_retry_after(
        setup: tuple[Reconciler, RefusingCluster, WorkQueue[ObjectKey]], clock: FakeClock,
        refusal: ApiError) -> None:
    reconciler, cluster, queue = setup
    cluster.refusal = refusal
    queue.add(KEY)
    assert work_once(reconciler, queue) is Decision.REQUEUE
    queue.add(KEY)  # the object changes meanwhile: still not before Retry-After
    clock.advance(3.99)  # the per-key backoff alone (5 ms) would have retried long ago
    assert work_once(reconciler, queue) is None
    assert cluster.patches == 1
    cluster.refusal = None
    clock.advance(0.01)
    assert work_once(reconciler, queue) is Decision.DONE
    assert cluster.patches == 2
    assert work_once(reconciler, queue) is None, "retried once, not twice"


def test_without_retry_after_the_backoff_alone_decides(
        setup: tuple[Reconciler, RefusingCluster, WorkQueue[ObjectKey]],
        clock: FakeClock) -> None:
    reconciler, cluster, queue = setup
    cluster.refusal = ServerError("etcd timed out", status=500)
    queue.add(KEY)
    assert work_once(reconciler, queue) is Decision.REQUEUE
    cluster.refusal = None
    clock.advance(0.005)  # the first per-key backoff
    assert work_once(reconciler, queue) is Decision.DONE
