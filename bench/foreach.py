"""A `mutate.forEach` over N items must cost the same per item at any N.

    python -m bench.foreach [--sizes 1000,5000,20000] [--repeat 3]

One Deployment with N containers and one rule: ``forEach`` over the containers, a
template per item that sets the item's resource limits, merged by name (the
containers list is keyed by ``name``). The engine's whole evaluation of the rule
(`Engine.evaluate`: forEach in CEL, N renderings, N merges, the assignments, the
patch) is timed against the same work done by a plain Python loop (copy the object,
set each container's limits, the same `make_patch`) in the same process, after
checking that both give the same patch. Reading 20,000 containers into CEL costs more
than the default `runtime_cost_limit` allows, so the engine runs with that limit raised
(`Limits`, as ``--limits`` would). It prints, per size, the time per item of
each side and their ratio, then the ratio of the engine's time per item at the largest
size to the smallest: linear means flat (target: within 1.5x).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

from engine.cel import CelLimits
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.limits import Limits
from engine.evaluate.world import ManifestWorld
from engine.patching import make_patch
from engine.rules.load import parse_rule_set

RULE_SET = {
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
    "metadata": {"name": "bench-foreach"},
    "spec": {"rules": [{
        "name": "limits-per-container",
        "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
        "mutate": {
            "forEach": "object.spec.template.spec.containers",
            "template": {"spec": {"template": {"spec": {"containers": [{
                "name": "{{ item.name }}",
                "resources": {"limits": {"cpu": "500m", "memory": "{{ item.image }}"}},
            }]}}}},
        },
    }]},
}


def deployment(size: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "wide", "namespace": "bench", "resourceVersion": "1"},
            "spec": {"selector": {"matchLabels": {"app": "wide"}},
                     "template": {"metadata": {"labels": {"app": "wide"}},
                                  "spec": {"containers": [
                                      {"name": f"c{i}", "image": f"img-{i}"}
                                      for i in range(size)]}}}}


def by_engine(engine: Engine, obj: dict[str, Any]) -> list[dict[str, Any]]:
    result = engine.evaluate(obj, world=ManifestWorld([obj]))
    assert all(o.status.value == "applied" for o in result.outcomes), result.outcomes
    return list(result.patch)


def by_hand(obj: dict[str, Any]) -> list[dict[str, Any]]:
    after = copy.deepcopy(obj)
    for container in after["spec"]["template"]["spec"]["containers"]:
        resources = container.setdefault("resources", {})
        resources["limits"] = {"cpu": "500m", "memory": container["image"]}
    return list(make_patch(obj, after))


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    limits = Limits(cel=CelLimits(runtime_cost_limit=50_000_000))
    engine = Engine([parse_rule_set(RULE_SET)], settings=Settings(limits=limits))
    rows = []
    for size in sizes:
        obj = deployment(size)
        assert by_engine(engine, obj) == by_hand(obj), "the engine and the loop differ"
        engine_time = best(args.repeat, lambda obj=obj: by_engine(engine, obj))
        hand_time = best(args.repeat, lambda obj=obj: by_hand(obj))
        rows.append((size, engine_time / size, hand_time / size))
    print("| items | engine µs/item | plain loop µs/item | engine / loop |")
    print("|---|---|---|---|")
    for size, engine_item, hand_item in rows:
        print(f"| {size:,} | {engine_item * 1e6:,.1f} | {hand_item * 1e6:,.2f} | "
              f"{engine_item / hand_item:,.1f} |")
    first, last = rows[0], rows[-1]
    print(f"\nper-item time, {last[0]:,} items / {first[0]:,} items: engine "
          f"{last[1] / first[1]:.2f}x, plain loop {last[2] / first[2]:.2f}x "
          "(linear: flat, target within 1.5x)")


if __name__ == "__main__":
    main()
