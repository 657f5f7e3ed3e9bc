"""The reconciler and the watch echo of its own write (engine/runtime/echoes.py).

A real WatchManager over a scripted list/watch source holds one ConfigMap; a seam
Cluster applies the engine's patch and answers it, and lets the test deliver a watch
event *while the PATCH is in flight* — the race the live engine meets when the watch is
faster than the worker reading the answer. Any other Cluster call fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from runtime_fakes import CM, NS, ExpectList, ExpectWatch, ScriptedListWatcher, obj, synced_watches

from engine.errors import Where
from engine.evaluate.engine import Engine
from engine.kube.discovery import Resource
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.patching import apply_patch
from engine.rules.load import parse_rule_set
from engine.runtime.clock import FakeClock
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.events import Recorder
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.controller.reconciler import Decision, Reconciler
from engine.runtime.controller.routing import Router
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from engine.runtime.source.informer import InformerSettings
from engine.runtime.source.watches import WatchManager
from engine.runtime.source.world import CacheWorld, Scopes
from engine.runtime.status import StatusBoard
from engine.runtime.writer import Writer

RULES = parse_rule_set({
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet", "metadata": {"name": "t"},
    "spec": {"rules": [{"name": "label", "match": {"resources": [
        {"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "mutate": {"template": {"metadata": {"labels": {"done": "yes"}}}}}]}})


class PatchingCluster:
    """Answers `patch_json` as the API server would (version "2"); `during_patch` runs
    while the request is in flight. Everything else is a bug."""

    def __init__(self) -> None:
        self.during_patch: Callable[[], None] = lambda: None
        self.patches = 0

    def resource_for(self, gvk: GVK) -> Resource:
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=gvk != NS,
                        verbs=frozenset(), has_status=False)

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: list[dict[str, Any]]) -> Obj:
        assert ops[0]["op"] == "test"  # guarded by the version it read
        stored = apply_patch(current, ops[1:], where=Where())
        stored["metadata"]["resourceVersion"] = "2"
        self.patches += 1
        self.during_patch()
        return stored

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


current = obj("a", "1", namespace="n")


@pytest.fixture
def setup() -> Iterator[tuple[Reconciler, PatchingCluster, list[ObjectKey]]]:
    with synced_watches(current) as watches:
        cluster = PatchingCluster()
        board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
        board.loaded(RULES.ref, generation=1, rules={"label": ""})
        requeued: list[ObjectKey] = []
        reconciler = Reconciler(
            writer=Writer(cluster, metrics=EngineMetrics(CollectorRegistry())),  # type: ignore[arg-type]
            watches=watches,
            world=CacheWorld(watches, Scopes(cluster.resource_for)),
            current=lambda: Current(Engine([RULES]), {RULES.ref: RULES}), board=board,
            dependencies=Dependencies(), metrics=EngineMetrics(CollectorRegistry()),
            recorder=Recorder(cluster, instance="t", enabled=False),  # type: ignore[arg-type]
            requeue=requeued.append)
        yield reconciler, cluster, requeued


KEY = key_of(current)


def test_the_echo_that_beats_the_answer_is_not_reconciled_again(
        setup: tuple[Reconciler, PatchingCluster, list[ObjectKey]]) -> None:
    reconciler, cluster, requeued = setup
    held: list[bool] = []
    cluster.during_patch = lambda: held.append(reconciler.own_writes.is_echo(KEY, "2"))
    assert reconciler.reconcile(KEY) is Decision.DONE
    assert cluster.patches == 1 and held == [True] and requeued == []
    assert reconciler.own_writes.is_echo(KEY, "2") is False  # nothing left waiting


def test_a_foreign_change_during_the_write_is_queued(
        setup: tuple[Reconciler, PatchingCluster, list[ObjectKey]]) -> None:
    reconciler, cluster, requeued = setup
    cluster.during_patch = lambda: (reconciler.own_writes.is_echo(KEY, "2"),
                                    reconciler.own_writes.is_echo(KEY, "3"))
    assert reconciler.reconcile(KEY) is Decision.DONE
    assert requeued == [KEY]


def test_the_echo_after_the_answer_is_recognised_once(
        setup: tuple[Reconciler, PatchingCluster, list[ObjectKey]]) -> None:
    reconciler, cluster, requeued = setup
    assert reconciler.reconcile(KEY) is Decision.DONE
    assert cluster.patches == 1 and requeued == []
    assert reconciler.own_writes.is_echo(KEY, "2") is True
    assert reconciler.own_writes.is_echo(KEY, "2") is False


def test_a_resync_of_a_state_found_converged_queues_nothing() -> None:
    """What a resync costs: nothing for an object whose cached version the loaded rules
    already found converged; a new version, new rules or a forced full pass evaluate it."""
    labelled = obj("b", "7", namespace="n")
    labelled["metadata"]["labels"] = {"done": "yes"}
    source = ScriptedListWatcher()
    source.expect(CM, ExpectList([labelled], "7"), ExpectWatch("7"))
    source.expect(NS, ExpectList([{"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": "n", "resourceVersion": "1"}}], "1"),
                  ExpectWatch("1"))
    watches = WatchManager(source=source, clock=FakeClock(),
                           settings=InformerSettings(resync_period=0))
    for gvk in (CM, NS):
        watches.acquire(gvk, "test")
    try:
        assert watches.wait_synced([CM, NS], timeout=5)
        cluster = PatchingCluster()
        loaded = [Current(Engine([RULES]), {RULES.ref: RULES})]
        queue: WorkQueue[ObjectKey] = WorkQueue(clock=FakeClock())
        reconciler = Reconciler(
            writer=Writer(cluster, metrics=EngineMetrics(CollectorRegistry())),  # type: ignore[arg-type]
        watches=watches,
            world=CacheWorld(watches, Scopes(cluster.resource_for)),
            current=lambda: loaded[0], board=StatusBoard(now=lambda: datetime.now(UTC)),
            dependencies=Dependencies(), metrics=EngineMetrics(CollectorRegistry()),
            recorder=Recorder(cluster, instance="t", enabled=False),  # type: ignore[arg-type]
            requeue=queue.add)
        router = Router(queue=queue, watches=watches, dependencies=Dependencies(),
                        reconciler=reconciler, current=lambda: loaded[0],
                        rule_sets_changed=lambda: None)
        key = key_of(labelled)
        router.route(CM, labelled, labelled)
        assert len(queue) == 1, "never evaluated: the resync queues it"
        assert queue.get(timeout=1) == key
        assert reconciler.reconcile(key) is Decision.DONE and cluster.patches == 0
        queue.done(key)
        router.route(CM, labelled, labelled)
        assert len(queue) == 0, "found converged at version 7: the resync skips it"
        router.enqueue([CM], unless_converged=True)
        assert len(queue) == 0, "nor does a recompile's enqueue under the same rules"
        router.enqueue([CM], namespace="n")
        assert len(queue) == 1, "a Namespace's labels changed: every object goes"
        assert queue.get(timeout=1) == key
        queue.done(key)
        assert reconciler.known_converged(key, "7")
        assert not reconciler.known_converged(key, "8"), "another version is evaluated"
        loaded[0] = Current(Engine([RULES]), {RULES.ref: RULES})
        assert not reconciler.known_converged(key, "7"), "so is any under new rules"
        assert reconciler.reconcile(key) is Decision.DONE
        assert reconciler.known_converged(key, "7"), "found converged by the new rules"
        for changed, holds in (({NS}, True), ({CM}, False)):
            old, new = loaded[0].engine, Engine([RULES])
            reconciler.rules_replaced(old, new, changed=changed)
            loaded[0] = Current(new, {RULES.ref: RULES})
            assert reconciler.known_converged(key, "7") is holds, (
                "a recompile keeps what its unchanged rules found, not what changed rules did")
        assert reconciler.reconcile(key) is Decision.DONE
        assert reconciler.known_converged(key, "7")
        reconciler.forget_converged()
        router.route(CM, labelled, labelled)
        assert len(queue) == 1, "a full pass evaluates everything again"
    finally:
        watches.stop()
    assert source.surprises == []
