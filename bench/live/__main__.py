"""Live benchmark: the engine against a plain client patch loop and kopf, on a real
control plane.

    python -m bench.live --objects 1000 --workers 4 [--repeat 2] [--kubeconfig PATH]
                         [--phases engine,baseline,kopf,kopf-handlers]

Starts its own control plane (kube-apiserver + etcd, `engine.testing.controlplane`)
unless `--kubeconfig` names a cluster, installs the rule-set CRDs, runs `--warmup`
unrecorded pairs, and in one process, for each repetition (the order alternates, so
neither phase always runs on a warmer server):
1. engine: N ConfigMaps without the rule's label in a fresh namespace; the live engine
   (`Manager`, W workers) is started and becomes ready; then a ClusterRuleSet with one
   mutate rule (add a label) is applied and the clock runs until a watch has seen all N
   objects labelled. Writes are the engine's `edict_writes_total{kind="patch"}`; after
   `--settle` seconds no further write may happen (steady state).
2. baseline: N fresh ConfigMaps in another namespace; one list plus W threads sending the
   same guarded JSON patch per object through a new `engine.kube.Cluster` client (the
   engine also gets a new one).
3. cached (optional): the loop of 2. fed by the engine's `Informer` (cluster-wide, as the
   engine watches) page by page, with the engine's client taking the echoes from the
   answers: what keeping a watched cache adds to the plain loop (`phases.run_cached`).
4. floor (optional): the engine of 1. with its reconcile replaced by the hand-written
   match and patch (`phases.bare_reconcile`): the engine's informer, queue, workers,
   write gate and client without the rules' work. engine/floor is what the rules cost
   live; floor/baseline what the engine's plumbing costs over the plain loop.
5. kopf (`kopf_phase.py`, `kopf_operator.py`): the same job written with kopf 1.45, run as
   its own process, a stateless `@kopf.on.event` handler (one PATCH per object);
   `kopf-handlers` is the resume/create/update style (two PATCHes per object). Its
   clock starts once kopf is up, when its watches are let go.
Prints seconds to converge, writes, objects/s and engine/baseline and engine/kopf (wall
and CPU) per repetition, with medians.

ConfigMaps are the objects because they are the cheapest kind the API server stores (no
defaulting of a pod template, no controller reacting to them): what is timed is the
engine's own path (informer, queue, evaluate, patch), not the server's work per kind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from engine.kube import Cluster

from . import cluster as setup
from .apicalls import ApiCalls
from .cpu import Meter
from .kopf_phase import STYLES, run_kopf
from .phases import Phase, check_same_patch, run_baseline, run_cached, run_engine

PHASES = ("engine", "baseline", "cached", "floor", *STYLES)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000, help="objects per phase (N)")
    parser.add_argument("--workers", type=int, default=16,
                        help="engine workers (the most writes in flight; the engine's write "
                        "gate decides how many) = baseline threads (W)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="repetitions; the phase order alternates")
    parser.add_argument("--warmup", type=int, default=1,
                        help="unrecorded engine + baseline pairs first (the process's and "
                        "the server's first-time costs: imports, caches, connections)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to watch for extra writes after convergence")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a phase may take before it is called failed")
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting one")
    parser.add_argument("--phases", default="engine,baseline,kopf",
                        help=f"comma-separated, of {', '.join(PHASES)}; the engine's is "
                        "always run")
    parser.add_argument("--resync", type=float, default=3600.0,
                        help="the engine's resync period (seconds)")
    parser.add_argument("--steady", type=float, default=0.0,
                        help="after the settle period, measure the engine at rest for "
                        "this many seconds (CPU, reconciles, RSS; see --resync)")
    parser.add_argument("--no-events", action="store_true",
                        help="diagnosis: run the engine without its Kubernetes Events "
                        "(not a mode the engine offers; shows what the Events cost)")
    return parser


def _phase(api: Cluster, kubeconfig: str, args: argparse.Namespace, name: str,
           run: int, meter: Meter, calls: ApiCalls) -> Phase:
    namespace = f"bench-{name[0]}{run}-{int(time.time()) % 100000}"
    version = setup.fill_namespace(api, namespace, args.objects,
                                   threads=max(args.workers, 8))
    common = {"run": run, "namespace": namespace, "version": version,
              "objects": args.objects, "workers": args.workers, "timeout": args.timeout,
              "settle": args.settle, "meter": meter, "calls": calls}
    try:
        if name == "engine":
            phase = run_engine(api, kubeconfig, events=not args.no_events,
                               resync=args.resync, steady=args.steady, **common)
        elif name == "baseline":
            phase = run_baseline(api, kubeconfig, **common)
        elif name == "cached":
            phase = run_cached(api, kubeconfig, **common)
        elif name == "floor":
            phase = run_engine(api, kubeconfig, floor=True, resync=args.resync, **common)
        else:
            phase = run_kopf(api, kubeconfig, name=name, **common)
    finally:
        setup.drop_namespace(api, namespace)
    label = f"run {run}" if run > 0 else "warm-up"
    print(f"  {label} {name}: {phase.seconds:.2f}s, {phase.writes} writes", file=sys.stderr)
    return phase


CPU = (("python", "py"), ("kube-apiserver", "apisrv"), ("etcd", "etcd"))


def _pair(phases: list[Phase], run: int, other: str = "baseline") -> tuple[Phase, Phase]:
    engine = next(p for p in phases if p.run == run and p.name == "engine")
    base = next(p for p in phases if p.run == run and p.name == other)
    return engine, base


def _ratio(phases: list[Phase], run: int, other: str = "baseline") -> float:
    engine, base = _pair(phases, run, other)
    return engine.seconds / base.seconds


def _cpu_per_object(phase: Phase) -> float:
    """Milliseconds of CPU (all measured processes) per object converged."""
    return 1000 * sum(phase.cpu.values()) / phase.objects


def _cpu_ratio(phases: list[Phase], run: int, other: str = "baseline") -> float:
    engine, base = _pair(phases, run, other)
    return _cpu_per_object(engine) / (_cpu_per_object(base) or float("nan"))


def _client_cpu_ratio(phases: list[Phase], run: int, other: str) -> float:
    """The operators' own CPU (this process with the engine, or kopf's): what each
    costs, the API server's share apart."""
    engine, base = _pair(phases, run, other)
    return engine.cpu.get("python", 0.0) / (base.cpu.get("python", 0.0) or float("nan"))


