"""Client CPU per request: the lean wire (`engine.kube.wire`) against urllib3.

    python -m bench.live.requests [--objects 2000] [--repeat 3] [--kubeconfig PATH]

One thread, one namespace of N ConfigMaps, one `engine.kube.Cluster` per path
(`Transport(lean=True)` and `lean=False`, the path watches and proxies use). Each
round sends N guarded JSON patches (the engine's write) and then N GETs through one
path, then through the other (the order alternates per round), and reads this
thread's CPU time around each. Checked before it counts: every patch landed (the
label is there, read back through the other path).

Each round's N changes are also watched from the version before it, through
`WatchStream` and `parse_event` as the informer reads them: live, by one thread per path
started before the patches (events arrive one by one, as the engine sees them), then
as a catch-up after the round (events arrive in bulk), one path after the other. CPU
per event is that thread's, from the first to the Nth event. Checked before it counts:
all four watches gave the same N events (type, name, version).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

from kubernetes.client import ApiClient

from engine.kube import Cluster
from engine.kube.transport import Transport, load_configuration

from . import cluster as setup

PATHS = ("lean", "urllib3")


def _client(kubeconfig: str, path: str) -> Cluster:
    return Cluster(Transport(ApiClient(load_configuration(kubeconfig)),
                             lean=path == "lean"))


def _watch(api: Cluster, namespace: str, since: str, n: int
           ) -> tuple[float, list[tuple[str, str, str]]]:
    """CPU µs per event of a watch from `since`, between its first and its `n`th event
    (opening it, a TLS handshake on the lean path, is left out), and the events (type,
    name, resourceVersion)."""
    events: list[tuple[str, str, str]] = []
    started = 0.0
    with api.watch(setup.CONFIGMAP, namespace=namespace, resource_version=since,
                   timeout_seconds=120, allow_bookmarks=False) as stream:
        for kind, obj in stream:
            metadata = obj["metadata"]
            events.append((kind, metadata["name"], metadata["resourceVersion"]))
            if len(events) == 1:
                started = time.thread_time()
            if len(events) == n:
                break
    return (time.thread_time() - started) / (n - 1) * 1e6, events


def _watching(api: Cluster, namespace: str, since: str, n: int,
              into: dict[str, tuple[float, list[tuple[str, str, str]]]], path: str
              ) -> threading.Thread:
    """`_watch` on a thread of its own, started now; its result lands in `into[path]`."""
    def run() -> None:
        into[path] = _watch(api, namespace, since, n)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _round(api: Cluster, other: Cluster, namespace: str, names: list[str],
           value: str) -> tuple[float, float]:
    """CPU µs per PATCH and per GET, this thread."""
    versions = {name: api.get(setup.CONFIGMAP, namespace, name)["metadata"]
                ["resourceVersion"] for name in names}
    started = time.thread_time()
    for name in names:
        api.patch_json(setup.CONFIGMAP, namespace, name, [
            {"op": "test", "path": "/metadata/resourceVersion", "value": versions[name]},
            {"op": "add", "path": "/metadata/labels", "value": {"round": value}}])
    patched = time.thread_time()
    for name in names:
        api.get(setup.CONFIGMAP, namespace, name)
    read = time.thread_time()
    for name in names:  # correctness, through the other path
        labels = other.get(setup.CONFIGMAP, namespace, name)["metadata"]["labels"]
        if labels != {"round": value}:
            raise AssertionError(f"{name}: {labels}")
    n = len(names)
    return (patched - started) / n * 1e6, (read - patched) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kubeconfig")
    args = parser.parse_args(argv)
    with setup.control_plane(args.kubeconfig) as (kubeconfig, _):
        clients = {path: _client(kubeconfig, path) for path in PATHS}
        namespace = f"requests-{os.getpid()}"
        setup.fill_namespace(clients["lean"], namespace, args.objects, threads=4)
        names = [f"cm-{i:05d}" for i in range(args.objects)]
        results: dict[str, list[tuple[float, float]]] = {path: [] for path in PATHS}
        watches: dict[str, list[float]] = {path: [] for path in PATHS}
        replays: dict[str, list[float]] = {path: [] for path in PATHS}
        print(f"load average {os.getloadavg()}", file=sys.stderr)
        for run in range(args.repeat):
            order = PATHS if run % 2 == 0 else PATHS[::-1]
            for path in order:
                other = clients[PATHS[1 - PATHS.index(path)]]
                _, since = clients[path].list(setup.CONFIGMAP, namespace=namespace)
                # the round's N changes, watched live through both paths at once
                live: dict[str, tuple[float, list[tuple[str, str, str]]]] = {}
                threads = [_watching(clients[watcher], namespace, since, len(names),
                                     live, watcher) for watcher in order]
                result = _round(clients[path], other, namespace, names, f"{path}-{run}")
                results[path].append(result)
                for thread in threads:
                    thread.join()
                # and again from the version before the round: a catch-up, one by one
                caught = {watcher: _watch(clients[watcher], namespace, since, len(names))
                          for watcher in order}
                for watcher in PATHS:
                    if (live[watcher][1] != caught["lean"][1]
                            or caught[watcher][1] != caught["lean"][1]
                            or len(caught["lean"][1]) != len(names)):
                        raise AssertionError("the two paths watched different events")
                    watches[watcher].append(live[watcher][0])
                    replays[watcher].append(caught[watcher][0])
                print(f"  run {run + 1} {path}: PATCH {result[0]:.0f} µs CPU, "
                      f"GET {result[1]:.0f} µs CPU; µs CPU per event: live watch lean "
                      f"{watches['lean'][-1]:.1f}, urllib3 {watches['urllib3'][-1]:.1f}; "
                      f"catch-up lean {replays['lean'][-1]:.1f}, "
                      f"urllib3 {replays['urllib3'][-1]:.1f}", file=sys.stderr)
        print(f"load average {os.getloadavg()}", file=sys.stderr)
        for path in PATHS:
            patch = statistics.median(r[0] for r in results[path])
            get = statistics.median(r[1] for r in results[path])
            print(f"{path}: PATCH {patch:.0f} µs, GET {get:.0f} µs of client CPU (median)")
        for name, measured in (("live watch", watches), ("catch-up watch", replays)):
            for path in PATHS:
                print(f"{path}: {name} {statistics.median(measured[path]):.1f} µs of "
                      "client CPU per event (median)")
            paired = [lean / generic for lean, generic
                      in zip(measured["lean"], measured["urllib3"], strict=True)]
            print(f"lean/urllib3: {name} {statistics.median(paired):.2f} per event "
                  "(median of paired watches)")
        ratios = [(lean[0] / generic[0], lean[1] / generic[1])
                  for lean, generic in zip(results["lean"], results["urllib3"], strict=True)]
        print(f"lean/urllib3: PATCH {statistics.median(r[0] for r in ratios):.2f}, "
              f"GET {statistics.median(r[1] for r in ratios):.2f} (median of paired rounds)")
        setup.drop_namespace(clients["lean"], namespace)
        for client in clients.values():
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
