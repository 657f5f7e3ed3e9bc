"""The two timed phases: the live engine, and a plain client patch loop doing the same.

Both start from a namespace of N ConfigMaps without the rule's label and end when a
`LabelWatch` has seen all N labelled; both use a new `engine.kube.Cluster` of their own
(same transport, same JSON patch content type) with W concurrent writers.

* `run_engine` starts a `Manager` (W workers, no health server, metrics on its own
  registry), waits until it is ready, then times from creating the ClusterRuleSet.
  Writes are the engine's own count (`edict_writes_total{kind="patch"}`); after
  convergence it waits `settle` seconds and counts any further write (steady state).
* `run_engine(floor=True)` is the same `Manager` with its reconcile replaced by the
  hand-written minimum (`bare_reconcile`): the cache read, the benchmark's patch
  through the engine's `Writer`, the echo bookkeeping. The informer, queue, workers,
  write gate and client are the engine's; the rules, status board, Events and metrics
  per object are gone. engine/floor is what the rules' work costs live, floor/baseline
  what the engine's plumbing costs over the plain loop.
* `run_cached` is the plain loop as a controller would be: W threads patching what the
  engine's `Informer` (cluster-wide, as the engine watches) lists, as each page
  arrives, with the engine's client and its answers for the informer to take the
  echoes from. No queue, reconcile or write gate: cached/baseline is what keeping a
  watched cache costs, floor/cached what the engine's queue, workers and bookkeeping
  add to that.
* `run_baseline` times one list of the namespace plus W threads sending, per object,
  the JSON patch the engine sends: a `test` of the resourceVersion, then `add` the label.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from engine.evaluate.engine import Engine
from engine.evaluate.world import ManifestWorld
from engine.kube import Cluster
from engine.kube.answers import Answers
from engine.kube.errors import Conflict, Invalid, NotFound
from engine.objects import Obj, ObjectKey, meta, name_of
from engine.rules.load import parse_rule_set
from engine.runtime.clock import RealClock
from engine.runtime.controller.reconciler import Decision
from engine.runtime.manager import Manager, ManagerSettings
from engine.runtime.source.informer import EventHandler, Informer

from .apicalls import ApiCalls
from .cluster import CLUSTER_RULE_SET, CONFIGMAP, configmap, count_events, wait_for
from .cpu import Meter
from .observe import LabelWatch

APP_LABEL, APP = "app", "edict-bench"  # on every benchmark object (not kube-root-ca.crt)
LABEL = "edict.dev/bench"
VALUE = "converged"


@dataclass
class Phase:
    """What one timed phase measured (seconds are from its start: rule set / list)."""

    name: str
    run: int
    objects: int
    workers: int
    seconds: float = 0.0  # start → last object labelled (as the watch saw it)
    first: float = 0.0  # start → first object labelled
    writes: int = 0  # patches the writer counted
    seen: int = 0  # MODIFIED events the watch saw (writes that reached etcd)
    extra: int = 0  # writes during the settle period after convergence
    events: int = 0  # Kubernetes Events in the namespace afterwards
    startup: float = 0.0  # engine: Manager.start() → ready (before the rule set)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds, start → converged
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.objects / self.seconds if self.seconds else 0.0


def rule_set(name: str, namespace: str) -> Obj:
    return {"apiVersion": CLUSTER_RULE_SET.api_version, "kind": CLUSTER_RULE_SET.kind,
            "metadata": {"name": name},
            "spec": {"rules": [{
                "name": "bench-label",
                "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                          "namespaces": [namespace],
                          "selector": {"matchLabels": {APP_LABEL: APP}}},
                "mutate": {"template": {"metadata": {"labels": {LABEL: VALUE}}}}}]}}


def label_ops(resource_version: str) -> list[Obj]:
    """The hand-written patch: guarded exactly as the engine guards its own."""
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            {"op": "add", "path": "/metadata/labels/" + LABEL.replace("/", "~1"),
             "value": VALUE}]


def check_same_patch() -> None:
    """The comparison is fair only if both send the same ops: ask the engine offline."""
    obj = configmap("bench-check", 0)
    obj["metadata"]["resourceVersion"] = "42"
    engine = Engine([parse_rule_set(rule_set("check", "bench-check"))])
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-check"}}
    result = engine.evaluate(obj, world=ManifestWorld([obj, namespace]))
    if list(result.patch) != label_ops("42"):
        raise AssertionError(f"engine patch {list(result.patch)} != baseline "
                             f"{label_ops('42')}: the baseline would not do the same work")


def _patches(registry: CollectorRegistry) -> int:
    return int(registry.get_sample_value("edict_writes_total", {"kind": "patch"}) or 0)


def _reconciles(registry: CollectorRegistry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for result in ("success", "requeue", "error", "skipped"):
        value = registry.get_sample_value("edict_reconciles_total", {"result": result})
        if value:
            out[result] = int(value)
    total = registry.get_sample_value("edict_reconcile_duration_seconds_sum") or 0.0
    count = registry.get_sample_value("edict_reconcile_duration_seconds_count") or 0.0
    out["seconds"] = round(total, 3)
    out["mean_ms"] = round(1000 * total / count, 3) if count else 0.0
    return out


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in values.items()}


def _rss_mib() -> float:
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def watch_labels(cluster: Cluster, namespace: str, version: str, objects: int
                 ) -> LabelWatch:
    return LabelWatch(cluster, namespace=namespace, resource_version=version,
                      selector=f"{APP_LABEL}={APP}", label=LABEL, value=VALUE,
                      expected=objects).start()


def bare_reconcile(manager: Manager, namespace: str) -> Callable[[ObjectKey], Decision]:
    """The floor phase's reconcile: what a hand-written controller on the engine's
    plumbing does per key, the rule's match and patch written out (no evaluation, no
    status board, no Events, no metrics but the writer's count of patches)."""
    world, writer = manager.world, manager.writer
    own_writes, requeue = manager.reconciler.own_writes, manager.queue.add

    def reconcile(key: ObjectKey) -> Decision:
        obj = world.get(key.gvk, key.namespace, key.name)
        if obj is None or key.namespace != namespace:
            return Decision.DONE
        labels = meta(obj).get("labels") or {}
        if labels.get(APP_LABEL) != APP or labels.get(LABEL) == VALUE:
            return Decision.DONE
        stored = None
        own_writes.begin(key)
        try:
            written = writer.patch(key.gvk, key.namespace, key.name,
                                   label_ops(str(meta(obj).get("resourceVersion"))),
                                   rule_set=None, current=manager.loaded.get())
            stored = meta(written).get("resourceVersion")
        except (Conflict, Invalid):
            return Decision.REQUEUE  # changed under us: read it again
        finally:
            if own_writes.end(key, stored):
                requeue(key)
        return Decision.DONE

    return reconcile


