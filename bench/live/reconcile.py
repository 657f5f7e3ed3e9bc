"""The workers' own CPU per object: one reconcile, its PATCH answered at once.

    python -m bench.live.reconcile [--objects 3000] [--repeat 3] [--bytecodes] [--echoes]

One thread, no API server: a `WatchManager` over an in-memory list of N ConfigMaps
shaped like the live benchmark's (its informer lists them and then waits on a watch
that says nothing), the live benchmark's rule (one label, by namespace and selector),
and the runtime's own parts as `Manager` wires them — `Reconciler`, `Writer` with its
write gate, `StatusBoard`, `Recorder` (not started: it queues, never posts),
`Dependencies`, `EngineMetrics`, the `WorkQueue` — driven by `ObjectController.process`
for every key. The writer's cluster answers each PATCH with the object the API server
would store, made beforehand; so what is timed (`time.thread_time`) is everything a
worker does per object but the request itself: the cache read, evaluating, the write's
bookkeeping, the status board, Events, metrics and the queue.

Checked before it counts: N patches written, each the benchmark's two ops (the guard
and the label), and each answer found to be exactly what was asked (its watch echo
would be known as ours). Compare two checkouts by
running it under each, alternating (numbers move with the machine's load), or with
`--bytecodes`, which counts the bytecodes and Python calls each reconcile runs instead
of timing it: the same count on every run, so a change of a few percent shows at once
(it leaves out what C does — decoding JSON, a dict's work — and weighs a call as one).

`--echoes` measures the informer's side instead: after the reconciles (the listed
objects queued by the runtime's `Router`, as live), each write's echo is handed to the
ConfigMap informer as its watch hands an event on — cached (`managedFields` dropped,
encoded) and routed (known as ours: nothing is queued, which is checked).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from engine.evaluate.engine import Engine
from engine.kube.discovery import Resource
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.load import parse_rule_set
from engine.runtime.clock import RealClock
from engine.runtime.concurrency import WriteGate
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.events import Recorder
from engine.runtime.controller.objects import ObjectController
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.controller.reconciler import Reconciler
from engine.runtime.controller.routing import Router
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from engine.runtime.source.informer import InformerSettings
from engine.runtime.source.watches import WatchManager
from engine.runtime.source.world import CacheWorld, Scopes
from engine.runtime.status import StatusBoard
from engine.runtime.writer import Writer

from .cluster import CONFIGMAP, NAMESPACE, configmap
from .phases import label_ops, rule_set

SPACE = "bench-reconcile"


class _Silent:
    """A watch that delivers nothing until closed."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[tuple[str, Obj]]:
        self._closed.wait()
        return iter(())

    def close(self) -> None:
        self._closed.set()


class _Source:
    """Lists the given objects per kind, then watches in silence."""

    def __init__(self, objects: dict[GVK, list[Obj]]) -> None:
        self._objects = objects

    def list(self, gvk: GVK, *, transform: Callable[[Obj], Obj] | None = None,
             **_: Any) -> tuple[list[Obj], str]:
        items = [copy.deepcopy(o) for o in self._objects.get(gvk, [])]
        return [transform(i) for i in items] if transform else items, "1"

    def watch(self, gvk: GVK, **_: Any) -> _Silent:
        return _Silent()


class _Answers:
    """The writer's cluster: each PATCH answered with the stored object made beforehand."""

    def __init__(self, stored: dict[str, Obj]) -> None:
        self._stored = stored
        self.patches = 0
        # what discovery answered, kept: the engine's `known_resource` is a dict lookup
        self._resources: dict[GVK, Resource] = {}

    def resource_for(self, gvk: GVK) -> Resource:
        found = self._resources.get(gvk)
        if found is None:
            found = self._resources[gvk] = Resource(
                gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=gvk != NAMESPACE,
                verbs=frozenset(), has_status=False)
        return found

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: list[Obj]) -> Obj:
        answer = self._stored[name]
        if list(ops) != label_ops(answer["metadata"]["resourceVersion"][:-1]):
            raise AssertionError(f"unexpected patch of {name}: {ops}")
        self.patches += 1
        return answer


