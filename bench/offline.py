"""Offline benchmark: the engine against hand-written Python, on the same corpus.

    python -m bench.offline --objects 10000 --rules 20

Builds the corpus (`bench/corpus.py`), then in one process times, --repeat times and
back to back in each repetition,
1. the engine: `Engine.evaluate` on every object, against a world made of the corpus;
2. the baseline: `bench/handwritten.py`, the same changes written by hand;
after checking that both give the same JSON patches and the same children. Prints
objects/s and rule evaluations/s of CPU time (best of --repeat), the ratio engine /
hand-written of the best runs, and the median of the ratios of the pairs (lower is
better).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import corpus, handwritten
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction
from engine.evaluate.world import ManifestWorld
from engine.rules.load import parse_rule_set


def timed(run: Callable[[], Any]) -> float:
    """CPU seconds of this process for `run` (on a shared machine, wall time also holds
    the time other work kept the core)."""
    gc.collect()
    start = time.process_time()
    run()
    return time.process_time() - start


def paired(repeat: int, first: Callable[[], Any], second: Callable[[], Any]
           ) -> list[tuple[float, float]]:
    """`repeat` pairs of timings, the two sides back to back in each: other load on a
    shared machine then weighs on both sides of a pair alike."""
    return [(timed(first), timed(second)) for _ in range(repeat)]


def _normal(patch: Any) -> list[Any]:
    return sorted((op["op"], op["path"], repr(op.get("value"))) for op in patch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    objects = corpus.objects(args.objects)
    docs = corpus.rule_sets(args.rules)
    rule_sets = [parse_rule_set(d) for d in docs]
    engine = Engine(rule_sets)
    world = ManifestWorld(objects)
    generate_set = next(d["metadata"]["name"] for d in docs
                        if any(r["name"] == "app-config" for r in d["spec"]["rules"]))
    quota_set = next(d["metadata"]["name"] for d in docs
                     if any(r["name"] == "quota" for r in d["spec"]["rules"]))
    labels = handwritten.label_rule_count(args.rules)

    def by_engine() -> list[Any]:
        return [engine.evaluate(obj, world=world) for obj in objects]

    def by_hand() -> list[Any]:
        return [handwritten.reconcile(obj, world, label_rules=labels,
                                      generate_rule_set=generate_set,
                                      quota_rule_set=quota_set) for obj in objects]

    # Same answers first: the comparison is only fair if both do the same work.
    evaluations = 0
    for obj, result, (patch, children) in zip(objects, by_engine(), by_hand(), strict=True):
        assert _normal(result.patch) == _normal(patch), (obj["metadata"]["name"],
                                                         result.patch, patch)
        created = [c.desired for c in result.children if c.action is ChildAction.CREATE]
        assert created == children, (created, children)
        problems = [o for o in result.outcomes if o.status.value in ("error", "disabled")]
        assert not problems, problems
        evaluations += len(result.outcomes)

    pairs = paired(args.repeat, by_engine, by_hand)
    engine_s = min(e for e, _ in pairs)
    hand_s = min(h for _, h in pairs)
    ratios = sorted(e / h for e, h in pairs)
    n = len(objects)
    print(f"corpus: {n} objects, {args.rules} rules, {evaluations} rule evaluations per run")
    print(f"engine:       {engine_s:8.3f} s CPU {n / engine_s:10.0f} objects/s  "
          f"{evaluations / engine_s:10.0f} rule evaluations/s  (best of {args.repeat})")
    print(f"hand-written: {hand_s:8.3f} s CPU {n / hand_s:10.0f} objects/s  "
          f"(best of {args.repeat})")
    print(f"ratio engine/hand-written: {engine_s / hand_s:.2f} (best against best); "
          f"paired runs: median {statistics.median(ratios):.2f} "
          f"({', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
