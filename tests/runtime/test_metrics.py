"""EngineMetrics: what a scrape reads is what prometheus_client's own Counter and
Histogram read for the same updates, no count is lost between threads, and an outcome
counted from its value is the same sample as by its names."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import prometheus_client
import prometheus_client.metrics
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from engine.evaluate.outcomes import Outcome, Status
from engine.rules.model import RuleSetRef
from engine.runtime.metrics import AdmissionResult, EngineMetrics, ReconcileResult, WriteKind


def test_outcomes_counted_from_values_and_from_names_are_one_sample() -> None:
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    cluster, namespaced = RuleSetRef("ClusterRuleSet", "", "t"), RuleSetRef("RuleSet", "n", "t")
    for ref, status in ((cluster, Status.APPLIED), (cluster, Status.APPLIED),
                        (namespaced, Status.APPLIED), (cluster, Status.ERROR)):
        metrics.outcome(Outcome(ref, "r", status, "why"))
    metrics.rule_outcome("ClusterRuleSet t", "r", "applied")

    def sample(rule_set: str, outcome: str) -> float | None:
        return registry.get_sample_value("edict_rule_outcomes_total", {
            "rule_set": rule_set, "rule": "r", "outcome": outcome})

    assert sample("ClusterRuleSet t", "applied") == 3
    assert sample("RuleSet n/t", "applied") == 1
    assert sample("ClusterRuleSet t", "error") == 1
    assert sample("RuleSet n/t", "error") is None


RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ADMISSION_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
                     0.25, 1)


class Reference:
    """EngineMetrics as it was built on prometheus_client's Counter and Histogram (a
    mutex per update): the same metrics, registered in the same order."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, help_text: str, labels: list[str]) -> Counter:
            return Counter(name, help_text, labels, namespace="edict", registry=registry)

        def gauge(name: str, help_text: str) -> Gauge:
            return Gauge(name, help_text, namespace="edict", registry=registry)

        self.reconciles = counter("reconciles", "Reconciles of trigger objects, by result.",
                                  ["result"])
        self.writes = counter("writes", "Write requests sent to the API server, by kind.",
                              ["kind"])
        self.rule_outcomes = counter("rule_outcomes", "Outcomes of rule evaluations.",
                                     ["rule_set", "rule", "outcome"])
        gauge("queue_depth", "Keys waiting in the work queue.")
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds", "Time to reconcile one key.", namespace="edict",
            registry=registry, buckets=RECONCILE_BUCKETS)
        gauge("watched_kinds", "Kinds with a running informer.")
        self.api_requests = counter(
            "api_requests", "Requests sent to the API server, by method (WATCH for "
            "watches) and status code (error: no answer).", ["method", "code"])
        gauge("leader", "1 while this instance holds the leader lease.")
        self.admission_requests = counter(
            "admission_requests", "AdmissionReviews answered, by webhook and result.",
            ["webhook", "result"])
        self.admission_memo = counter(
            "admission_memo", "Background evaluations of an object the mutating webhook "
            "answered for: hit, its settled rules left out; miss, evaluated in full.",
            ["result"])
        self.admission_duration = Histogram(
            "admission_duration_seconds",
            "Time from an AdmissionReview read to its answer ready, by webhook.",
            ["webhook"], namespace="edict", registry=registry, buckets=ADMISSION_BUCKETS)

    def reconciled(self, result: ReconcileResult, seconds: float) -> None:
        self.reconciles.labels(result.value).inc()
        self.reconcile_duration.observe(seconds)

    def wrote(self, kind: WriteKind) -> None:
        self.writes.labels(kind.value).inc()

    def api_request(self, method: str, code: str) -> None:
        self.api_requests.labels(method, code).inc()

    def rule_outcome(self, rule_set: str, rule: str, outcome: str) -> None:
        self.rule_outcomes.labels(rule_set, rule, outcome).inc()

    def outcome(self, outcome: Outcome) -> None:
        self.rule_outcome(str(outcome.rule_set), outcome.rule, outcome.status.value)

    def admitted(self, webhook: str, result: AdmissionResult, seconds: float) -> None:
        self.admission_requests.labels(webhook, result.value).inc()
        self.admission_duration.labels(webhook).observe(seconds)

    def memo_used(self, *, hit: bool) -> None:
        self.admission_memo.labels("hit" if hit else "miss").inc()


