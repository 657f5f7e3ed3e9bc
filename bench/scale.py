"""Offline at scale: `edict apply`'s whole path at 1k, 10k and 100k objects.

    python -m bench.scale [--sizes 1000,10000,100000] [--rules 20] [--repeat 5]

The corpus of `bench/corpus.py` (Deployments, ConfigMaps, Namespaces; label rules with
CEL conditions, a forEach merge, a JSON patch, a Namespace and a ConfigMap lookup, two
generate rules whose children other rules then mutate) is written to a YAML file once
per size (not timed). Each repetition runs in a fresh process, which times the stages
`edict apply` goes through, calling the same functions:

* load      reading the manifests (`engine.cli.common.read_objects`)
* compile   loading and compiling the rule sets
* simulate  the engine to convergence over the manifests (`engine.evaluate.simulate`)
* write     the YAML output (`engine.cli.apply.write`) to a file

Before any number counts, the run is checked: converged, no rule errors or conflicts,
and every final object and child equal to what `bench/handwritten.py` computes for it
(patch applied, children created, the children's own mutations). The table gives the
median per stage in µs per object and the total's ratio to the smallest size: time per
object is meant to stay flat (within 20%) from 1k to 100k. Peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STAGES = ("load", "compile", "simulate", "write")


FILE_OBJECTS = 10_000  # per manifest file: the loader refuses files over 64 MiB


def write_inputs(directory: Path, size: int, rules: int) -> tuple[Path, Path]:
    """The corpus as the YAML files `edict apply` would be given: a directory of
    manifest files (10,000 objects each) and a rules file."""
    import yaml

    from bench import corpus

    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    objects_path = directory / f"objects-{size}"
    rules_path = directory / f"rules-{rules}.yaml"
    if not objects_path.exists():
        scratch = directory / f"objects-{size}.partial"
        scratch.mkdir(parents=True, exist_ok=True)
        objects = corpus.objects(size)
        for number, start in enumerate(range(0, len(objects), FILE_OBJECTS)):
            with (scratch / f"{number:04d}.yaml").open("w") as out:
                yaml.dump_all(objects[start:start + FILE_OBJECTS], out, Dumper=dumper,
                              sort_keys=False, explicit_start=True)
        scratch.rename(objects_path)
    if not rules_path.exists():
        with rules_path.open("w") as out:
            yaml.dump_all(corpus.rule_sets(rules), out, Dumper=dumper, sort_keys=False,
                          explicit_start=True)
    return objects_path, rules_path


class _Clock:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def stage(self, name: str, started: tuple[float, float]) -> tuple[float, float]:
        now = (time.perf_counter(), time.process_time())
        self.times[name] = now[0] - started[0]
        self.cpu[name] = now[1] - started[1]
        return now


def run_once(objects_path: Path, rules_path: Path, rules: int, out_path: Path
             ) -> dict[str, Any]:
    """One timed `edict apply` in this process, checked afterwards."""
    from engine.cli.apply import write
    from engine.cli.common import load_rule_sets, read_objects
    from engine.evaluate.engine import Engine
    from engine.evaluate.simulate import simulate

    clock = _Clock()
    mark = (time.perf_counter(), time.process_time())
    objects = read_objects([str(objects_path)])
    mark = clock.stage("load", mark)
    loaded = load_rule_sets([str(rules_path)])
    engine = Engine(loaded.rule_sets)
    mark = clock.stage("compile", mark)
    sim = simulate(engine, objects, schemas=loaded.schemas)
    mark = clock.stage("simulate", mark)
    with out_path.open("w") as stream:
        write(sim, "yaml", stream)
    clock.stage("write", mark)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    checked = check(sim, objects, rules)
    return {"objects": len(objects), "times": clock.times, "cpu": clock.cpu,
            "rounds": sim.rounds, "peak_mib": round(peak, 1), **checked}


def check(sim: Any, objects: list[Any], rules: int) -> dict[str, int]:
    """What a correct run gives, from the hand-written baseline; AssertionError if not."""
    import jsonpatch

    from bench import corpus, handwritten
    from engine.evaluate.world import ManifestWorld
    from engine.objects import key_of

    assert sim.converged, f"not converged after {sim.rounds} rounds"
    assert not sim.problems, list(sim.problems)[:3]
    assert not sim.conflicts, list(sim.conflicts)[:3]
    docs = corpus.rule_sets(rules)
    sets = {r["name"]: d["metadata"]["name"] for d in docs for r in d["spec"]["rules"]}
    world = ManifestWorld(objects)
    labels = handwritten.label_rule_count(rules)

    def expected(obj: Any) -> tuple[Any, list[Any]]:
        patch, children = handwritten.reconcile(
            obj, world, label_rules=labels, generate_rule_set=sets.get("app-config", ""),
            quota_rule_set=sets.get("quota", ""))
        return jsonpatch.apply_patch(obj, patch), children

    changed = created = 0
    for obj in objects:
        final, children = expected(obj)
        key = key_of(obj)
        assert sim.final(key) == final, (key, sim.final(key), final)
        changed += final != obj
        for child in children:
            child_final, grandchildren = expected(child)
            assert not grandchildren
            assert sim.final(key_of(child)) == child_final, key_of(child)
            created += 1
    generated = sum(1 for key in sim.generated if sim.final(key) is not None)
    assert generated == created, (generated, created)
    return {"changed": changed, "created": created}


def _child(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    objects_path, rules_path = write_inputs(directory, args.one, args.rules)
    out = run_once(objects_path, rules_path, args.rules, directory / f"out-{args.one}.yaml")
    print(json.dumps(out))
    return 0


def _median_row(size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    per = {stage: statistics.median(r["times"][stage] for r in runs) for stage in STAGES}
    total = statistics.median(sum(r["times"].values()) for r in runs)
    cpu = statistics.median(sum(r["cpu"].values()) for r in runs)
    return {"size": size, "stages": per, "total": total, "cpu": cpu,
            "peak": statistics.median(r["peak_mib"] for r in runs), "runs": len(runs),
            "changed": runs[0]["changed"], "created": runs[0]["created"],
            "rounds": runs[0]["rounds"]}


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'objects':>8} {'runs':>4} " + " ".join(f"{s + ' us/obj':>16}" for s in STAGES)
            + f" {'total s':>8} {'us/obj':>7} {'CPU s':>7} {'CPU us/obj':>10} {'vs first':>8}"
            f" {'peak MiB':>8} {'rounds':>6}")
    lines = [head, "-" * len(head)]
    first = rows[0]["total"] / rows[0]["size"] if rows else 0.0
    first_cpu = rows[0]["cpu"] / rows[0]["size"] if rows else 0.0
    for row in rows:
        n = row["size"]
        per_object = row["total"] / n
        lines.append(
            f"{n:>8} {row['runs']:>4} "
            + " ".join(f"{1e6 * row['stages'][s] / n:>16.1f}" for s in STAGES)
            + f" {row['total']:>8.2f} {1e6 * per_object:>7.1f} {row['cpu']:>7.2f}"
            f" {1e6 * row['cpu'] / n:>10.1f} {per_object / first:>8.2f} {row['peak']:>8.1f}"
            f" {row['rounds']:>6}")
    if len(rows) > 1:
        worst = max(r["total"] / r["size"] for r in rows) / first
        worst_cpu = max(r["cpu"] / r["size"] for r in rows) / first_cpu
        lines.append(f"\nper object, worst size / first size: wall {worst:.2f}, CPU "
                     f"{worst_cpu:.2f} (target <= 1.20): "
                     + ("ok" if max(worst, worst_cpu) <= 1.2 else "MISSED"))
    lines.append("every run: converged, no errors or conflicts, every final object and "
                 "child equal to the hand-written baseline's")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--repeat", default="5",
                        help="runs per size (a median each); one number, or one per size "
                        "(5,5,3)")
    parser.add_argument("--dir", help="where the corpus files go (default: a temporary "
                        "directory, removed afterwards)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's one run
    args = parser.parse_args(argv)
    if args.one:
        return _child(args)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    repeats = [int(r) for r in args.repeat.split(",") if r]
    repeats += [repeats[-1]] * (len(sizes) - len(repeats))
    with tempfile.TemporaryDirectory(prefix="edict-scale-") as scratch:
        directory = Path(args.dir or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for size, repeat in zip(sizes, repeats, strict=False):
            runs = []
            for number in range(repeat):
                answer = subprocess.run(
                    [sys.executable, "-m", "bench.scale", "--one", str(size), "--rules",
                     str(args.rules), "--dir", str(directory)],
                    check=False, capture_output=True, text=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"})
                if answer.returncode != 0:
                    raise SystemExit(f"run {number + 1} at {size} objects failed:\n"
                                     + answer.stderr[-3000:])
                run = json.loads(answer.stdout.strip().splitlines()[-1])
                runs.append(run)
                print(f"  {size} objects, run {number + 1}: "
                      f"{sum(run['times'].values()):.2f}s "
                      + " ".join(f"{s}={run['times'][s]:.2f}" for s in STAGES),
                      file=sys.stderr, flush=True)
            rows.append(_median_row(size, runs))
        print(f"corpus: bench/corpus.py, {args.rules} rules; load average at the end: "
              + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
