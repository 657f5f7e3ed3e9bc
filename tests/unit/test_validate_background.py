"""Violations in the background: the rule-set status counts them and names a few, a
Warning Event says when an object starts violating (rate-limited), a metric counts them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from engine.evaluate.outcomes import Outcome, Result, Status
from engine.kube.events import EventType
from engine.objects import key_of
from engine.rules.model import RuleSetRef
from engine.runtime.clock import FakeClock
from engine.runtime.controller.events import Recorder
from engine.runtime.metrics import EngineMetrics
from engine.runtime.status import NAMED_VIOLATIONS, StatusBoard

REF = RuleSetRef("ClusterRuleSet", "", "images")


def obj(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"}}


def result(o: dict[str, Any], status: Status, message: str = "") -> Result:
    return Result(key=key_of(o), current=o, desired=o,
                  outcomes=(Outcome(REF, "pinned", status, message),))


def board() -> StatusBoard:
    out = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    out.loaded(REF, generation=1, rules={"pinned": ""})
    out.dirty()
    return out


def rule_status(b: StatusBoard) -> dict[str, Any]:
    rendered = b.render(REF)
    assert rendered is not None
    return dict(rendered["rules"][0])


def test_the_status_counts_objects_in_violation_now_and_names_a_few() -> None:
    b = board()
    for i in range(NAMED_VIOLATIONS + 2):
        o = obj(f"web-{i}")
        b.observe(key_of(o), result(o, Status.VIOLATION, "pin it"), written=True)
    status = rule_status(b)
    assert status["violations"] == NAMED_VIOLATIONS + 2
    assert status["violating"] == [f"Deployment shop/web-{i}" for i in range(NAMED_VIOLATIONS)]
    assert REF in b.dirty()
    # steady state: the same violations again change nothing
    o = obj("web-0")
    b.observe(key_of(o), result(o, Status.VIOLATION, "pin it"), written=True)
    assert b.dirty() == set()
    # fixed, and deleted: the counters follow
    b.observe(key_of(o), result(o, Status.UNCHANGED), written=True)
    b.forget(key_of(obj("web-1")))
    status = rule_status(b)
    assert status["violations"] == NAMED_VIOLATIONS
    assert "Deployment shop/web-0" not in status["violating"]
    assert b.violations() == {(str(REF), "pinned"): NAMED_VIOLATIONS}


def test_a_rule_with_no_violation_shows_none() -> None:
    b = board()
    o = obj("web")
    b.observe(key_of(o), result(o, Status.UNCHANGED), written=True)
    assert "violations" not in rule_status(b) and b.violations() == {}


def test_the_metric_reads_the_board_when_scraped() -> None:
    b = board()
    registry = CollectorRegistry()
    EngineMetrics(registry).count_violations(b.violations)
    o = obj("web")
    b.observe(key_of(o), result(o, Status.VIOLATION, "pin it"), written=True)
    labels = {"rule_set": str(REF), "rule": "pinned"}
    assert registry.get_sample_value("edict_violations", labels) == 1
    b.observe(key_of(o), result(o, Status.UNCHANGED), written=True)
    assert registry.get_sample_value("edict_violations", labels) == 0


class NoCluster:
    """The recorder is never started here: any API call is a bug."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


def queued(recorder: Recorder) -> list[tuple[str, str, EventType]]:
    recorder._stopping = True
    out = []
    while (item := recorder._next()) is not None:
        out.append((item[1], item[2], item[3]))
    recorder._stopping = False
    return out


def test_a_warning_event_when_an_object_starts_violating_and_only_then() -> None:
    recorder = Recorder(NoCluster(), instance="t")  # type: ignore[arg-type]
    o = obj("web")
    for status, message in [(Status.VIOLATION, "pin it"), (Status.VIOLATION, "pin it"),
                            (Status.VIOLATION, "pin it: web:latest"), (Status.UNCHANGED, ""),
                            (Status.VIOLATION, "pin it")]:
        recorder.outcomes(o, result(o, status, message), written=True)
    assert queued(recorder) == [
        ("PolicyViolation", "rule 'pinned' of ClusterRuleSet images: pin it",
         EventType.WARNING)] * 2


def test_violation_warnings_share_the_rate_limit() -> None:
    recorder = Recorder(NoCluster(), instance="t", clock=FakeClock(),  # type: ignore[arg-type]
                        qps=1.0, burst=3)
    for i in range(10):
        o = obj(f"web-{i}")
        recorder.outcomes(o, result(o, Status.VIOLATION, "pin it"), written=True)
    o = obj("broken")
    recorder.outcomes(o, result(o, Status.ERROR, "boom"), written=True)
    assert [reason for reason, _, _ in queued(recorder)] == ["PolicyViolation"] * 3 + [
        "RuleError"]
    assert recorder.dropped == 7
