"""Memory per cached object, start-up and steady state of the live engine at scale.

    python -m bench.memory [--sizes 10000,100000] [--kinds ConfigMap,Deployment]
                           [--steady 300 --resync 60] [--kubeconfig PATH]
    python -m bench.memory --codec

Starts its own control plane (unless --kubeconfig), then per kind fills one namespace
with N objects (ConfigMaps, or Deployments as users write them; the test control plane
runs no deployment controller, so nothing else appears) that already carry the label
a ClusterRuleSet's one mutate rule sets: the engine has everything to read and nothing
to write. For each size it starts `edict run --namespace NS` as its own process and
reports, from the outside:

* start-up: seconds from exec until /readyz answers 200 (rule sets compiled, the kind's
  cache listed page by page), and until every object has been reconciled once (the
  work queue empty, `edict_reconciles_total` = N, no write);
* RSS per cached object: (VmRSS of the engine at N - VmRSS of the same engine over an
  empty namespace) / N, against the mean size of the objects' JSON as the API server
  sends them (with `managedFields`) and without `managedFields`;
* with --steady S: the engine's CPU seconds over S seconds after that, with the caches
  resynced every --resync seconds, and so the CPU one resync of N objects costs.

With --codec, only the informer store's cost per object (no control plane): µs per write
(encoding to compact JSON) and per read, decoded from it or kept decoded.

Correctness first: the objects are listed back (N of them, all labelled), the engine
must write nothing (`edict_writes_total`), and reconcile every object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.live import cluster as setup
from bench.live.cpu import cpu_seconds
from engine.kube import Cluster
from engine.objects import GVK, Obj
from engine.runtime.source.store import Store, encode

CONFIGMAP = GVK("", "v1", "ConfigMap")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
KINDS = {"ConfigMap": CONFIGMAP, "Deployment": DEPLOYMENT}
LABEL, VALUE = "edict.dev/bench", "converged"


def make_object(kind: str, namespace: str, number: int) -> Obj:
    """One object as a user would write it, already carrying the rule's label."""
    labels = {"app": f"app-{number % 100}", "team": f"team-{number % 7}", LABEL: VALUE}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"cm-{number:06d}", "namespace": namespace,
                             "labels": labels},
                "data": {"index": str(number), "payload": "x" * 64}}
    name = f"app-{number:06d}"
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": {"team.example/owner": f"team-{number % 7}"}},
            "spec": {"replicas": 1 + number % 3,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{
                                      "name": "app", "image": f"registry.example/app:{number % 20}",
                                      "ports": [{"name": "http", "containerPort": 8080}],
                                      "env": [{"name": "MODE", "value": "prod"},
                                              {"name": "INDEX", "value": str(number)}],
                                      "resources": {"limits": {"cpu": "500m",
                                                               "memory": "256Mi"}}}]}}}}


def rule_set(kind: str, namespace: str) -> Obj:
    gvk = KINDS[kind]
    return {"apiVersion": setup.CLUSTER_RULE_SET.api_version,
            "kind": setup.CLUSTER_RULE_SET.kind,
            "metadata": {"name": f"bench-memory-{namespace}"},
            "spec": {"rules": [{
                "name": "label",
                "match": {"resources": [{"apiVersion": gvk.api_version, "kinds": [kind]}],
                          "namespaces": [namespace]},
                "mutate": {"template": {"metadata": {"labels": {LABEL: VALUE}}}}}]}}