def _objects(n: int) -> tuple[list[Obj], dict[str, Obj]]:
    objects, stored = [], {}
    for number in range(n):
        obj = configmap(SPACE, number)
        obj["metadata"].update(uid=f"uid-{number}", resourceVersion=str(1000 + number),
                               creationTimestamp="2026-01-01T00:00:00Z")
        objects.append(obj)
        answer = copy.deepcopy(obj)
        answer["metadata"]["labels"]["edict.dev/bench"] = "converged"
        answer["metadata"]["resourceVersion"] += "1"  # any later version
        stored[obj["metadata"]["name"]] = answer
    return objects, stored


class Bytecodes:
    """Counts the bytecodes and Python calls run inside `count(...)` (`sys.settrace`
    with opcode events: slow, but the same count on every run, whatever the load)."""

    def __init__(self) -> None:
        self.ops = 0
        self.calls = 0

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.ops += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        self.calls += 1
        frame.f_trace_opcodes = True
        return self._local

    def count(self, call: Callable[[], Any]) -> None:
        sys.settrace(self._global)
        try:
            call()
        finally:
            sys.settrace(None)


@dataclass
class _Runtime:
    """The runtime's parts as `Manager` wires them, over N listed ConfigMaps."""

    objects: list[Obj]
    stored: dict[str, Obj]  # name -> the object each PATCH answer stores
    watches: WatchManager
    cluster: _Answers
    queue: WorkQueue[ObjectKey]
    reconciler: Reconciler
    controller: ObjectController


@contextlib.contextmanager
def _runtime(n: int, *, routed: bool = False) -> Iterator[_Runtime]:
    """`routed`: the informers' events go through the runtime's `Router` (which queues
    each listed object); else nothing is queued."""
    objects, stored = _objects(n)
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": SPACE, "resourceVersion": "1"}}
    rules = parse_rule_set(rule_set("bench", SPACE))
    clock = RealClock()
    watches = WatchManager(source=_Source({CONFIGMAP: objects, NAMESPACE: [namespace]}),
                           clock=clock, settings=InformerSettings(resync_period=0))
    cluster = _Answers(stored)
    metrics = EngineMetrics(CollectorRegistry())
    board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    board.loaded(rules.ref, generation=1, rules={"bench-label": ""})
    queue: WorkQueue[ObjectKey] = WorkQueue(clock=clock)
    current = Current(Engine([rules]), {rules.ref: rules})
    reconciler = Reconciler(
        writer=Writer(cluster, metrics=metrics,  # type: ignore[arg-type]
                      gate=WriteGate(initial=16, maximum=16)),
        watches=watches, world=CacheWorld(watches, Scopes(cluster.resource_for)),
        current=lambda: current, board=board, dependencies=Dependencies(),
        metrics=metrics, recorder=Recorder(cluster, instance="bench",  # type: ignore[arg-type]
                                           clock=clock),
        requeue=queue.add)
    if routed:
        router = Router(queue=queue, watches=watches, dependencies=Dependencies(),
                        reconciler=reconciler, current=lambda: current,
                        rule_sets_changed=lambda: None)
        watches.on_started(router.prepare)
    for gvk in (CONFIGMAP, NAMESPACE):
        watches.acquire(gvk, "bench")
    try:
        if not watches.wait_synced([CONFIGMAP, NAMESPACE], timeout=60):
            raise RuntimeError("the caches did not list")
        yield _Runtime(objects, stored, watches, cluster, queue, reconciler,
                       ObjectController(queue=queue, reconciler=reconciler, metrics=metrics,
                                        clock=clock, refused_retry=60.0))
    finally:
        watches.stop()


