"""What a set of rule sets would change in a world of objects, counted per rule.

`edict plan` reads a live cluster into a `ManifestWorld`, simulates the rule sets over it
(the same `simulate` as `edict apply`) and hands the result here. Offline and pure: no
cluster, no client. Per rule set and rule:

- objects patched: objects that would change, counted for each rule the engine's own
  evaluation says changed them (one object may count for several rules);
- children created, updated and pruned: generated objects, counted for the rule whose
  ownership labels they carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.cli.summary import is_child
from engine.evaluate.children import owner_labels
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Status
from engine.evaluate.simulate import Simulation
from engine.objects import Obj, ObjectKey, labels_of
from engine.rules.model import RuleSetRef

Rule = tuple[RuleSetRef, str]


@dataclass
class Counts:
    patched: int = 0
    created: int = 0
    updated: int = 0
    pruned: int = 0

    @property
    def any(self) -> bool:
        return bool(self.patched or self.created or self.updated or self.pruned)


@dataclass
class Plan:
    rules: dict[Rule, Counts] = field(default_factory=dict)  # every rule, in run order
    # (key, before, after): objects that would change; before None: created; after
    # None: pruned
    changes: list[tuple[ObjectKey, Obj | None, Obj | None]] = field(default_factory=list)

    def total(self) -> Counts:
        total = Counts()
        for counts in self.rules.values():
            total.created += counts.created
            total.updated += counts.updated
            total.pruned += counts.pruned
        total.patched = sum(1 for _, before, after in self.changes
                            if before is not None and after is not None
                            and not is_child(after))
        return total


def plan(engine: Engine, sim: Simulation) -> Plan:
    result = Plan()
    owners: list[tuple[Rule, dict[str, str]]] = []
    for compiled in engine.rule_sets:
        for rule in compiled.rules:
            ref = (compiled.rule_set.ref, rule.rule.name)
            result.rules[ref] = Counts()
            owners.append((ref, owner_labels(compiled.rule_set, rule.rule.name)))
    for key in sim.inputs:
        before, after = sim.originals[key], sim.final(key)
        if after is not None and after == before:
            continue
        result.changes.append((key, before, after))
        if after is None:
            _child_count(result, owners, before, "pruned")
        elif is_child(after):
            _child_count(result, owners, after, "updated")
        else:
            for outcome in engine.evaluate(before, world=sim.world).outcomes:
                if outcome.status is Status.APPLIED and outcome.paths:
                    counts = result.rules.get((outcome.rule_set, outcome.rule))
                    if counts is not None:
                        counts.patched += 1
    for key in sim.generated:
        after = sim.final(key)
        if after is not None:
            result.changes.append((key, None, after))
            _child_count(result, owners, after, "created")
    return result


def _child_count(result: Plan, owners: list[tuple[Rule, dict[str, str]]], obj: Obj,
                 what: str) -> None:
    labels = labels_of(obj)
    for ref, wanted in owners:
        if _has(labels, wanted):
            counts = result.rules[ref]
            setattr(counts, what, getattr(counts, what) + 1)
            return


def _has(labels: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def table(result: Plan) -> list[str]:
    """The counts as aligned lines: a row per rule, under its rule set."""
    header = ("RULE SET / RULE", "PATCHED", "CREATED", "UPDATED", "PRUNED")
    rows: list[tuple[str, ...]] = []
    current: RuleSetRef | None = None
    for (rule_set, rule), counts in result.rules.items():
        if rule_set != current:
            rows.append((str(rule_set), "", "", "", ""))
            current = rule_set
        rows.append((f"  {rule}", str(counts.patched), str(counts.created),
                     str(counts.updated), str(counts.pruned)))
    width = max(len(header[0]), *(len(r[0]) for r in rows)) if rows else len(header[0])
    lines = [f"{header[0]:<{width}}  " + "  ".join(f"{h:>7}" for h in header[1:])]
    lines += [f"{r[0]:<{width}}  " + "  ".join(f"{c:>7}" for c in r[1:]) for r in rows]
    total = result.total()
    lines.append(f"total: {total.patched} objects patched, {total.created} children created, "
                 f"{total.updated} updated, {total.pruned} pruned")
    return lines
