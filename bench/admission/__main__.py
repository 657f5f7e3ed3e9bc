"""Admission benchmark: creating objects through the real API server with Edict's
webhooks (20 rules loaded) against without any webhook, in one run.

    python -m bench.admission --objects 1000 --threads 8 [--kind pod|configmap]
                              [--repeat 2] [--kubeconfig PATH]

Starts its own control plane unless `--kubeconfig` names a cluster, installs the CRDs
and the 20-rule ClusterRuleSet of `workload.rule_set`, then for each repetition, in
alternating order (neither phase always runs on a warmer server):

1. webhook: `edict run --webhook-addr` as a subprocess, ready and both configurations
   written; then N objects (Pods by default) created by W client threads in a fresh
   namespace (after
   `--warmup` unrecorded creates there, both phases alike). Per phase: seconds,
   creates/s, client latency p50/p99; and the webhook's own handling time (its
   `edict_admission_duration_seconds` histogram, mutate and validate, between the
   phase's start and end): p50/p99 as "under this bucket bound" and a linear estimate
   inside the bucket. Checked: every object stored mutated, one review per object and
   webhook, no background write afterwards (`edict_writes_total`); reported: how many
   background evaluations the admission memo spared (`edict_admission_memo_total`
   hits) and how many it could not (misses), and Edict's CPU per object from the first
   create until 3 s after the last (its background pass included). The engine is stopped
   and the configurations deleted before the next phase.
2. baseline: no engine, no webhook configuration; the same N objects, the same way.

Targets: creates/s with the webhook >= 0.8 x without; the webhook's p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.kube import Cluster
from engine.objects import GVK, Obj

from ..live import cluster as setup
from ..live.cpu import Meter
from .workload import (
    MUTATING,
    OBJECTS,
    VALIDATING,
    Created,
    EdictProcess,
    create_all,
    delete_configurations,
    rule_set,
    wait,
    webhook_seconds,
)

CLUSTER_RULE_SET = GVK("edict.dev", "v1alpha1", "ClusterRuleSet")
# CPU seconds while the timed creates run: the benchmark's clients, the engine, the server
CPU = (("python", "client"), ("edict", "edict"), ("kube-apiserver", "apisrv"),
       ("etcd", "etcd"))
KINDS = {"pod": GVK("", "v1", "Pod"), "configmap": GVK("", "v1", "ConfigMap")}
ENGINE_NAMESPACE = "bench-edict"


@dataclass
class Phase:
    name: str
    run: int
    created: Created
    webhook: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    background_writes: float = 0.0
    memo: tuple[float, float] = (0.0, 0.0)  # background evaluations: memo hits, misses
    edict_total: float = 0.0  # Edict's CPU seconds from the first create to 3 s after the last
    mutated: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds while creating

    @property
    def rate(self) -> float:
        return len(self.created.latencies) / self.created.seconds

    def latency(self, quantile: float) -> float:
        ordered = sorted(self.created.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.admission", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--kind", choices=sorted(OBJECTS), default="pod",
                        help="what is created: Pods (default) or ConfigMaps (the cheapest "
                        "kind for the server: the webhook's largest share)")
    parser.add_argument("--warmup", type=int, default=50,
                        help="unrecorded creates before each phase's timed ones")
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting one")
    return parser


def _namespace(api: Cluster, name: str, run: int) -> str:
    namespace = f"bench-adm-{name[0]}{run}-{int(time.time()) % 100000}"
    api.create({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"env": "bench"}}})
    return namespace


def _objects(args: argparse.Namespace, namespace: str) -> list[Obj]:
    return [OBJECTS[args.kind](namespace, n) for n in range(args.objects)]


def _warm(api: Cluster, args: argparse.Namespace, namespace: str) -> None:
    objects = [OBJECTS[args.kind](namespace, 90000 + i) for i in range(args.warmup)]
    for obj in objects:
        obj["metadata"]["name"] = "warm-" + obj["metadata"]["name"]
    create_all(api, objects, threads=args.threads)


def run_webhook(api: Cluster, kubeconfig: str, args: argparse.Namespace, run: int,
                log_dir: Path, pids: dict[str, int]) -> Phase:
    engine = EdictProcess(kubeconfig, namespace=ENGINE_NAMESPACE,
                          log=log_dir / f"edict-{run}.log")
    try:
        wait(engine.ready, timeout=120, what="edict run ready")

        def configured() -> bool:
            found = []
            for gvk in (MUTATING, VALIDATING):
                try:
                    config = api.get(gvk, None, "edict")
                except Exception:
                    return False
                found.append(any(f"{args.kind}s" in rule["resources"]
                                 for w in config.get("webhooks") or ()
                                 for rule in w["rules"]))
            return all(found)

        wait(configured, timeout=60, what="both webhook configurations")
        namespace = _namespace(api, "webhook", run)
        try:
            _warm(api, args, namespace)
            meter = Meter({**pids, "edict": engine.process.pid})
            before, cpu = engine.buckets(), meter.sample()
            created = create_all(api, _objects(args, namespace), threads=args.threads)
            after = engine.buckets()
            phase = Phase("webhook", run, created, cpu=Meter.used(cpu, meter.sample()))
            phase.webhook = {f"{w} p{int(q * 100)}": value
                             for q in (0.5, 0.99)
                             for w, value in webhook_seconds(before, after, q).items()}
            items, _ = api.list(KINDS[args.kind], namespace=namespace, limit=500,
                                label_selector="app=edict-bench,team=platform")
            phase.mutated = sum(1 for i in items
                                if not i["metadata"]["name"].startswith("warm-"))
            # the background evaluates every stored object: give it the time, then count
            time.sleep(3)
            phase.edict_total = Meter.used(cpu, meter.sample()).get("edict", 0.0)
            phase.background_writes = engine.sample("edict_writes_total")
            hits, misses = (engine.sample(f'edict_admission_memo_total{{result="{r}"}}')
                            for r in ("hit", "miss"))
            phase.memo = (hits, misses)
        finally:
            setup.drop_namespace(api, namespace)
    finally:
        engine.stop()
        delete_configurations(api)
    return phase


def run_baseline(api: Cluster, args: argparse.Namespace, run: int,
                 pids: dict[str, int]) -> Phase:
    namespace = _namespace(api, "baseline", run)
    try:
        _warm(api, args, namespace)
        meter = Meter(pids)
        cpu = meter.sample()
        created = create_all(api, _objects(args, namespace), threads=args.threads)
        used = Meter.used(cpu, meter.sample())
    finally:
        setup.drop_namespace(api, namespace)
    return Phase("baseline", run, created, cpu=used)


def table(phases: list[Phase], objects: int) -> str:
    head = (f"{'run':>3}  {'phase':<8} {'objects':>7} {'seconds':>7} {'creates/s':>9} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'failed':>6} "
            + " ".join(f"{short:>6}" for _, short in CPU) + f" {'ms/obj':>6}")
    lines = [head, "-" * len(head)]
    for p in phases:
        cpu = " ".join(f"{p.cpu[name]:6.2f}" if name in p.cpu else f"{'-':>6}"
                       for name, _ in CPU)
        per_object = 1000 * sum(p.cpu.values()) / max(1, len(p.created.latencies))
        lines.append(f"{p.run:>3}  {p.name:<8} {len(p.created.latencies):>7} "
                     f"{p.created.seconds:>7.2f} {p.rate:>9.0f} {1000 * p.latency(0.5):>7.1f} "
                     f"{1000 * p.latency(0.99):>7.1f} {len(p.created.failures):>6} {cpu} "
                     f"{per_object:6.2f}")
    lines.append("")
    ratios = []
    for run in sorted({p.run for p in phases}):
        hook = next(p for p in phases if p.run == run and p.name == "webhook")
        base = next(p for p in phases if p.run == run and p.name == "baseline")
        ratio = hook.rate / base.rate
        ratios.append(ratio)
        p99 = {k: v for k, v in hook.webhook.items() if k.endswith("p99")}
        worst = max((bound for bound, _, _ in p99.values()), default=float("inf"))
        ok = ratio >= 0.8 and worst <= 0.005 and hook.mutated == objects and (
            hook.background_writes == 0) and all(n == objects for _, _, n in p99.values())
        handling = ", ".join(f"{k} < {1000 * b:g} ms (~{1000 * e:.2f} ms, {n} reviews)"
                             for k, (b, e, n) in sorted(hook.webhook.items()))
        lines.append(f"run {run}: creates/s webhook/baseline = {ratio:.2f} (target >= 0.8); "
                     f"webhook handling: {handling} (target p99 < 5 ms); stored mutated "
                     f"{hook.mutated}/{objects}; background writes after "
                     f"{hook.background_writes:g}; Edict's CPU with its background pass "
                     f"{1000 * hook.edict_total / max(1, len(hook.created.latencies)):.2f} "
                     f"ms/object; admission memo hits/misses "
                     f"{hook.memo[0]:g}/{hook.memo[1]:g}: {'ok' if ok else 'MISSED'}")
    if len(ratios) > 1:
        lines.append(f"median over {len(ratios)} runs: webhook/baseline = "
                     f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
                     f"max {max(ratios):.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    print("load average (1, 5, 15 min) at the start: "
          + ", ".join(f"{value:.2f}" for value in os.getloadavg()), file=sys.stderr)
    phases: list[Phase] = []
    log_dir = Path(tempfile.mkdtemp(prefix="edict-bench-admission-"))
    with setup.control_plane(args.kubeconfig) as (kubeconfig, run_dir):
        pids = {name: pid for name, pid in Meter.for_run_dir(run_dir)._pids.items()
                if isinstance(pid, int)}
        api = Cluster.connect(kubeconfig)
        try:
            setup.install_crds(api)
            api.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ENGINE_NAMESPACE}})
            api.create(rule_set(args.kind))
            for run in range(1, args.repeat + 1):
                order = ("webhook", "baseline") if run % 2 else ("baseline", "webhook")
                for name in order:
                    phase = (run_webhook(api, kubeconfig, args, run, log_dir, pids)
                             if name == "webhook" else run_baseline(api, args, run, pids))
                    print(f"  run {run} {name}: {phase.created.seconds:.2f}s "
                          f"{phase.rate:.0f}/s", file=sys.stderr)
                    for failure in phase.created.failures[:5]:
                        print(f"    failed: {failure}", file=sys.stderr)
                    phases.append(phase)
        finally:
            api.close()
    print(table(phases, args.objects))
    print("load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    print(f"engine logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
