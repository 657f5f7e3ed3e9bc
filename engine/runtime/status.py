"""What each rule set's status says, kept up to date by the reconciler and written back.

The manager tells the board which rule sets are loaded (and which rules did not
compile, or why a rule set was refused); the reconciler reports every evaluation and
every failed write. `render` builds the status DESIGN.md describes — observedGeneration,
metav1.Condition-shaped conditions (Ready, Degraded, Conflict, Oscillating) and per-rule
counters — and `StatusWriter` (in status_writer.py) writes it when it changes.

Counters are chosen so that a cluster at steady state changes no status: `matched`,
`errors`, `wouldApply` and `violations` count the objects *currently* in that state
(`violating` names a few of those a validate rule does not hold for); `applied` counts
the writes a rule caused since this engine started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.evaluate.outcomes import Outcome, Result, Status
from engine.objects import ObjectKey
from engine.rules.model import RuleSetRef

MAX_MESSAGE = 1000
NAMED_VIOLATIONS = 5  # objects named per rule in `violating`


@dataclass
class _Rule:
    matched: set[ObjectKey] = field(default_factory=set)
    errors: dict[ObjectKey, str] = field(default_factory=dict)
    would_apply: set[ObjectKey] = field(default_factory=set)
    violations: dict[ObjectKey, str] = field(default_factory=dict)  # key -> message
    validates: bool = False  # has reported a violation since the engine started
    applied: int = 0
    last_error: str = ""
    last_error_time: str = ""
    disabled: str = ""  # compile error
    access: str = ""  # a kind it needs cannot be listed/watched (RBAC)


@dataclass
class _RuleSet:
    generation: int = 0
    refused: str = ""  # schema error, unknown kind...: nothing runs
    rules: dict[str, _Rule] = field(default_factory=dict)
    conflicts: dict[ObjectKey, str] = field(default_factory=dict)
    oscillating: dict[ObjectKey, str] = field(default_factory=dict)
    write_errors: dict[ObjectKey, str] = field(default_factory=dict)
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (status, time)


class StatusBoard:
    """Thread-safe record of rule-set health; `dirty()` says which to write again."""

    def __init__(self, *, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._sets: dict[RuleSetRef, _RuleSet] = {}
        self._dirty: set[RuleSetRef] = set()
        # key -> the rule sets whose counters or tables may mention it, so an
        # evaluation touches those and its own, not every rule set loaded
        self._involved: dict[ObjectKey, frozenset[RuleSetRef]] = {}
        self._sets_of_refs: dict[frozenset[RuleSetRef], frozenset[RuleSetRef]] = {}  # shared

    def _stamp(self) -> str:
        return self._now().strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- from the manager --------------------------------------------------------------

    def loaded(self, ref: RuleSetRef, *, generation: int, rules: dict[str, str]) -> None:
        """A rule set (re)loaded: rule name -> compile error ("" when it compiled)."""
        with self._lock:
            entry = self._sets.setdefault(ref, _RuleSet())
            entry.generation = generation
            entry.refused = ""
            entry.rules = {name: entry.rules.get(name, _Rule()) for name in rules}
            for name, problem in rules.items():
                entry.rules[name].disabled = problem
            self._dirty.add(ref)

    def access(self, ref: RuleSetRef, problems: dict[str, str]) -> None:
        """Rules whose kinds the engine cannot list or watch (rule -> why; {} clears)."""
        with self._lock:
            entry = self._sets.get(ref)
            if entry is None:
                return
            for name, rule in entry.rules.items():
                message = problems.get(name, "")
                if rule.access != message:
                    rule.access = message
                    self._dirty.add(ref)

    def refused(self, ref: RuleSetRef, *, generation: int, message: str) -> None:
        with self._lock:
            entry = self._sets.setdefault(ref, _RuleSet())
            entry.generation = generation
            entry.refused = message[:MAX_MESSAGE]
            self._dirty.add(ref)

    def removed(self, ref: RuleSetRef) -> None:
        with self._lock:
            self._sets.pop(ref, None)
            self._dirty.discard(ref)

    # -- from the reconciler -----------------------------------------------------------

    def observe(self, key: ObjectKey, result: Result, *, written: bool) -> None:
        """The outcomes of one evaluation (`written`: its changes were written)."""
        outcomes = result.outcomes
        with self._lock:
            involved = self._involved.pop(key, None)
            if len(outcomes) == 1 and not result.conflicts and (
                    involved is None or involved == {outcomes[0].rule_set}):
                # one rule matched, no conflict, and no other rule set mentions `key`:
                # the commonest evaluation, told without the sets below
                self._observe_one(key, outcomes[0], written)
            else:
                self._observe(key, result, written, involved or frozenset())

    def _observe_one(self, key: ObjectKey, outcome: Outcome, written: bool) -> None:
        """`_observe` of one outcome, no conflict, its rule set the only one involved."""
        ref = outcome.rule_set
        entry = self._sets.get(ref)
        if entry is None:
            return
        touched = False
        for name, stale in entry.rules.items():
            if name != outcome.rule and self._drop(stale, key):
                touched = True
        rule = entry.rules.get(outcome.rule)
        if rule is not None and self._count(rule, key, outcome, written):
            touched = True
        if outcome.status is Status.OSCILLATING:
            touched = self._set(entry.oscillating, key, outcome.message) or touched
        elif entry.oscillating and entry.oscillating.pop(key, None) is not None:
            touched = True
        if entry.conflicts and entry.conflicts.pop(key, None) is not None:
            touched = True
        if rule is not None or self._mentions(entry, key):
            involved = frozenset((ref,))
            self._involved[key] = self._sets_of_refs.setdefault(involved, involved)
        if touched:
            self._dirty.add(ref)

    def _observe(self, key: ObjectKey, result: Result, written: bool,
                 involved: frozenset[RuleSetRef]) -> None:
        touched: set[RuleSetRef] = set()
        seen = {(o.rule_set, o.rule) for o in result.outcomes}
        named = {o.rule_set for o in result.outcomes}
        for conflict in result.conflicts:
            named.update((conflict.winner[0], conflict.loser[0]))
        refs = involved | named
        sets = [(ref, self._sets[ref]) for ref in refs if ref in self._sets]
        matched: set[RuleSetRef] = set()  # rule sets with a rule that matched `key`
        for ref, entry in sets:
            for name, stale in entry.rules.items():
                if (ref, name) not in seen and self._drop(stale, key):
                    touched.add(ref)
        for outcome in result.outcomes:
            ref = outcome.rule_set
            found = self._sets.get(ref)
            rule = found.rules.get(outcome.rule) if found else None
            if rule is None:
                continue
            matched.add(ref)
            if self._count(rule, key, outcome, written):
                touched.add(ref)
        oscillating: dict[RuleSetRef, str] = {}  # the first message per rule set
        for outcome in result.outcomes:
            if outcome.status is Status.OSCILLATING:
                oscillating.setdefault(outcome.rule_set, outcome.message)
        for ref, entry in sets:
            if result.conflicts:
                conflicts = [c.describe() for c in result.conflicts
                             if ref in (c.winner[0], c.loser[0])]
                if self._set(entry.conflicts, key, "; ".join(conflicts)):
                    touched.add(ref)
            elif entry.conflicts.pop(key, None) is not None:  # `_set` of ""
                touched.add(ref)
            if (self._set(entry.oscillating, key, oscillating[ref]) if ref in oscillating
                    else entry.oscillating.pop(key, None) is not None):
                touched.add(ref)
        now = frozenset(matched) if len(matched) == len(sets) else frozenset(
            ref for ref, entry in sets if ref in matched or self._mentions(entry, key))
        if now:  # one shared set per combination: most objects have the same
            self._involved[key] = self._sets_of_refs.setdefault(now, now)
        self._dirty |= touched

    def _count(self, rule: _Rule, key: ObjectKey, outcome: Outcome, written: bool) -> bool:
        """Count `key` under `rule` as `outcome` says; whether a counter `render` shows
        changed (each changes only when the object enters or leaves it: the names in
        `violating` change only when an object starts or stops violating, which changes
        the count), or the rule's last error."""
        status, message = outcome.status, outcome.message
        changed = key not in rule.matched
        if changed:
            rule.matched.add(key)
        if status is Status.ERROR or status is Status.OSCILLATING:
            if rule.errors.get(key) != message:
                rule.last_error = message[:MAX_MESSAGE]
                rule.last_error_time = self._stamp()
                changed = True
            rule.errors[key] = message
        elif rule.errors and rule.errors.pop(key, None) is not None:
            changed = True
        if status is Status.WOULD_APPLY:
            if key not in rule.would_apply:
                rule.would_apply.add(key)
                changed = True
        elif key in rule.would_apply:
            rule.would_apply.discard(key)
            changed = True
        if status is Status.VIOLATION:
            if key not in rule.violations:
                changed = True
            rule.violations[key] = message
            rule.validates = True
        elif rule.violations and rule.violations.pop(key, None) is not None:
            changed = True
        if status is Status.APPLIED and written:
            rule.applied += 1
            changed = True
        return changed

    def write_failed(self, key: ObjectKey, ref: RuleSetRef, message: str) -> None:
        with self._lock:
            entry = self._sets.get(ref)
            if entry is not None and entry.write_errors.get(key) != message:
                entry.write_errors[key] = message[:MAX_MESSAGE]
                self._dirty.add(ref)

    def write_succeeded(self, key: ObjectKey, ref: RuleSetRef) -> None:
        # Asked after every write, mostly with nothing to clear: that is read without
        # the lock (one dict lookup each). Only the reconcile of `key` (one at a time,
        # by the work queue) adds or drops `key`'s write error, so the answer holds.
        entry = self._sets.get(ref)
        if entry is None or key not in entry.write_errors:
            return
        with self._lock:
            entry = self._sets.get(ref)
            if entry is not None and entry.write_errors.pop(key, None) is not None:
                self._dirty.add(ref)

    def forget(self, key: ObjectKey) -> None:
        """The trigger is gone."""
        with self._lock:
            self._involved.pop(key, None)
            for ref, entry in self._sets.items():
                changed = any([self._drop(rule, key) for rule in entry.rules.values()])
                for table in (entry.conflicts, entry.oscillating, entry.write_errors):
                    changed = table.pop(key, None) is not None or changed
                if changed:
                    self._dirty.add(ref)

    @staticmethod
    def _mentions(entry: _RuleSet, key: ObjectKey) -> bool:
        return key in entry.conflicts or key in entry.oscillating or any(
            key in rule.matched or key in rule.errors or key in rule.would_apply
            or key in rule.violations for rule in entry.rules.values())

    @staticmethod
    def _drop(rule: _Rule, key: ObjectKey) -> bool:
        hit = (key in rule.matched or key in rule.errors or key in rule.would_apply
               or key in rule.violations)
        rule.matched.discard(key)
        rule.errors.pop(key, None)
        rule.would_apply.discard(key)
        rule.violations.pop(key, None)
        return hit

    @staticmethod
    def _set(table: dict[ObjectKey, str], key: ObjectKey, value: str) -> bool:
        if value:
            changed = table.get(key) != value
            table[key] = value
            return changed
        return table.pop(key, None) is not None

    # -- for the writer ----------------------------------------------------------------

    def dirty(self) -> set[RuleSetRef]:
        with self._lock:
            out, self._dirty = self._dirty, set()
            return out

    def mark_dirty(self, ref: RuleSetRef) -> None:
        with self._lock:
            if ref in self._sets:
                self._dirty.add(ref)

    def render(self, ref: RuleSetRef) -> dict[str, Any] | None:
        with self._lock:
            entry = self._sets.get(ref)
            if entry is None:
                return None
            return {
                "observedGeneration": entry.generation,
                "ruleCount": len(entry.rules),
                "conditions": self._conditions(entry),
                "rules": [self._rule(name, rule) for name, rule in entry.rules.items()],
            }

    def violations(self) -> dict[tuple[str, str], int]:
        """(rule set, rule) -> objects in violation now, for every rule that has
        reported a violation since the engine started (the metric reads this)."""
        with self._lock:
            return {(str(ref), name): len(rule.violations)
                    for ref, entry in self._sets.items()
                    for name, rule in entry.rules.items() if rule.validates}

    def _rule(self, name: str, rule: _Rule) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "enabled": not rule.disabled,
                               "matched": len(rule.matched), "applied": rule.applied,
                               "errors": len(rule.errors), "wouldApply": len(rule.would_apply)}
        if rule.violations:
            out["violations"] = len(rule.violations)
            out["violating"] = _named(rule)
        last = rule.disabled or rule.access or rule.last_error
        if last:
            out["lastError"] = last[:MAX_MESSAGE]
        if rule.last_error_time:
            out["lastErrorTime"] = rule.last_error_time
        return out

    def _conditions(self, entry: _RuleSet) -> list[dict[str, Any]]:
        disabled = [f"rule {n!r} is disabled: {r.disabled}" for n, r in entry.rules.items()
                    if r.disabled]
        failing = [f"rule {n!r} fails on {len(r.errors)} object(s): "
                   f"{next(iter(r.errors.values()))}" for n, r in entry.rules.items()
                   if r.errors]
        failing += [f"rule {n!r}: {r.access}" for n, r in entry.rules.items() if r.access]
        writes = [f"{key}: {message}" for key, message in entry.write_errors.items()]
        degraded = disabled + failing + writes
        specs = [
            ("Ready", not entry.refused, "Refused" if entry.refused else "Loaded",
             entry.refused or f"{len(entry.rules)} rules loaded, "
             f"{len(entry.rules) - len(disabled)} enabled"),
            ("Degraded", bool(degraded), "RuleErrors" if degraded else "AsExpected",
             "; ".join(degraded) or "every rule works"),
            ("Conflict", bool(entry.conflicts), "PathConflict" if entry.conflicts else "None",
             "; ".join(sorted(set(entry.conflicts.values()))) or "no conflicts"),
            ("Oscillating", bool(entry.oscillating),
             "NoFixedPoint" if entry.oscillating else "None",
             "; ".join(sorted(set(entry.oscillating.values()))) or "every object converges"),
        ]
        out = []
        for type_, true, reason, message in specs:
            status = "True" if true else "False"
            previous = entry.transitions.get(type_)
            if previous is None or previous[0] != status:
                entry.transitions[type_] = (status, self._stamp())
            out.append({"type": type_, "status": status,
                        "observedGeneration": entry.generation,
                        "lastTransitionTime": entry.transitions[type_][1],
                        "reason": reason, "message": message[:MAX_MESSAGE]})
        return out


def _named(rule: _Rule) -> list[str]:
    """The first few objects (in a stable order) a validate rule does not hold for."""
    return [str(key) for key in sorted(rule.violations)[:NAMED_VIOLATIONS]]
