"""The engine's Prometheus metrics, registered on a registry the caller passes in.

`edict run` creates one `EngineMetrics` on its own `CollectorRegistry` and hands it to
the reconciler (reconcile results and durations, writes, rule outcomes), the queue's
owner (depth) and the watch manager's owner (watched kinds); `health.HealthServer`
serves the same registry on /metrics. Nothing touches prometheus_client's global
registry, so tests (and two engines in one process) never collide.

Label values are bounded: results, write kinds and outcomes are small enums; rule set
and rule names are what users declared. Admission: `edict_admission_requests_total
{webhook,result}` and `edict_admission_duration_seconds{webhook}` (handling time inside
the webhook, TLS and HTTP aside); `edict_admission_memo_total{result}` (hit: the
background left out the mutate rules the webhook settled on an object; miss: it had to
evaluate them again); `edict_violations{rule_set,rule}` reads the status
board when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.evaluate.outcomes import Outcome, Status
from engine.rules.model import RuleSetRef

NAMESPACE = "edict"


class ReconcileResult(StrEnum):
    SUCCESS = "success"  # converged or written
    REQUEUE = "requeue"  # conflict: someone else changed the object, try again
    ERROR = "error"  # failed, retried with backoff
    SKIPPED = "skipped"  # object gone, or not ours to touch


class WriteKind(StrEnum):
    PATCH = "patch"
    STATUS = "status"
    CREATE = "create"
    DELETE = "delete"


class AdmissionResult(StrEnum):
    ALLOWED = "allowed"  # nothing to change or to say
    PATCHED = "patched"  # the mutating webhook answered with a patch
    WARNED = "warned"  # admitted with warnings (Audit, errors of Ignore rule sets)
    DENIED = "denied"  # an Enforce validate rule, or an error of a Fail rule set
    INVALID = "invalid"  # not an AdmissionReview Edict can answer


class EngineMetrics:
    """Counters, gauges and histograms of one engine."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reconciles = Counter(
            "reconciles", "Reconciles of trigger objects, by result.", ["result"],
            namespace=NAMESPACE, registry=registry)
        self.writes = Counter(
            "writes", "Write requests sent to the API server, by kind.", ["kind"],
            namespace=NAMESPACE, registry=registry)
        self.rule_outcomes = Counter(
            "rule_outcomes", "Outcomes of rule evaluations.",
            ["rule_set", "rule", "outcome"], namespace=NAMESPACE, registry=registry)
        self.queue_depth = Gauge(
            "queue_depth", "Keys waiting in the work queue.",
            namespace=NAMESPACE, registry=registry)
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds", "Time to reconcile one key.",
            namespace=NAMESPACE, registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.watched_kinds = Gauge(
            "watched_kinds", "Kinds with a running informer.",
            namespace=NAMESPACE, registry=registry)
        self.api_requests = Counter(
            "api_requests", "Requests sent to the API server, by method (WATCH for "
            "watches) and status code (error: no answer).", ["method", "code"],
            namespace=NAMESPACE, registry=registry)
        self.leader = Gauge(
            "leader", "1 while this instance holds the leader lease.",
            namespace=NAMESPACE, registry=registry)
        self.admission_requests = Counter(
            "admission_requests", "AdmissionReviews answered, by webhook and result.",
            ["webhook", "result"], namespace=NAMESPACE, registry=registry)
        self.admission_memo = Counter(
            "admission_memo", "Background evaluations of an object the mutating webhook "
            "answered for: hit, its settled rules left out; miss, evaluated in full.",
            ["result"], namespace=NAMESPACE, registry=registry)
        self.admission_duration = Histogram(
            "admission_duration_seconds",
            "Time from an AdmissionReview read to its answer ready, by webhook.",
            ["webhook"], namespace=NAMESPACE, registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
                     0.25, 1))

        # labelled children by label values: `labels()` validates and locks on every
        # call, and the reconciler counts several things per object
        self._children: dict[tuple[Any, ...], Any] = {}
        self._outcomes: dict[tuple[RuleSetRef, str, Status], Any] = {}
        self._by_result: dict[ReconcileResult, Any] = {}  # a child made when first used,
        self._by_kind: dict[WriteKind, Any] = {}  # as `labels()` makes it (not before)

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def reconciled(self, result: ReconcileResult, seconds: float) -> None:
        child = self._by_result.get(result)
        if child is None:
            child = self._by_result[result] = self._child(self.reconciles, result.value)
        child.inc()
        self.reconcile_duration.observe(seconds)

    def wrote(self, kind: WriteKind) -> None:
        child = self._by_kind.get(kind)
        if child is None:
            child = self._by_kind[kind] = self._child(self.writes, kind.value)
        child.inc()

    def api_request(self, method: str, code: str) -> None:
        self._child(self.api_requests, method, code).inc()

    def rule_outcome(self, rule_set: str, rule: str, outcome: str) -> None:
        self._child(self.rule_outcomes, rule_set, rule, outcome).inc()

    def outcome(self, outcome: Outcome) -> None:
        """`rule_outcome` of one evaluation's outcome (its child found without
        formatting the rule set's name: this is counted for every rule, every object)."""
        key = (outcome.rule_set, outcome.rule, outcome.status)
        child = self._outcomes.get(key)
        if child is None:
            child = self._outcomes[key] = self._child(
                self.rule_outcomes, str(outcome.rule_set), outcome.rule, outcome.status.value)
        child.inc()

    def admitted(self, webhook: str, result: AdmissionResult, seconds: float) -> None:
        self._child(self.admission_requests, webhook, result.value).inc()
        self._child(self.admission_duration, webhook).observe(seconds)

    def memo_used(self, *, hit: bool) -> None:
        self._child(self.admission_memo, "hit" if hit else "miss").inc()

    def count_violations(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        """`edict_violations{rule_set,rule}`: objects in violation of a validate rule now,
        read from `counts` (the status board) whenever the registry is scraped."""
        self.registry.register(_Violations(counts))


class _Violations(Collector):
    def __init__(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(f"{NAMESPACE}_violations",
                                   "Objects a validate rule does not hold for now.",
                                   labels=["rule_set", "rule"])
        for (rule_set, rule), count in sorted(self._counts().items()):
            family.add_metric([rule_set, rule], count)
        yield family
