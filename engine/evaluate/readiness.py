"""Children that wait for each other, and the trigger's conditions that say how far along
they are.

`Engine` calls `run_generators` once per evaluation, on the converged trigger, instead of
running its generate rules one by one. It runs them in the order their `after` lists
give (ties in rule order) and, for each rule, decides how ready its children are:

- a child is **ready** when it exists and the rule's `readyWhen` (CEL over ``child``, the
  child as the cluster has it) is true — without `readyWhen`, once it exists;
- a rule is ready when all its children are; a rule that wants no child now (its
  condition is false, or the data it needs is not there yet: its children are pruned, as
  usual) has nothing to wait for;
- a rule with `after: [a, b]` **creates or changes** children only once a and b are
  ready: until then its creates and patches are held back (its outcome says what it
  waits for), so a new version of an app rolls out only after its migration Job, made
  for that version, succeeded. Children it has stay as they are meanwhile, and are
  still pruned when the rule no longer wants them: `after` never takes a running child
  away because another one became unready.

A rule set that uses `readyWhen` or `after` in a rule gets, on each trigger, a condition
per generate rule (``<Rule>Ready``: ``database`` → ``DatabaseReady``) and ``Ready``
(all of them True), in ``status.conditions`` with the metav1.Condition fields:
``lastTransitionTime`` changes only when a status does (from `now`),
``observedGeneration`` is the trigger's generation. Other conditions are left alone.
When the trigger's schema is known, only the fields its condition items have are
written, and nothing when its status has no ``conditions`` (a write the server would
drop would be made again forever).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from engine.errors import CelError, CelMissingData
from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import ChildAction, ChildPlan, Outcome, Status
from engine.evaluate.run import Pass, run_generate, variables
from engine.objects import Obj, meta
from engine.rules.model import Generate, RuleSetRef
from engine.schemas import Node

MAX_NAMED = 3  # children named in one message
HELD = (ChildAction.CREATE, ChildAction.PATCH)  # what a rule waiting for others holds back


class State(Enum):
    READY = "Ready"
    NOT_WANTED = "NothingToCreate"
    CREATING = "Creating"
    NOT_READY = "NotReady"
    WAITING = "Waiting"
    ERROR = "Error"

    @property
    def ready(self) -> bool:
        return self in (State.READY, State.NOT_WANTED)


@dataclass(frozen=True)
class Readiness:
    """How far one generate rule's children are, for one trigger."""

    rule: str
    state: State
    message: str

    @property
    def condition_type(self) -> str:
        return condition_type(self.rule)


def condition_type(rule: str) -> str:
    """``migrate-schema`` → ``MigrateSchemaReady``."""
    return "".join(part[:1].upper() + part[1:] for part in rule.split("-") if part) + "Ready"


def run_generators(rules: Sequence[CompiledRule], trigger: Obj, p: Pass, *,
                   now: Callable[[], datetime] | None = None,
                   generators: Generators | None = None
                   ) -> tuple[list[ChildPlan], list[Outcome], Obj]:
    """Run the enabled generate rules among `rules` in `after` order; the child plans,
    their outcomes, and `trigger` with the readiness conditions of the rule sets that
    ask for them (`generators`: `generators(rules)`, when the caller keeps it)."""
    ordered, tracked = generators if generators is not None else _generators(tuple(rules))
    plans: list[ChildPlan] = []
    outcomes: list[Outcome] = []
    found: dict[tuple[RuleSetRef, str], Readiness] = {}
    for rule in ordered:
        rule_plans, outcome = run_generate(rule, trigger, p)
        if not _asks_for_conditions(rule):
            # no rule of its rule set has `after` or `readyWhen`: nothing waits for it,
            # it waits for nothing, and its rule set gets no conditions
            plans.extend(rule_plans)
            outcomes.append(outcome)
            continue
        readiness = _readiness(rule, rule_plans, outcome, trigger, p)
        waits = _waiting_for(rule, found)
        if waits is not None and any(c.action in HELD for c in rule_plans):
            rule_plans, outcome = _hold_back(rule_plans, outcome, waits)
            readiness = Readiness(rule.rule.name, State.WAITING, waits)
        found[(rule.rule_set.ref, rule.rule.name)] = readiness
        plans.extend(rule_plans)
        outcomes.append(outcome)
    if not tracked:
        return plans, outcomes, trigger
    states = [found.get((r.rule_set.ref, r.rule.name)) or Readiness(
        r.rule.name, State.ERROR, "the rule is disabled: " + "; ".join(
            e.message for e in r.errors)) for r in tracked]
    return plans, outcomes, with_conditions(trigger, states, schema=p.schema, now=now)


