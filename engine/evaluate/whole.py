"""A step of writer rules compiled whole, for its first run in an evaluation.

`engine.evaluate.batch` runs consecutive writer rules that cannot see each other's writes
as one step, each rule still going through the per-rule path: its variables, `holds`,
`Writer.apply_into` with its set-up, a `RuleRun`, then the engine's bookkeeping and
`_log_step`. `Whole` (made with the evaluation's plan, once per rule list) runs the step
the first time in an evaluation as one piece: the conditions in a row against the object
as the step found it (one answer per distinct condition of a rule set), the writes of
those that hold in order into one set of copies, then every rule's run, conflict record,
change and the change-log entry in one loop — what the rules one by one in the step
conclude, with the runs and outcomes of templates of constants made once. The engine
calls it before the step's rules (`engine.evaluate.engine._Evaluation.run`); it declines
when it cannot give the same result. tests/unit/test_whole_steps.py compares it with
the step run rule by rule (`Settings(whole=False)`), call for call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.cel import SLOW
from engine.errors import EdictError
from engine.evaluate.batch import Path, Step
from engine.evaluate.changes import NO_PATHS, ChangeLog, Last
from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import Status
from engine.evaluate.run import CONDITION_FALSE, Pass, RuleRun, variables
from engine.evaluate.writers import Writer
from engine.objects import Obj
from engine.patching import json_equal
from engine.patching.values import MISSING


class _Member:
    """A rule of a step compiled whole, with what its runs can say known ahead."""

    __slots__ = ("above", "applied", "at", "bit", "condition", "id", "leaves", "number",
                 "path_set", "pointers", "recorded", "rule", "same", "skipped", "unchanged",
                 "writer", "written")

    def __init__(self, rule: CompiledRule, at: int, number: int, recorded: bool) -> None:
        writer = rule.writer
        assert type(writer) is Writer
        self.rule = rule
        self.id = id(rule)
        self.at = at  # which of the step's variables it sees (one per rule set)
        self.number = number  # its place in the step
        self.bit = 1 << number
        self.condition = rule.condition
        # the place of an earlier member whose condition gives this one's answer
        self.same: int | None = None
        self.writer = writer
        self.recorded = recorded  # not alone (engine.evaluate.regions)
        self.path_set = writer.path_set
        self.pointers = writer.pointers
        self.skipped = RuleRun(Status.SKIPPED, CONDITION_FALSE, of=rule)
        # a template of constants assigns the same whatever the trigger: its runs but
        # the object (which the step keeps: see `Whole.run`) are made here, once
        self.written: tuple[Any, ...] | None = None
        # a template of constants into one map: the path of that map, and the key and
        # value of each leaf in order
        self.above: tuple[str, ...] | None = None
        self.leaves: tuple[tuple[str, Any], ...] = ()
        self.unchanged = self.applied = self.skipped
        if not writer.leaves:
            done = writer.apply_into({}, {}, None, {})
            assert done is not None  # every leaf is a constant: nothing declines
            self.written = tuple(done[1])
            aboves = {tuple(a.path[:-1]) for a in self.written}
            if len(aboves) == 1:
                self.above = aboves.pop()
                self.leaves = tuple((a.path[-1], a.value) for a in self.written)
            self.unchanged = RuleRun(Status.UNCHANGED, written=self.written,
                                     path_set=self.path_set, of=rule)
            self.applied = RuleRun(Status.APPLIED, paths=self.pointers, written=self.written,
                                   path_set=self.path_set, of=rule)


class Whole:
    """A step of several rules compiled whole for its first run in an evaluation: the
    conditions evaluated in a row against the object as the step found it, the writes
    of those that hold applied in order into one set of copies, then every rule's run,
    record, change and log entry at once — what running its rules one by one in the
    step (`run_in_step` and the engine's loop) concludes, the runs of templates of
    constants made once per rule list. The runs it keeps carry no object (the engine
    reads a run's object only where the run is made). `run` declines (None, having
    changed nothing the caller sees) whenever a rule would not end the generic way: a
    condition that errors or gives no bool, a writer that declines or raises, a trigger
    whose metadata is not a map (the identity check decides there)."""

    __slots__ = ("_every", "_unions", "firsts", "members", "step")

    def __init__(self, step: Step, recorded: Iterable[CompiledRule]) -> None:
        kept = {id(rule) for rule in recorded}
        sets: dict[int, int] = {}
        firsts: list[CompiledRule] = []
        members = []
        conditions: dict[tuple[int, str], int] = {}
        for number, rule in enumerate(step.rules):
            at = sets.get(id(rule.rule_set))
            if at is None:
                at = sets[id(rule.rule_set)] = len(firsts)
                firsts.append(rule)
            member = _Member(rule, at, number, id(rule) in kept)
            # an earlier member of the same rule set with the same condition (the same
            # source compiled alike, seeing the same variables): its answer is this one's
            source = rule.rule.condition
            if source is not None:
                first = conditions.setdefault((at, source), number)
                member.same = None if first == number else first
            members.append(member)
        self.step = step
        self.firsts = tuple(firsts)  # a rule of each rule set, whose variables all see
        self.members = tuple(members)
        self._every = (1 << len(members)) - 1  # the bits of all members
        # which members applied (bits) -> the union of their paths
        self._unions: dict[int, frozenset[Path]] = {}

    def run(self, start: Obj, p: Pass, runs: dict[CompiledRule, RuleRun], log: ChangeLog,
            last: Last) -> Obj | None:
        """The step's first run on `start`: the object after it, with `runs`, `log`,
        `last` and `p` (records, changers) as its rules one by one leave them; None:
        declined, none of them touched."""
        if not isinstance(start.get("metadata"), dict):
            return None
        held: list[_Member] = []
        # per member in order: its run and the maps its write made; None: skipped
        found: list[tuple[RuleRun, list[tuple[str, ...]]] | None] = [None] * len(self.members)
        applied = 0  # the bits of those that changed the object
        made_all: list[tuple[str, ...]] = []
        one_by_one = False  # `_log_step`'s reason to log each as it ran
        try:
            values = [variables(rule, start, p) for rule in self.firsts]
            answers = [True] * len(self.members)
            for member in self.members:
                condition = member.condition
                if condition is not None:
                    same = member.same
                    if same is not None:
                        if not answers[same]:
                            answers[member.number] = False
                            continue
                    else:
                        seen = values[member.at]
                        value = condition.quick(seen)
                        if value is SLOW:
                            value = condition.evaluate(p.bindings(member.rule, seen))
                        if value is not True:
                            if value is False:
                                answers[member.number] = False
                                continue
                            return None  # not a bool: an error, told by `holds`
                held.append(member)
            obj = start
            fresh: dict[tuple[str, ...], dict[str, Any]] = {}
            schema = p.schema
            for member in held:
                written = member.written
                above = member.above
                if above is not None and above in fresh:
                    # constants into a map the step made: `apply_into`'s own path for
                    # them, without its set-up (the writer of the step that made the map
                    # checked it and every map above: they merge key by key)
                    changed = False
                    mine = fresh[above]
                    for key, value in member.leaves:
                        node = mine.get(key, MISSING)
                        if node is MISSING or not json_equal(node, value):
                            changed = True
                            mine[key] = value
                    made: list[tuple[str, ...]] = []
                    run = member.applied if changed else member.unchanged
                else:
                    wrote = member.writer.apply_into(obj, values[member.at], schema, fresh)
                    if wrote is None:
                        return None
                    obj, assignments, changed, made = wrote
                    if written is not None:
                        run = member.applied if changed else member.unchanged
                    elif changed:
                        run = RuleRun(Status.APPLIED, paths=member.pointers,
                                      written=tuple(assignments), path_set=member.path_set)
                    else:
                        run = RuleRun(Status.UNCHANGED, written=tuple(assignments),
                                      path_set=member.path_set)
                found[member.number] = (run, made)
                if changed:
                    applied |= member.bit
                    if made:
                        made_all.extend(made)
                elif run.written:
                    one_by_one = True
        except EdictError:
            return None
        if one_by_one:
            self._one_by_one(found, p, runs, log, last)
            return obj
        before = log.seq
        if applied == self._every:  # every rule held and applied
            log.wrote(self.step.writes, made_all)
        elif applied:
            union = self._unions.get(applied)
            if union is None:
                union = self._union(applied)
            log.wrote(union, made_all)
        after = log.seq
        record, changers = p.record, p.changers
        for member, hit in zip(self.members, found, strict=True):
            if hit is None:
                runs[member.rule] = member.skipped
                last[member.id] = (before, after, (), NO_PATHS)
                continue
            run = hit[0]
            runs[member.rule] = run
            last[member.id] = (before, after, run.written, member.path_set)
            if member.recorded:
                record(member.rule, run.written)
            if member.bit & applied:
                changers.add(member.id)
        return obj

    def _union(self, applied: int) -> frozenset[Path]:
        """The paths of the members of `applied` (bits), one set per pattern (the change
        log finds the prefixes of a set once)."""
        if len(self._unions) >= _UNIONS:
            self._unions.clear()
        union = self._unions[applied] = frozenset().union(
            *(m.path_set for m in self.members if m.bit & applied))
        return union

    def _one_by_one(self, found: list[tuple[RuleRun, list[tuple[str, ...]]] | None],
                    p: Pass, runs: dict[CompiledRule, RuleRun], log: ChangeLog, last: Last
                    ) -> None:
        """The runs told as the engine's loop tells them when a rule of the step left
        the object unchanged but assigned something (`_log_step` then logs each rule as
        it ran)."""
        record, changers = p.record, p.changers
        for member, hit in zip(self.members, found, strict=True):
            before = log.seq
            if hit is None:
                runs[member.rule] = member.skipped
                last[member.id] = (before, before, (), NO_PATHS)
                continue
            run, made = hit
            runs[member.rule] = run
            if member.recorded:
                record(member.rule, run.written)
            if run.status is Status.APPLIED:
                changers.add(member.id)
                log.wrote(member.path_set, made)
            last[member.id] = (before, log.seq, run.written, member.path_set)


_UNIONS = 256  # patterns of applied members a step remembers the paths of