def fill(api: Cluster, kind: str, namespace: str, have: int, want: int) -> None:
    """Objects `have`..`want`-1 of `kind` in `namespace` (created with 16 threads)."""
    if have == 0:
        with contextlib.suppress(Exception):
            api.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": namespace}})
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: api.create(make_object(kind, namespace, n)),
                      range(have, want), chunksize=64))
    print(f"  {namespace}: {want - have} {kind}s created in "
          f"{time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)


def json_sizes(api: Cluster, kind: str, namespace: str, expected: int) -> dict[str, float]:
    """Mean bytes of the objects' JSON as served, and without managedFields; checks
    that all `expected` objects are there and labelled."""
    items, _ = api.list(KINDS[kind], namespace=namespace, limit=500)
    assert len(items) == expected, (len(items), expected)
    assert all(o["metadata"]["labels"].get(LABEL) == VALUE for o in items)
    served = [len(json.dumps(o, separators=(",", ":"))) for o in items]
    bare = [len(json.dumps({**o, "metadata": {k: v for k, v in o["metadata"].items()
                                              if k != "managedFields"}},
                           separators=(",", ":"))) for o in items]
    return {"served": statistics.mean(served), "without_managed_fields": statistics.mean(bare)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except OSError:
        return 0, ""


_SAMPLE = re.compile(r'^(edict_\w+)(\{[^}]*\})? (\S+)$')


def _metrics(port: int) -> dict[str, float]:
    status, text = _get(f"http://127.0.0.1:{port}/metrics")
    out: dict[str, float] = {}
    for line in text.splitlines() if status == 200 else ():
        match = _SAMPLE.match(line)
        if match:
            name = match[1] + (match[2] or "")
            out[name] = out.get(name, 0.0) + float(match[3])
    return out


def _total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class EngineRun:
    objects: int
    ready: float = 0.0  # exec → /readyz 200
    drained: float = 0.0  # exec → every object reconciled once, queue empty
    rss: float = 0.0  # MiB once drained
    writes: float = 0.0
    steady_cpu: float | None = None
    resyncs: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


def run_engine(kubeconfig: str, namespace: str, objects: int, *, steady: float,
               resync: float, timeout: float) -> EngineRun:
    """`edict run` as its own process over `namespace`, measured from the outside."""
    metrics_port, health_port = _free_port(), _free_port()
    command = [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", kubeconfig,
               "--namespace", namespace, "--resync", str(resync), "--log-level", "warning",
               "--metrics-addr", f"127.0.0.1:{metrics_port}",
               "--health-addr", f"127.0.0.1:{health_port}"]
    run = EngineRun(objects)
    with tempfile.TemporaryFile() as log:
        return _measure(command, log, run, metrics_port, health_port, steady=steady,
                        resync=resync, timeout=timeout)


def _measure(command: list[str], log: Any, run: EngineRun, metrics_port: int,
             health_port: int, *, steady: float, resync: float, timeout: float
             ) -> EngineRun:
    objects = run.objects
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = started + timeout
        while _get(f"http://127.0.0.1:{health_port}/readyz")[0] != 200:
            _alive(process, log, deadline, "ready")
            time.sleep(0.02)
        run.ready = time.monotonic() - started
        while True:
            metrics = _metrics(metrics_port)
            done = _total(metrics, "edict_reconciles_total")
            if done >= objects and metrics.get("edict_queue_depth", 1.0) == 0:
                break
            _alive(process, log, deadline, f"{objects} reconciles (at {done:.0f})")
            time.sleep(0.05)
        run.drained = time.monotonic() - started
        time.sleep(1.0)  # the last answers; then what the process holds
        run.rss = rss_mib(process.pid)
        metrics = _metrics(metrics_port)
        run.writes = _total(metrics, "edict_writes_total")
        run.notes["reconciles"] = _total(metrics, "edict_reconciles_total")
        if steady > 0:
            before = cpu_seconds(process.pid) or 0.0
            time.sleep(steady)
            run.steady_cpu = (cpu_seconds(process.pid) or 0.0) - before
            run.resyncs = int(steady // resync) if resync > 0 else 0
            run.notes["reconciles after steady"] = _total(_metrics(metrics_port),
                                                          "edict_reconciles_total")
            run.notes["rss after steady"] = round(rss_mib(process.pid), 1)
            run.writes = _total(_metrics(metrics_port), "edict_writes_total")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return run


def _alive(process: subprocess.Popen[bytes], log: Any, deadline: float, what: str) -> None:
    if process.poll() is not None:
        log.seek(0)
        raise RuntimeError(f"edict run exited ({process.returncode}) before {what}:\n"
                           + log.read().decode(errors="replace")[-3000:])
    if time.monotonic() > deadline:
        raise TimeoutError(f"edict run: no {what} in time")


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'kind':<10} {'objects':>7} {'JSON B':>7} {'w/o mF':>7} {'RSS MiB':>8} "
            f"{'B/obj':>7} {'x JSON':>6} {'x w/o mF':>8} {'ready s':>7} {'drained s':>9} "
            f"{'writes':>6} {'steady CPU s':>12} {'per resync s':>12}")
    lines = [head, "-" * len(head)]
    for row in rows:
        per = row["per_object"]
        steady = row["steady_cpu"]
        per_resync = (f"{steady / row['resyncs']:12.2f}" if steady is not None
                      and row["resyncs"] else f"{'-':>12}")
        lines.append(
            f"{row['kind']:<10} {row['objects']:>7} {row['json']['served']:>7.0f} "
            f"{row['json']['without_managed_fields']:>7.0f} {row['rss']:>8.1f} {per:>7.0f} "
            f"{per / row['json']['served']:>6.2f} "
            f"{per / row['json']['without_managed_fields']:>8.2f} {row['ready']:>7.2f} "
            f"{row['drained']:>9.2f} {row['writes']:>6.0f} "
            + (f"{steady:>12.2f}" if steady is not None else f"{'-':>12}") + f" {per_resync}")
    lines += ["", "B/obj: (RSS at N - RSS over an empty namespace) / N; x JSON: that over the "
              "mean JSON size as served (w/o mF: without managedFields); ready: exec to "
              "/readyz; drained: exec to every object reconciled once"]
    return "\n".join(lines)


def served(kind: str, number: int) -> Obj:
    """`make_object` as the API server would list it back (without managedFields)."""
    obj = make_object(kind, "bench-mem", number)
    obj["metadata"].update(uid=f"0d3c7a1e-5b7c-4a43-9a3e-{number:012d}",
                           resourceVersion=str(1_000_000 + number),
                           creationTimestamp="2026-12-01T04:00:00Z", generation=1)
    if kind == "Deployment":
        obj["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": "25%", "maxSurge": "25%"}}, revisionHistoryLimit=10,
            progressDeadlineSeconds=600)
    return obj


