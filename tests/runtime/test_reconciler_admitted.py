"""The reconciler and the admission memo: the settled rules are left out only when the
rest of the rules then have nothing to write on the object; otherwise (and on a miss)
the object is evaluated in full. Counted as edict_admission_memo_total{result}.

One ConfigMap in a real cache (WatchManager over a scripted source), a seam memo that
answers the case's `Settled`, and a seam cluster that counts the guarded patches and
fails loudly on any other call.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from runtime_fakes import NS, obj, synced_watches

from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Status
from engine.evaluate.settled import Settled
from engine.kube.discovery import Resource
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.load import parse_rule_set
from engine.rules.model import RuleSet
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.events import Recorder
from engine.runtime.controller.reconciler import Decision, Reconciler
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from engine.runtime.source.watches import WatchManager
from engine.runtime.source.world import CacheWorld, Scopes
from engine.runtime.status import StatusBoard
from engine.runtime.writer import Writer

CM_MATCH = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
LABEL = {"name": "label", "match": CM_MATCH,
         "mutate": {"template": {"metadata": {"labels": {"done": "yes"}}}}}
EXTRA = {"name": "extra", "match": CM_MATCH,
         "mutate": {"template": {"metadata": {"labels": {"extra": "yes"}}}}}
# stored as the webhook answered: the label rule converged on it
STORED = obj("a", "1", namespace="n", metadata={"labels": {"done": "yes"}})
KEY = key_of(STORED)


def rules(*rules: dict[str, Any]) -> RuleSet:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "t"}, "spec": {"rules": list(rules)}})


class CountingCluster:
    def __init__(self) -> None:
        self.patches: list[list[dict[str, Any]]] = []

    def resource_for(self, gvk: GVK) -> Resource:
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=gvk != NS,
                        verbs=frozenset(), has_status=False)

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: list[dict[str, Any]]) -> Obj:
        self.patches.append(ops)
        return {}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


class Memo:
    """Answers `answer` once, for the one key and the engine now loaded."""

    def __init__(self, answer: Settled | None, engine: Engine) -> None:
        self.answer = answer
        self.engine = engine
        self.taken = 0

    def take(self, key: ObjectKey, obj: Obj, *, engine: Engine) -> Settled | None:
        assert key == KEY and obj == STORED and engine is self.engine
        self.taken += 1
        return self.answer


@pytest.fixture(scope="module")
def watches() -> Iterator[WatchManager]:
    with synced_watches(STORED) as manager:
        yield manager


def memo_count(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("edict_admission_memo_total", {"result": result}) or 0.0


def reconcile(watches: WatchManager, rule_set: RuleSet, settled: dict[str, Status] | None
              ) -> tuple[CountingCluster, Memo, CollectorRegistry, StatusBoard]:
    engine = Engine([rule_set])
    cluster = CountingCluster()
    board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    board.loaded(rule_set.ref, generation=1, rules={r.name: "" for r in rule_set.rules})
    registry = CollectorRegistry()
    memo = Memo(None if settled is None else Settled(
        {(rule_set.ref, name): status for name, status in settled.items()}), engine)
    reconciler = Reconciler(
        writer=Writer(cluster, metrics=EngineMetrics(CollectorRegistry())),  # type: ignore[arg-type]
        watches=watches, world=CacheWorld(watches, Scopes(cluster.resource_for)),
        current=lambda: Current(engine, {rule_set.ref: rule_set}), board=board,
        dependencies=Dependencies(), metrics=EngineMetrics(registry),
        recorder=Recorder(cluster, instance="t", enabled=False),  # type: ignore[arg-type]
        requeue=lambda key: None, admitted=memo)
    assert reconciler.reconcile(KEY) is Decision.DONE
    assert memo.taken == 1
    return cluster, memo, registry, board


def matched(board: StatusBoard, rule: str) -> int:
    status = board.render(rules(LABEL).ref) or {}
    return int(next(r for r in status["rules"] if r["name"] == rule).get("matched", 0))


def test_a_hit_leaves_the_settled_rules_out_and_still_counts_them_matched(
        watches: WatchManager) -> None:
    cluster, _, registry, board = reconcile(watches, rules(LABEL),
                                            {"label": Status.UNCHANGED})
    assert cluster.patches == []
    assert (memo_count(registry, "hit"), memo_count(registry, "miss")) == (1, 0)
    assert matched(board, "label") == 1


def test_a_rule_the_webhook_did_not_settle_that_would_write_means_a_full_evaluation(
        watches: WatchManager) -> None:
    cluster, _, registry, _ = reconcile(watches, rules(LABEL, EXTRA),
                                        {"label": Status.UNCHANGED})
    assert len(cluster.patches) == 1
    assert [op["path"] for op in cluster.patches[0][1:]] == ["/metadata/labels/extra"]
    assert (memo_count(registry, "hit"), memo_count(registry, "miss")) == (0, 1)


def test_a_miss_is_a_full_evaluation(watches: WatchManager) -> None:
    # the memo's answer when the object or the rules differ: an empty Settled
    cluster, _, registry, _ = reconcile(watches, rules(LABEL, EXTRA), {})
    assert len(cluster.patches) == 1
    assert (memo_count(registry, "hit"), memo_count(registry, "miss")) == (0, 1)


def test_nothing_remembered_is_not_counted(watches: WatchManager) -> None:
    cluster, _, registry, _ = reconcile(watches, rules(LABEL, EXTRA), None)
    assert len(cluster.patches) == 1
    assert (memo_count(registry, "hit"), memo_count(registry, "miss")) == (0, 0)
