"""The reconciler's decision table: each answer of the API server to its write → one
`Decision` (and what it reports on the rule set, and the Retry-After it puts on the key).

One ConfigMap in a real cache (WatchManager over a scripted source), a mutate rule that
labels it, and a seam cluster that answers the engine's guarded patch with the error of
the case — and fails loudly on any other call.
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
from engine.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    Timeout,
    TooManyRequests,
    Unauthorized,
)
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.load import parse_rule_set
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.events import Recorder
from engine.runtime.controller.reconciler import Decision, Reconciler, worst
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from engine.runtime.source.watches import WatchManager
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
IMMUTABLE = {"causes": [{"field": "data", "message": "field is immutable"}]}


class AnsweringCluster:
    """Answers the one patch with `answer`; anything else is a bug."""

    def __init__(self, answer: ApiError | None) -> None:
        self.answer = answer
        self.patches = 0

    def resource_for(self, gvk: GVK) -> Resource:
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=gvk != NS,
                        verbs=frozenset(), has_status=False)

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: list[dict[str, Any]]) -> Obj:
        self.patches += 1
        assert ops[0]["op"] == "test", "every patch of a trigger is guarded"
        if self.answer is not None:
            raise self.answer
        return {}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


@pytest.fixture(scope="module")
def watches() -> Iterator[WatchManager]:
    with synced_watches(CURRENT) as manager:
        yield manager


def reconcile(watches: WatchManager, answer: ApiError | None
              ) -> tuple[Decision, AnsweringCluster, StatusBoard, list[tuple[ObjectKey, float]]]:
    cluster = AnsweringCluster(answer)
    board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    board.loaded(RULES.ref, generation=1, rules={"label": ""})
    held: list[tuple[ObjectKey, float]] = []
    requeued: list[ObjectKey] = []
    reconciler = Reconciler(
        writer=Writer(cluster, metrics=EngineMetrics(CollectorRegistry())),  # type: ignore[arg-type]
        watches=watches, world=CacheWorld(watches, Scopes(cluster.resource_for)),
        current=lambda: Current(Engine([RULES]), {RULES.ref: RULES}), board=board,
        dependencies=Dependencies(), metrics=EngineMetrics(CollectorRegistry()),
        recorder=Recorder(cluster, instance="t", enabled=False),  # type: ignore[arg-type]
        requeue=requeued.append, hold=lambda key, seconds: held.append((key, seconds)))
    decision = reconciler.reconcile(KEY)
    assert requeued == [], "no event arrived during the write"
    return decision, cluster, board, held


def write_error(board: StatusBoard) -> str:
    status = board.render(RULES.ref) or {}
    return str(next((c.get("message") for c in status.get("conditions", [])
                     if c.get("type") == "Degraded" and c.get("status") == "True"), ""))


CASES: list[tuple[str, ApiError | None, Decision, bool, float | None]] = [
    # (case, the server's answer, decision, reported on the rule set, Retry-After held)
    ("written", None, Decision.DONE, False, None),
    ("409: changed since read", Conflict("modified", status=409), Decision.REQUEUE, False,
     None),
    ("422 without causes: our resourceVersion guard failed",
     Invalid("test failed", status=422), Decision.REQUEUE, False, None),
    ("422 with causes: refused as it is",
     Invalid("invalid", status=422, details=IMMUTABLE), Decision.RETRY_LATER, True, None),
    ("404: gone meanwhile", NotFound("gone", status=404), Decision.DONE, False, None),
    ("409 AlreadyExists on a patch is still a changed object",
     AlreadyExists("exists", status=409), Decision.REQUEUE, False, None),
    ("429 with Retry-After", TooManyRequests("slow down", status=429, retry_after=7.0),
     Decision.REQUEUE, False, 7.0),
    ("429 without Retry-After", TooManyRequests("slow down", status=429),
     Decision.REQUEUE, False, None),
    ("503 with Retry-After", ServerError("shutting down", status=503, retry_after=3.0),
     Decision.REQUEUE, False, 3.0),
    ("500", ServerError("etcd", status=500), Decision.REQUEUE, False, None),
    ("no answer: timeout", Timeout("timed out"), Decision.REQUEUE, False, None),
    ("no answer: connection", ConnectionFailed("refused"), Decision.REQUEUE, False, None),
    ("403: RBAC", Forbidden("forbidden", status=403), Decision.RETRY_LATER, True, None),
    ("401", Unauthorized("who?", status=401), Decision.RETRY_LATER, True, None),
    ("400", BadRequest("bad", status=400), Decision.RETRY_LATER, True, None),
]


@pytest.mark.parametrize(("answer", "decision", "reported", "held"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_answer_to_the_patch_is_one_decision(
        watches: WatchManager, answer: ApiError | None, decision: Decision,
        reported: bool, held: float | None) -> None:
    got, cluster, board, holds = reconcile(watches, answer)
    assert got is decision
    assert cluster.patches == 1, "one guarded patch, never a retry inside the reconcile"
    assert bool(write_error(board)) is reported, write_error(board)
    assert holds == ([(KEY, held)] if held is not None else [])


@pytest.mark.parametrize(("a", "b", "expected"), [
    (Decision.DONE, Decision.DONE, Decision.DONE),
    (Decision.DONE, Decision.RETRY_LATER, Decision.RETRY_LATER),
    (Decision.RETRY_LATER, Decision.REQUEUE, Decision.REQUEUE),
    (Decision.REQUEUE, Decision.DONE, Decision.REQUEUE),
])
def test_the_worst_decision_of_several_writes_wins(a: Decision, b: Decision,
                                                   expected: Decision) -> None:
    assert worst(a, b) is expected and worst(b, a) is expected
