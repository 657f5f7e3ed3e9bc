"""The health endpoint serves probes and the engine's own metrics registry."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from engine.runtime.health import HealthServer
from engine.runtime.metrics import EngineMetrics, ReconcileResult, WriteKind


@pytest.fixture
def ready() -> list[tuple[bool, str]]:
    return [(False, "informers not synced: v1 ConfigMap")]


@pytest.fixture
def metrics() -> EngineMetrics:
    return EngineMetrics(CollectorRegistry())


@pytest.fixture
def server(ready: list[tuple[bool, str]], metrics: EngineMetrics) -> Iterator[HealthServer]:
    health = HealthServer(host="127.0.0.1", port=0, registry=metrics.registry,
                          ready=lambda: ready[0])
    health.start()
    yield health
    health.stop()


def fetch(server: HealthServer, path: str) -> tuple[int, str]:
    host, port = server.address
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_probes(server: HealthServer, ready: list[tuple[bool, str]]) -> None:
    assert fetch(server, "/healthz") == (200, "ok\n")
    assert fetch(server, "/readyz") == (503, "informers not synced: v1 ConfigMap\n")
    ready[0] = (True, "ok")
    assert fetch(server, "/readyz") == (200, "ok\n")
    assert fetch(server, "/nope")[0] == 404


def test_metrics_come_from_the_injected_registry(server: HealthServer,
                                                 metrics: EngineMetrics) -> None:
    metrics.reconciled(ReconcileResult.SUCCESS, 0.02)
    metrics.wrote(WriteKind.PATCH)
    metrics.rule_outcome("team-defaults", "owner-label", "applied")
    metrics.queue_depth.set(3)
    metrics.watched_kinds.set(2)
    status, text = fetch(server, "/metrics")
    assert status == 200
    assert 'edict_reconciles_total{result="success"} 1.0' in text
    assert 'edict_writes_total{kind="patch"} 1.0' in text
    assert ('edict_rule_outcomes_total{outcome="applied",rule="owner-label",'
            'rule_set="team-defaults"} 1.0') in text
    assert "edict_queue_depth 3.0" in text
    assert "edict_watched_kinds 2.0" in text
    assert "edict_reconcile_duration_seconds_count 1.0" in text
    assert "python_gc" not in text, "the global registry must not leak in"


def test_two_engines_in_one_process_count_apart() -> None:
    first, second = EngineMetrics(CollectorRegistry()), EngineMetrics(CollectorRegistry())
    first.wrote(WriteKind.PATCH)
    first.wrote(WriteKind.PATCH)
    second.wrote(WriteKind.CREATE)
    second.api_request("PATCH", "429")
    assert first.registry.get_sample_value("edict_writes_total", {"kind": "patch"}) == 2.0
    assert second.registry.get_sample_value("edict_writes_total", {"kind": "patch"}) is None
    assert second.registry.get_sample_value("edict_writes_total", {"kind": "create"}) == 1.0
    assert second.registry.get_sample_value(
        "edict_api_requests_total", {"method": "PATCH", "code": "429"}) == 1.0
    assert first.registry.get_sample_value(
        "edict_api_requests_total", {"method": "PATCH", "code": "429"}) is None