def one_round(n: int, bytecodes: Bytecodes | None = None) -> float:
    """Microseconds of this thread's CPU per object, over N reconciles (with
    `bytecodes`, what they ran is counted there instead: the time means nothing)."""
    with _runtime(n) as parts:
        keys = [key_of(obj) for obj in parts.objects]
        for key in keys:
            parts.queue.add(key)
        started = time.thread_time()
        for _ in keys:
            taken = parts.queue.get(timeout=0)
            assert taken is not None
            if bytecodes is not None:
                bytecodes.count(functools.partial(parts.controller.process, taken))
            else:
                parts.controller.process(taken)
        used = time.thread_time() - started
        # each write stored exactly what was asked: its echo is known as ours
        echoes = sum(parts.reconciler.own_writes.is_echo(key, parts.stored[key.name][
            "metadata"]["resourceVersion"]) for key in keys)
        if parts.cluster.patches != n or echoes != n:
            raise AssertionError(f"{parts.cluster.patches} patches, {echoes} echoes known "
                                 f"of {n}")
        return used / n * 1e6


def echo_round(n: int, bytecodes: Bytecodes | None = None) -> float:
    """Microseconds of the informer thread's CPU per echo of our own write: N objects
    listed (queued by the runtime's `Router`) and reconciled, then each write's echo
    delivered to the informer as its watch delivers an event (`Informer._handle`, with
    the answer's object, `managedFields` and all, as the watch stream takes it from
    the remembered answer): caching it and routing it. Checked: no echo queues its key
    again."""
    with _runtime(n, routed=True) as parts:
        while (key := parts.queue.get(timeout=0)) is not None:
            parts.controller.process(key)
        if parts.cluster.patches != n:
            raise AssertionError(f"{parts.cluster.patches} patches of {n}")
        informer = parts.watches.informer(CONFIGMAP)
        echoes = [copy.deepcopy(parts.stored[key_of(obj).name]) for obj in parts.objects]
        for echo in echoes:
            echo["metadata"]["managedFields"] = copy.deepcopy(MANAGED_FIELDS)
        started = time.thread_time()
        for echo in echoes:
            if bytecodes is not None:
                bytecodes.count(functools.partial(informer._handle, "MODIFIED", echo))
            else:
                informer._handle("MODIFIED", echo)
        used = time.thread_time() - started
        if len(parts.queue):
            raise AssertionError(f"{len(parts.queue)} echoes queued their key again")
        return used / n * 1e6


# what the API server records of the benchmark's writes: the creator's, then the rule's
MANAGED_FIELDS = [
    {"manager": "bench", "operation": "Update", "apiVersion": "v1",
     "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:data": {".": {}, "f:key": {}},
                  "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}},
    {"manager": "edict", "operation": "Update", "apiVersion": "v1",
     "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:metadata": {"f:labels": {"f:edict.dev/bench": {}}}}}]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live.reconcile",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--echoes", action="store_true",
                        help="measure the informer's work per echo of a write instead "
                        "(caching and routing it) after the reconciles")
    parser.add_argument("--bytecodes", action="store_true",
                        help="count the bytecodes and Python calls per reconcile instead "
                        "of timing them (the same on every run: compares two checkouts "
                        "on a noisy machine)")
    args = parser.parse_args()
    measure, what = ((echo_round, "per echo, cached and routed") if args.echoes
                     else (one_round, "per reconcile without the request"))
    measure(min(args.objects, 200))  # warm-up: imports, first compiles
    if args.bytecodes:
        counted = Bytecodes()
        measure(args.objects, counted)
        print(f"{what}: {counted.ops / args.objects:.0f} bytecodes, "
              f"{counted.calls / args.objects:.1f} Python calls")
        return
    rounds = [measure(args.objects) for _ in range(args.repeat)]
    print(f"{what}, µs of CPU: {' '.join(f'{r:.1f}' for r in rounds)} "
          f"(median {statistics.median(rounds):.1f})")


if __name__ == "__main__":
    main()
