"""One corpus rule alone in an engine, with and without its compiled forms.

    python -m bench.rule_alone history-limit env-from-namespace --objects 4000

For each named rule of `bench/corpus.py`: an engine holding only that rule (in its rule
set, with its params) and the same engine with `Settings(writers=False)` (templates and
JSON patches rendered and merged or applied generically, no quick filter). Checks first
that both give the same desired object, patch, outcomes and conflicts on every
Deployment of the corpus; then times both on the Deployments, back to back in each of
--repeat repetitions (CPU seconds, `bench.offline.paired`), and prints µs per
Deployment (best of --repeat) for each side, with an engine whose only rule's condition
is ``false`` as the fixed cost of an evaluation, and the median ratio of the pairs.

The name ``all`` stands for the whole corpus: its 20 rules, on every object. With
``--per-object``, each evaluation is timed alone (wall clock, `time.perf_counter_ns`)
and the minimum per object over the --repeat runs is summed: on a machine shared with
other work, what an evaluation costs when nothing interrupts it (a CPU-seconds total of
a whole run takes every interruption in); run it once per version, alternating, to
compare versions.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

from bench import corpus
from bench.offline import paired
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.world import ManifestWorld
from engine.rules.load import parse_rule_set


def rule_sets(name: str) -> list[Any]:
    """The corpus rule sets cut down to the rule `name` (``false``: a rule that never
    applies)."""
    docs = corpus.rule_sets(20)
    if name == "all":
        return [parse_rule_set(doc) for doc in docs]
    if name == "false":
        rule = {**corpus.label_rule(0), "condition": "false"}
        return [parse_rule_set({**docs[0], "spec": {**docs[0]["spec"], "rules": [rule]}})]
    out = []
    for doc in docs:
        rules = [r for r in doc["spec"]["rules"] if r["name"] == name]
        if rules:
            out.append(parse_rule_set({**doc, "spec": {**doc["spec"], "rules": rules}}))
    if not out:
        raise SystemExit(f"no rule {name!r} in bench/corpus.py")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rules", nargs="+")
    parser.add_argument("--objects", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--per-object", action="store_true",
                        help="sum the minimum time of each object's evaluation")
    args = parser.parse_args()

    objects = corpus.objects(args.objects)
    world = ManifestWorld(objects)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    per = 1e6 / len(deployments)
    for name in ["false", *args.rules]:
        docs = rule_sets(name)
        fast = Engine(docs)
        slow = Engine(docs, settings=Settings(writers=False))
        subjects = objects if name == "all" else deployments
        for obj in subjects:
            a, b = fast.evaluate(obj, world=world), slow.evaluate(obj, world=world)
            if (a.desired, a.patch, a.outcomes, a.conflicts, a.children) != (
                    b.desired, b.patch, b.outcomes, b.conflicts, b.children):
                raise SystemExit(f"{name}: the two engines differ on {obj['metadata']}")
        if args.per_object:
            print(f"{name:22s} compiled {per_object(fast, subjects, world, args.repeat):6.1f} "
                  f"µs/object   generic {per_object(slow, subjects, world, args.repeat):6.1f} "
                  f"µs/object   (sum of each object's best of {args.repeat}, "
                  f"{len(subjects)} objects)")
            continue
        pairs = paired(args.repeat,
                       lambda e=fast: [e.evaluate(o, world=world) for o in deployments],
                       lambda e=slow: [e.evaluate(o, world=world) for o in deployments])
        best_fast = min(p[0] for p in pairs) * per
        best_slow = min(p[1] for p in pairs) * per
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        print(f"{name:22s} compiled {best_fast:6.1f} µs/Deployment   generic "
              f"{best_slow:6.1f} µs/Deployment   compiled/generic, paired median {ratio:.2f}")
    return 0


def per_object(engine: Engine, subjects: list[Any], world: ManifestWorld, repeat: int
               ) -> float:
    """µs per object: each evaluation timed alone, the best of `repeat` per object."""
    best = [math.inf] * len(subjects)
    clock = time.perf_counter_ns
    for _ in range(repeat):
        for index, obj in enumerate(subjects):
            start = clock()
            engine.evaluate(obj, world=world)
            spent = clock() - start
            if spent < best[index]:
                best[index] = spent
    return sum(best) / len(subjects) / 1000


if __name__ == "__main__":
    raise SystemExit(main())
