"""Runs of writer rules applied as one step, each rule still judged on its own.

The twelve label rules of a rule set — a quick condition, a template of literal keys —
each copy the trigger's top-level map, its `metadata` and its `labels` when they run one
after the other. `steps` puts consecutive rules of that kind into one step when none of
them reads under a top-level field an earlier one of the step writes under (`metadata`,
`spec`…: coarse, because a write can make the map above a read) and no two write the
same path (nor one above the other): then each rule of the step sees, on every path it
reads, what it would have seen after the earlier ones, so every rule is evaluated
against the object as the step found it, and writes into the maps the step itself
copied instead of copying them again. Each rule keeps its own outcome, assignments and
conflict records; the change log takes the step's writes as one (`engine.evaluate.engine`
`_log_step`: it answers every later skip test as one entry per rule would). Only the
copies and that entry are shared. tests/unit/test_batch.py compares a step with the
rules run one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.errors import EdictError
from engine.evaluate.changes import prefixes
from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import Status
from engine.evaluate.run import SKIPPED, Pass, RuleRun, failed, holds, variables
from engine.evaluate.writers import Writer
from engine.objects import GVK, Obj
from engine.rules.model import Mutate

Path = tuple[str | int, ...]


def batchable(rule: CompiledRule, gvk: GVK) -> bool:
    """A mutate rule that is its template's writer and nothing else: no forEach, no
    lookups, no variables of its own, known reads, on the object itself, no identity
    field written."""
    action = rule.rule.action
    writer = rule.writer
    return (rule.enabled and isinstance(action, Mutate) and action.json_patch is None
            and type(writer) is Writer and writer.keeps_identity
            and rule.for_each is None and rule.item_writer is None and not rule.lookups
            and not rule.variables and rule.reads is not None
            and rule.rule.match.on_template(gvk) is None)


def nested(paths: Iterable[Path], others: Iterable[Path]) -> bool:
    """Whether a path of `paths` is at, above or beneath one of `others` (two writes
    elsewhere commute, even into one map)."""
    for path in paths:
        for other in others:
            if path[:len(other)] == other or other[:len(path)] == path:
                return True
    return False


def _seen_by(reads: Iterable[Path], writes: Iterable[Path]) -> bool:
    """Whether writing `writes` can change what reading `reads` finds: any two under the
    same top-level field, as a write can make the map above a read (`labels.b` makes
    `labels`, and `labels.a` then reads as missing instead of failing); the whole
    object (``()``) is under everything."""
    for path in reads:
        for other in writes:
            if not path or not other or path[0] == other[0]:
                return True
    return False


@dataclass(frozen=True, eq=False)
class Step:
    """Rules run one after the other; `together`: as one step (`run_in_step`)."""

    rules: tuple[CompiledRule, ...]
    together: bool = False
    reads: frozenset[Path] = frozenset()  # together: every path its rules read
    writes: frozenset[Path] = frozenset()  # together: every path their writers write
    # together: every prefix of every path its rules read or write, but the whole object
    # and those paths themselves (where the change log looks for a write above them)
    reads_above: tuple[Path, ...] = ()
    writes_above: tuple[Path, ...] = ()


def steps(rules: tuple[CompiledRule, ...], gvk: GVK, *, together: bool = True
          ) -> tuple[Step, ...]:
    """The rules in order, cut into steps; with `together`, consecutive `batchable`
    rules none of which reads or writes what an earlier one of them writes share one."""
    if not together:
        return tuple(Step((rule,)) for rule in rules)
    out: list[Step] = []
    current: list[CompiledRule] = []
    written: set[Path] = set()

    def close() -> None:
        if len(current) == 1:
            out.append(Step((current[0],)))
        elif current:
            reads = frozenset().union(*(r.reads or () for r in current))
            out.append(Step(tuple(current), True, reads, frozenset(written),
                            _above(reads), _above(written)))
        current.clear()
        written.clear()

    for rule in rules:
        if not batchable(rule, gvk):
            close()
            out.append(Step((rule,)))
            continue
        paths = rule.writer.path_set if rule.writer is not None else frozenset()
        reads = rule.reads if rule.reads is not None else frozenset({()})
        if current and (nested(paths, written) or _seen_by(reads, written)):
            close()
        current.append(rule)
        written.update(paths)
    close()
    return tuple(out)


def _above(paths: Iterable[Path]) -> tuple[Path, ...]:
    """The prefixes of `paths` strictly between the whole object and each path."""
    return tuple(dict.fromkeys(prefix for path in paths for prefix in prefixes(path)[1:-1]))


def run_in_step(rule: CompiledRule, start: Obj, working: Obj, p: Pass,
                fresh: dict[tuple[str, ...], dict[str, Any]], shared: dict[int, dict[str, Any]]
                ) -> RuleRun | None:
    """A rule of a step: evaluated against `start` (the object as the step found it),
    written onto `working` (as the earlier rules of the step left it), in place into the
    maps in `fresh` (those the step copied). Its run (with the object after it when it
    changed it); None when its writer declines (the caller then runs it with
    `run.run_rule`). `shared`: the variables of the step's rules by rule set (the
    same for every rule of one rule set here: no lookups, no variables of their own)."""
    writer = rule.writer
    assert type(writer) is Writer
    if not isinstance(start.get("metadata"), dict):
        return None  # the identity check decides (`run_rule`)
    try:
        values = shared.get(id(rule.rule_set))
        if values is None:
            values = shared[id(rule.rule_set)] = variables(rule, start, p)
        if not holds(rule, values, p):
            return SKIPPED
        done = writer.apply_into(working, values, p.schema, fresh)
    except EdictError as exc:
        return failed(rule, p, exc)
    if done is None:
        return None
    after, assignments, changed, made = done
    if id(rule) not in p.alone:
        p.record(rule, assignments)
    if not changed:
        return RuleRun(Status.UNCHANGED, written=tuple(assignments),
                                path_set=writer.path_set)
    p.changers.add(id(rule))
    return RuleRun(Status.APPLIED, obj=after, paths=writer.pointers,
                   written=tuple(assignments), path_set=writer.path_set, created=made)


