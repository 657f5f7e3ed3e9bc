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
"""

from __future__ import annotations

import argparse
import statistics
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
    args = parser.parse_args()

    objects = corpus.objects(args.objects)
    world = ManifestWorld(objects)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    per = 1e6 / len(deployments)
    for name in ["false", *args.rules]:
        docs = rule_sets(name)
        fast = Engine(docs)
        slow = Engine(docs, settings=Settings(writers=False))
        for obj in deployments:
            a, b = fast.evaluate(obj, world=world), slow.evaluate(obj, world=world)
            if (a.desired, a.patch, a.outcomes, a.conflicts) != (
                    b.desired, b.patch, b.outcomes, b.conflicts):
                raise SystemExit(f"{name}: the two engines differ on {obj['metadata']}")
        pairs = paired(args.repeat,
                       lambda e=fast: [e.evaluate(o, world=world) for o in deployments],
                       lambda e=slow: [e.evaluate(o, world=world) for o in deployments])
        best_fast = min(p[0] for p in pairs) * per
        best_slow = min(p[1] for p in pairs) * per
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        print(f"{name:22s} compiled {best_fast:6.1f} µs/Deployment   generic "
              f"{best_slow:6.1f} µs/Deployment   compiled/generic, paired median {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
