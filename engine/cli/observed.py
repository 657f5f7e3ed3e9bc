"""`spec.observed` of a RuleTest: what the cluster's controllers report about objects
once they exist, so a case can test each step of a cascade offline.

Offline there is no kubelet and no controller: a generated StatefulSet never gets
`readyReplicas`, a Job never succeeds, so a rule that comes `after` them would wait
forever. A case lists the state it wants observed:

    observed:
    - apiVersion: apps/v1
      kind: StatefulSet
      metadata: {name: orders-db, namespace: shop}
      status: {readyReplicas: 1}

After the rules converge, each entry is merged onto the object of that kind, namespace
and name when it exists (a JSON merge patch: maps merge, other values replace, null
removes; `metadata.name`/`namespace` only say which object), then the rules run again
over the world, until nothing changes. One case per step of a cascade states what is
ready at that step. Outcomes are those of the last run, errors those of any run, and
`writes` counts from the case's own objects.

`engine.cli.testcases` calls `simulate_observed` instead of `simulate_case`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.cli.common import UsageError
from engine.cli.testruns import simulate_case
from engine.evaluate.engine import Engine
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import Obj, key_of
from engine.rules.api import crds_of, defaulted
from engine.schemas.catalogue import Catalogue

MAX_OBSERVATIONS = 10


def observed_of(raw: Any, *, source: str) -> tuple[Obj, ...]:
    """The `observed` entries of a case (each names an object: apiVersion, kind, name)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
            isinstance(entry, dict) and entry.get("apiVersion") and entry.get("kind")
            and isinstance(entry.get("metadata"), dict) and entry["metadata"].get("name")
            for entry in raw):
        raise UsageError(f"{source}: observed must be a list of objects, each with "
                         "apiVersion, kind and metadata.name")
    return tuple(raw)


def simulate_observed(engine: Engine, objects: Sequence[Obj],
                      second: dict[str, list[Obj]] | None, observed: Sequence[Obj], *,
                      schemas: Catalogue | None = None) -> Simulation:
    """`simulate_case` with the observed state laid on in each run, the rules running
    again until the world settles. Objects of the rule sets' own kinds (`spec.api`) get
    their schema's defaults first, as the API server would give them."""
    crds = crds_of(c.rule_set for c in engine.rule_sets)
    objects = defaulted(objects, crds)
    if not observed:
        if second is not None:
            second = {**second, "objects": defaulted(second["objects"], crds)}
        return simulate_case(engine, objects, second, schemas=schemas)
    first = _settle(engine, objects, observed, schemas)
    if second is None:
        return first
    world = {key_of(obj): obj for obj in first.world.objects()}
    for obj in defaulted(second["objects"], crds):
        world[key_of(obj)] = obj
    for obj in second["delete"]:
        world.pop(key_of(obj), None)
    sim = _settle(engine, list(world.values()), observed, schemas)
    carried = [key for key in first.generated if key in sim.inputs]  # as simulate_case
    sim.inputs = [key for key in sim.inputs if key not in carried]
    sim.generated = carried + [key for key in sim.generated if key not in carried]
    return sim


def _settle(engine: Engine, objects: Sequence[Obj], observed: Sequence[Obj],
            schemas: Catalogue | None) -> Simulation:
    sim = simulate(engine, objects, schemas=schemas)
    for _ in range(MAX_OBSERVATIONS):
        if not _observe(sim, observed):
            break
        sim = _again(engine, sim, schemas)
    return sim


def _observe(sim: Simulation, observed: Sequence[Obj]) -> bool:
    changed = False
    for entry in observed:
        key = key_of(entry)
        current = sim.world.get(key.gvk, key.namespace, key.name)
        if current is None:
            continue
        metadata = {k: v for k, v in entry["metadata"].items() if k not in ("name",
                                                                             "namespace")}
        patch = {k: v for k, v in entry.items() if k not in ("apiVersion", "kind", "metadata")}
        if metadata:
            patch["metadata"] = metadata
        merged = merge_patch(current, patch)
        if merged != current:
            sim.world.put(merged)
            changed = True
    return changed


def _again(engine: Engine, before: Simulation, schemas: Catalogue | None) -> Simulation:
    sim = simulate(engine, before.world.objects(), schemas=schemas)
    known = set(before.inputs)
    sim.generated = [*before.generated,
                     *(k for k in [*sim.inputs, *sim.generated] if k not in known
                       and k not in before.generated)]
    sim.inputs = list(before.inputs)
    sim.originals = before.originals
    sim.deleted = [*before.deleted, *(k for k in sim.deleted if k not in before.deleted)]
    sim.problems = {**before.problems, **sim.problems}
    sim.conflicts = {**before.conflicts, **sim.conflicts}
    return sim


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: `patch` merged onto `target` (a fresh value)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