REFS = [RuleSetRef("ClusterRuleSet", "", "t"), RuleSetRef("RuleSet", "n", "t")]
# every bound itself (a bucket counts the values <= its bound), and any other value
DURATIONS = st.sampled_from(RECONCILE_BUCKETS + ADMISSION_BUCKETS) | st.floats(
    allow_nan=False)
RULES = st.sampled_from(["r", 'with "quotes"'])
UPDATES = st.lists(st.one_of(
    st.tuples(st.just("reconciled"), st.sampled_from(ReconcileResult), DURATIONS),
    st.tuples(st.just("wrote"), st.sampled_from(WriteKind)),
    st.tuples(st.just("api_request"), st.sampled_from(["GET", "PATCH", "WATCH"]),
              st.sampled_from(["200", "409", "error"])),
    st.tuples(st.just("rule_outcome"), st.sampled_from([str(ref) for ref in REFS]), RULES,
              st.sampled_from([status.value for status in Status])),
    st.tuples(st.just("outcome"), st.builds(Outcome, st.sampled_from(REFS), RULES,
                                            st.sampled_from(Status), st.just("why"))),
    st.tuples(st.just("admitted"), st.sampled_from(["mutate", "validate"]),
              st.sampled_from(AdmissionResult), DURATIONS),
    st.tuples(st.just("memo_used"), st.booleans()),
), max_size=40)


def apply(metrics: EngineMetrics | Reference, update: tuple[Any, ...]) -> None:
    method, *args = update
    if method == "memo_used":
        metrics.memo_used(hit=args[0])
    else:
        getattr(metrics, method)(*args)


@contextmanager
def created_series(on: bool) -> Iterator[None]:
    """prometheus_client's switch for `_created` samples (its env variable
    PROMETHEUS_DISABLE_CREATED_SERIES sets the same), put back afterwards."""
    before = prometheus_client.metrics._use_created
    (prometheus_client.enable_created_metrics if on
     else prometheus_client.disable_created_metrics)()
    try:
        yield
    finally:
        (prometheus_client.enable_created_metrics if before
         else prometheus_client.disable_created_metrics)()


def masked(text: bytes) -> str:
    """The exposition with each `_created` sample's time hidden (when a series was first
    used differs between the two runs), its series kept."""
    return re.sub(r"^(\w+_created(\{.*\})?) \S+$", r"\1 <time>", text.decode(),
                  flags=re.MULTILINE)


@settings(max_examples=300, deadline=None)
@given(UPDATES, st.booleans())
def test_a_scrape_reads_what_prometheus_client_read_for_the_same_updates(
        updates: list[tuple[Any, ...]], created: bool) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    with created_series(created):
        metrics, reference = EngineMetrics(ours), Reference(theirs)
        for update in updates:
            apply(metrics, update)
            apply(reference, update)
        assert masked(generate_latest(ours)) == masked(generate_latest(theirs))
        assert masked(generate_openmetrics(ours)) == masked(generate_openmetrics(theirs))
        assert ("_created" in generate_latest(ours).decode()) == created


