"""The object controller's workers: each `Decision` → what happens to the key in the queue.

A real WorkQueue on a fake clock and a seam reconciler that returns the decision of the
case (and fails loudly when asked for a key it was not given); `process` is the body of
one worker turn, so no thread is needed.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from engine.objects import GVK, ObjectKey
from engine.runtime.clock import FakeClock
from engine.runtime.controller.objects import FOLLOWUPS, Followup, ObjectController
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.controller.reconciler import Decision
from engine.runtime.metrics import EngineMetrics, ReconcileResult
from engine.runtime.ratelimit import RateLimitSettings

KEY = ObjectKey(GVK("", "v1", "ConfigMap"), "n", "a")
REFUSED_RETRY = 60.0


class Deciding:
    """Answers `reconcile(KEY)` with `decision` (or raises `error`); nothing else."""

    def __init__(self, decision: Decision | None, error: Exception | None = None) -> None:
        self.decision = decision
        self.error = error
        self.calls = 0

    def reconcile(self, key: ObjectKey) -> Decision:
        assert key == KEY, f"unexpected reconcile of {key}"
        self.calls += 1
        if self.error is not None:
            raise self.error
        assert self.decision is not None
        return self.decision


def controller(reconciler: Deciding) -> tuple[ObjectController, WorkQueue[ObjectKey],
                                               FakeClock, CollectorRegistry]:
    clock = FakeClock()
    queue: WorkQueue[ObjectKey] = WorkQueue(clock=clock, settings=RateLimitSettings(
        qps=1e9, burst=10**6, base_delay=0.5, max_delay=100.0))
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    return ObjectController(queue=queue, reconciler=reconciler,  # type: ignore[arg-type]
                            metrics=metrics, clock=clock,
                            refused_retry=REFUSED_RETRY), queue, clock, registry


def reconciled(registry: CollectorRegistry, result: ReconcileResult) -> float:
    value = registry.get_sample_value("edict_reconciles_total", {"result": result.value})
    return float(value or 0.0)


def test_every_decision_has_a_followup() -> None:
    assert set(FOLLOWUPS) == set(Decision)


CASES = [
    # (decision, failures counted against the key after one turn, back in the queue
    #  after this many clock seconds (None: not at all), metric)
    (Decision.DONE, 0, None, ReconcileResult.SUCCESS),
    (Decision.REQUEUE, 1, 0.5, ReconcileResult.REQUEUE),
    (Decision.RETRY_LATER, 0, REFUSED_RETRY, ReconcileResult.ERROR),
]


@pytest.mark.parametrize(("decision", "failures", "back_after", "result"), CASES,
                         ids=[c[0].value for c in CASES])
def test_each_decision_is_one_queue_action(decision: Decision, failures: int,
                                           back_after: float | None,
                                           result: ReconcileResult) -> None:
    objects, queue, clock, registry = controller(Deciding(decision))
    queue.add(KEY)
    assert queue.get(timeout=0) == KEY
    assert objects.process(KEY) is decision
    assert queue.num_requeues(KEY) == failures
    assert queue.in_progress == 0, "done() was called"
    assert reconciled(registry, result) == 1
    if back_after is None:
        clock.advance(10 * REFUSED_RETRY)
        assert queue.get(timeout=0) is None
        return
    clock.advance(back_after - 0.01)
    assert queue.get(timeout=0) is None, "not before its delay"
    clock.advance(0.01)
    assert queue.get(timeout=0) == KEY


def test_a_success_forgets_the_backoff_of_earlier_failures() -> None:
    reconciler = Deciding(Decision.REQUEUE)
    objects, queue, clock, _ = controller(reconciler)
    queue.add(KEY)
    for _ in range(3):
        key = queue.get(timeout=0)
        while key is None:
            clock.advance(0.5)
            key = queue.get(timeout=0)
        objects.process(key)
    assert queue.num_requeues(KEY) == 3
    clock.advance(100.0)
    reconciler.decision = Decision.DONE
    objects.process(queue.get(timeout=0) or KEY)
    assert queue.num_requeues(KEY) == 0


def test_a_bug_in_reconcile_requeues_with_backoff_and_keeps_the_worker() -> None:
    objects, queue, _, registry = controller(Deciding(None, error=RuntimeError("bug")))
    queue.add(KEY)
    assert queue.get(timeout=0) == KEY
    assert objects.process(KEY) is Decision.REQUEUE
    assert queue.num_requeues(KEY) == 1 and queue.in_progress == 0
    assert reconciled(registry, ReconcileResult.REQUEUE) == 1
    assert FOLLOWUPS[Decision.REQUEUE].followup is Followup.RATE_LIMITED
