"""Client CPU per request: the lean wire (`engine.kube.wire`) against urllib3.

    python -m bench.live.requests [--objects 2000] [--repeat 3] [--kubeconfig PATH]

One thread, one namespace of N ConfigMaps, one `engine.kube.Cluster` per path
(`Transport(lean=True)` and `lean=False`, the path watches and proxies use). Each
round sends N guarded JSON patches (the engine's write) and then N GETs through one
path, then through the other (the order alternates per round), and reads this
thread's CPU time around each. Checked before it counts: every patch landed (the
label is there, read back through the other path).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from kubernetes.client import ApiClient

from engine.kube import Cluster
from engine.kube.transport import Transport, load_configuration

from . import cluster as setup

PATHS = ("lean", "urllib3")


def _client(kubeconfig: str, path: str) -> Cluster:
    return Cluster(Transport(ApiClient(load_configuration(kubeconfig)),
                             lean=path == "lean"))


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
        print(f"load average {os.getloadavg()}", file=sys.stderr)
        for run in range(args.repeat):
            order = PATHS if run % 2 == 0 else PATHS[::-1]
            for path in order:
                other = clients[PATHS[1 - PATHS.index(path)]]
                result = _round(clients[path], other, namespace, names, f"{path}-{run}")
                results[path].append(result)
                print(f"  run {run + 1} {path}: PATCH {result[0]:.0f} µs CPU, "
                      f"GET {result[1]:.0f} µs CPU", file=sys.stderr)
        print(f"load average {os.getloadavg()}", file=sys.stderr)
        for path in PATHS:
            patch = statistics.median(r[0] for r in results[path])
            get = statistics.median(r[1] for r in results[path])
            print(f"{path}: PATCH {patch:.0f} µs, GET {get:.0f} µs of client CPU (median)")
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