@functools.lru_cache(maxsize=4096)  # compiled rules are immutable
def _asks_for_conditions(rule: CompiledRule) -> bool:
    return any(isinstance(r.action, Generate) and (r.action.ready_when is not None
                                                   or r.action.after)
               for r in rule.rule_set.rules)


Generators = tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]


def generators(rules: tuple[CompiledRule, ...]) -> Generators:
    """What `run_generators` finds of `rules` before running them (see `_generators`)."""
    return _generators(rules)


@functools.lru_cache(maxsize=1024)  # the same few lists of rules, trigger after trigger
def _generators(rules: tuple[CompiledRule, ...]) -> Generators:
    """The enabled generate rules among `rules` in `after` order, and the generate rules
    (enabled or not) whose rule sets ask for readiness conditions."""
    generators = tuple(r for r in rules if isinstance(r.rule.action, Generate))
    return (_ordered(tuple(r for r in generators if r.enabled)),
            tuple(r for r in generators if _asks_for_conditions(r)))


@functools.lru_cache(maxsize=1024)  # the same few lists of generate rules, trigger after trigger
def _ordered(generators: tuple[CompiledRule, ...]) -> tuple[CompiledRule, ...]:
    """Each rule after the rules its `after` names (of those present), else in order."""
    by_name = {(r.rule_set.ref, r.rule.name): r for r in generators}
    done: set[tuple[RuleSetRef, str]] = set()
    out: list[CompiledRule] = []

    def visit(rule: CompiledRule, path: frozenset[str]) -> None:
        key = (rule.rule_set.ref, rule.rule.name)
        if key in done or rule.rule.name in path:
            return
        action = rule.rule.action
        assert isinstance(action, Generate)
        for name in action.after:
            before = by_name.get((rule.rule_set.ref, name))
            if before is not None:
                visit(before, path | {rule.rule.name})
        done.add(key)
        out.append(rule)

    for rule in generators:
        visit(rule, frozenset())
    return tuple(out)


def _waiting_for(rule: CompiledRule, found: dict[tuple[RuleSetRef, str], Readiness]
                 ) -> str | None:
    """Why `rule` must not create yet (a rule it comes after is not ready), or None."""
    action = rule.rule.action
    assert isinstance(action, Generate)
    reasons = []
    for name in action.after:
        before = found.get((rule.rule_set.ref, name))
        if before is None:
            if not _matches_elsewhere(rule, name):
                continue  # a rule of another kind of trigger: nothing to wait for here
            reasons.append(f"rule {name!r} did not run (it is disabled)")
        elif before.state is State.WAITING:
            reasons.append(f"rule {name!r}, which waits itself")
        elif not before.state.ready:
            reasons.append(f"rule {name!r}: {before.message}")
    return "waiting for " + "; ".join(reasons) if reasons else None


def _matches_elsewhere(rule: CompiledRule, name: str) -> bool:
    """Whether the rule named `name` of the same rule set matches this rule's kinds (so
    its absence means it is disabled, not that it is about other objects)."""
    kinds = set(rule.rule.match.kinds)
    return any(r.name == name and kinds & set(r.match.kinds) for r in rule.rule_set.rules)


def _hold_back(plans: list[ChildPlan], outcome: Outcome, why: str
               ) -> tuple[list[ChildPlan], Outcome]:
    kept = [c for c in plans if c.action not in HELD]
    held = [f"{c.action.value} {c.key}" for c in plans if c.action in HELD]
    message = f"{why}; held back: {_names(held)}"
    changed = [c for c in kept if c.action is not ChildAction.NONE]
    if outcome.status is Status.ERROR:
        return kept, outcome
    summary = tuple(f"{c.action.value} {c.key}" for c in changed)
    status = Status.APPLIED if changed else Status.SKIPPED
    return kept, replace(outcome, status=status, message="; ".join((*summary, message)),
                         paths=summary)


