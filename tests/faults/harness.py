"""The fault suite's pieces: the workload, `edict run` as a process, and what the API
server's audit log says about every write.

The workload is 1,000 ConfigMaps labelled `app: load` in one namespace and a RuleSet
there with two rules: `mark` (mutate: adds a label) and `copy` (generate: one child
ConfigMap per trigger, `<name>-child`). Converged means every trigger carries the label
and has exactly one child, of its own uid, and there is no other child.

The audit policy logs, at Metadata level, every write to ConfigMaps, Leases and rule
sets, with its user and answer: the suite's way to see each request the engine made
even across API server restarts (its /metrics start again at zero) and engine restarts.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK, Obj, labels_of, meta
from tests.support import wait_established

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = GVK("", "v1", "ConfigMap")
RULE_SET = GVK("edict.dev", "v1alpha1", "RuleSet")
SEEN = "edict.dev/seen"
TRIGGER_UID = "edict.dev/trigger-uid"
OBJECTS = 1000
WRITES = 2 * OBJECTS  # one patch per trigger, one create per child

AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete"],
         "resources": [{"group": "", "resources": ["configmaps"]},
                       {"group": "coordination.k8s.io", "resources": ["leases"]},
                       {"group": "edict.dev", "resources": ["rulesets", "rulesets/status"]}]},
        {"level": "None"},
    ],
}


def rule_set(namespace: str) -> Obj:
    loads = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
             "selector": {"matchLabels": {"app": "load"}}}
    return {
        "apiVersion": "edict.dev/v1alpha1", "kind": "RuleSet",
        "metadata": {"name": "load", "namespace": namespace},
        "spec": {"rules": [
            {"name": "mark", "match": loads,
             "mutate": {"template": {"metadata": {"labels": {SEEN: "yes"}}}}},
            {"name": "copy", "match": loads,
             "generate": {"template": {
                 "apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "{{ object.metadata.name }}-child",
                              "labels": {"role": "child"}},
                 "data": {"source": "{{ object.metadata.name }}"}}}},
        ]},
    }


def trigger(namespace: str, name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "load"}},
            "data": {"n": name}}


def install_crds(kubeconfig: str) -> None:
    subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply",
                    "-f", str(ROOT / "crds/edict.dev_rulesets.yaml"),
                    "-f", str(ROOT / "crds/edict.dev_clusterrulesets.yaml")],
                   check=True, capture_output=True, timeout=120)
    wait_established(kubeconfig, "rulesets.edict.dev", "clusterrulesets.edict.dev")


def create_all(admin: Cluster, objects: Iterable[Obj]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(admin.create, objects))


def prepare(admin: Cluster, namespace: str) -> None:
    """The namespace and the RuleSet."""
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    admin.create(rule_set(namespace))


def load(admin: Cluster, namespace: str, count: int = OBJECTS) -> list[str]:
    """`count` triggers; their names."""
    names = [f"load-{i:04d}" for i in range(count)]
    create_all(admin, (trigger(namespace, name) for name in names))
    return names


# -- the server's state ----------------------------------------------------------------


@dataclass
class State:
    """What the API server holds in the workload's namespace."""

    triggers: dict[str, Obj]
    children: dict[str, Obj]

    def problems(self) -> list[str]:
        """Why it is not converged (empty: converged)."""
        out = [f"{name} not marked" for name, obj in self.triggers.items()
               if labels_of(obj).get(SEEN) != "yes"]
        for name, obj in self.triggers.items():
            child = self.children.get(f"{name}-child")
            if child is None:
                out.append(f"{name} has no child")
            elif labels_of(child).get(TRIGGER_UID) != meta(obj).get("uid"):
                out.append(f"{name}-child belongs to another {name}")
        out += [f"orphan child {name}" for name in self.children
                if name.removesuffix("-child") not in self.triggers]
        return out

    def uids(self) -> dict[str, str]:
        return {name: str(meta(obj)["uid"]) for name, obj in self.children.items()}


def state(admin: Cluster, namespace: str) -> State:
    items, _ = admin.list(CONFIGMAP, namespace=namespace)
    return State(
        triggers={meta(o)["name"]: o for o in items if labels_of(o).get("app") == "load"},
        children={meta(o)["name"]: o for o in items if labels_of(o).get("role") == "child"})


def converged(admin: Cluster, namespace: str) -> State | None:
    try:
        current = state(admin, namespace)
    except Exception:  # the server may still be coming back
        return None
    return None if current.problems() else current