def table(phases: list[Phase]) -> str:
    head = (f"{'run':>3}  {'phase':<13} {'objects':>7} {'workers':>7} {'seconds':>7} "
            f"{'writes':>6} {'obj/s':>5} {'first':>5} {'steady':>6} {'events':>6} "
            f"{'startup':>7} " + " ".join(f"{short:>6}" for _, short in CPU)
            + f" {'ms/obj':>6}")
    lines = [head, "-" * len(head)]
    for p in phases:
        startup = (f"{p.startup:7.2f}" if p.name not in ("baseline", "cached")
                   else f"{'-':>7}")
        cpu = " ".join(f"{p.cpu[name]:6.2f}" if name in p.cpu else f"{'-':>6}"
                       for name, _ in CPU)
        lines.append(f"{p.run:>3}  {p.name:<13} {p.objects:>7} {p.workers:>7} "
                     f"{p.seconds:>7.2f} {p.writes:>6} {p.rate:>5.0f} {p.first:>5.2f} "
                     f"{p.extra:>6} {p.events:>6} {startup} {cpu} {_cpu_per_object(p):6.2f}")
    lines.append("")
    runs = sorted({p.run for p in phases})
    others = [name for name in PHASES[1:] if any(p.name == name for p in phases)]
    for run in runs:
        engine = next(p for p in phases if p.run == run and p.name == "engine")
        ok = all(p.writes == p.objects and not p.extra for p in phases
                 if p.run == run and p.name in ("engine", "floor"))
        parts = [f"run {run}: engine writes {engine.writes} (target {engine.objects}), "
                 f"steady-state writes {engine.extra}: {'ok' if ok else 'MISSED'}"]
        for other in others:
            parts.append(f"engine/{other} = {_ratio(phases, run, other):.2f} "
                         f"(CPU per object {_cpu_ratio(phases, run, other):.2f})")
        lines.append("; ".join(parts))
    lines.append("")
    for other in others:
        ratios = [_ratio(phases, run, other) for run in runs]
        cpu = [_cpu_ratio(phases, run, other) for run in runs]
        client = [_client_cpu_ratio(phases, run, other) for run in runs]
        seconds = [p.seconds for p in phases if p.name == other]
        lines.append(f"median over {len(runs)} runs: engine/{other} = "
                     f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max "
                     f"{max(ratios):.2f}); CPU per object (all processes) "
                     f"{statistics.median(cpu):.2f}; operator process CPU "
                     f"{statistics.median(client):.2f}; {other} {statistics.median(seconds):.2f}s")
    for low, high in (("baseline", "cached"), ("baseline", "floor"), ("cached", "floor")):
        if low not in others or high not in others:  # the steps from loop to engine
            continue
        pairs = [(_pair(phases, run, high)[1], _pair(phases, run, low)[1]) for run in runs]
        ratios = [a.seconds / b.seconds for a, b in pairs]
        cpu = [_cpu_per_object(a) / _cpu_per_object(b) for a, b in pairs]
        client = [a.cpu.get("python", 0.0) / (b.cpu.get("python", 0.0) or float("nan"))
                  for a, b in pairs]
        lines.append(f"median over {len(runs)} runs: {high}/{low} = "
                     f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max "
                     f"{max(ratios):.2f}); CPU per object (all processes) "
                     f"{statistics.median(cpu):.2f}; this process's CPU "
                     f"{statistics.median(client):.2f}")
    engine_seconds = [p.seconds for p in phases if p.name == "engine"]
    lines.append(f"engine median {statistics.median(engine_seconds):.2f}s")
    lines += ["", LEGEND]
    return "\n".join(lines)


