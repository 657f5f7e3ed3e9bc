"""What an evaluation says: one outcome per rule, and one result per trigger.

These values are the only thing the drivers read: `edict apply` prints them, `edict test`
compares them with expectations, the live reconciler turns them into writes, status
conditions, Events and metrics. Nothing here raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.objects import Obj, ObjectKey
from engine.rules.model import RuleSetRef


class Status(StrEnum):
    APPLIED = "applied"  # changed the trigger, or wants children created/changed/pruned
    UNCHANGED = "unchanged"  # ran and found the world as it should be
    SKIPPED = "skipped"  # the condition is false (or a lookup it needs is absent)
    WOULD_APPLY = "would-apply"  # Audit mode: would have changed something
    VIOLATION = "violation"  # a validate rule's expression is false: the message says why
    ERROR = "error"  # the rule failed for this trigger; its changes are dropped
    OSCILLATING = "oscillating"  # no fixed point: nothing is written
    DISABLED = "disabled"  # the rule failed to compile when its rule set loaded


class ChildAction(StrEnum):
    CREATE = "create"
    PATCH = "patch"
    DELETE = "delete"
    NONE = "none"  # exists and is as it should be


@dataclass(frozen=True, slots=True)
class Outcome:
    rule_set: RuleSetRef
    rule: str
    status: Status
    message: str = ""
    paths: tuple[str, ...] = ()  # JSON pointers the rule changed on the trigger or children


@dataclass(frozen=True)
class RuleConflict:
    """Two rules set one path to different values in one pass; the later one won."""

    path: str
    winner: tuple[RuleSetRef, str]
    loser: tuple[RuleSetRef, str]

    def describe(self) -> str:
        return (f"rule {self.winner[1]!r} of {self.winner[0]} and rule {self.loser[1]!r} of "
                f"{self.loser[0]} both set {self.path}; {self.winner[1]!r} won "
                "(it runs later)")


@dataclass(frozen=True, init=False)
class ChildPlan:
    """What to do with one generated object."""

    action: ChildAction
    key: ObjectKey
    rule_set: RuleSetRef
    rule: str
    desired: Obj | None  # None when deleting
    patch: tuple[dict[str, Any], ...] = ()  # for PATCH: guarded ops against `existing`
    existing: Obj | None = None

    def __init__(self, action: ChildAction, key: ObjectKey, rule_set: RuleSetRef, rule: str,
                 desired: Obj | None, patch: tuple[dict[str, Any], ...] = (),
                 existing: Obj | None = None) -> None:
        # as `Result.__init__`: the fields set at once, not one by one
        self.__dict__.update(action=action, key=key, rule_set=rule_set, rule=rule,
                             desired=desired, patch=patch, existing=existing)


_NO_KEYS: frozenset[ObjectKey] = frozenset()


@dataclass(frozen=True, init=False)
class Result:
    """Everything the engine concluded about one trigger."""

    key: ObjectKey
    current: Obj
    desired: Obj  # the trigger as the enforced rules leave it (status included)
    patch: tuple[dict[str, Any], ...] = ()  # guarded ops for everything but status
    status_patch: tuple[dict[str, Any], ...] = ()  # ops for the status subresource
    children: tuple[ChildPlan, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    conflicts: tuple[RuleConflict, ...] = ()
    oscillating: bool = False
    audit_patch: tuple[dict[str, Any], ...] = ()  # what Audit rule sets would add
    lookups: frozenset[ObjectKey] = _NO_KEYS

    def __init__(self, key: ObjectKey, current: Obj, desired: Obj,
                 patch: tuple[dict[str, Any], ...] = (),
                 status_patch: tuple[dict[str, Any], ...] = (),
                 children: tuple[ChildPlan, ...] = (), outcomes: tuple[Outcome, ...] = (),
                 conflicts: tuple[RuleConflict, ...] = (), oscillating: bool = False,
                 audit_patch: tuple[dict[str, Any], ...] = (),
                 lookups: frozenset[ObjectKey] = _NO_KEYS) -> None:
        # the fields written straight into the instance's dict, as the frozen dataclass's
        # own __init__ would set them one by one through object.__setattr__ (one Result
        # per evaluation: that was ~2 µs of it); the fields above stay the definition
        # (`tests/unit/test_outcomes.py` checks the two agree)
        self.__dict__.update(key=key, current=current, desired=desired, patch=patch,
                             status_patch=status_patch, children=children,
                             outcomes=outcomes, conflicts=conflicts, oscillating=oscillating,
                             audit_patch=audit_patch, lookups=lookups)

    @property
    def converged(self) -> bool:
        return not self.patch and not self.status_patch and all(
            c.action is ChildAction.NONE for c in self.children)

    def outcomes_for(self, rule_set: RuleSetRef) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.rule_set == rule_set)

    @property
    def violations(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status is Status.VIOLATION)