def codec_costs(objects: int = 2000, rounds: int = 5) -> list[dict[str, Any]]:
    """µs per object of the store's write (encode), cold read (decode) and hot read (kept
    decoded), per kind; best of `rounds`. Checked first: every read equals the input."""
    return [_codec_cost(kind, [served(kind, n) for n in range(objects)], rounds)
            for kind in KINDS]


def _codec_cost(kind: str, inputs: list[Obj], rounds: int) -> dict[str, Any]:
    cold, hot = Store(decoded=0), Store(decoded=len(inputs))
    for obj in inputs:
        cold.upsert(obj)
        hot.upsert(obj)
    keys = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in inputs]
    assert [cold.get(*k) for k in keys] == inputs
    assert all(hot.get(*k) is o for k, o in zip(keys, inputs, strict=True))

    def timed(step: Any) -> float:
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            step()
            best = min(best, time.process_time() - started)
        return best / len(inputs) * 1e6

    def write() -> None:
        store = Store(decoded=64)
        for obj in inputs:
            store.upsert(obj)

    return {"kind": kind, "bytes": statistics.mean(len(encode(o)) for o in inputs),
            "write": timed(write), "cold read": timed(lambda: [cold.get(*k) for k in keys]),
            "hot read": timed(lambda: [hot.get(*k) for k in keys])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--kinds", default="ConfigMap,Deployment")
    parser.add_argument("--repeat", type=int, default=1,
                        help="engine runs per size (the median is reported)")
    parser.add_argument("--steady", type=float, default=0.0,
                        help="seconds of steady state to measure at the largest size")
    parser.add_argument("--resync", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--codec", action="store_true",
                        help="only the store's µs per write and read (no control plane)")
    args = parser.parse_args(argv)
    if args.codec:
        print(f"load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        for row in codec_costs():
            print(f"{row['kind']:<10} {row['bytes']:6.0f} B compact JSON: write "
                  f"{row['write']:5.1f} µs, read {row['cold read']:5.1f} µs (decoded), "
                  f"{row['hot read']:4.2f} µs (kept decoded): "
                  f"x{row['cold read'] / row['hot read']:.0f}")
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    rows = []
    with setup.control_plane(args.kubeconfig) as (kubeconfig, _):
        api = Cluster.connect(kubeconfig)
        try:
            setup.install_crds(api)
            for kind in args.kinds.split(","):
                namespace = f"bench-mem-{kind.lower()}-{int(time.time()) % 100000}"
                empty = f"{namespace}-empty"
                api.create({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": empty}})
                for ns in (namespace, empty):
                    api.create(rule_set(kind, ns))
                base = run_engine(kubeconfig, empty, 0, steady=0, resync=args.resync,
                                  timeout=args.timeout)
                print(f"  {kind}: engine over an empty namespace: {base.rss:.1f} MiB, "
                      f"ready in {base.ready:.2f}s", file=sys.stderr, flush=True)
                have = 0
                for size in sizes:
                    fill(api, kind, namespace, have, size)
                    have = size
                    sizes_json = json_sizes(api, kind, namespace, size)
                    runs = []
                    for _ in range(args.repeat):
                        runs.append(run_engine(
                            kubeconfig, namespace, size,
                            steady=args.steady if size == sizes[-1] else 0.0,
                            resync=args.resync, timeout=args.timeout))
                        run = runs[-1]
                        assert run.writes == 0, f"the engine wrote {run.writes} times"
                        print(f"  {kind} {size}: ready {run.ready:.2f}s, drained "
                              f"{run.drained:.2f}s, RSS {run.rss:.1f} MiB, steady CPU "
                              f"{run.steady_cpu}, {run.notes}", file=sys.stderr, flush=True)
                    rss = statistics.median(r.rss for r in runs)
                    rows.append({
                        "kind": kind, "objects": size, "json": sizes_json, "rss": rss,
                        "per_object": (rss - base.rss) * 1024 * 1024 / size,
                        "ready": statistics.median(r.ready for r in runs),
                        "drained": statistics.median(r.drained for r in runs),
                        "writes": max(r.writes for r in runs),
                        "steady_cpu": runs[-1].steady_cpu, "resyncs": runs[-1].resyncs})
                for ns in (namespace, empty):
                    with contextlib.suppress(Exception):
                        api.delete(setup.CLUSTER_RULE_SET, None, f"bench-memory-{ns}")
                    setup.drop_namespace(api, ns, timeout=900)
        finally:
            api.close()
    print("load average at the end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
