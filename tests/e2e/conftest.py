"""Fixtures for live-engine tests against the suite's real API server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import key_of
from engine.runtime.manager import Manager, ManagerSettings

from .live import install_crds, unique


@pytest.fixture(scope="session")
def admin(kubeconfig: str) -> Iterator[Cluster]:
    install_crds(kubeconfig)
    cluster = Cluster.connect(kubeconfig)
    yield cluster
    cluster.close()


class Objects:
    """Creates objects for one test and deletes them (rule sets first) afterwards."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.created: list[dict[str, Any]] = []

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        made = self.cluster.create(obj)
        self.created.append(made)
        return made

    def cleanup(self) -> None:
        for obj in sorted(reversed(self.created),
                          key=lambda o: o["kind"] not in ("RuleSet", "ClusterRuleSet")):
            key = key_of(obj)
            with contextlib.suppress(NotFound):
                self.cluster.delete(key.gvk, key.namespace or None, key.name)


@pytest.fixture
def objects(admin: Cluster) -> Iterator[Objects]:
    made = Objects(admin)
    yield made
    made.cleanup()


@pytest.fixture
def namespace(objects: Objects) -> str:
    name = unique("e2e")
    objects.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def start_engine(admin: Cluster) -> Iterator[Callable[..., Manager]]:
    """Start an in-process engine (stopped after the test); settings may be overridden."""
    started: list[Manager] = []

    def start(**settings: Any) -> Manager:
        defaults: dict[str, Any] = {"workers": 2, "resync": 300.0, "status_interval": 0.2,
                                    "identity": "e2e"}
        manager = Manager(admin, ManagerSettings(**{**defaults, **settings}))
        manager.start()
        started.append(manager)
        return manager

    yield start
    for manager in started:
        manager.stop()


@pytest.fixture
def engine(start_engine: Callable[..., Manager]) -> Manager:
    return start_engine()