LEGEND = """\
seconds  rule set created (engine) / list started (baseline) until a watch has seen the
         last object labelled; first: until it saw the first one
writes   patches sent (engine: edict_writes_total{kind="patch"}); steady: writes seen in
         the --settle seconds after convergence; events: Kubernetes Events left behind
startup  engine: Manager.start() until ready; kopf: process spawned until its startup
         handler runs (both before the clock starts; not in seconds)
py apisrv etcd  CPU seconds used during `seconds` by this Python process (engine or
         baseline, plus the benchmark's watch; for kopf, plus the kopf process),
         kube-apiserver and etcd; ms/obj: their sum per object (steadier than wall time
         when the machine is shared)"""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = ["engine", *(n for n in args.phases.split(",") if n and n != "engine")]
    unknown = set(names) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {', '.join(sorted(unknown))}")
    check_same_patch()
    print("load average (1, 5, 15 min) at the start: "
          + ", ".join(f"{value:.2f}" for value in os.getloadavg()), file=sys.stderr)
    phases: list[Phase] = []
    with setup.control_plane(args.kubeconfig) as (kubeconfig, run_dir):
        meter = Meter.for_run_dir(run_dir)
        api, calls = Cluster.connect(kubeconfig), ApiCalls(kubeconfig)
        try:
            setup.install_crds(api)
            for run in range(-args.warmup + 1, 1):  # not recorded: see --warmup
                for name in names:
                    _phase(api, kubeconfig, args, name, run, meter, calls)
            for run in range(1, args.repeat + 1):
                # each phase takes every place in the order in turn
                shift = (run - 1) % len(names)
                order = names[shift:] + names[:shift]
                for name in order:
                    phases.append(_phase(api, kubeconfig, args, name, run, meter, calls))
        finally:
            api.close()
            calls.close()
    print(table(phases))
    print("load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    for p in phases:
        if p.notes:
            print(f"run {p.run} {p.name}: " + ", ".join(f"{k}={v}" for k, v in
                                                         p.notes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