def test_a_series_is_created_when_first_used_and_keeps_that_time() -> None:
    times = iter([100.0, 200.0, 300.0])
    registry = CollectorRegistry()
    with created_series(True):
        metrics = EngineMetrics(registry, wall=lambda: next(times))
        metrics.wrote(WriteKind.PATCH)
        metrics.wrote(WriteKind.PATCH)
        other = threading.Thread(target=metrics.wrote, args=(WriteKind.PATCH,))
        other.start()
        other.join()
        metrics.wrote(WriteKind.STATUS)

        def created(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(f"edict_{name}_created", labels)

        # a histogram without labels exists from the start, a labelled series from
        # its first update (another thread's first use of it changes nothing)
        assert created("reconcile_duration_seconds") == 100.0
        assert created("writes", kind="patch") == 200.0
        assert created("writes", kind="status") == 300.0
        assert created("writes", kind="create") is None
        assert registry.get_sample_value("edict_writes_total", {"kind": "patch"}) == 3.0
        assert registry.get_sample_value("edict_reconcile_duration_seconds_count") == 0.0


def test_label_values_must_match_the_label_names() -> None:
    metrics = EngineMetrics(CollectorRegistry())
    with pytest.raises(ValueError, match="edict_writes: 2 label values"):
        metrics.writes.inc(("patch", "extra"))


THREADS, UPDATES_EACH = 8, 20_000


def test_threads_updating_the_same_series_lose_no_count() -> None:
    """Eight threads count the same series at once while a scraper reads them.

    A counter adding into one dict shared by all threads, `counts[key] += 1`, fails
    here (tried: about 40,000 of the 320,000 outcomes lost, on every run). The key of
    `outcome` holds a rule set's ref, whose hash is Python code: it runs once for the
    read and again for the store, and the interpreter may switch threads in between,
    here every microsecond instead of every 5 ms. (Keys hashed in C happen not to lose
    counts on CPython 3.11, which switches only at calls and loop jumps; nothing to rely
    on.) Only one thread ever writes each of EngineMetrics' lists, so none is lost."""
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    ref = REFS[0]
    applied = Outcome(ref, "r", Status.APPLIED, "why")
    start = threading.Barrier(THREADS + 1)
    counting = threading.Event()
    failures: list[BaseException] = []
    seen: list[float] = []

    def count() -> None:
        start.wait()
        for _ in range(UPDATES_EACH):
            metrics.reconciled(ReconcileResult.SUCCESS, 0.002)
            metrics.outcome(applied)
            metrics.rule_outcome(str(ref), "r", "applied")
            metrics.api_request("GET", "200")

    def scrape() -> None:
        start.wait()
        try:
            while counting.is_set():
                generate_latest(registry)
                seen.append(registry.get_sample_value(
                    "edict_reconciles_total", {"result": "success"}) or 0.0)
        except BaseException as failure:
            failures.append(failure)

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        counting.set()
        workers = [threading.Thread(target=count) for _ in range(THREADS)]
        scraper = threading.Thread(target=scrape)
        for thread in [*workers, scraper]:
            thread.start()
        for thread in workers:
            thread.join()
        counting.clear()
        scraper.join()
    finally:
        sys.setswitchinterval(switching)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    total = THREADS * UPDATES_EACH
    assert failures == []
    assert seen and seen == sorted(seen)  # read while counting, never going back
    assert value("edict_reconciles_total", result="success") == total
    assert value("edict_rule_outcomes_total", rule_set=str(ref), rule="r",
                 outcome="applied") == 2 * total
    assert value("edict_api_requests_total", method="GET", code="200") == total
    assert value("edict_reconcile_duration_seconds_bucket", le="0.001") == 0
    assert value("edict_reconcile_duration_seconds_bucket", le="0.005") == total
    assert value("edict_reconcile_duration_seconds_count") == total
    assert value("edict_reconcile_duration_seconds_sum") == pytest.approx(0.002 * total)


def test_the_counts_of_ended_threads_are_kept_and_their_lists_let_go() -> None:
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    for _ in range(20):  # a connection thread of the webhook server, say
        thread = threading.Thread(target=metrics.api_request, args=("POST", "200"))
        thread.start()
        thread.join()
    # each thread's first count let go of the ended ones; the scrape, of the last
    assert len(metrics.api_requests._threads) == 1
    assert registry.get_sample_value(
        "edict_api_requests_total", {"method": "POST", "code": "200"}) == 20
    assert metrics.api_requests._threads == []