def run_engine(cluster: Cluster, kubeconfig: str, *, run: int, namespace: str, version: str,
               objects: int, workers: int, timeout: float, settle: float, meter: Meter,
               calls: ApiCalls, events: bool = True, resync: float = 3600.0,
               steady: float = 0.0, floor: bool = False) -> Phase:
    phase = Phase("floor" if floor else "engine", run, objects, workers)
    watch = watch_labels(cluster, namespace, version, objects)
    engine_cluster = Cluster.connect(kubeconfig)  # its own client, as `edict run` has
    registry = CollectorRegistry()
    manager = Manager(engine_cluster, ManagerSettings(workers=workers, resync=resync,
                                                      status_interval=1.0),
                      registry=registry)
    if not events:  # diagnosis only (--no-events): what the Events cost; not a real mode
        manager.recorder._enabled = False
    if floor:  # the workers call the reconciler's `reconcile` by attribute, per key
        manager.reconciler.reconcile = bare_reconcile(  # type: ignore[method-assign]
            manager, namespace)
    name = f"bench-{namespace}"
    try:
        started = time.perf_counter()
        manager.start()
        wait_for(lambda: manager.ready()[0], timeout=60, what="the engine to be ready")
        phase.startup = time.perf_counter() - started
        asked = calls.sample()  # first: reading /metrics is not the engine's CPU
        cpu, threads, process = meter.sample(), meter.threads(), meter.process()
        waits, system = meter.thread_waits(), meter.thread_system()
        start = time.perf_counter()
        cluster.create(rule_set(name, namespace))
        last = watch.wait_converged(timeout)
        phase.cpu = meter.used(cpu, meter.sample())
        phase.notes["process"] = _rounded(meter.used(process, meter.process()))
        phase.notes["requests"] = calls.used(asked, calls.sample())
        phase.notes["thread_cpu"] = {name: round(value, 2) for name, value in sorted(
            meter.used(threads, meter.threads()).items(), key=lambda kv: -kv[1]) if value}
        phase.notes["thread_waits"] = {name: int(value) for name, value in sorted(
            meter.used(waits, meter.thread_waits()).items(), key=lambda kv: -kv[1]) if value}
        phase.notes["thread_system"] = {name: round(value, 2) for name, value in sorted(
            meter.used(system, meter.thread_system()).items(), key=lambda kv: -kv[1])
            if value}
        phase.seconds, phase.first = last - start, watch.first - start
        phase.seen = watch.writes()
        # Normal Events yield to reconciles, so some are posted after convergence: what
        # the whole job cost, Events included, is CPU until the recorder is idle
        wait_for(lambda: manager.recorder.backlog() == 0, timeout=60, every=0.01,
                 what="the engine's Events to be posted")
        time.sleep(0.05)  # the last POST's answer
        phase.notes["ms/obj with events"] = round(
            1000 * sum(meter.used(cpu, meter.sample()).values()) / objects, 2)
        time.sleep(settle)  # a negative check: nothing more may be written
        # read after the settle period: a worker counts its patch only once the answer
        # is back, which may be after the watch has already seen the change
        phase.writes = _patches(registry)
        phase.extra = watch.writes() - phase.seen
        phase.events = count_events(cluster, namespace)
        phase.notes["reconciles"] = _reconciles(registry)
        if steady > 0:  # the engine at rest, resyncing every `resync` seconds
            quiet, reconciled = meter.sample(), _reconciles(registry).get("success", 0)
            time.sleep(steady)
            used = meter.used(quiet, meter.sample())
            phase.notes["steady"] = {
                "seconds": steady, "resyncs": int(steady // resync),
                "cpu": {name: round(value, 2) for name, value in used.items()},
                "reconciles": _reconciles(registry).get("success", 0) - reconciled,
                "writes": _patches(registry) - phase.writes,
                "rss MiB": _rss_mib()}
        phase.notes["writes in flight (limit at the end)"] = manager.writer.gate.limit
        phase.notes["echoes not decoded"] = manager.answers.taken
    finally:
        manager.stop()
        watch.close()
        engine_cluster.close()
        with contextlib.suppress(NotFound):
            cluster.delete(CLUSTER_RULE_SET, None, name)
    return phase


def run_baseline(cluster: Cluster, kubeconfig: str, *, run: int, namespace: str,
                 version: str, objects: int, workers: int, timeout: float, settle: float,
                 meter: Meter, calls: ApiCalls) -> Phase:
    phase = Phase("baseline", run, objects, workers)
    watch = watch_labels(cluster, namespace, version, objects)
    client = Cluster.connect(kubeconfig)  # its own, new client, as the engine has
    lock = threading.Lock()
    counts = {"writes": 0, "retries": 0}
    thread_cpu: dict[str, float] = {}
    todo: queue.SimpleQueue[Obj] = queue.SimpleQueue()

    def label(obj: Obj) -> None:
        while True:
            rv = str(meta(obj).get("resourceVersion"))
            try:
                client.patch_json(CONFIGMAP, namespace, name_of(obj), label_ops(rv))
            except (Conflict, Invalid):  # changed under us: read it again
                obj = client.get(CONFIGMAP, namespace, name_of(obj))
                with lock:
                    counts["retries"] += 1
                continue
            with lock:
                counts["writes"] += 1
            return

    def work() -> None:
        while True:
            try:
                obj = todo.get_nowait()
            except queue.Empty:
                break
            label(obj)
        with lock:
            thread_cpu[threading.current_thread().name] = time.thread_time()

    try:
        asked = calls.sample()  # first: reading /metrics is not the loop's CPU
        cpu, process = meter.sample(), meter.process()
        start = time.perf_counter()
        items, _ = client.list(CONFIGMAP, namespace=namespace, limit=500,
                                label_selector=f"{APP_LABEL}={APP}")
        for obj in items:
            if (meta(obj).get("labels") or {}).get(LABEL) != VALUE:
                todo.put(obj)
        threads = [threading.Thread(target=work, name=f"baseline-{n}", daemon=True)
                   for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        phase.notes["loop"] = round(time.perf_counter() - start, 3)
        # threads that ended are gone from /proc: read them through their own counters
        phase.notes["thread_cpu"] = {"baseline": round(sum(thread_cpu.values()), 2)}
        last = watch.wait_converged(timeout)
        phase.cpu = meter.used(cpu, meter.sample())
        phase.notes["process"] = _rounded(meter.used(process, meter.process()))
        phase.notes["requests"] = calls.used(asked, calls.sample())
        phase.seconds, phase.first = last - start, watch.first - start
        phase.writes, phase.seen = counts["writes"], watch.writes()
        time.sleep(settle)
        phase.extra = watch.writes() - phase.seen
        phase.events = count_events(cluster, namespace)
        phase.notes["retries"] = counts["retries"]
    finally:
        watch.close()
        client.close()
    return phase


def run_cached(cluster: Cluster, kubeconfig: str, *, run: int, namespace: str,
               version: str, objects: int, workers: int, timeout: float, settle: float,
               meter: Meter, calls: ApiCalls) -> Phase:
    phase = Phase("cached", run, objects, workers)
    watch = watch_labels(cluster, namespace, version, objects)
    client = Cluster.connect(kubeconfig)  # its own, new client, as the engine has
    client.remember_answers(Answers())  # the echoes taken, not decoded, as the engine's
    informer = Informer(CONFIGMAP, source=client, clock=RealClock())
    todo: queue.SimpleQueue[Obj] = queue.SimpleQueue()
    lock = threading.Lock()
    counts = {"writes": 0, "retries": 0}
    thread_cpu: dict[str, float] = {}

    def listed(obj: Obj) -> None:  # the informer's thread: every object it lists
        labels = meta(obj).get("labels") or {}
        if (meta(obj).get("namespace") == namespace and labels.get(APP_LABEL) == APP
                and labels.get(LABEL) != VALUE):
            todo.put(obj)

    def work() -> None:
        while True:
            try:
                obj = todo.get(timeout=0.05)
            except queue.Empty:
                if informer.has_synced() and todo.empty():
                    break
                continue
            rv = str(meta(obj).get("resourceVersion"))
            while True:
                try:
                    client.patch_json(CONFIGMAP, namespace, name_of(obj), label_ops(rv))
                except (Conflict, Invalid):  # changed under us: read it again
                    rv = str(meta(client.get(CONFIGMAP, namespace, name_of(obj)))
                             .get("resourceVersion"))
                    with lock:
                        counts["retries"] += 1
                    continue
                break
            with lock:
                counts["writes"] += 1
        with lock:
            thread_cpu[threading.current_thread().name] = time.thread_time()

    informer.add_handler(EventHandler(on_add=listed))
    try:
        asked = calls.sample()
        cpu, threads_before, process = meter.sample(), meter.threads(), meter.process()
        start = time.perf_counter()
        informer.start()
        threads = [threading.Thread(target=work, name=f"cached-{n}", daemon=True)
                   for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = watch.wait_converged(timeout)
        phase.cpu = meter.used(cpu, meter.sample())
        phase.notes["process"] = _rounded(meter.used(process, meter.process()))
        phase.notes["requests"] = calls.used(asked, calls.sample())
        used = meter.used(threads_before, meter.threads())
        phase.notes["thread_cpu"] = {"loop": round(sum(thread_cpu.values()), 2), **{
            name: round(value, 2) for name, value in used.items()
            if value and not name.startswith("cached")}}
        phase.seconds, phase.first = last - start, watch.first - start
        phase.writes, phase.seen = counts["writes"], watch.writes()
        time.sleep(settle)
        phase.extra = watch.writes() - phase.seen
        phase.events = count_events(cluster, namespace)
        phase.notes["retries"] = counts["retries"]
        phase.notes["cached"] = len(informer.store)
    finally:
        informer.stop()
        watch.close()
        client.close()
    return phase
