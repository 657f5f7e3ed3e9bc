"""`edict run` as people run it: two processes, leader election, graceful shutdown."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.kube.client import Cluster
from engine.objects import GVK
from tests.support import eventually

from .conftest import Objects
from .live import CONFIGMAP, cluster_rule_set, configmap, labels_of, unique

pytestmark = pytest.mark.cluster
LEASE = GVK("coordination.k8s.io", "v1", "Lease")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    def __init__(self, kubeconfig: str, lease_namespace: str, lease: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", kubeconfig,
             "--leader-elect", "--lease-namespace", lease_namespace, "--lease-name", lease,
             "--metrics-addr", f"127.0.0.1:{self.port}", "--health-addr", "0",
             "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=log.open("w"))
        self.identity = f"{socket.gethostname()}-{self.process.pid}"

    def writes(self) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return -1.0
        found = re.findall(r'^edict_writes_total\{kind="patch"\} (\S+)$', text, re.M)
        return float(found[0]) if found else 0.0

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


@pytest.fixture
def engines(kubeconfig: str, tmp_path: Path) -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop()
        # pytest shows this only when the test failed: what each engine said
        print(f"--- {engine.log.name} ---\n{engine.log.read_text()}")


def holder(cluster: Cluster, namespace: str, name: str) -> str:
    return str(cluster.get(LEASE, namespace, name)["spec"].get("holderIdentity") or "")


def test_only_the_leader_writes_and_the_other_takes_over_when_it_stops(
        admin: Cluster, objects: Objects, namespace: str, kubeconfig: str,
        engines: list[Engine], tmp_path: Path) -> None:
    lease = unique("lease")
    objects.create(cluster_rule_set(unique("leader"), [{
        "name": "label", "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                                   "namespaces": [namespace]},
        "mutate": {"template": {"metadata": {"labels": {"seen-by": "leader"}}}}}]))
    first = Engine(kubeconfig, namespace, lease, tmp_path / "first.log")
    engines.append(first)
    eventually(lambda: holder(admin, namespace, lease) == first.identity, timeout=60,
               what="the first engine leads")
    second = Engine(kubeconfig, namespace, lease, tmp_path / "second.log")
    engines.append(second)
    eventually(lambda: second.writes() >= 0, timeout=60, what="the second engine serves")
    objects.create(configmap(namespace, "one"))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "one").get("seen-by")
               == "leader", what="labelled by the leader")
    eventually(lambda: first.writes() == 1, what="the leader wrote")
    assert second.writes() == 0
    assert holder(admin, namespace, lease) == first.identity

    stopped_at = time.monotonic()
    assert first.stop() == 0, first.log.read_text()
    eventually(lambda: holder(admin, namespace, lease) == second.identity, timeout=15,
               what="the second engine takes over within the lease duration")
    took_over = time.monotonic() - stopped_at
    objects.create(configmap(namespace, "two"))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "two").get("seen-by")
               == "leader", what="labelled by the new leader")
    # the label is visible a moment before the worker counts its write
    eventually(lambda: second.writes() >= 1, what="the new leader wrote")
    assert took_over < 15
