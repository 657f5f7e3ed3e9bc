"""Event recorder: what deserves an Event, the Normal-event bucket; which kinds a rule-set
change re-queues."""

from __future__ import annotations

from typing import Any

from engine.evaluate.outcomes import Outcome, Result, Status
from engine.kube.errors import ConnectionFailed
from engine.kube.events import EventType
from engine.objects import GVK, key_of
from engine.rules.load import parse_rule_set
from engine.rules.model import RuleSetRef
from engine.runtime.clock import FakeClock
from engine.runtime.controller.events import Recorder
from engine.runtime.rulesets.compile import changed_kinds
from tests.support import eventually

REF = RuleSetRef("ClusterRuleSet", "", "team")


class NoCluster:
    """The recorder is never started here: any API call is a bug."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


def obj(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "n"}}


def result(o: dict[str, Any], *outcomes: Outcome) -> Result:
    return Result(key=key_of(o), current=o, desired=o, outcomes=outcomes)


def queued(recorder: Recorder) -> list[tuple[str, str, EventType]]:
    """Take what the recorder would post, in the order it would post it (the thread is
    not started, and with stopping set nothing is held back)."""
    recorder._stopping = True
    out = []
    while (item := recorder._next()) is not None:
        out.append((item[1], item[2], item[3]))
    recorder._stopping = False
    return out


def test_applied_changes_are_events_and_steady_state_is_silent() -> None:
    recorder = Recorder(NoCluster(), instance="t")  # type: ignore[arg-type]
    o = obj("a")
    recorder.outcomes(o, result(o, Outcome(REF, "r", Status.APPLIED, paths=("/x",))),
                      written=True)
    recorder.outcomes(o, result(o, Outcome(REF, "r", Status.UNCHANGED)), written=True)
    recorder.outcomes(o, result(o, Outcome(REF, "r", Status.APPLIED, paths=("/x",))),
                      written=False)  # the write failed: nothing to report
    assert queued(recorder) == [("RuleApplied", "rule 'r' of ClusterRuleSet team changed /x",
                                 EventType.NORMAL)]


def test_an_error_is_reported_once_until_it_changes() -> None:
    recorder = Recorder(NoCluster(), instance="t")  # type: ignore[arg-type]
    o = obj("a")
    for message in ("boom", "boom", "bang"):
        recorder.outcomes(o, result(o, Outcome(REF, "r", Status.ERROR, message)),
                          written=True)
    assert [m for _, m, _ in queued(recorder)] == ["rule 'r' of ClusterRuleSet team: boom",
                                                  "rule 'r' of ClusterRuleSet team: bang"]


def test_normal_events_share_a_bucket_and_warnings_never_wait() -> None:
    clock = FakeClock()
    recorder = Recorder(NoCluster(), instance="t", clock=clock, qps=1.0,  # type: ignore[arg-type]
                        burst=3)
    for i in range(10):
        o = obj(f"o{i}")
        recorder.outcomes(o, result(o, Outcome(REF, "r", Status.APPLIED, paths=("/x",))),
                          written=True)
    o = obj("bad")
    recorder.outcomes(o, result(o, Outcome(REF, "r", Status.ERROR, "no")), written=True)
    reasons = [r for r, _, _ in queued(recorder)]
    assert reasons == ["RuleError"] + ["RuleApplied"] * 3  # warnings go first
    assert recorder.dropped == 7
    clock.advance(2.0)
    o = obj("later")
    recorder.outcomes(o, result(o, Outcome(REF, "r", Status.APPLIED, paths=("/x",))),
                      written=True)
    assert [r for r, _, _ in queued(recorder)] == ["RuleApplied"]


def test_one_evaluation_reports_each_outcome_in_order_whatever_the_bucket_says() -> None:
    """Applied changes take the bucket's tokens before their message is made; the
    other outcomes of the same evaluation are reported as before, in order."""
    recorder = Recorder(NoCluster(), instance="t", clock=FakeClock(), qps=0.001,  # type: ignore[arg-type]
                        burst=2)
    other = RuleSetRef("RuleSet", "n", "mine")
    for name in ("a", "b"):
        o = obj(name)
        recorder.outcomes(o, result(o, Outcome(REF, "r", Status.APPLIED, paths=("/x", "/y")),
                                    Outcome(other, "e", Status.ERROR, "no"),
                                    Outcome(other, "m", Status.APPLIED, "merged")),
                          written=True)
    assert queued(recorder) == [
        ("RuleError", "rule 'e' of RuleSet n/mine: no", EventType.WARNING),
        ("RuleError", "rule 'e' of RuleSet n/mine: no", EventType.WARNING),
        ("RuleApplied", "rule 'r' of ClusterRuleSet team changed /x, /y", EventType.NORMAL),
        ("RuleApplied", "rule 'm' of RuleSet n/mine changed merged", EventType.NORMAL)]
    assert recorder.dropped == 2


class EventLog:
    """A Cluster that only records Events (anything else is a bug)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    def create_event(self, involved: dict[str, Any], *, reason: str, **_: Any) -> dict[str, Any]:
        self.posted.append((reason, involved["metadata"]["name"]))
        return {}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


def applied(recorder: Recorder, name: str) -> None:
    o = obj(name)
    recorder.outcomes(o, result(o, Outcome(REF, "r", Status.APPLIED, paths=("/x",))),
                      written=True)


