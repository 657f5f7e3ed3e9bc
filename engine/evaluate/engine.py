"""The evaluation engine: every rule that matches a trigger, to a fixed point, as values.

One engine, two drivers: `edict apply`/`edict test` call `Engine.evaluate` on manifests,
the live reconciler calls it on objects from its caches. Rules run in order (rule set
priority, rule set name, rule position), each seeing the object as the previous rules
left it; passes repeat until nothing changes, at most `Settings.max_passes`. The result
is one guarded JSON patch for the trigger, one for its status, a plan per generated child
and an outcome per rule (validate rules judge the converged object). Nothing raises past
`evaluate`.

At admission the same `evaluate` runs with a `Request` (`engine.evaluate.request`): only
the rules that take part in admission, for the webhook's phase — no children, no status.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from engine.evaluate import batch, children, readiness, regions
from engine.evaluate.batch import run_in_step
from engine.evaluate.changes import (
    NO_PATHS,
    ChangeLog,
    Last,
    Path,
    above_of,
    created,
    prefixes_of,
)
from engine.evaluate.compile import CompiledRule, CompiledRuleSet, compile_rule_set
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.evaluate.outcomes import ChildPlan, Outcome, Result, RuleConflict, Status
from engine.evaluate.podtemplates import view
from engine.evaluate.request import Phase, Request
from engine.evaluate.run import Pass, RuleRun, run_rule
from engine.evaluate.settled import RuleId, Settled
from engine.evaluate.validate import run_validate
from engine.evaluate.whole import Whole
from engine.evaluate.world import World, namespace_object
from engine.matching import matches
from engine.objects import GVK, Obj, ObjectKey, gvk_of, key_of, meta
from engine.patching import json_equal, make_patch
from engine.patching.values import MISSING
from engine.rules.model import Generate, Mode, Mutate, RuleSet, Validate


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    max_passes: int = 5
    # re-run a rule in a later pass only when something it reads or wrote changed
    skip_unchanged: bool = True
    # the lastTransitionTime of readiness conditions that change (engine.evaluate.readiness)
    now: Callable[[], datetime] | None = _utc_now
    # mutate templates with literal keys applied as writers, forEach templates writing a
    # keyed list's item as item writers (engine.evaluate.writers), generate templates of
    # literal keys made into children (engine.evaluate.makers); False renders and
    # merges every template (to compare the two in tests)
    writers: bool = True
    # what every CEL program and template of the engine may do (engine.evaluate.limits)
    limits: Limits = DEFAULT_LIMITS
    # consecutive writer rules that cannot see each other's writes run as one step
    # (engine.evaluate.batch); False runs every rule on its own (to compare in tests)
    batch: bool = True
    # rules whose writes can meet no other rule's are not recorded for conflicts
    # (engine.evaluate.regions); False records every rule (to compare in tests)
    regions: bool = True
    # a step's first run in an evaluation compiled whole (engine.evaluate.whole);
    # False runs its rules one by one in the step (to compare in tests)
    whole: bool = True
    # one rule that can never read what it writes is run once, without the passes'
    # bookkeeping (`_Evaluation._run_single`); False runs it in passes (to compare in tests)
    single: bool = True


class Engine:
    """Compiled rule sets plus an index of their rules by kind."""

    def __init__(self, rule_sets: Iterable[RuleSet], *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        ordered = sorted(rule_sets, key=lambda rs: rs.order_key)
        self.rule_sets: tuple[CompiledRuleSet, ...] = tuple(
            compile_rule_set(rs, limits=self.settings.limits) for rs in ordered)
        if not self.settings.writers:
            self.rule_sets = tuple(
                CompiledRuleSet(c.rule_set, tuple(replace(r, writer=None, item_writer=None)
                                                  for r in c.rules))
                for c in self.rule_sets)
        self._index: dict[GVK, list[CompiledRule]] = defaultdict(list)
        for compiled in self.rule_sets:
            if compiled.rule_set.mode is Mode.SUSPENDED:
                continue
            for rule in compiled.rules:
                for gvk in dict.fromkeys(rule.rule.match.trigger_kinds):
                    self._index[gvk].append(rule)
        self._trigger_kinds = frozenset(self._index)
        # rules whose matching is the same question (equal `match`, same confinement)
        # share one answer per trigger: a number per rule, equal for equal questions
        questions: dict[tuple[object, ...], int] = {}
        self._question: dict[int, int] = {
            id(rule): questions.setdefault(_question(rule), len(questions))
            for compiled in self.rule_sets for rule in compiled.rules}
        self.rules_by_id: dict[RuleId, CompiledRule] = {
            (rule.rule_set.ref, rule.rule.name): rule
            for compiled in self.rule_sets for rule in compiled.rules}
        self._kinds = {gvk: _KindRules.of(tuple(rules), self._question)
                       for gvk, rules in self._index.items()}

    def rules_for(self, gvk: GVK) -> Sequence[CompiledRule]:
        return self._index.get(gvk, ())

    def trigger_kinds(self) -> frozenset[GVK]:
        """Kinds some rule matches (asked for every watch event: computed once)."""
        return self._trigger_kinds

    def generated_kinds(self) -> set[GVK]:
        """Every kind some rule generates (what pruning looks through)."""
        return {gvk for compiled in self.rule_sets for rule in compiled.rules
                for gvk in rule.generates}

    def read_kinds(self) -> set[GVK]:
        """Every kind an evaluation may read other than its trigger and the trigger's
        Namespace: the kinds some rule looks up or generates (a trigger kind among them
        is read as another object's kind too)."""
        return {gvk for compiled in self.rule_sets for rule in compiled.rules
                for gvk in (*(lookup.gvk for lookup in rule.rule.lookups),
                            *rule.generates)}

    def watched_kinds(self) -> set[GVK]:
        """Every kind a live engine must watch: triggers, lookups and children."""
        kinds = set(self._index)
        for rules in self._index.values():
            for rule in rules:
                kinds.update(lookup.lookup.gvk for lookup in rule.lookups)
                kinds.update(rule.generates)
        return kinds

    def evaluate(self, obj: Obj, *, world: World, request: Request | None = None,
                 settled: Settled | None = None) -> Result:
        """Every rule for `obj`, as values. With `request` (admission), only the rules
        that take part in admission for its phase (see `engine.evaluate.request`). With
        `settled` (the background, on an object as the mutating webhook left it), the
        Enforce rules it names are not run but reported (`engine.evaluate.settled`);
        Audit rule sets still see them run."""
        gvk = gvk_of(obj)
        kind = self._kinds.get(gvk)
        metadata = meta(obj)
        key = ObjectKey(gvk, str(metadata.get("namespace") or ""),
                        str(metadata.get("name") or ""))
        if kind is None:
            return Result(key=key, current=obj, desired=obj)
        asked = kind.asked
        if request is not None:
            asked = tuple(pair for pair in asked if _at_admission(pair[0], request.phase))
            if not asked:
                return Result(key=key, current=obj, desired=obj)
        # the trigger's Namespace is read only if some rule can see it
        ns_obj = namespace_object(world, obj) if kind.sees_namespace else None
        answers: list[bool | None] = [None] * kind.questions
        matching = []
        for rule, question in asked:
            answer = answers[question]
            if answer is None:
                answer = answers[question] = _matches(rule, obj, gvk, ns_obj)
            if answer:
                matching.append(rule)
        if kind.enforced:
            enforced, audited = matching, []
        else:
            enforced = [r for r in matching if r.rule_set.mode is Mode.ENFORCE]
            audited = [r for r in matching if r.rule_set.mode is Mode.AUDIT]
        outcome = _Evaluation(self.settings, obj, ns_obj, world, request)
        if settled:
            result = _with_settled(outcome.run(
                [r for r in enforced if (r.rule_set.ref, r.rule.name) not in settled.outcomes],
                key), enforced, settled)
        else:
            result = outcome.run(enforced, key)
        if request is None and kind.synchronized:
            result = _prune_unmatched(result, kind.synchronized, matching, obj, world)
        if not audited:
            return result
        # Audit rule sets see the world as if they were enforced on top of the others, but
        # their would-be changes are only reported.
        with_audit = _Evaluation(self.settings, obj, ns_obj, world, request).run(
            enforced + audited)
        audit_sets = {r.rule_set.ref for r in audited}
        audit_outcomes = tuple(
            Outcome(o.rule_set, o.rule, Status.WOULD_APPLY, o.message, o.paths)
            if o.status is Status.APPLIED else o
            for o in with_audit.outcomes if o.rule_set in audit_sets)
        audit_patch = tuple(make_patch(result.desired, with_audit.desired,
                                       guard_resource_version=False))
        return Result(
            key=result.key, current=result.current, desired=result.desired,
            patch=result.patch, status_patch=result.status_patch, children=result.children,
            outcomes=result.outcomes + audit_outcomes,
            conflicts=result.conflicts + tuple(
                c for c in with_audit.conflicts if c not in result.conflicts),
            oscillating=result.oscillating, audit_patch=audit_patch,
            lookups=result.lookups | with_audit.lookups)


@dataclass(frozen=True, eq=False)
class _KindRules:
    """What `Engine.evaluate` needs of the rules of one trigger kind, made once."""

    # the rules in order, each with the number of its matching question (rules that
    # ask the same question share one answer per trigger), numbered from 0 here
    asked: tuple[tuple[CompiledRule, int], ...]
    questions: int  # how many distinct questions
    enforced: bool  # every rule's rule set is Enforce (none is Audit)
    # the enabled synchronized generate rules of Enforce rule sets, which prune the
    # children of a trigger they no longer match (`_prune_unmatched`)
    synchronized: tuple[CompiledRule, ...]
    # some rule's match or exclude selects namespaces by label, or an expression or
    # template of some rule reads `namespaceObject`: else no evaluation reads it
    sees_namespace: bool

    @classmethod
    def of(cls, rules: tuple[CompiledRule, ...], question: dict[int, int]) -> _KindRules:
        numbers: dict[int, int] = {}
        asked = tuple((rule, numbers.setdefault(question[id(rule)], len(numbers)))
                      for rule in rules)
        return cls(asked=asked, questions=len(numbers),
                   enforced=all(rule.rule_set.mode is Mode.ENFORCE for rule in rules),
                   synchronized=tuple(
                       rule for rule in rules
                       if rule.enabled and rule.rule_set.mode is Mode.ENFORCE
                       and isinstance(rule.rule.action, Generate)
                       and rule.rule.action.synchronize),
                   sees_namespace=any(_sees_namespace(rule) for rule in rules))


def _sees_namespace(rule: CompiledRule) -> bool:
    """Whether evaluating `rule` can read its trigger's Namespace object."""
    match = rule.rule.match
    if match.namespace_selector is not None or (
            match.exclude is not None and match.exclude.namespace_selector is not None):
        return True
    ready_when = rule.ready_when  # a generate rule's, not among `reads_variables`
    return NAMESPACE_OBJECT in rule.reads_variables or (
        ready_when is not None and NAMESPACE_OBJECT in ready_when.reads_variables)


NAMESPACE_OBJECT = "namespaceObject"


def _with_settled(result: Result, enforced: Sequence[CompiledRule],
                  settled: Settled) -> Result:
    """`result` with the outcomes of the settled rules that match, in rule order."""
    reported = [Outcome(r.rule_set.ref, r.rule.name, settled.outcomes[rule_id])
                for r in enforced if r.enabled
                and (rule_id := (r.rule_set.ref, r.rule.name)) in settled.outcomes]
    if not reported:
        return result
    order = {(r.rule_set.ref, r.rule.name): i for i, r in enumerate(enforced)}
    outcomes = sorted(result.outcomes + tuple(reported),
                      key=lambda o: order.get((o.rule_set, o.rule), len(order)))
    return replace(result, outcomes=tuple(outcomes))


def _at_admission(rule: CompiledRule, phase: Phase) -> bool:
    """Whether a rule runs in the webhook of `phase`: mutating, the mutate rules of
    Enforce rule sets; validating, validate rules and the mutate rules of Audit rule
    sets (their would-be changes are warnings)."""
    action, mode = rule.rule.action, rule.rule_set.mode
    if not rule.rule.at_admission:
        return False
    if phase is Phase.MUTATE:
        return isinstance(action, Mutate) and mode is Mode.ENFORCE
    return isinstance(action, Validate) or mode is Mode.AUDIT


def _question(rule: CompiledRule) -> tuple[object, ...]:
    """What `_matches` reads of a rule: its `match` and its confinement."""
    ref = rule.rule_set.ref
    return (rule.rule.match, ref.namespace if ref.namespaced else None)


def _matches(rule: CompiledRule, obj: Obj, gvk: GVK, ns_obj: Obj | None) -> bool:
    """Whether `rule` is about `obj` (or, for a Pod rule on a workload, its pod template
    seen as a Pod)."""
    match = rule.rule.match
    path = match.on_template(gvk)
    if path is not None:
        return matches(match, view(obj, path), namespace_object=ns_obj,
                       confine_to=rule.rule_set.ref.namespace if rule.rule_set.ref.namespaced
                       else None)
    return matches(match, obj, namespace_object=ns_obj, gvk=gvk,
                   confine_to=rule.rule_set.ref.namespace if rule.rule_set.ref.namespaced
                   else None)


class _Evaluation:
    """One evaluation of some rules on one trigger (internal to `Engine.evaluate`)."""

    def __init__(self, settings: Settings, obj: Obj, ns_obj: Obj | None, world: World,
                 request: Request | None = None) -> None:
        self.settings = settings
        self.obj = obj
        self.ns_obj = ns_obj
        self.world = world
        self.request = request

    def run(self, rules: list[CompiledRule], key: ObjectKey | None = None) -> Result:
        if key is None:
            key = key_of(self.obj)
        settings = self.settings
        plan = _plan(tuple(rules), key.gvk, settings.batch, settings.regions, settings.whole,
                     settings.max_passes if settings.single and settings.skip_unchanged
                     else 0)
        if plan.single is not None:
            decided = self._run_single(plan.single, key)
            if decided is not None:
                return decided
        in_place, skippable, alone = plan.in_place, plan.skippable, plan.alone
        runs: dict[CompiledRule, RuleRun] = {}
        conflicts: list[RuleConflict] = []
        lookups: set[ObjectKey] = set()
        working = self.obj
        oscillating_rules: list[CompiledRule] = []
        bound: dict[tuple[object, ...], Any] = {}
        made_values: dict[tuple[int, int, tuple[str, ...] | None], dict[str, Any]] = {}
        log = ChangeLog()
        changed_since = log.changed_since
        skip = self.settings.skip_unchanged
        schema = self.world.schema(key.gvk)
        # id of a rule -> (log seq before it ran, after its own write, what it assigned,
        # its paths)
        last: Last = {}
        # id of a step of several rules -> the log seq before and after it, when each of
        # its rules ran in it the last time it ran
        step_windows: dict[int, tuple[int, int]] = {}
        # no mutate or status rule: no pass (nothing would run in it)
        first = Pass(self.world, self.ns_obj, lookups, bound, schema=schema,
                     request=self.request, gvk=key.gvk, alone=alone, seen=made_values)
        for number in range(self.settings.max_passes if plan.steps else 0):
            current_pass = first if number == 0 else first.again()
            record = current_pass.record
            before = working
            for step, recorded, whole in plan.steps:
                # a step of several rules (engine.evaluate.batch): each is evaluated
                # against the object as the step found it and writes into its copies
                fresh: dict[tuple[str, ...], dict[str, Any]] | None = None
                together = step.together
                if together:
                    window = step_windows.get(id(step))
                    if window is not None and skip and not (
                            changed_since(window[0], step.reads, above=step.reads_above)
                            or changed_since(window[1], step.writes,
                                             above=step.writes_above)):
                        # nothing any of them reads or wrote changed since the first
                        # of them ran: each rule's own test below would skip it; only
                        # the assignments of those that may conflict count again
                        for rule in recorded:
                            record(rule, last[id(rule)][2])
                        continue
                    first_seq = log.seq
                    if whole is not None and id(step.rules[0]) not in last:
                        # its first run: the step compiled whole, unless it declines
                        done = whole.run(working, current_pass, runs, log, last)
                        if done is not None:
                            working = done
                            step_windows[id(step)] = (first_seq, log.seq)
                            continue
                    start = working
                    fresh = {}
                    shared: dict[int, dict[str, Any]] = {}
                    # the runs of the step's rules, logged when the step ends
                    pending: list[tuple[CompiledRule, RuleRun]] = []
                ran = 0
                for rule in step.rules:
                    rule_id = id(rule)
                    seen = last.get(rule_id)
                    if seen is not None and skip and rule_id in skippable and not (
                            changed_since(seen[0], rule.reads or ())  # its own write counts
                            or changed_since(seen[1], seen[3])):  # overwritten since
                        # It would give the same result as last time: only its
                        # assignments count again, for this pass's conflicts.
                        if rule_id not in alone:
                            record(rule, seen[2])
                        continue
                    ran += 1
                    if fresh is not None:
                        run = run_in_step(rule, start, working, current_pass, fresh, shared)
                        if run is not None:
                            runs[rule] = run.merged_with(runs[rule]) if seen else run
                            if run.obj is not None:
                                working = run.obj
                            pending.append((rule, run))
                            continue
                        # the writer declined: the rest of the step as single rules
                        fresh = None
                        _log_one_by_one(log, last, pending)
                        pending = []
                    before_run = log.seq
                    run = run_rule(rule, working, current_pass)
                    runs[rule] = run.merged_with(runs[rule]) if seen else run
                    paths = run.path_set
                    if paths is None:
                        written = run.written
                        paths = frozenset(tuple(a.path) for a in written) if written else NO_PATHS
                    if run.obj is not None:
                        made = run.created
                        log.wrote(paths, created(working, paths) if made is None else made)
                        working = run.obj
                    last[rule_id] = (before_run, log.seq, run.written, paths)
                if together:
                    if pending:
                        _log_step(log, last, pending, step)
                    if ran == len(step.rules):
                        # every rule of the step ran, one after the other, and none
                        # wrote what another reads or writes: one window covers them
                        step_windows[id(step)] = (first_seq, log.seq)
                    else:
                        step_windows.pop(id(step), None)
            if current_pass.conflicts:
                conflicts.extend(c for c in current_pass.conflicts if c not in conflicts)
            # One rule changed the object in this pass: it left it different from what
            # it found (a run is APPLIED only then), which was `before`, no other rule
            # having changed it: no need to compare the two.
            if working is before or (len(current_pass.changers) != 1
                                     and json_equal(working, before)):
                break
            if number == self.settings.max_passes - 1:
                oscillating_rules = [r for r in in_place if current_pass.changed(r)]
        # each rule's outcome at its position (every rule has at most one: a run of a
        # mutate or status rule, a verdict, a generate rule's, a disabled rule's)
        position = plan.position
        placed: list[Outcome | None] = [None] * len(rules)
        for rule, run in runs.items():
            placed[position[id(rule)]] = run.outcome(rule)
        for at, outcome in plan.disabled:
            placed[at] = outcome
        if oscillating_rules:
            outcomes = [o for o in placed if o is not None]
            names = ", ".join(f"{r.rule.name!r} of {r.rule_set.ref}" for r in oscillating_rules)
            message = (f"no fixed point after {self.settings.max_passes} passes: rules {names} "
                       "keep changing the object; nothing was written")
            osc = {(r.rule_set.ref, r.rule.name) for r in oscillating_rules}
            outcomes = [Outcome(o.rule_set, o.rule, Status.OSCILLATING, message)
                        if (o.rule_set, o.rule) in osc else o for o in outcomes]
            return Result(key=key, current=self.obj, desired=self.obj, outcomes=tuple(outcomes),
                          conflicts=tuple(conflicts), oscillating=True,
                          lookups=frozenset(lookups))
        children: list[ChildPlan] = []
        if plan.validators or plan.generators[0] or plan.generators[1]:
            # validate and generate rules see the converged object (none: no such pass)
            final_pass = first.again(makers=self.settings.writers, alone=frozenset())
            for rule in plan.validators:
                placed[position[id(rule)]] = run_validate(rule, working, final_pass)
            # generate rules in `after` order; readiness conditions on the trigger's status
            children, generated, working = readiness.run_generators(
                rules, working, final_pass, now=self.settings.now,
                generators=plan.generators)
            for outcome in generated:
                placed[plan.order[(outcome.rule_set, outcome.rule)]] = outcome
        outcomes = [o for o in placed if o is not None]
        patch, status_patch = split_patch(self.obj, working)
        return Result(key=key, current=self.obj, desired=working, patch=tuple(patch),
                      status_patch=tuple(status_patch), children=tuple(children),
                      outcomes=tuple(outcomes), conflicts=tuple(conflicts),
                      lookups=frozenset(lookups))


    def _run_single(self, rule: CompiledRule, key: ObjectKey) -> Result | None:
        """`run` of a plan of one rule that can never read what it writes (`_Plan.single`):
        its one run decides. The passes would run it once, and when it changed the object
        make a second pass only to skip it there (nothing it reads changed), leaving the
        object as the first left it. None when the run did not go as the plan foresaw (the
        writer declined, so the paths written are not the ones checked): `run` does it all.
        """
        lookups: set[ObjectKey] = set()
        first = Pass(self.world, self.ns_obj, lookups, schema=self.world.schema(key.gvk),
                     request=self.request, gvk=key.gvk, alone=frozenset((id(rule),)))
        run = run_rule(rule, self.obj, first)
        working = run.obj
        if working is None:
            working = self.obj
        elif rule.writer is None or run.path_set is not rule.writer.path_set:
            return None
        patch, status_patch = split_patch(self.obj, working)
        return Result(key=key, current=self.obj, desired=working, patch=tuple(patch),
                      status_patch=tuple(status_patch), outcomes=(run.outcome(rule),),
                      conflicts=tuple(first.conflicts), lookups=frozenset(lookups))


def _log_one_by_one(log: ChangeLog, last: Last, pending: list[tuple[CompiledRule, RuleRun]]
                    ) -> None:
    """The runs of a step's rules logged as if each had been logged when it ran."""
    for rule, run in pending:
        before_run = log.seq
        paths = run.path_set if run.path_set is not None else frozenset()
        if run.obj is not None:
            log.wrote(paths, run.created or ())
        last[id(rule)] = (before_run, log.seq, run.written, paths)


def _log_step(log: ChangeLog, last: Last, pending: list[tuple[CompiledRule, RuleRun]],
              step: batch.Step) -> None:
    """The runs of a step's rules (in the step) logged as one write, each rule's window
    the whole step, when that answers every later skip test as logging them one by one
    would: no rule of a step reads under a top-level field another writes under, and
    none writes at, above or beneath another's path, so the others' writes never touch
    a rule's reads or paths — but for a map made above a path, which only a rule that
    did not change the object can leave to a later one to make. Otherwise one by one."""
    made: list[Path] = []
    written: list[frozenset[Path]] = []  # the paths of those that applied
    for _, run in pending:
        if run.obj is None:
            if run.written:  # unchanged: see above
                _log_one_by_one(log, last, pending)
                return
            continue
        if run.created:
            made.extend(run.created)
        if run.path_set is not None:
            written.append(run.path_set)
    before = log.seq
    if len(written) == len(step.rules):  # every rule of the step ran and applied
        log.wrote(step.writes, made)
    elif written:
        log.wrote(frozenset().union(*written), made)
    after = log.seq
    for rule, run in pending:
        last[id(rule)] = (before, after, run.written,
                          run.path_set if run.path_set is not None else NO_PATHS)


@dataclass(frozen=True, eq=False)
class _Plan:
    """What `_Evaluation.run` derives from its rules alone (the same for every trigger
    matched by the same rules)."""

    in_place: tuple[CompiledRule, ...]  # mutate and status rules, enabled, in order
    validators: tuple[CompiledRule, ...]
    # ids of the rules a later pass may skip when nothing they read or wrote changed:
    # those whose reads are known, not on a pod template (it reads the template's paths,
    # not its own: re-run in every pass rather than map what it reads)
    skippable: frozenset[int]
    # `in_place` in steps (engine.evaluate.batch), each with those of its rules that are
    # recorded for conflicts (not in `alone`) and, for a step of several, the step
    # compiled whole (`Whole`, its first run in an evaluation)
    steps: tuple[tuple[batch.Step, tuple[CompiledRule, ...], Whole | None], ...]
    order: dict[tuple[Any, str], int]  # (rule set, rule) -> position, to sort outcomes
    position: dict[int, int]  # id of a rule -> its position
    disabled: tuple[tuple[int, Outcome], ...]  # the outcomes of the disabled rules
    # ids of the rules of `in_place` that can never conflict with another: not recorded
    alone: frozenset[int]
    generators: readiness.Generators  # the generate rules, ordered and tracked
    # the one rule, when the rules are one enabled mutate or status rule with a writer,
    # whose writes (and any maps made above them) can never touch what it reads, and
    # a second pass is allowed: a second pass would skip it (`_Evaluation._run_single`)
    single: CompiledRule | None = None


@functools.lru_cache(maxsize=512)  # keeps the rules alive: their ids stay theirs
def _plan(rules: tuple[CompiledRule, ...], gvk: GVK, together: bool, alone: bool = True,
          whole: bool = True, passes: int = 0) -> _Plan:
    """`passes`: the most passes an evaluation may make, 0 for no single-rule plan."""
    later = (Generate, Validate)  # run once, on the converged object
    in_place = tuple(r for r in rules if r.enabled and not isinstance(r.rule.action, later))
    unrecorded = regions.alone(in_place, gvk) if alone else frozenset()
    single = rules[0] if passes >= 2 and len(rules) == 1 and in_place else None
    if single is not None and not _never_reads_own_writes(single, gvk):
        single = None
    return _Plan(single=single,
        in_place=in_place,
        validators=tuple(r for r in rules if r.enabled and isinstance(r.rule.action, Validate)),
        skippable=frozenset(id(r) for r in in_place
                            if r.reads is not None and not r.rule.match.on_template(gvk)),
        steps=tuple(_with_whole(step, tuple(r for r in step.rules if id(r) not in unrecorded),
                                whole=whole)
                    for step in batch.steps(in_place, gvk, together=together)),
        order={(r.rule_set.ref, r.rule.name): i for i, r in enumerate(rules)},
        position={id(r): i for i, r in enumerate(rules)},
        disabled=tuple((i, Outcome(r.rule_set.ref, r.rule.name, Status.DISABLED,
                                   "; ".join(str(e) for e in r.errors)))
                       for i, r in enumerate(rules) if not r.enabled),
        alone=unrecorded, generators=readiness.generators(rules))


def _never_reads_own_writes(rule: CompiledRule, gvk: GVK) -> bool:
    """Whether a write of `rule`'s writer can never touch what the rule reads: none of
    its paths, nor any map above them (which a write may make), is at, above or beneath
    a path the rule reads (as `ChangeLog.changed_since` would find after the write,
    whatever maps it made)."""
    writer, reads = rule.writer, rule.reads
    if writer is None or reads is None or rule.rule.match.on_template(gvk):
        return False
    under = prefixes_of(writer.path_set)  # () among them: a read of everything meets it
    made = under - {()}  # every map above a path, as if the write made all of them
    return under.isdisjoint(reads) and made.isdisjoint(above_of(reads))


def _with_whole(step: batch.Step, recorded: tuple[CompiledRule, ...], *, whole: bool
                ) -> tuple[batch.Step, tuple[CompiledRule, ...], Whole | None]:
    return step, recorded, Whole(step, recorded) if whole and step.together else None


def _prune_unmatched(result: Result, synchronized: Sequence[CompiledRule],
                     matching: Sequence[CompiledRule], obj: Obj, world: World) -> Result:
    """Children of synchronized generate rules of Enforce rule sets (`synchronized`, the
    enabled ones among the trigger kind's rules) that no longer match the trigger (a
    label gone, a namespace or exclude that now applies) are pruned, as those of a rule
    whose condition turned false are."""
    plans: list[ChildPlan] = []
    outcomes: list[Outcome] = []
    for rule in synchronized:
        if rule in matching:
            continue
        stale = children.stale(rule_set=rule.rule_set, rule=rule.rule.name, trigger=obj,
                               kinds=rule.generates, world=world, keep=set())
        if stale:
            plans.extend(stale)
            summary = tuple(f"{plan.action.value} {plan.key}" for plan in stale)
            outcomes.append(Outcome(rule.rule_set.ref, rule.rule.name, Status.APPLIED,
                                    "no longer matches: " + "; ".join(summary), summary))
    if not plans:
        return result
    return replace(result, children=result.children + tuple(plans),
                   outcomes=result.outcomes + tuple(outcomes))


Ops = list[dict[str, Any]]


def split_patch(current: Obj, desired: Obj) -> tuple[Ops, Ops]:
    """One guarded patch for the object, one for its status subresource."""
    if current.get("status", MISSING) is desired.get("status", MISSING):  # or neither has one
        return (make_patch(current, desired) if desired is not current else []), []
    main_current = {k: v for k, v in current.items() if k != "status"}
    main_desired = {k: v for k, v in desired.items() if k != "status"}
    patch = make_patch(main_current, main_desired)
    status_patch: Ops = []
    if current.get("status") != desired.get("status"):
        status_current = {"metadata": current.get("metadata", {})}
        status_desired = dict(status_current)
        if "status" in current:
            status_current["status"] = current["status"]
        if "status" in desired:
            status_desired["status"] = desired["status"]
        status_patch = make_patch(status_current, status_desired)
    return patch, status_patch
