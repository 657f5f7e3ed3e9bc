"""A tenant's rule set that works every rendering to its limit, on a live engine.

`edict run` (a subprocess, leader-elected, two workers) serves a namespaced RuleSet whose
template, fed by the tenant's own ConfigMap data, does the slowest thing the template
limits still allow (comparing two large nested values, which the operation count
underestimates, until the wall-clock backstop stops it), while a ClusterRuleSet labels
ConfigMaps in another namespace. Throughout: /healthz and /readyz answer, the Lease is
renewed, the other rule set's objects converge, and the bad rule is reported as an error
on its RuleSet. The same with a CEL `find()` that backtracks is expected to fail until
engine/cel runs regexes on RE2.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.objects import GVK
from tests.support import eventually

from .conftest import Objects
from .live import (
    CONFIGMAP,
    NAMESPACE,
    RULE_SET,
    cluster_rule_set,
    condition,
    configmap,
    labels_of,
    rule_set,
    unique,
)

pytestmark = pytest.mark.cluster
LEASE = GVK("coordination.k8s.io", "v1", "Lease")
BAD_OBJECTS = 4
GOOD_OBJECTS = 12
# The slowest template the limits allow: every comparison of two ~100,000-number
# structures counts as one operation, so only the 2 s wall-clock backstop stops it.
SLOW_TEMPLATE = ("{% set a = object.data.j | from_json %}{% set b = object.data.j | from_json %}"
                 "{% for i in range(100000) %}{% if a == b %}{% endif %}{% endfor %}done")
BIG_JSON = json.dumps({"x": [list(range(1000)) for _ in range(100)]})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    """`edict run` as a process, with its health endpoint on a free port."""

    def __init__(self, kubeconfig: str, lease_namespace: str, lease: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", kubeconfig,
             "--leader-elect", "--lease-namespace", lease_namespace, "--lease-name", lease,
             "--health-addr", f"127.0.0.1:{self.port}", "--metrics-addr", "0",
             "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=log.open("w"))

    def probe(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return -1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Watchdog:
    """Polls the probes and the Lease on a thread; remembers every failure it saw."""

    def __init__(self, engine: Engine, cluster: Cluster, namespace: str, lease: str) -> None:
        self.engine, self.cluster = engine, cluster
        self.namespace, self.lease = namespace, lease
        self.failures: list[str] = []
        self.renewals: list[str] = []
        self.probes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for path in ("/healthz", "/readyz"):
                status = self.engine.probe(path)
                self.probes += 1
                if status != 200:
                    self.failures.append(f"{path} answered {status} at {time.monotonic():.1f}")
            renewed = str(self.cluster.get(LEASE, self.namespace, self.lease)["spec"]
                          .get("renewTime") or "")
            if renewed and (not self.renewals or self.renewals[-1] != renewed):
                self.renewals.append(renewed)


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop()
        # pytest shows this only when the test failed: what the engine said
        print(f"--- {engine.log.name} ---\n{engine.log.read_text()[-5000:]}")


def bad_rule_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    status = cluster.get(RULE_SET, namespace, name).get("status") or {}
    rules = {rule["name"]: rule for rule in status.get("rules") or []}
    degraded = condition({"status": status}, "Degraded")
    rule = rules.get("slow")
    if rule and rule.get("errors", 0) >= 1 and degraded and degraded["status"] == "True":
        return rule
    return None


def run_hostile_tenant(admin: Cluster, objects: Objects, namespace: str, kubeconfig: str,
                       engines: list[Engine], tmp_path: Path, *, bad_rule: dict[str, Any],
                       data: dict[str, str], done: Callable[[], Any],
                       patience: float = 120.0) -> tuple[Watchdog, Any]:
    """Start the engine, the tenant's bad RuleSet and a good ClusterRuleSet; return the
    watchdog's findings and what `done` gave once the good objects converged and the
    tenant's rule finished (`done` is truthy)."""
    lease = unique("lease")
    good_namespace = unique("good")
    objects.create({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": good_namespace}})
    engine = Engine(kubeconfig, namespace, lease, tmp_path / "engine.log")
    engines.append(engine)
    eventually(lambda: engine.probe("/readyz") == 200, timeout=90, what="the engine is ready")
    eventually(lambda: admin.get(LEASE, namespace, lease)["spec"].get("holderIdentity"),
               timeout=60, what="the engine holds the Lease")
    # The good rule set first: ConfigMaps are watched (and synced, so /readyz is 200)
    # before the watchdog starts; the tenant's rule adds no kind to watch.
    objects.create(cluster_rule_set(unique("good"), [{
        "name": "label", "match": {
            "resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
            "namespaces": [good_namespace]},
        "mutate": {"template": {"metadata": {"labels": {"converged": "yes"}}}}}]))
    objects.create(configmap(good_namespace, "good-first"))
    eventually(lambda: labels_of(admin, CONFIGMAP, good_namespace, "good-first")
               .get("converged") == "yes", timeout=patience, what="the good rule set works")
    eventually(lambda: engine.probe("/readyz") == 200, timeout=60, what="ready again")
    watchdog = Watchdog(engine, admin, namespace, lease)
    watchdog.start()
    try:
        objects.create(rule_set(namespace, "tenant-slow", [{
            "name": "slow", "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
            **bad_rule}]))
        for index in range(BAD_OBJECTS):
            made = configmap(namespace, f"slow-{index}")
            made["data"] = data
            objects.create(made)
        for index in range(GOOD_OBJECTS):
            objects.create(configmap(good_namespace, f"good-{index}"))
        eventually(lambda: all(
            labels_of(admin, CONFIGMAP, good_namespace, f"good-{i}").get("converged") == "yes"
            for i in range(GOOD_OBJECTS)), timeout=patience,
            what="the other rule set's objects converge")
        finished = eventually(done, timeout=patience, what="the tenant's rule finishes")
        # keep the tenant busy a little longer: its objects change, the rule runs again
        for index in range(BAD_OBJECTS):
            admin.patch_merge(CONFIGMAP, namespace, f"slow-{index}",
                              {"metadata": {"annotations": {"again": "1"}}})
        renewals_before = len(watchdog.renewals)
        eventually(lambda: len(watchdog.renewals) >= renewals_before + 2, timeout=patience,
                   what="the Lease is renewed while the tenant's rule runs")
    finally:
        watchdog.stop()
    assert admin.get(NAMESPACE, None, good_namespace)
    return watchdog, finished


def test_a_tenant_template_at_its_limit_does_not_stall_the_engine(
        admin: Cluster, objects: Objects, namespace: str, kubeconfig: str,
        engines: list[Engine], tmp_path: Path) -> None:
    watchdog, reported = run_hostile_tenant(
        admin, objects, namespace, kubeconfig, engines, tmp_path,
        bad_rule={"mutate": {"template": {"data": {"out": SLOW_TEMPLATE}}}},
        data={"j": BIG_JSON},
        done=lambda: bad_rule_status(admin, namespace, "tenant-slow"))
    assert watchdog.probes > 10
    assert watchdog.failures == []
    assert len(watchdog.renewals) >= 3
    assert "(limit templates.max_" in reported["lastError"]
    assert "rule 'slow', field mutate.template" in reported["lastError"]
    for index in range(BAD_OBJECTS):  # the bad rule changed nothing
        assert "out" not in admin.get(CONFIGMAP, namespace, f"slow-{index}")["data"]


def test_a_tenant_cel_regex_that_backtracks_does_not_stall_the_engine(
        admin: Cluster, objects: Objects, namespace: str, kubeconfig: str,
        engines: list[Engine], tmp_path: Path) -> None:
    watchdog, _ = run_hostile_tenant(
        admin, objects, namespace, kubeconfig, engines, tmp_path,
        bad_rule={"condition": "object.data.v.find('(a+)+$') == ''",
                  "mutate": {"template": {"metadata": {"labels": {"hit": "yes"}}}}},
        data={"v": "a" * 40 + "!"}, patience=30.0,
        done=lambda: all(labels_of(admin, CONFIGMAP, namespace, f"slow-{i}").get("hit")
                         == "yes" for i in range(BAD_OBJECTS)))
    assert watchdog.failures == []