def test_normal_events_wait_for_the_work_queue_to_drain_and_warnings_do_not() -> None:
    clock, cluster, busy = FakeClock(), EventLog(), [True]
    recorder = Recorder(cluster, instance="t", clock=clock,  # type: ignore[arg-type]
                        busy=lambda: busy[0], max_delay=10.0)
    recorder.start()
    try:
        applied(recorder, "a")
        applied(recorder, "b")
        o = obj("bad")
        recorder.outcomes(o, result(o, Outcome(REF, "r", Status.ERROR, "no")), written=True)
        eventually(lambda: cluster.posted == [("RuleError", "bad")], what="the warning")
        eventually(clock.asleep, what="the recorder to hold the Normal ones")
        clock.advance(9.9)  # just short of max_delay, with keys waiting all along
        eventually(clock.asleep, what="the recorder to look again and keep holding")
        assert cluster.posted == [("RuleError", "bad")] and recorder.backlog() == 2
        busy[0] = False
        eventually(lambda: len(cluster.posted) == 3, what="the held events")
        assert cluster.posted[1:] == [("RuleApplied", "a"), ("RuleApplied", "b")]
    finally:
        recorder.stop()


def test_a_held_event_is_posted_after_max_delay_or_on_stop() -> None:
    clock, cluster = FakeClock(), EventLog()
    recorder = Recorder(cluster, instance="t", clock=clock,  # type: ignore[arg-type]
                        busy=lambda: True, max_delay=10.0)
    recorder.start()
    applied(recorder, "a")
    eventually(clock.asleep, what="the recorder to hold the event")
    clock.advance(9.9)
    eventually(clock.asleep, what="the recorder to keep holding it")
    assert cluster.posted == []
    clock.advance(0.1)  # the queue never drains: it goes out anyway
    eventually(lambda: cluster.posted == [("RuleApplied", "a")], what="the delayed event")
    applied(recorder, "b")
    recorder.stop()  # stopping posts what is held, without waiting
    assert cluster.posted == [("RuleApplied", "a"), ("RuleApplied", "b")]
    assert recorder.backlog() == 0


class TimedEventLog:
    """A Cluster that records when each Event says it happened (anything else is a bug)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Any]] = []

    def create_event(self, involved: dict[str, Any], *, when: Any, **_: Any
                     ) -> dict[str, Any]:
        self.posted.append((involved["metadata"]["name"], when))
        return {}


def test_a_held_event_says_when_its_change_was_made_not_when_it_was_posted() -> None:
    clock, cluster, busy = FakeClock(), TimedEventLog(), [True]
    recorder = Recorder(cluster, instance="t", clock=clock,  # type: ignore[arg-type]
                        busy=lambda: busy[0], max_delay=60.0)
    recorder.start()
    try:
        made = clock.wall()
        applied(recorder, "a")
        eventually(clock.asleep, what="the recorder to hold the event")
        clock.advance(30.0)
        eventually(clock.asleep, what="the recorder to keep holding it")
        busy[0] = False
        eventually(lambda: len(cluster.posted) == 1, what="the held event")
        assert cluster.posted == [("a", made)] and clock.wall() > made
    finally:
        recorder.stop()


class DownEvents:
    """Event posts that fail with no answer while `down`; anything else is a bug."""

    def __init__(self) -> None:
        self.down = True
        self.attempts = 0
        self.posted: list[str] = []

    def create_event(self, involved: dict[str, Any], *, reason: str, **_: Any) -> dict[str, Any]:
        self.attempts += 1
        if self.down:
            raise ConnectionFailed("connection refused", reason="ConnectionFailed")
        self.posted.append(involved["metadata"]["name"])
        return {}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


def test_a_failing_server_does_not_get_the_whole_backlog_at_once() -> None:
    clock, cluster = FakeClock(), DownEvents()
    recorder = Recorder(cluster, instance="t", clock=clock)  # type: ignore[arg-type]
    recorder.start()
    try:
        for i in range(20):
            o = obj(f"o{i}")
            recorder.outcomes(o, result(o, Outcome(REF, "r", Status.ERROR, "no")),
                              written=True)
        for attempts, wait in ((1, 0.5), (2, 1.0), (3, 2.0)):  # doubling, one at a time
            eventually(clock.asleep, what=f"a wait after failure {attempts}")
            assert cluster.attempts == attempts
            if attempts == 3:
                cluster.down = False
            clock.advance(wait)
        eventually(lambda: len(cluster.posted) == 17, what="the rest, once it answers")
        assert cluster.attempts == 20, "what failed was dropped, not retried"
    finally:
        recorder.stop()


def rule_set(name: str, kind: str, label: str) -> Any:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet", "metadata": {"name": name},
        "spec": {"rules": [{"name": "r", "match": {"resources": [
            {"apiVersion": "v1", "kinds": [kind]}]},
            "mutate": {"template": {"metadata": {"labels": {"l": label}}}}}]}})


def test_a_rule_set_change_requeues_only_its_kinds() -> None:
    cm, secret = GVK("", "v1", "ConfigMap"), GVK("", "v1", "Secret")
    a, b = rule_set("a", "ConfigMap", "1"), rule_set("b", "Secret", "1")
    before = {a.ref: a, b.ref: b}
    assert changed_kinds(before, dict(before)) == set()
    assert changed_kinds(before, {a.ref: rule_set("a", "ConfigMap", "2"), b.ref: b}) == {cm}
    assert changed_kinds(before, {a.ref: a}) == {secret}
    assert changed_kinds({}, before) == {cm, secret}


def test_an_echo_of_our_own_write_is_recognised_only_when_the_server_kept_it_as_asked(
) -> None:
    from engine.runtime.controller.reconciler import same_content

    desired = {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1",
                                                 "labels": {"x": "1"}}, "data": {"a": "1"}}
    stored = {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "2",
                                                "managedFields": [{}], "labels": {"x": "1"}},
              "data": {"a": "1"}}
    assert same_content(stored, desired)
    defaulted = {**stored, "data": {"a": "1", "defaulted": "by-server"}}
    assert not same_content(defaulted, desired)
