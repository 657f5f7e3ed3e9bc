"""A trigger absent from a cache that is still listing is unknown, not deleted.

Rules that read nothing but their trigger are published before the trigger kind's cache
lists (engine/runtime/rulesets/controller.py), so a key of that kind can reach a worker
before its page has: queued by a generated child's trigger annotation, say. Reconciling
it as deleted would delete that trigger's children. A real WatchManager over a scripted
source whose ConfigMap list is held open by the test; Secrets (the children) listed; a
seam cluster that records deletes and fails loudly on anything else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from runtime_fakes import CM, NS, ExpectList, ExpectWatch, ScriptedListWatcher

from engine.evaluate.children import RULE_LABEL, RULE_SET_LABEL, TRIGGER_ANNOTATION
from engine.evaluate.engine import Engine
from engine.kube.discovery import Resource
from engine.objects import GVK, Obj, ObjectKey
from engine.rules.load import parse_rule_set
from engine.runtime.clock import FakeClock
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.events import Recorder
from engine.runtime.controller.reconciler import Decision, Reconciler
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from engine.runtime.source.informer import Informer, InformerSettings
from engine.runtime.source.watches import WatchManager
from engine.runtime.source.world import CHILD_OF_INDEX, CacheWorld, Scopes, child_of_index
from engine.runtime.status import StatusBoard
from engine.runtime.writer import Writer

SECRET = GVK("", "v1", "Secret")
RULES = parse_rule_set({
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet", "metadata": {"name": "t"},
    "spec": {"rules": [{"name": "copy", "match": {"resources": [
        {"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "generate": {"synchronize": True, "template": {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "{{ object.metadata.name }}"}}}}]}})
KEY = ObjectKey(CM, "n", "a")
CHILD = {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "a", "namespace": "n", "uid": "uid-a", "resourceVersion": "1",
                      "labels": {RULE_SET_LABEL: "t", RULE_LABEL: "copy"},
                      "annotations": {TRIGGER_ANNOTATION: "v1/ConfigMap/n/a"}}}


class HeldList(ScriptedListWatcher):
    """ConfigMaps are listed only once the test lets the list go."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def list(self, gvk: GVK, **kwargs: Any) -> tuple[list[Obj], str]:
        if gvk == CM:
            assert self.release.wait(10), "the test never let the list go"
        return super().list(gvk, **kwargs)


class Deletes:
    """The cluster, as far as cleaning up a deleted trigger may use it."""

    def __init__(self) -> None:
        self.deleted: list[tuple[GVK, str | None, str, str | None]] = []

    def resource_for(self, gvk: GVK) -> Resource:
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=gvk != NS,
                        verbs=frozenset(), has_status=False)

    def delete(self, gvk: GVK, namespace: str | None, name: str, *,
               uid: str | None = None) -> None:
        self.deleted.append((gvk, namespace, name, uid))

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


@pytest.fixture
def listing() -> Iterator[tuple[HeldList, WatchManager]]:
    source = HeldList()
    source.expect(SECRET, ExpectList([CHILD], "1"), ExpectWatch("1"))
    source.expect(CM, ExpectList([], "2"), ExpectWatch("2"))  # the trigger is gone

    def indexed(informer: Informer) -> None:
        informer.add_index(CHILD_OF_INDEX, child_of_index)

    watches = WatchManager(source=source, clock=FakeClock(), on_started=indexed,
                           settings=InformerSettings(resync_period=0))
    for gvk in (SECRET, CM):
        watches.acquire(gvk, "test")
    assert watches.wait_synced([SECRET], timeout=5)
    try:
        yield source, watches
    finally:
        source.release.set()
        watches.stop()
    assert source.surprises == []


def reconciler(watches: WatchManager, cluster: Deletes) -> Callable[[], Decision]:
    metrics = EngineMetrics(CollectorRegistry())
    current = Current(Engine([RULES]), {RULES.ref: RULES})
    reconciler = Reconciler(
        writer=Writer(cluster, metrics=metrics),  # type: ignore[arg-type]
        watches=watches, world=CacheWorld(watches, Scopes(cluster.resource_for)),
        current=lambda: current,
        board=StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC)),
        dependencies=Dependencies(), metrics=metrics,
        recorder=Recorder(cluster, instance="t", enabled=False),  # type: ignore[arg-type]
        requeue=lambda key: pytest.fail(f"nothing may be queued: {key}"))
    return lambda: reconciler.reconcile(KEY)


def test_a_trigger_not_listed_yet_keeps_its_children_until_its_cache_says_it_is_gone(
        listing: tuple[HeldList, WatchManager]) -> None:
    source, watches = listing
    cluster = Deletes()
    reconcile = reconciler(watches, cluster)
    assert not watches.informer(CM).has_synced()
    assert reconcile() is Decision.DONE
    assert cluster.deleted == [], (
        "absent from a cache still listing means not listed yet: its child stays")

    source.release.set()  # the list comes back without it: now it is gone
    assert watches.wait_synced([CM], timeout=5)
    assert reconcile() is Decision.DONE
    assert cluster.deleted == [(SECRET, "n", "a", "uid-a")], (
        "once the cache has listed, an absent trigger is deleted and its child with it")
