"""The engine's Prometheus metrics, registered on a registry the caller passes in.

`edict run` creates one `EngineMetrics` on its own `CollectorRegistry` and hands it to
the reconciler (reconcile results and durations, writes, rule outcomes), the queue's
owner (depth) and the watch manager's owner (watched kinds); `health.HealthServer`
serves the same registry on /metrics. Nothing touches prometheus_client's global
registry, so tests (and two engines in one process) never collide.

The counters and histograms are counted by `counting.py`, not by prometheus_client:
its Counter and Histogram take a mutex on every update, and every reconcile makes
several (its result, its duration, each rule's outcome, each write and API request).
Here each thread counts into lists only it writes, which a scrape adds up, so no update
takes a lock and none is lost; a scrape (and `registry.get_sample_value`) reads the same
families and samples prometheus_client would have produced, `_created` included. The
gauges stay prometheus_client's: they are set rarely, or read when scraped.

Label values are bounded: results, write kinds and outcomes are small enums; rule set
and rule names are what users declared. Admission: `edict_admission_requests_total
{webhook,result}` and `edict_admission_duration_seconds{webhook}` (handling time inside
the webhook, TLS and HTTP aside); `edict_admission_memo_total{result}` (hit: the
background left out the mutate rules the webhook settled on an object; miss: it had to
evaluate them again); `edict_violations{rule_set,rule}` reads the status
board when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from enum import StrEnum

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.evaluate.outcomes import Outcome

from .counting import LockFreeCounter, LockFreeHistogram

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

    def __init__(self, registry: CollectorRegistry, *,
                 wall: Callable[[], float] = time.time) -> None:
        """`wall`: Unix seconds, for the `_created` time of each counted series."""
        self.registry = registry
        # registered in this order, which is the order scraped
        self.reconciles = LockFreeCounter(
            f"{NAMESPACE}_reconciles", "Reconciles of trigger objects, by result.",
            ["result"], registry=registry, wall=wall)
        self.writes = LockFreeCounter(
            f"{NAMESPACE}_writes", "Write requests sent to the API server, by kind.",
            ["kind"], registry=registry, wall=wall)
        self.rule_outcomes = LockFreeCounter(
            f"{NAMESPACE}_rule_outcomes", "Outcomes of rule evaluations.",
            ["rule_set", "rule", "outcome"], registry=registry, wall=wall)
        self.queue_depth = Gauge(
            "queue_depth", "Keys waiting in the work queue.",
            namespace=NAMESPACE, registry=registry)
        self.reconcile_duration = LockFreeHistogram(
            f"{NAMESPACE}_reconcile_duration_seconds", "Time to reconcile one key.", [],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry, wall=wall)
        self.watched_kinds = Gauge(
            "watched_kinds", "Kinds with a running informer.",
            namespace=NAMESPACE, registry=registry)
        self.api_requests = LockFreeCounter(
            f"{NAMESPACE}_api_requests", "Requests sent to the API server, by method "
            "(WATCH for watches) and status code (error: no answer).", ["method", "code"],
            registry=registry, wall=wall)
        self.leader = Gauge(
            "leader", "1 while this instance holds the leader lease.",
            namespace=NAMESPACE, registry=registry)
        self.admission_requests = LockFreeCounter(
            f"{NAMESPACE}_admission_requests",
            "AdmissionReviews answered, by webhook and result.", ["webhook", "result"],
            registry=registry, wall=wall)
        self.admission_memo = LockFreeCounter(
            f"{NAMESPACE}_admission_memo", "Background evaluations of an object the "
            "mutating webhook answered for: hit, its settled rules left out; miss, "
            "evaluated in full.", ["result"], registry=registry, wall=wall)
        self.admission_duration = LockFreeHistogram(
            f"{NAMESPACE}_admission_duration_seconds",
            "Time from an AdmissionReview read to its answer ready, by webhook.",
            ["webhook"], buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025,
                                  0.05, 0.1, 0.25, 1),
            registry=registry, wall=wall)

    def reconciled(self, result: ReconcileResult, seconds: float) -> None:
        self.reconciles.inc((result,))
        self.reconcile_duration.observe((), seconds)

    def wrote(self, kind: WriteKind) -> None:
        self.writes.inc((kind,))

    def api_request(self, method: str, code: str) -> None:
        self.api_requests.inc((method, code))

    def rule_outcome(self, rule_set: str, rule: str, outcome: str) -> None:
        self.rule_outcomes.inc((rule_set, rule, outcome))

    def outcome(self, outcome: Outcome) -> None:
        """`rule_outcome` of one evaluation's outcome, keyed by the rule set's ref (its
        name is formatted on first use only: this is counted for every rule, every
        object); the same series as `rule_outcome` with the name."""
        self.rule_outcomes.inc((outcome.rule_set, outcome.rule, outcome.status))

    def admitted(self, webhook: str, result: AdmissionResult, seconds: float) -> None:
        self.admission_requests.inc((webhook, result))
        self.admission_duration.observe((webhook,), seconds)

    def memo_used(self, *, hit: bool) -> None:
        self.admission_memo.inc(("hit",) if hit else ("miss",))

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
