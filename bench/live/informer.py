"""The ConfigMap informer's own CPU per object, on one thread: its list, then the echo
of each write.

    python -m bench.live.informer [--objects 3000] [--rounds 7] [--kubeconfig PATH]
                                  [--bytecodes]

What the engine's informer thread does in `python -m bench.live`, without the threads
around it: a real control plane's answers are captured once — the list of N ConfigMaps
(pages of 500), then one guarded JSON patch per object (the engine's write; its answer
kept, as `Cluster.remember_answers` keeps it) and the watch lines those writes caused
(read raw from a watch of the namespace) — then replayed, `--rounds` times, through a
new `Informer` wired to a real `Router` (a real `WorkQueue`, `Dependencies` and
`OwnWrites`; the reconciler reduced to what the router asks of it) and the informer's
`WatchStream` with its answer memo:

* list: the pages decoded as `Cluster.list` decodes them (the captured pages, encoded
  again compactly), each item cached, indexed and routed (one key queued per object);
* watch: each captured line parsed (`parse_event`, the echo taken from the memo),
  cached, indexed and routed as the echo of our own write (no key queued).

What a worker does around each write (decoding its answer, `OwnWrites.begin`/`end`,
remembering the answer, and the reconcile's read of the object from the cache) is done
inside the replayed body just before its line, and its CPU is subtracted. Reading the
socket is not included (see `bench.live.requests` for that).

Checked before anything counts, every round: the store holds exactly the objects
listed and then exactly the objects the writes answered (without `managedFields`), the
list queued each key once and the echoes queued none, and every echo was taken from the
memo. Prints this thread's CPU (`time.thread_time`) per object for each part: median
and least of the rounds. `--bytecodes` counts, instead, the bytecodes and Python calls
of the informer's handling of each echo (`Informer._handle`: cache, index, route; not
the line's parsing or the socket): the same count on every run, to compare commits.

Written against interfaces the engine has had since the answer memo (c8d2b87), with
absolute imports only: a copy of this file run from outside the package (`python
/tmp/informer.py`) measures whichever engine is on PYTHONPATH, to compare two commits.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from bench.live import cluster as setup
from bench.live.phases import label_ops, rule_set
from bench.live.reconcile import Bytecodes
from engine.evaluate.engine import Engine
from engine.kube import Cluster
from engine.kube.answers import Answers
from engine.kube.watch import WatchStream
from engine.objects import GVK, Obj, ObjectKey
from engine.rules.load import parse_rule_set
from engine.runtime.clock import FakeClock
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.echoes import OwnWrites
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.controller.routing import Router
from engine.runtime.current import Current
from engine.runtime.source.informer import Informer, InformerSettings
from engine.runtime.source.slim import slim

CONFIGMAP = GVK.of("v1", "ConfigMap")  # the instance the engine uses


class Capture:
    """What the server sent: list pages, PATCH answers and the watch lines of those."""

    def __init__(self) -> None:
        self.pages: list[bytes] = []
        self.answers: list[bytes] = []
        self.lines: list[bytes] = []


class _Recorder(Answers):
    def __init__(self, capture: Capture) -> None:
        super().__init__()
        self._capture = capture

    def remember(self, body: bytes, obj: Obj) -> None:
        self._capture.answers.append(bytes(body))


def capture(kubeconfig: str, objects: int) -> Capture:
    found = Capture()
    api = Cluster.connect(kubeconfig)
    namespace = f"bench-informer-{int(time.time()) % 100000}"
    try:
        version = setup.fill_namespace(api, namespace, objects, threads=8)
        pages: list[Obj] = []
        token = ""
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        while True:
            query = [("limit", "500"), *([("continue", token)] if token else [])]
            page = api.get_path(path, query=query)
            pages.append(page)
            token = str(page["metadata"].get("continue") or "")
            if not token:
                break
        found.pages = [json.dumps(p, separators=(",", ":")).encode() for p in pages]
        items = [item for page in pages for item in page["items"]]
        stream = api.watch(CONFIGMAP, namespace=namespace, resource_version=version,
                           timeout_seconds=300)

        def read() -> None:
            for line in stream._body.lines():
                found.lines.append(bytes(line))
                if len(found.lines) == objects:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        api.remember_answers(_Recorder(found))
        for item in items:
            api.patch_json(CONFIGMAP, namespace, item["metadata"]["name"],
                           label_ops(item["metadata"]["resourceVersion"]))
        reader.join(120)
        stream.close()
    finally:
        setup.drop_namespace(api, namespace)
        api.close()
    if not (len(found.answers) == len(found.lines) == objects):
        raise RuntimeError(f"captured {len(found.answers)} answers and {len(found.lines)} "
                           f"watch lines for {objects} writes")
    for body, line in zip(found.answers, found.lines, strict=True):
        if line != b'{"type":"MODIFIED","object":' + body.rstrip() + b"}":
            raise RuntimeError("a watch line is not its write's answer: no echo to take")
    return found


class _Reconciler:
    """What the router asks of the reconciler: nothing is known converged."""

    def __init__(self) -> None:
        self.own_writes = OwnWrites()

    def known_converged(self, key: ObjectKey, resource_version: str) -> bool:
        return False


class _Source:
    """`Cluster.list` over the captured pages; `watch` gives the replayed stream."""

    def __init__(self, pages: list[bytes], stream: WatchStream) -> None:
        self._pages = pages
        self._stream = stream

    def list(self, gvk: GVK, *, transform: Any = None, **_: Any) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        version = ""
        for page in self._pages:
            body = json.loads(page)
            for item in body.get("items") or ():
                item.setdefault("apiVersion", gvk.api_version)
                item.setdefault("kind", gvk.kind)
                items.append(item if transform is None else transform(item))
            version = str(body["metadata"].get("resourceVersion") or "")
        return items, version

    def watch(self, gvk: GVK, **_: Any) -> WatchStream:
        return self._stream


class _Body:
    """The captured lines; before each, what the worker does around its write."""

    def __init__(self, found: Capture, informer: Informer, reconciler: _Reconciler,
                 answers: Answers) -> None:
        self._found = found
        self._informer = informer
        self._reconciler = reconciler
        self._answers = answers
        self.aside = 0.0  # CPU seconds of the worker's part, not the informer's

    def lines(self) -> Iterator[bytes]:
        for body, line in zip(self._found.answers, self._found.lines, strict=True):
            started = time.thread_time()
            obj = json.loads(body)
            metadata = obj["metadata"]
            key = ObjectKey(CONFIGMAP, metadata["namespace"], metadata["name"])
            self._informer.store.get(metadata["namespace"], metadata["name"])
            self._reconciler.own_writes.begin(key)
            self._answers.remember(body, obj)
            self._reconciler.own_writes.end(key, metadata["resourceVersion"])
            self.aside += time.thread_time() - started
            yield line

    def shutdown(self) -> None:
        pass

    def close(self) -> None:
        pass


def _drain(queue: WorkQueue[ObjectKey]) -> list[ObjectKey]:
    keys = []
    while (key := queue.get(timeout=0)) is not None:
        keys.append(key)
        queue.done(key)
    return keys


def one_round(found: Capture, current: Current, bytecodes: Bytecodes | None = None
              ) -> tuple[float, float]:
    """µs of this thread's CPU per object: the list, then the echoes; checked. With
    `bytecodes`, what the informer's handling of each echo (`Informer._handle`: cache,
    index, route) runs is counted there (the times then mean nothing)."""
    objects = len(found.lines)
    answers = Answers(kept=objects)
    reconciler = _Reconciler()
    queue: WorkQueue[ObjectKey] = WorkQueue(clock=FakeClock())
    informer = Informer(CONFIGMAP, source=None,  # type: ignore[arg-type]
                        clock=FakeClock(), settings=InformerSettings(resync_period=0))
    router = Router(queue=queue, watches=None,  # type: ignore[arg-type]
                    dependencies=Dependencies(),
                    reconciler=reconciler,  # type: ignore[arg-type]
                    current=lambda: current, rule_sets_changed=lambda: None)
    body = _Body(found, informer, reconciler, answers)
    informer._source = _Source(found.pages, WatchStream(body, answers=answers))
    router.prepare(informer)

    started = time.thread_time()
    informer._list()
    listed = time.thread_time() - started
    expected = [slim(item) for page in found.pages for item in json.loads(page)["items"]]
    for item in expected:
        item.setdefault("apiVersion", "v1")
        item.setdefault("kind", "ConfigMap")
    if informer.store.list() != sorted(expected, key=lambda o: o["metadata"]["name"]):
        raise RuntimeError("the store does not hold what was listed")
    if len(set(_drain(queue))) != objects:
        raise RuntimeError("the list did not queue every object once")

    if bytecodes is not None:
        handle = informer._handle
        informer._handle = lambda kind, obj: bytecodes.count(  # type: ignore[method-assign]
            functools.partial(handle, kind, obj))
    started = time.thread_time()
    informer._watch()
    watched = time.thread_time() - started - body.aside
    written = sorted((slim(json.loads(b)) for b in found.answers),
                     key=lambda o: o["metadata"]["name"])
    if informer.store.list() != written:
        raise RuntimeError("the store does not hold what the writes answered")
    if _drain(queue) or answers.taken != objects:
        raise RuntimeError(f"echoes: {answers.taken} of {objects} taken from the memo, "
                           "or some were queued")
    return 1e6 * listed / objects, 1e6 * watched / objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.informer",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting one")
    parser.add_argument("--bytecodes", action="store_true",
                        help="count the bytecodes and Python calls the informer runs per "
                        "echo instead of timing (the same count on every run)")
    args = parser.parse_args(argv)
    with setup.control_plane(args.kubeconfig) as (kubeconfig, _):
        found = capture(kubeconfig, args.objects)
    rules = parse_rule_set(rule_set("bench", "any"))
    current = Current(Engine([rules]), {rules.ref: rules})
    load = os.getloadavg()[0]
    one_round(found, current)  # warm-up
    if args.bytecodes:
        counted = Bytecodes()
        one_round(found, current, counted)
        print(f"informer per echo, {args.objects} ConfigMaps: "
              f"{counted.ops / args.objects:.0f} bytecodes, "
              f"{counted.calls / args.objects:.1f} Python calls")
        return 0
    rounds = [one_round(found, current) for _ in range(args.rounds)]
    listed, watched = [r[0] for r in rounds], [r[1] for r in rounds]
    print(f"informer CPU per object, {args.objects} ConfigMaps, {args.rounds} rounds "
          f"(load average {load:.2f} -> {os.getloadavg()[0]:.2f}): "
          f"list {statistics.median(listed):.1f} µs (least {min(listed):.1f}), "
          f"echo {statistics.median(watched):.1f} µs (least {min(watched):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
