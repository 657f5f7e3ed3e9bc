"""StatusBoard: per-rule counters and per-object tables follow each evaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.evaluate.outcomes import Outcome, Result, RuleConflict, Status
from engine.objects import key_of
from engine.rules.model import RuleSetRef
from engine.runtime.status import StatusBoard

A = RuleSetRef("ClusterRuleSet", "", "a")
B = RuleSetRef("ClusterRuleSet", "", "b")
IDLE = RuleSetRef("ClusterRuleSet", "", "idle")


def obj(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
                                                                  "namespace": "n"}}


def board() -> StatusBoard:
    out = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    for ref in (A, B, IDLE):
        out.loaded(ref, generation=1, rules={"r": ""})
    out.dirty()
    return out


def observe(b: StatusBoard, name: str, *outcomes: Outcome,
            conflicts: tuple[RuleConflict, ...] = ()) -> None:
    o = obj(name)
    b.observe(key_of(o), Result(key=key_of(o), current=o, desired=o, outcomes=outcomes,
                                conflicts=conflicts), written=True)


def rule(b: StatusBoard, ref: RuleSetRef) -> dict[str, Any]:
    status = b.render(ref)
    assert status is not None
    return dict(status["rules"][0])


def condition(b: StatusBoard, ref: RuleSetRef, type_: str) -> str:
    status = b.render(ref)
    assert status is not None
    return next(c["status"] for c in status["conditions"] if c["type"] == type_)


def test_counters_follow_the_objects_a_rule_currently_matches() -> None:
    b = board()
    observe(b, "x", Outcome(A, "r", Status.APPLIED), Outcome(B, "r", Status.UNCHANGED))
    observe(b, "y", Outcome(A, "r", Status.ERROR, "boom"))
    assert b.dirty() == {A, B}
    assert (rule(b, A)["matched"], rule(b, A)["applied"], rule(b, A)["errors"]) == (2, 1, 1)
    assert rule(b, B)["matched"] == 1
    # x no longer matches B's rule (its labels changed): B's counter drops, A's stays
    observe(b, "x", Outcome(A, "r", Status.UNCHANGED))
    assert b.dirty() == {B}
    assert rule(b, B)["matched"] == 0 and rule(b, A)["matched"] == 2
    # y is fixed, then matches nothing at all
    observe(b, "y", Outcome(A, "r", Status.UNCHANGED))
    assert rule(b, A)["errors"] == 0
    observe(b, "y")
    assert rule(b, A)["matched"] == 1
    assert rule(b, IDLE)["matched"] == 0 and IDLE not in b.dirty()


def test_a_conflict_is_on_both_rule_sets_until_it_is_gone() -> None:
    b = board()
    clash = RuleConflict("/metadata/labels/t", (B, "r"), (A, "r"))
    observe(b, "x", Outcome(A, "r", Status.APPLIED), Outcome(B, "r", Status.APPLIED),
            conflicts=(clash,))
    assert condition(b, A, "Conflict") == condition(b, B, "Conflict") == "True"
    assert condition(b, IDLE, "Conflict") == "False"
    observe(b, "x", Outcome(B, "r", Status.UNCHANGED))  # A's rule stopped matching
    assert condition(b, A, "Conflict") == condition(b, B, "Conflict") == "False"
    assert rule(b, A)["matched"] == 0


def test_a_deleted_trigger_leaves_no_trace() -> None:
    b = board()
    observe(b, "x", Outcome(A, "r", Status.OSCILLATING, "no fixed point"))
    assert condition(b, A, "Oscillating") == "True"
    b.forget(key_of(obj("x")))
    assert condition(b, A, "Oscillating") == "False" and rule(b, A)["matched"] == 0
    observe(b, "x")  # nothing left to drop, nothing dirty
    b.dirty()
    observe(b, "x")
    assert b.dirty() == set()


# Whether an evaluation marks its rule set dirty: the board compares its counters (the
# names in `violating` change only with the `violations` count), never sorting the
# violations. The same answer as comparing the rendered counters and names before and
# after.
_STATUSES = st.sampled_from([Status.VIOLATION, Status.UNCHANGED, Status.APPLIED])


@settings(max_examples=300, deadline=None)
@example([(n, Status.VIOLATION, True) for n in (7, 0, 1, 2, 3, 4, 6, 5)]
         + [(6, Status.UNCHANGED, True), (7, Status.UNCHANGED, True)])
@given(st.lists(st.tuples(st.integers(0, 7), _STATUSES, st.booleans()), max_size=40))
def test_dirty_follows_the_rendered_counters_and_names(
        steps: list[tuple[int, Status, bool]]) -> None:
    b = board()
    for name in range(8):  # all matched: a step changes counters only by its status
        observe(b, f"o{name:02d}", Outcome(A, "r", Status.UNCHANGED))
    b.dirty()
    shown = ("matched", "applied", "errors", "wouldApply", "violations", "violating")
    for name, status, written in steps:
        before = {k: v for k, v in rule(b, A).items() if k in shown}
        o = obj(f"o{name:02d}")
        b.observe(key_of(o), Result(key=key_of(o), current=o, desired=o, outcomes=(
            Outcome(A, "r", status, "no" if status is Status.VIOLATION else ""),)),
            written=written)
        after = {k: v for k, v in rule(b, A).items() if k in shown}
        assert b.dirty() == ({A} if before != after else set())


def _state(b: StatusBoard) -> Any:
    """Everything the board holds, as plain values."""
    sets = {ref: (entry.generation, entry.refused, sorted(entry.conflicts.items(), key=str),
                  sorted(entry.oscillating.items(), key=str),
                  {name: (sorted(r.matched, key=str), sorted(r.errors.items(), key=str),
                          sorted(r.would_apply, key=str), sorted(r.violations.items(), key=str),
                          r.validates, r.applied, r.last_error)
                   for name, r in entry.rules.items()})
            for ref, entry in b._sets.items()}
    return sets, dict(b._involved)


_REFS = st.sampled_from([A, B, IDLE, RuleSetRef("ClusterRuleSet", "", "gone")])
_OUTCOMES = st.builds(Outcome, _REFS, st.sampled_from(["r", "s"]), st.sampled_from(list(Status)),
                      st.sampled_from(["", "boom", "bang"]))
_CONFLICTS = st.lists(st.builds(RuleConflict, st.just("/data/x"),
                                st.tuples(_REFS, st.just("r")), st.tuples(_REFS, st.just("s"))),
                      max_size=1)
_STEPS = st.lists(st.tuples(st.sampled_from(["x", "y"]), st.lists(_OUTCOMES, max_size=2),
                            _CONFLICTS, st.booleans()), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_STEPS)
@example([("x", [Outcome(A, "r", Status.UNCHANGED), Outcome(A, "s", Status.UNCHANGED)], [], True),
          ("x", [Outcome(A, "r", Status.UNCHANGED)], [], True)])  # only a drop touches A
@example([("x", [Outcome(A, "r", Status.OSCILLATING, "boom")], [], False),
          ("x", [Outcome(A, "r", Status.OSCILLATING, "boom")], [], False),
          ("x", [Outcome(A, "s", Status.UNCHANGED)], [], False)])
def test_the_one_outcome_shortcut_leaves_the_board_as_the_general_path_does(
        steps: list[tuple[str, list[Outcome], list[RuleConflict], bool]]) -> None:
    # `observe` tells one outcome of one rule set (no conflict, no other rule set
    # involved) without the general path's sets; the board must end up the same
    fast, general = board(), board()
    for b in (fast, general):
        b.loaded(A, generation=2, rules={"r": "", "s": ""})
    for name, outcomes, conflicts, written in steps:
        o = obj(name)
        result = Result(key=key_of(o), current=o, desired=o, outcomes=tuple(outcomes),
                        conflicts=tuple(conflicts))
        fast.observe(key_of(o), result, written=written)
        with general._lock:
            involved = general._involved.pop(key_of(o), None)
            general._observe(key_of(o), result, written, involved or frozenset())
        assert _state(fast) == _state(general)
        assert fast.dirty() == general.dirty()  # each step's own: cleared as it is read
