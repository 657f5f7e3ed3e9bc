"""The kopf phase: the same job done by an operator written with kopf, as its own process.

`run_kopf` starts `python -m kopf run --standalone --namespace NS kopf_operator.py` on a
namespace of N unlabelled ConfigMaps, waits until kopf is up (its startup handler says
so and then holds until told to go), starts the clock and says go; the clock stops when
the benchmark's `LabelWatch` has seen all N labelled, as in the other phases. Writes
are the API server's own count of PATCHes to ConfigMaps in the window; CPU is the kopf
process's plus this one's (the watch), kube-apiserver's and etcd's. After `settle`
seconds (any further write counted) kopf gets SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.kube import Cluster

from .apicalls import ApiCalls
from .cluster import count_events, wait_for
from .cpu import Meter
from .phases import Phase, watch_labels

OPERATOR = Path(__file__).with_name("kopf_operator.py")
STYLES = {"kopf": "event", "kopf-handlers": "handlers"}


def run_kopf(cluster: Cluster, kubeconfig: str, *, name: str, run: int, namespace: str,
             version: str, objects: int, workers: int, timeout: float, settle: float,
             meter: Meter, calls: ApiCalls) -> Phase:
    phase = Phase(name, run, objects, workers=0)
    watch = watch_labels(cluster, namespace, version, objects)
    with tempfile.TemporaryDirectory(prefix="bench-kopf-") as gate_dir:
        gate = Path(gate_dir)
        env = {**os.environ, "KUBECONFIG": kubeconfig, "BENCH_KOPF_STYLE": STYLES[name],
               "BENCH_KOPF_GATE": str(gate)}
        log = (gate / "kopf.log").open("wb")
        spawned = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
             str(OPERATOR)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            def ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"kopf exited ({process.returncode}):\n"
                                       + (gate / "kopf.log").read_text()[-3000:])
                return (gate / "ready").exists()

            wait_for(ready, timeout=60, every=0.005, what="kopf to start")
            phase.startup = time.perf_counter() - spawned
            meter = meter.with_pid("kopf", process.pid)
            asked = calls.sample()
            cpu = meter.sample()
            start = time.perf_counter()
            (gate / "go").write_text("go")
            last = watch.wait_converged(timeout)
            used = meter.used(cpu, meter.sample())
            used["python"] = used.get("python", 0.0) + used.pop("kopf", 0.0)
            phase.cpu = used
            requests = calls.used(asked, calls.sample())
            phase.notes["requests"] = requests
            phase.seconds, phase.first = last - start, watch.first - start
            phase.seen = watch.writes()
            after = meter.sample()
            time.sleep(settle)
            phase.notes["kopf CPU during settle"] = round(
                meter.used(after, meter.sample()).get("kopf", 0.0), 2)
            phase.extra = watch.writes() - phase.seen
            phase.writes = int(calls.used(asked, calls.sample()).get(
                "PATCH configmaps", 0))
            phase.events = count_events(cluster, namespace)
            phase.notes["rss MiB"] = _rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
            watch.close()
    return phase


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")
