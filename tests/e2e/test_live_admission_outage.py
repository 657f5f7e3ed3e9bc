"""The engine gone (kill -9 of an `edict run` process): what each failure policy does.

`edict run` runs as a subprocess, exactly as deployed (webhook on 127.0.0.1, its own CA
in a Secret of its namespace). Once the API server calls it, the process is killed with
SIGKILL — no graceful shutdown, the configurations stay behind pointing at a dead port.
Then: kinds of `Ignore` rule sets are still created (unchanged), kinds of a `Fail` rule
set are refused with the API server's message naming the webhook, and Edict's own
namespace and kube-system are never gated, even under `Fail`. The configurations are
deleted afterwards (the recovery docs/admission.md describes).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK
from tests.support import eventually

from .conftest import Objects
from .live import ROOT, cluster_rule_set, unique
from .test_live_admission import (
    MUTATING,
    delete_configurations,
    free_port,
    kubectl,
    webhook_resources,
)

pytestmark = pytest.mark.cluster
CONFIGMAP = GVK("", "v1", "ConfigMap")


def label_rule(kind: str, namespace: str) -> dict[str, object]:
    return {"name": "label", "match": {"resources": [{"apiVersion": "v1", "kinds": [kind]}],
                                       "namespaces": [namespace]},
            "mutate": {"template": {"metadata": {"labels": {"edict": "was-here"}}}}}


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def killed_engine(admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
                  tmp_path: Path) -> Iterator[str]:
    """An `edict run` subprocess that served the webhooks for a Fail rule set
    (ConfigMaps) and an Ignore one (Secrets), then died by SIGKILL. Yields Edict's own
    namespace."""
    own = unique("edict-own")
    objects.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": own}})
    objects.create(cluster_rule_set(unique("strict"), [label_rule("ConfigMap", namespace)],
                                    admission={"failurePolicy": "Fail"}))
    objects.create(cluster_rule_set(unique("lenient"), [label_rule("Secret", namespace)]))
    port, health = free_port(), free_port()
    log = tmp_path / "edict.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", kubeconfig,
             "--webhook-addr", f"127.0.0.1:{port}", "--webhook-url",
             f"https://127.0.0.1:{port}", "--engine-namespace", own,
             "--health-addr", f"127.0.0.1:{health}", "--metrics-addr", "0"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        try:
            eventually(lambda: ready(health), timeout=60, what="edict run ready")
            eventually(lambda: webhook_resources(admin, MUTATING) == {
                "mutate.edict.dev": ["secrets"], "mutate-fail.edict.dev": ["configmaps"]},
                what="both webhooks configured")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log.read_text()[-3000:]}") from None
        alive = kubectl(kubeconfig, "create", "configmap", "while-alive", "-n", namespace,
                        "-o", "json")
        assert alive.returncode == 0, alive.stderr
        assert json.loads(alive.stdout)["metadata"]["labels"] == {"edict": "was-here"}
        process.kill()  # SIGKILL: nothing is cleaned up
        process.wait(30)
        yield own
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        delete_configurations(admin)


def test_with_ignore_creates_still_succeed_unchanged(
        kubeconfig: str, namespace: str, killed_engine: str) -> None:
    made = kubectl(kubeconfig, "create", "secret", "generic", "after", "-n", namespace,
                   "--from-literal=a=b", "-o", "json")
    assert made.returncode == 0, made.stderr
    assert "labels" not in json.loads(made.stdout)["metadata"], "nothing could mutate it"


def test_with_fail_creates_are_refused_naming_the_webhook(
        admin: Cluster, kubeconfig: str, namespace: str, killed_engine: str) -> None:
    refused = kubectl(kubeconfig, "create", "configmap", "after", "-n", namespace)
    assert refused.returncode != 0
    assert 'failed calling webhook "mutate-fail.edict.dev"' in refused.stderr, refused.stderr
    with pytest.raises(NotFound):
        admin.get(CONFIGMAP, namespace, "after")


def test_edicts_namespace_and_kube_system_are_never_locked_out(
        admin: Cluster, kubeconfig: str, killed_engine: str) -> None:
    for target in (killed_engine, "kube-system"):
        name = unique("still-works")
        made = kubectl(kubeconfig, "create", "configmap", name, "-n", target)
        assert made.returncode == 0, (target, made.stderr)
        with contextlib.suppress(NotFound):
            admin.delete(CONFIGMAP, target, name)
    # and the recovery: with the configurations deleted, everything is admitted again
    delete_configurations(admin)
    recovered = unique("recovered")
    assert kubectl(kubeconfig, "create", "configmap", recovered, "-n", "default"
                   ).returncode == 0
    admin.delete(CONFIGMAP, "default", recovered)
