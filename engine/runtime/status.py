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

from engine.evaluate.outcomes import Result, Status
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
        touched: set[RuleSetRef] = set()
        with self._lock:
            seen = {(o.rule_set, o.rule) for o in result.outcomes}
            named = {o.rule_set for o in result.outcomes}
            for conflict in result.conflicts:
                named.update((conflict.winner[0], conflict.loser[0]))
            refs = self._involved.pop(key, frozenset()) | named
            sets = [(ref, self._sets[ref]) for ref in refs if ref in self._sets]
            matched: set[RuleSetRef] = set()  # rule sets with a rule that matched `key`
            for ref, entry in sets:
                for name, stale in entry.rules.items():
                    if (ref, name) not in seen and self._drop(stale, key):
                        touched.add(ref)
            for outcome in result.outcomes:
                found = self._sets.get(outcome.rule_set)
                rule = found.rules.get(outcome.rule) if found else None
                if rule is None:
                    continue
                # Every counter `render` shows; the names in `violating` change only
                # when an object starts or stops violating, which changes the count.
                before = (len(rule.matched), len(rule.errors), len(rule.would_apply),
                          len(rule.violations), rule.applied)
                rule.matched.add(key)
                matched.add(outcome.rule_set)
                if outcome.status in (Status.ERROR, Status.OSCILLATING):
                    if rule.errors.get(key) != outcome.message:
                        rule.last_error = outcome.message[:MAX_MESSAGE]
                        rule.last_error_time = self._stamp()
                        touched.add(outcome.rule_set)
                    rule.errors[key] = outcome.message
                else:
                    rule.errors.pop(key, None)
                if outcome.status is Status.WOULD_APPLY:
                    rule.would_apply.add(key)
                else:
                    rule.would_apply.discard(key)
                if outcome.status is Status.VIOLATION:
                    rule.violations[key] = outcome.message
                    rule.validates = True
                else:
                    rule.violations.pop(key, None)
                if outcome.status is Status.APPLIED and written:
                    rule.applied += 1
                after = (len(rule.matched), len(rule.errors), len(rule.would_apply),
                         len(rule.violations), rule.applied)
                if before != after:
                    touched.add(outcome.rule_set)
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
            involved = frozenset(ref for ref, entry in sets
                                 if ref in matched or self._mentions(entry, key))
            if involved:  # one shared set per combination: most objects have the same
                self._involved[key] = self._sets_of_refs.setdefault(involved, involved)
            self._dirty |= touched

    def write_failed(self, key: ObjectKey, ref: RuleSetRef, message: str) -> None:
        with self._lock:
            entry = self._sets.get(ref)
            if entry is not None and entry.write_errors.get(key) != message:
                entry.write_errors[key] = message[:MAX_MESSAGE]
                self._dirty.add(ref)

    def write_succeeded(self, key: ObjectKey, ref: RuleSetRef) -> None:
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
