"""Offline: treat a set of manifests as the cluster and run the engine to convergence.

`edict apply` and `edict test` call `simulate`. Each round evaluates objects (inputs
first, then generated ones, which may be triggers too) against the world as the previous
round left it, applies the trigger patches and child plans to that world, and stops when
a round changes nothing — what the live engine would reach, without a cluster. Like the
live engine's sweep, each round first prunes the generated objects among them whose rule
(of a rule set that was given) or trigger is gone (`engine.evaluate.sweep`).

A round evaluates only the objects that could give a different answer than last time,
as the live engine reconciles only the keys an event queued: every object in the first
round, then an object when something its evaluation read has changed since (an object
it looked up, its Namespace, one of its children, a kind's scope), when someone else
changed it, or when it is new. What an evaluation reads is recorded through the world it
is given (`_Reads`). An object's own evaluation does not make it dirty: `Engine.evaluate`
already ran its rules to a fixed point on it, and its child plans leave exactly the
children it asked for, so evaluating it again would change nothing (`edict test` checks
that property on every case, by evaluating everything once more). The work is
proportional to the objects and the changes, not to objects times rounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction, Outcome, Result, RuleConflict, Status
from engine.evaluate.sweep import why_orphaned
from engine.evaluate.world import ManifestWorld, trigger_of
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.model import Generate, RuleSet, RuleSetRef
from engine.schemas import Node
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
    conflicts: dict[tuple[ObjectKey, RuleConflict], None] = field(default_factory=dict)
    rounds: int = 0
    converged: bool = False
    # why each pruned object went, when a sweep (not a trigger's evaluation) pruned it
    swept: dict[ObjectKey, str] = field(default_factory=dict)
    evaluations: int = 0  # Engine.evaluate calls over all rounds
    _known: set[ObjectKey] = field(default_factory=set)  # inputs and generated, as a set
    _deps: _Dependencies = field(default_factory=lambda: _Dependencies())

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
    sim._deps.dirty.update(keys)
    rule_sets = {compiled.rule_set.ref: compiled.rule_set for compiled in engine.rule_sets}
    to_sweep: set[ObjectKey] | None = None  # None: every object
    for _ in range(max_rounds):
        sim.rounds += 1
        sim._deps.touched.clear()
        swept = _sweep(sim, rule_sets, to_sweep)
        changed = _round(engine, sim)
        to_sweep = set(sim._deps.touched)  # a pruned object's own children, too
        if not changed and not swept:
            sim.converged = True
            break
    return sim


class _Dependencies:
    """Who read what, and which objects must be evaluated again (internal)."""

    def __init__(self) -> None:
        self.dirty: set[ObjectKey] = set()
        self.touched: set[ObjectKey] = set()  # written or removed in this round
        self._by_key: dict[ObjectKey, set[ObjectKey]] = {}
        self._by_ref: dict[str, set[ObjectKey]] = {}
        self._by_scope: dict[GVK, set[ObjectKey]] = {}
        self._reads: dict[ObjectKey, _Reads] = {}

    def record(self, reader: ObjectKey, reads: _Reads) -> None:
        old = self._reads.pop(reader, None)
        if old is not None:
            for key in old.keys:
                self._by_key.get(key, set()).discard(reader)
            for ref in old.refs:
                self._by_ref.get(ref, set()).discard(reader)
            for gvk in old.scopes:
                self._by_scope.get(gvk, set()).discard(reader)
        self._reads[reader] = reads
        for key in reads.keys:
            self._by_key.setdefault(key, set()).add(reader)
        for ref in reads.refs:
            self._by_ref.setdefault(ref, set()).add(reader)
        for gvk in reads.scopes:
            self._by_scope.setdefault(gvk, set()).add(reader)

    def changed(self, key: ObjectKey, before: Obj | None, after: Obj | None, *,
                by: ObjectKey, looked_up: frozenset[ObjectKey] = frozenset(),
                new_kind: bool = False) -> None:
        """`key` went from `before` to `after` because `by` was evaluated (or swept).

        `by` itself is not made dirty by its own writes (to itself, to the children it
        planned: they are what it asked for), unless it read `key` through a `context`
        lookup (`looked_up`) or as its Namespace.
        """
        self.touched.add(key)
        if key != by and after is not None:
            self.dirty.add(key)  # someone else changed it
        readers = set(self._by_key.get(key, ()))  # lookups, Namespaces, children planned
        refs = {trigger_of(obj) for obj in (before, after) if obj is not None}
        for ref in refs:
            if ref is not None:
                readers.update(self._by_ref.get(ref, ()))  # children listed
        if by in readers and key not in looked_up and not (
                key.gvk.kind == "Namespace" and key.gvk.group == ""
                and key.name == by.namespace):
            readers.discard(by)
        self.dirty.update(readers)
        if new_kind:
            self.dirty.update(self._by_scope.pop(key.gvk, set()))
        if any(obj is not None and obj.get("kind") == "CustomResourceDefinition"
               for obj in (before, after)):
            self.dirty.update(self._reads)  # scopes and schemas may have changed


class _Reads:
    """A world that records what one evaluation reads from the one it wraps."""

    def __init__(self, world: ManifestWorld) -> None:
        self._world = world
        self.keys: set[ObjectKey] = set()
        self.refs: set[str] = set()
        self.scopes: set[GVK] = set()

    def get(self, gvk: GVK, namespace: str, name: str) -> Obj | None:
        self.keys.add(ObjectKey(gvk, namespace, name))
        if namespace:
            self.keys.add(ObjectKey(gvk, "", name))  # a cluster-scoped kind's fallback
        return self._world.get(gvk, namespace, name)

    def namespaced(self, gvk: GVK) -> bool | None:
        answer = self._world.namespaced(gvk)
        if answer is None:
            self.scopes.add(gvk)  # the first object of the kind will tell
        return answer

    def children(self, gvk: GVK, trigger_ref: str) -> Iterable[Obj]:
        self.refs.add(trigger_ref)
        return self._world.children(gvk, trigger_ref)

    def schema(self, gvk: GVK) -> Node | None:
        return self._world.schema(gvk)


def _sweep(sim: Simulation, rule_sets: dict[RuleSetRef, RuleSet],
           keys: set[ObjectKey] | None) -> bool:
    """Prune the generated objects whose rule or trigger is gone; whether any went.
    `keys`: those written or removed since the last sweep, or None for every object."""
    def exists(gvk: GVK, namespace: str, name: str) -> bool:
        return sim.world.get(gvk, namespace, name) is not None

    if keys is None:
        candidates: Iterable[ObjectKey] = [*sim.inputs, *sim.generated]
    else:
        # an object written since may carry other labels; the children of one removed
        # may have lost their trigger
        found = {key for key in keys if key in sim._known}
        for key in keys:
            if sim.final(key) is None:
                found.update(sim.world.children_of(_ref(key)))
        candidates = [key for key in [*sim.inputs, *sim.generated] if key in found] if (
            found) else []
    pruned = False
    for key in candidates:
        obj = sim.world.get(key.gvk, key.namespace, key.name)
        if obj is None:
            continue
        why = why_orphaned(obj, rule_sets=rule_sets, trigger_exists=exists, all_loaded=False)
        if why is not None:
            sim.world.remove(key)
            sim._deps.changed(key, obj, None, by=key)
            sim.swept[key] = why
            if key not in sim.deleted:
                sim.deleted.append(key)
            pruned = True
    return pruned


def _ref(key: ObjectKey) -> str:
    return f"{key.gvk.api_version}/{key.gvk.kind}/{key.namespace}/{key.name}"


def _waits_on_children(engine: Engine, key: ObjectKey) -> bool:
    """Whether the object's generate rules read their own children back (`readyWhen`,
    `after`): then its own writes to them change its next evaluation."""
    return any(isinstance(rule.rule.action, Generate) and (
        rule.rule.action.ready_when or rule.rule.action.after)
        for rule in engine.rules_for(key.gvk))


def _round(engine: Engine, sim: Simulation) -> bool:
    changed = False
    deps = sim._deps
    world = sim.world
    for key in [*sim.inputs, *sim.generated]:
        if key not in deps.dirty:
            continue
        deps.dirty.discard(key)
        obj = world.get(key.gvk, key.namespace, key.name)
        if obj is None:
            continue
        reads = _Reads(world)
        result = engine.evaluate(obj, world=reads)
        sim.evaluations += 1
        deps.record(key, reads)
        sim.results[key] = result
        sim.outcomes.setdefault(key, result.outcomes)
        for outcome in result.outcomes:
            if outcome.status in PROBLEMS:
                sim.problems[(key, outcome)] = None
        for conflict in result.conflicts:
            sim.conflicts[(key, conflict)] = None
        looked_up = result.lookups
        if result.desired != obj:
            world.put(result.desired)
            deps.changed(key, obj, result.desired, by=key, looked_up=looked_up)
            changed = True
        planned: set[ObjectKey] = set()
        if _waits_on_children(engine, key) and any(
                c.action is not ChildAction.NONE for c in result.children):
            # readiness and `after` read the children as they now are: look again
            deps.dirty.add(key)
        for child in result.children:
            if child.key in planned:
                # two of its rules write one child: the second undoes the first, which
                # its next evaluation reports (the live engine's create would fail)
                deps.dirty.add(key)
            planned.add(child.key)
            if child.action is ChildAction.DELETE:
                before = world.get(child.key.gvk, child.key.namespace, child.key.name)
                world.remove(child.key)
                deps.changed(child.key, before, None, by=key, looked_up=looked_up)
                if child.key not in sim.deleted:
                    sim.deleted.append(child.key)
                changed = True
            elif child.action in (ChildAction.CREATE, ChildAction.PATCH):
                assert child.desired is not None
                before = world.get(child.key.gvk, child.key.namespace, child.key.name)
                new_kind = world.namespaced(child.key.gvk) is None
                world.put(child.desired)
                deps.changed(child.key, before, child.desired, by=key, looked_up=looked_up,
                             new_kind=new_kind)
                if child.key not in sim._known:
                    sim._known.add(child.key)
                    sim.generated.append(child.key)
                    deps.dirty.add(child.key)
                changed = True
    return changed
