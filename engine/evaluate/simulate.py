"""Offline: treat a set of manifests as the cluster and run the engine to convergence.

`edict apply` and `edict test` call `simulate`. Each round evaluates every object (inputs
first, then generated ones, which may be triggers too) against the world as the previous
round left it, applies the trigger patches and child plans to that world, and stops when
a round changes nothing — what the live engine would reach, without a cluster. Like the
live engine's sweep, each round first prunes the generated objects among them whose rule
(of a rule set that was given) or trigger is gone (`engine.evaluate.sweep`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction, Conflict, Outcome, Result, Status
from engine.evaluate.sweep import why_orphaned
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.model import RuleSet, RuleSetRef
from engine.schemas.catalogue import Catalogue

MAX_ROUNDS = 5
PROBLEMS = (Status.ERROR, Status.OSCILLATING, Status.DISABLED)


@dataclass
class Simulation:
    inputs: list[ObjectKey]
    originals: dict[ObjectKey, Obj]
    world: ManifestWorld
    generated: list[ObjectKey] = field(default_factory=list)
    deleted: list[ObjectKey] = field(default_factory=list)
    results: dict[ObjectKey, Result] = field(default_factory=dict)  # the last one per object
    # per object, the outcomes of its first evaluation: what the rules did to it
    outcomes: dict[ObjectKey, tuple[Outcome, ...]] = field(default_factory=dict)
    # errors, oscillations and disabled rules seen in any round, once each
    problems: dict[tuple[ObjectKey, Outcome], None] = field(default_factory=dict)
    conflicts: dict[tuple[ObjectKey, Conflict], None] = field(default_factory=dict)
    rounds: int = 0
    converged: bool = False
    # why each pruned object went, when a sweep (not a trigger's evaluation) pruned it
    swept: dict[ObjectKey, str] = field(default_factory=dict)
    _known: set[ObjectKey] = field(default_factory=set)  # inputs and generated, as a set

    def final(self, key: ObjectKey) -> Obj | None:
        return self.world.get(key.gvk, key.namespace, key.name)

    @property
    def violations(self) -> list[tuple[ObjectKey, Outcome]]:
        """Validate rules that do not hold for the objects as they end up (the last
        evaluation of each object still there)."""
        return [(key, outcome) for key in [*self.inputs, *self.generated]
                if key in self.results and self.final(key) is not None
                for outcome in self.results[key].violations]


def simulate(engine: Engine, objects: Iterable[Obj], *, max_rounds: int = MAX_ROUNDS,
             schemas: Catalogue | None = None) -> Simulation:
    """Run to convergence over `objects`; `schemas` (default: the shipped catalogue) plus
    the CRDs among the objects say how each kind's fields merge."""
    objects = list(objects)
    world = ManifestWorld(objects, schemas=schemas)
    keys = list(dict.fromkeys(key_of(o) for o in objects))
    sim = Simulation(inputs=keys, originals={key_of(o): o for o in objects}, world=world)
    sim._known.update(keys)
    rule_sets = {compiled.rule_set.ref: compiled.rule_set for compiled in engine.rule_sets}
    for _ in range(max_rounds):
        sim.rounds += 1
        swept = _sweep(sim, rule_sets)
        if not _round(engine, sim) and not swept:
            sim.converged = True
            break
    return sim


def _sweep(sim: Simulation, rule_sets: dict[RuleSetRef, RuleSet]) -> bool:
    """Prune the generated objects whose rule or trigger is gone; whether any went."""
    def exists(gvk: GVK, namespace: str, name: str) -> bool:
        return sim.world.get(gvk, namespace, name) is not None

    pruned = False
    for key in [*sim.inputs, *sim.generated]:
        obj = sim.world.get(key.gvk, key.namespace, key.name)
        if obj is None:
            continue
        why = why_orphaned(obj, rule_sets=rule_sets, trigger_exists=exists, all_loaded=False)
        if why is not None:
            sim.world.remove(key)
            sim.swept[key] = why
            if key not in sim.deleted:
                sim.deleted.append(key)
            pruned = True
    return pruned


def _round(engine: Engine, sim: Simulation) -> bool:
    changed = False
    for key in [*sim.inputs, *sim.generated]:
        obj = sim.world.get(key.gvk, key.namespace, key.name)
        if obj is None:
            continue
        result = engine.evaluate(obj, world=sim.world)
        sim.results[key] = result
        sim.outcomes.setdefault(key, result.outcomes)
        for outcome in result.outcomes:
            if outcome.status in PROBLEMS:
                sim.problems[(key, outcome)] = None
        for conflict in result.conflicts:
            sim.conflicts[(key, conflict)] = None
        if result.desired != obj:
            sim.world.put(result.desired)
            changed = True
        for child in result.children:
            if child.action is ChildAction.DELETE:
                sim.world.remove(child.key)
                if child.key not in sim.deleted:
                    sim.deleted.append(child.key)
                changed = True
            elif child.action in (ChildAction.CREATE, ChildAction.PATCH):
                assert child.desired is not None
                sim.world.put(child.desired)
                if child.key not in sim._known:
                    sim._known.add(child.key)
                    sim.generated.append(child.key)
                changed = True
    return changed