def rule_set_settled(admin: Cluster, namespace: str, objects: int) -> Obj | None:
    """The RuleSet's status once Ready and current: every rule matches `objects`
    objects with no errors (written after the last of them converged)."""
    try:
        status = admin.get(RULE_SET, namespace, "load").get("status") or {}
    except Exception:
        return None
    ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
    rules = {r["name"]: r for r in status.get("rules") or ()}
    if ready and ready[0].get("status") == "True" and set(rules) == {"mark", "copy"} and all(
            r.get("matched") == objects and r.get("errors") == 0 for r in rules.values()):
        return dict(status)
    return None


# -- the audit log ---------------------------------------------------------------------


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Write:
    """One write request as the API server logged it."""

    user: str
    verb: str
    resource: str
    name: str
    code: int
    received: float
    answered: float

    @property
    def applied(self) -> bool:
        return 200 <= self.code < 300

    @property
    def decided(self) -> bool:
        """The server judged it against the object (applied, or refused as stale)."""
        return self.applied or self.code in (404, 409, 422)


def audit(path: Path, *, namespace: str) -> list[Write]:
    writes = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace or event.get("stage") != "ResponseComplete":
            continue
        writes.append(Write(
            user=str(event["user"]["username"]), verb=str(event["verb"]),
            resource=str(ref.get("resource", "")) + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""),
            name=str(ref.get("name", "")),
            code=int((event.get("responseStatus") or {}).get("code") or 0),
            received=_time(event["requestReceivedTimestamp"]),
            answered=_time(event["stageTimestamp"])))
    return writes


@dataclass
class Writes:
    """The engine's writes to the workload's ConfigMaps, per object."""

    by_object: dict[str, list[Write]] = field(default_factory=dict)

    @classmethod
    def of(cls, writes: Iterable[Write], users: set[str]) -> Writes:
        grouped: dict[str, list[Write]] = defaultdict(list)
        for write in writes:
            if write.user in users and write.resource == "configmaps":
                grouped[write.name].append(write)
        return cls(dict(grouped))

    def all(self) -> list[Write]:
        return sorted((w for ws in self.by_object.values() for w in ws),
                      key=lambda w: w.received)

    def applied_twice(self) -> dict[str, int]:
        """Objects written successfully more than once: a repeated write."""
        counts = {name: sum(w.applied for w in ws) for name, ws in self.by_object.items()}
        return {name: n for name, n in counts.items() if n > 1}

    def decided_thrice(self) -> dict[str, int]:
        """Objects the server judged more than twice: beyond one guarded retry."""
        counts = {name: sum(w.decided for w in ws) for name, ws in self.by_object.items()}
        return {name: n for name, n in counts.items() if n > 2}

    def deletes(self) -> list[Write]:
        return [w for w in self.all() if w.verb == "delete"]

    def codes(self) -> Counter[int]:
        return Counter(w.code for w in self.all())

    def extra(self, needed: int = WRITES) -> int:
        """Requests beyond the `needed` ones that reached the server (any answer)."""
        return len(self.all()) - needed


# -- `edict run` as a process ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Edict:
    """`edict run` in its own process, as people run it; /metrics on a port of its own."""

    def __init__(self, kubeconfig: str, namespace: str, log: Path, *, workers: int = 4,
                 leader_elect: bool = False) -> None:
        self.port = free_port()
        self.log = log
        args = [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", kubeconfig,
                "--namespace", namespace, "--workers", str(workers),
                "--metrics-addr", f"127.0.0.1:{self.port}", "--health-addr", "0"]
        if leader_elect:
            args += ["--leader-elect", "--lease-namespace", namespace, "--lease-name", "edict"]
        with log.open("a") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                                            stderr=out)
        self.identity = f"{socket.gethostname()}-{self.process.pid}"

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def sample(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent or unreachable)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = rf"^{re.escape(name)}" + (rf"\{{{re.escape(wanted)}\}}" if labels else "")
        found = re.findall(pattern + r" (\S+)$", self.metrics(), re.M)
        return float(found[0]) if found else 0.0

    def requests(self) -> float:
        """Every request it sent, whatever the answer (edict_api_requests_total)."""
        return sum(float(value) for value in re.findall(
            r"^edict_api_requests_total\{[^}]*\} (\S+)$", self.metrics(), re.M))

    def writes(self) -> float:
        return sum(self.sample("edict_writes_total", kind=kind)
                   for kind in ("patch", "create", "delete"))

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""


def lease_holder(admin: Cluster, namespace: str) -> str:
    try:
        lease = admin.get(GVK("coordination.k8s.io", "v1", "Lease"), namespace, "edict")
    except NotFound:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
