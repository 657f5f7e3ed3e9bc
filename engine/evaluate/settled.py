"""Rules the mutating webhook settled on an object: the background need not run them again.

The mutating webhook (`engine.runtime.admission`) runs the mutate rules of Enforce rule
sets to their fixed point, and the API server stores what it answered. When the stored
object is exactly that answer and the rules are the same, running those rules again in
the background can only find them converged; `settled_at_admission` says which of them
may be left out of that evaluation, and `Engine.evaluate(settled=...)` leaves them out,
reporting for each the outcome it would have had (`UNCHANGED`, or `SKIPPED` when its
condition was false). Validate, generate and status rules, and every rule not named,
run as always.

A rule is left out only if its result depends on nothing but the object, its rule set
and its own variables: not on `request` (null in the background), `oldObject`,
`namespaceObject` or `context` lookups, which may change between the review and the
watch event. The whole answer is refused (None) when admission saw an error, an
oscillation, a conflict between rules, or a change to `status` (which the webhook does
not send, so the background would write it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import Result, Status
from engine.rules.model import RuleSetRef

WORLD = frozenset({"request", "oldObject", "namespaceObject", "context"})
"""Variables whose values may differ between a review and the background evaluation."""

RuleId = tuple[RuleSetRef, str]

# what the background would report for a rule admission left at this status
_AFTERWARDS = {Status.APPLIED: Status.UNCHANGED, Status.UNCHANGED: Status.UNCHANGED,
               Status.SKIPPED: Status.SKIPPED}


@dataclass(frozen=True)
class Settled:
    """Rules known converged on one object's content, with the outcome to report."""

    outcomes: Mapping[RuleId, Status]

    def __bool__(self) -> bool:
        return bool(self.outcomes)


def object_only(rule: CompiledRule) -> bool:
    """Whether the rule reads nothing but the object, its rule set and its variables."""
    return not rule.lookups and not rule.reads_variables & WORLD


def settled_at_admission(rules: Mapping[RuleId, CompiledRule], result: Result
                         ) -> Settled | None:
    """The rules of a mutating review's `result` the background may leave out, or None
    when it must run them all. `rules`: the engine's compiled rules by id."""
    if result.oscillating or result.conflicts or result.current.get(
            "status") != result.desired.get("status"):
        return None
    outcomes: dict[RuleId, Status] = {}
    for outcome in result.outcomes:
        after = _AFTERWARDS.get(outcome.status)
        if after is None:
            if outcome.status is Status.DISABLED:
                continue  # it reports DISABLED in the background too: let it
            return None  # an error, or anything this module does not know
        rule = rules.get((outcome.rule_set, outcome.rule))
        if rule is not None and object_only(rule):
            outcomes[(outcome.rule_set, outcome.rule)] = after
    return Settled(outcomes) if outcomes else None
