"""How a `RuleTest` case runs its rules, counts writes, and explains a failure.

`engine.cli.testcases.run_case` calls `simulate_case` and `check_writes`; `edict test`
calls `details` for a failing case and `explain_case` for `--explain`.

- **runTwice**: `spec.runTwice: true` runs the rules over the objects, then again over
  the world the first run left (children and their bookkeeping labels included), and the
  expectations are about the second run: a steady-state case needs no hand-copied
  labels. `runTwice: {objects: [...], delete: [...]}` changes the world between the runs
  (replace or add these objects, remove those), which is how a pruning case says
  "the label went away". Children the first run generated count as generated in the
  second.
- **writes**: `expect.writes: N` is the number of writes the (last) run would make, as
  the live engine makes them: one patch per changed object plus one for its status,
  one create per new child, one delete per pruned one. At steady state: 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from engine.cli.common import UsageError
from engine.cli.explain import explain
from engine.evaluate.engine import Engine
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import Obj, ObjectKey, key_of
from engine.patching import make_patch
from engine.schemas.catalogue import Catalogue

Failures = list[str]


def run_twice(raw: Any, *, source: str) -> dict[str, list[Obj]] | None:
    """The `runTwice` of a case: None (run once), or what to change between the runs."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return {"objects": [], "delete": []}
    if isinstance(raw, dict) and set(raw) <= {"objects", "delete"}:
        out: dict[str, list[Obj]] = {}
        for part in ("objects", "delete"):
            items = raw.get(part) or []
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise UsageError(f"{source}: runTwice.{part} must be a list of objects")
            out[part] = items
        return out
    raise UsageError(f"{source}: runTwice is true, or a mapping with objects and delete")


def simulate_case(engine: Engine, objects: Sequence[Obj],
                  second: dict[str, list[Obj]] | None, *,
                  schemas: Catalogue | None = None) -> Simulation:
    """Run the rules over `objects`; with `second`, once more over what that left."""
    first = simulate(engine, objects, schemas=schemas)
    if second is None:
        return first
    world = {key_of(obj): obj for obj in first.world.objects()}
    for obj in second["objects"]:
        world[key_of(obj)] = obj
    for obj in second["delete"]:
        world.pop(key_of(obj), None)
    sim = simulate(engine, list(world.values()), schemas=schemas)
    carried = [key for key in first.generated if key in sim.inputs]
    sim.inputs = [key for key in sim.inputs if key not in carried]
    sim.generated = carried + [key for key in sim.generated if key not in carried]
    return sim


def writes(sim: Simulation) -> list[str]:
    """The writes the run makes, one line each (`patch Deployment shop/web`...)."""
    out: list[str] = []
    for key, original in sim.originals.items():
        final = sim.final(key)
        if final is None:
            out.append(f"delete {key}")
            continue
        if _without_status(original) != _without_status(final):
            out.append(f"patch {key}")
        if original.get("status") != final.get("status"):
            out.append(f"patch {key} status")
    out += [f"create {key}" for key in sim.generated
            if key not in sim.originals and sim.final(key) is not None]
    return out


def _without_status(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k != "status"}


def check_writes(sim: Simulation, expect: dict[str, Any], failures: Failures) -> None:
    if "writes" not in expect:
        return
    made = writes(sim)
    if len(made) != int(expect["writes"]):
        failures.append(f"{len(made)} writes, expected {expect['writes']}: "
                        + ("; ".join(made) if made else "none"))


def involved(sim: Simulation, failures: Iterable[str]) -> list[ObjectKey]:
    """The objects the failure messages name; every object rules touched if none."""
    text = "\n".join(failures)
    keys = [*sim.inputs, *sim.generated]
    named = [key for key in keys if re.search(rf"(?<![\w/-]){re.escape(str(key))}(?![\w/-])",
                                              text)]
    return named or [key for key in keys if sim.outcomes.get(key)]


def details(engine: Engine, sim: Simulation, keys: Iterable[ObjectKey]) -> list[str]:
    """For each object: the patch the rules made to it and every rule's outcome."""
    lines: list[str] = []
    for key in keys:
        before, after = sim.originals.get(key), sim.final(key)
        lines.append(f"{key}:")
        if before is None:
            lines.append("  created by the rules" if after is not None else "  not there")
        elif after is None:
            lines.append("  pruned by the rules")
        else:
            ops = make_patch(before, after, guard_resource_version=False)
            lines.append("  patch:" + ("" if ops else " none (unchanged)"))
            lines += [f"    {_op(op)}" for op in ops]
        outcomes = sim.outcomes.get(key, ())
        lines.append("  outcomes:" + ("" if outcomes else " no rule matched it"))
        for outcome in outcomes:
            message = f": {outcome.message}" if outcome.message else ""
            if outcome.paths and not outcome.message:
                message = f": wrote {', '.join(outcome.paths)}"
            lines.append(f"    {outcome.rule_set}, rule {outcome.rule!r}: "
                         f"{outcome.status.value}{message}")
    return lines


def _op(op: dict[str, Any]) -> str:
    value = f" {op['value']!r}" if "value" in op else ""
    return f"{op['op']} {op['path']}{value}"


def explain_case(engine: Engine, sim: Simulation) -> list[str]:
    """`edict explain` of every object of a case."""
    out: list[str] = []
    for key in [*sim.inputs, *sim.generated]:
        out += [*explain(engine, sim, key), ""]
    return out
