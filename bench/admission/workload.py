"""What the admission benchmark creates, the rules it loads, and the engine it runs.

`__main__` uses these for both phases: the same N objects (`pod` or `configmap`), created by
W client threads through a fresh `engine.kube.Cluster` (`create_all`, latency of every
create timed on the client), in a fresh namespace per phase. The webhook phase runs
`edict run --webhook-addr` as a subprocess (`EdictProcess`), as the shipped Deployment
runs it, with the 20 rules of `rule_set` loaded; `webhook_seconds` reads the webhook's
own handling time from its `/metrics` histogram.

Pods by default: what admission is for (security defaults, sidecars, image policy that
cannot wait for the background). `--kind configmap` measures the worst case: the
cheapest kind the API server stores, where the webhook's share of a create is largest.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.kube import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK, Obj

ROOT = Path(__file__).resolve().parents[2]
MUTATING = GVK("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration")
VALIDATING = GVK("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration")
TIERS = ("web", "db", "cache", "batch")


def _match(kind: str) -> Obj:
    return {"resources": [{"apiVersion": "v1", "kinds": [kind]}],
            "namespaces": ["bench-adm-*"], "selector": {"matchLabels": {"app": "edict-bench"}}}


def configmap(namespace: str, number: int) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{number:05d}", "namespace": namespace,
                         "labels": {"app": "edict-bench", "tier": TIERS[number % 4]}},
            "data": {"index": str(number), "payload": "x" * 64, "mode": "prod"}}


def pod(namespace: str, number: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{number:05d}", "namespace": namespace,
                         "labels": {"app": "edict-bench", "tier": TIERS[number % 4]}},
            "spec": {"containers": [
                {"name": "app", "image": f"registry.example.com/app:1.{number % 7}",
                 "ports": [{"containerPort": 8080}]},
                {"name": "logs", "image": "registry.example.com/fluent-bit:3.1",
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


OBJECTS = {"pod": pod, "configmap": configmap}


def _mutate(kind: str, name: str, template: Obj, condition: str | None = None,
            for_each: str | None = None) -> Obj:
    rule: Obj = {"name": name, "match": _match(kind), "mutate": {"template": template}}
    if condition:
        rule["condition"] = condition
    if for_each:
        rule["mutate"]["forEach"] = for_each
    return rule


def _labels(**values: str) -> Obj:
    return {"metadata": {"labels": values}}


def _validate(kind: str, name: str, expression: str, message: str) -> Obj:
    return {"name": name, "match": _match(kind),
            "validate": {"expression": expression, "message": message}}


def _pod_rules() -> list[Obj]:
    """What a platform team asks of every Pod: 12 mutate rules (the pod-security
    defaults, a sidecar, default requests, labels from the Namespace and from `request`)
    and 8 validate rules."""
    m, v = (lambda *a, **k: _mutate("Pod", *a, **k)), (lambda *a: _validate("Pod", *a))
    containers = "object.spec.containers"
    return [
        m("team", _labels(team="platform")),
        m("env", _labels(env="{{ namespaceObject.metadata.labels.get('env', 'dev') }}")),
        m("created-by", {"metadata": {"annotations": {
            "example.com/created-by": "{{ request.userInfo.username }}"}}},
          "request != null && request.operation == 'CREATE'"),
        m("non-root", {"spec": {"securityContext": {"runAsNonRoot": True}}},
          "!has(object.spec.securityContext) || "
          "!has(object.spec.securityContext.runAsNonRoot)"),
        m("seccomp", {"spec": {"securityContext": {"seccompProfile": {
            "type": "RuntimeDefault"}}}},
          "!has(object.spec.securityContext) || "
          "!has(object.spec.securityContext.seccompProfile)"),
        m("no-escalation", {"spec": {"containers": [{"name": "{{ item.name }}",
                                                     "securityContext": {
                                                         "allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}},
          for_each=f"{containers}.filter(c, !has(c.securityContext))"),
        m("requests", {"spec": {"containers": [{"name": "{{ item.name }}", "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"}}}]}},
          for_each=f"{containers}.filter(c, !has(c.resources) || "
                   "!has(c.resources.requests))"),
        m("proxy", {"spec": {"containers": [{
            "name": "proxy", "image": "registry.example.com/proxy:2.0",
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}}}]}},
          f"!{containers}.exists(c, c.name == 'proxy')"),
        m("no-token", {"spec": {"automountServiceAccountToken": False}},
          "!has(object.spec.automountServiceAccountToken)"),
        m("no-links", {"spec": {"enableServiceLinks": False}},
          "object.spec.?enableServiceLinks.orValue(true)"),
        m("cost-centre", _labels(**{"cost-centre": "cc-{{ object.metadata.labels.team }}"}),
          "has(object.metadata.labels.team)"),
        m("tier-priority", _labels(priority="high"), "object.metadata.labels.tier == 'db'"),
        v("pinned", f"{containers}.all(c, c.image.contains('@') || "
                    "(c.image.split('/')[c.image.split('/').size() - 1].contains(':') && "
                    "!c.image.endsWith(':latest')))", "images pinned to a tag or digest"),
        v("registry", f"{containers}.all(c, c.image.startsWith('registry.example.com/'))",
          "images from registry.example.com"),
        v("requests-set", f"{containers}.all(c, has(c.resources) && "
                          "has(c.resources.requests))", "every container requests resources"),
        v("no-privileged", f"!{containers}.exists(c, c.?securityContext.?privileged"
                           ".orValue(false))", "no privileged containers"),
        v("no-host-network", "!object.spec.?hostNetwork.orValue(false)", "no host network"),
        v("no-host-path", "!object.spec.?volumes.orValue([]).exists(v, has(v.hostPath))",
          "no hostPath volumes"),
        v("runs-as-non-root", "object.spec.?securityContext.?runAsNonRoot.orValue(false)",
          "Pods run as non-root"),
        v("has-team", "object.metadata.?labels.?team.orValue('') != ''", "a team label"),
    ]


def _configmap_rules() -> list[Obj]:
    """12 mutate rules (CEL conditions, a lookup of the Namespace, `request`, rules that
    read what earlier rules wrote) and 8 validate rules on ConfigMaps."""
    m, v = (lambda *a, **k: _mutate("ConfigMap", *a, **k)), (
        lambda *a: _validate("ConfigMap", *a))
    return [
        m("team", _labels(team="platform")),
        m("env", _labels(env="{{ namespaceObject.metadata.labels.get('env', 'dev') }}")),
        m("web-exposure", _labels(exposure="public"), "object.metadata.labels.tier == 'web'"),
        m("db-backup", _labels(backup="daily"), "object.metadata.labels.tier == 'db'"),
        m("cache-ttl", _labels(ttl="short"), "object.metadata.labels.tier == 'cache'"),
        m("owner", {"metadata": {"annotations": {"example.com/owner": "team-a"}}},
          "!has(object.metadata.annotations) || "
          "!('example.com/owner' in object.metadata.annotations)"),
        m("created-by", {"metadata": {"annotations": {
            "example.com/created-by": "{{ request.userInfo.username }}"}}},
          "request != null && request.operation == 'CREATE'"),
        m("size", _labels(size="keys-{{ object.data | length }}")),
        m("cost-centre", _labels(**{"cost-centre": "cc-{{ object.metadata.labels.team }}"}),
          "has(object.metadata.labels.team)"),
        m("prod-mode", _labels(mode="{{ object.data.mode }}"),
          "has(object.data.mode) && object.data.mode in ['prod', 'staging']"),
        m("version", {"data": {"edict-version": "1"}}),
        m("reviewed", {"metadata": {"annotations": {"example.com/reviewed": "true"}}},
          "object.metadata.labels.?exposure.orValue('') == 'public'"),
        v("app-label", "has(object.metadata.labels.app)", "every object names its app"),
        v("name", "object.metadata.name.matches('^[a-z0-9-]+$')", "a DNS-like name"),
        v("no-password", "!object.data.exists(k, k.contains('password'))",
          "secrets belong in Secrets"),
        v("small", "object.data.all(k, size(object.data[k]) < 4096)", "values under 4 KiB"),
        v("tier", "object.metadata.labels.tier in ['web', 'db', 'cache', 'batch']",
          "a known tier"),
        v("has-team", "object.metadata.?labels.?team.orValue('') != ''", "a team"),
        v("mode", "object.data.?mode.orValue('prod') != 'debug'", "no debug mode"),
        v("keys", "size(object.data) <= 16", "at most 16 keys"),
    ]


def rule_set(kind: str = "pod", name: str = "bench-admission") -> Obj:
    """20 rules for the benchmark's objects, all of which hold once the mutate rules ran
    (nothing is denied: every create is stored)."""
    rules = _pod_rules() if kind == "pod" else _configmap_rules()
    assert len(rules) == 20
    return {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
            "metadata": {"name": name}, "spec": {"rules": rules}}


@dataclass
class Created:
    seconds: float  # first create sent → last answered
    latencies: list[float] = field(default_factory=list)  # seconds, one per create
    failures: list[str] = field(default_factory=list)


def create_all(api: Cluster, objects: list[Obj], *, threads: int) -> Created:
    """Create `objects` with `threads` concurrent clients; time each create."""
    pending = list(reversed(objects))
    lock = threading.Lock()
    result = Created(0.0)

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                obj = pending.pop()
            started = time.perf_counter()
            try:
                api.create(obj)
            except Exception as error:  # reported, never hidden
                with lock:
                    result.failures.append(f"{obj['metadata']['name']}: {error}")
                continue
            took = time.perf_counter() - started
            with lock:
                result.latencies.append(took)

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status), answer.read().decode()
    except OSError:
        return 0, ""


_BUCKET = re.compile(r'^edict_admission_duration_seconds_bucket\{le="([^"]+)",webhook="(\w+)"\}'
                     r' (\S+)$')


class EdictProcess:
    """`edict run` serving the webhooks on 127.0.0.1, in its own process."""

    def __init__(self, kubeconfig: str, *, namespace: str, log: Path) -> None:
        self.port, self.health, self.metrics = free_port(), free_port(), free_port()
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", kubeconfig,
                 "--webhook-addr", f"127.0.0.1:{self.port}",
                 "--webhook-url", f"https://127.0.0.1:{self.port}",
                 "--engine-namespace", namespace, "--log-level", "warning",
                 "--health-addr", f"127.0.0.1:{self.health}",
                 "--metrics-addr", f"127.0.0.1:{self.metrics}"],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)})

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"edict run exited {self.process.returncode}:\n"
                               + self.log.read_text()[-3000:])
        return _get(f"http://127.0.0.1:{self.health}/readyz")[0] == 200

    def buckets(self) -> dict[str, list[tuple[float, float]]]:
        """webhook -> cumulative (upper bound, count) of its handling-time histogram."""
        out: dict[str, list[tuple[float, float]]] = {}
        for line in _get(f"http://127.0.0.1:{self.metrics}/metrics")[1].splitlines():
            match = _BUCKET.match(line)
            if match:
                bound, webhook, count = match.groups()
                out.setdefault(webhook, []).append((float(bound), float(count)))
        return out

    def sample(self, name: str) -> float:
        text = _get(f"http://127.0.0.1:{self.metrics}/metrics")[1]
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def webhook_seconds(before: dict[str, list[tuple[float, float]]],
                    after: dict[str, list[tuple[float, float]]], quantile: float
                    ) -> dict[str, tuple[float, float, int]]:
    """webhook -> (the bucket bound the quantile is under, a linear estimate inside that
    bucket, requests) for what happened between two samples of the histogram."""
    out: dict[str, tuple[float, float, int]] = {}
    for webhook, buckets in after.items():
        earlier = dict(before.get(webhook, []))
        counts = [(bound, count - earlier.get(bound, 0.0)) for bound, count in buckets]
        total = counts[-1][1]
        if total <= 0:
            continue
        wanted = quantile * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in counts:
            if count >= wanted:
                share = (wanted - lower_count) / ((count - lower_count) or 1.0)
                estimate = lower_bound + share * (
                    (bound if bound != float("inf") else lower_bound) - lower_bound)
                out[webhook] = (bound, estimate, int(total))
                break
            lower_bound, lower_count = bound, count
    return out


def delete_configurations(api: Cluster) -> None:
    for gvk in (MUTATING, VALIDATING):
        with contextlib.suppress(NotFound):
            api.delete(gvk, None, "edict")


def wait(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)