def _readiness(rule: CompiledRule, plans: list[ChildPlan], outcome: Outcome, trigger: Obj,
               p: Pass) -> Readiness:
    name = rule.rule.name
    if outcome.status is Status.ERROR:
        return Readiness(name, State.ERROR, outcome.message)
    wanted = [c for c in plans if c.action is not ChildAction.DELETE]
    if outcome.status is Status.SKIPPED or not wanted:
        return Readiness(name, State.NOT_WANTED, "no child wanted now"
                         + (f" ({outcome.message})" if outcome.message else ""))
    creating = [str(c.key) for c in wanted if c.action is ChildAction.CREATE]
    if creating:
        return Readiness(name, State.CREATING, f"creating {_names(creating)}")
    if rule.ready_when is None:
        return Readiness(name, State.READY, f"{_names([str(c.key) for c in wanted])} "
                         "exist" + ("s" if len(wanted) == 1 else ""))
    base = variables(rule, trigger, p)
    not_ready: list[str] = []
    for plan in wanted:
        try:
            value = rule.ready_when.evaluate({**base, "child": plan.existing})
        except CelMissingData as error:
            not_ready.append(f"{plan.key} (not there yet: {error.message})")
            continue
        except CelError as error:
            return Readiness(name, State.ERROR, f"readyWhen fails on {plan.key}: "
                             f"{error.message}")
        if value is not True:
            not_ready.append(str(plan.key))
    if not_ready:
        return Readiness(name, State.NOT_READY,
                         f"{_names(not_ready)} not ready yet (readyWhen is false)")
    return Readiness(name, State.READY, f"{_names([str(c.key) for c in wanted])} ready")


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_NAMED])
    return shown + (f" and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else "")


# -- conditions on the trigger ------------------------------------------------------------

CONDITION_FIELDS = ("type", "status", "observedGeneration", "lastTransitionTime", "reason",
                    "message")


def with_conditions(trigger: Obj, states: Sequence[Readiness], *, schema: Node | None,
                    now: Callable[[], datetime] | None) -> Obj:
    """`trigger` with `Ready` and a `<Rule>Ready` condition per state in its status."""
    allowed = _condition_fields(schema)
    if allowed is None:
        return trigger
    pending = [s for s in states if not s.state.ready]
    ready = Readiness("", State.READY if not pending else State.NOT_READY,
                      "every child is ready" if not pending else "; ".join(
                          f"{s.rule}: {s.message}" for s in pending))
    wanted = [("Ready", ready), *((s.condition_type, s) for s in states)]
    status = trigger.get("status") if isinstance(trigger.get("status"), dict) else {}
    existing = [c for c in (status or {}).get("conditions") or [] if isinstance(c, dict)]
    by_type = {str(c.get("type")): c for c in existing}
    generation = meta(trigger).get("generation")
    made: dict[str, dict[str, Any]] = {}
    for type_, state in wanted:
        value = "True" if state.state.ready else "False"
        condition: dict[str, Any] = {"type": type_, "status": value,
                                     "reason": state.state.value if type_ != "Ready" else (
                                         "AllReady" if value == "True" else "NotReady"),
                                     "message": state.message[:1000]}
        if generation is not None:
            condition["observedGeneration"] = generation
        before = by_type.get(type_)
        if before is not None and before.get("status") == value and (
                "lastTransitionTime" in before):
            condition["lastTransitionTime"] = before["lastTransitionTime"]
        elif now is not None:
            condition["lastTransitionTime"] = now().strftime("%Y-%m-%dT%H:%M:%SZ")
        made[type_] = {k: condition[k] for k in CONDITION_FIELDS
                       if k in condition and (isinstance(allowed, bool) or k in allowed)}
    conditions = [made.pop(str(c.get("type")), c) for c in existing]
    conditions.extend(made.values())
    if conditions == existing:
        return trigger
    return {**trigger, "status": {**(status or {}), "conditions": conditions}}


def _condition_fields(schema: Node | None) -> frozenset[str] | bool | None:
    """Which fields a condition of this kind may have: True for any (schema unknown, or
    free-form there), their names, or None when its status has no conditions at all."""
    node = schema
    for name in ("status", "conditions"):
        if node is None or not node.is_struct or node.preserves_unknown:
            return True
        if name not in node.field_names():
            return None
        node = node.field(name)
    items = node.items() if node is not None else None
    if items is None or not items.is_struct or items.preserves_unknown:
        return True
    return frozenset(items.field_names())
