"""`Result` and `ChildPlan` write their fields in their own `__init__` (one call, not one
`object.__setattr__` per field): they must stay exactly the frozen dataclasses they
declare — the same parameters and defaults, fields, equality, hash, repr, `replace`,
immutability and pickling."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.evaluate.outcomes import ChildAction, ChildPlan, Outcome, Result, Status
from engine.objects import GVK, ObjectKey
from engine.rules.model import RuleSetRef

KEY = ObjectKey(GVK("apps", "v1", "Deployment"), "a", "web")
REF = RuleSetRef("RuleSet", "a", "team")

_OBJ = st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
_OPS = st.lists(st.fixed_dictionaries({"op": st.just("add"), "path": st.text(max_size=3)}),
                max_size=2).map(tuple)


def _declared(cls: type) -> list[tuple[str, Any]]:
    """The parameters the frozen dataclass's own __init__ would take, with defaults."""
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out.append((f.name, f.default))
        elif f.default_factory is not dataclasses.MISSING:
            out.append((f.name, f.default_factory()))
        else:
            out.append((f.name, inspect.Parameter.empty))
    return out


@pytest.mark.parametrize("cls", [Result, ChildPlan])
def test_init_takes_the_declared_fields_with_their_defaults(cls: type) -> None:
    given_ = [(p.name, p.default) for p in inspect.signature(cls).parameters.values()]
    assert given_ == _declared(cls)


@given(current=_OBJ, desired=_OBJ, patch=_OPS, status_patch=_OPS, oscillating=st.booleans(),
       audit_patch=_OPS, lookups=st.frozensets(st.sampled_from([KEY]), max_size=1),
       outcome_status=st.sampled_from(list(Status)), message=st.text(max_size=4),
       action=st.sampled_from(list(ChildAction)), existing=st.none() | _OBJ,
       keyword=st.booleans())
def test_values_behave_as_the_frozen_dataclasses(
        current: dict[str, int], desired: dict[str, int], patch: tuple[Any, ...],
        status_patch: tuple[Any, ...], oscillating: bool, audit_patch: tuple[Any, ...],
        lookups: frozenset[ObjectKey], outcome_status: Status, message: str,
        action: ChildAction, existing: dict[str, int] | None, keyword: bool) -> None:
    child_args = {"action": action, "key": KEY, "rule_set": REF, "rule": "r",
                  "desired": desired, "patch": patch, "existing": existing}
    child = ChildPlan(**child_args) if keyword else ChildPlan(*child_args.values())
    outcome = Outcome(REF, "r", outcome_status, message)
    args = {"key": KEY, "current": current, "desired": desired, "patch": patch,
            "status_patch": status_patch, "children": (child,), "outcomes": (outcome,),
            "conflicts": (), "oscillating": oscillating, "audit_patch": audit_patch,
            "lookups": lookups}
    result = Result(**args) if keyword else Result(*args.values())
    for value, fields in ((result, args), (child, child_args)):
        assert {f.name: getattr(value, f.name) for f in dataclasses.fields(value)} == fields
        assert vars(value) == fields
        assert repr(value) == f"{type(value).__name__}(" + ", ".join(
            f"{name}={field!r}" for name, field in fields.items()) + ")"
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.rule = "other"  # type: ignore[union-attr]
        assert pickle.loads(pickle.dumps(value)) == value
    assert result == Result(**args) and child == ChildPlan(**child_args)
    assert result != Result(**{**args, "oscillating": not oscillating})
    assert dataclasses.replace(result, outcomes=()) == Result(**{**args, "outcomes": ()})
    assert dataclasses.replace(child, rule="s") == ChildPlan(**{**child_args, "rule": "s"})
    assert hash(ChildPlan(action, KEY, REF, "r", None)) == hash(
        ChildPlan(action, KEY, REF, "r", None))
    bare = Result(KEY, current, desired)
    assert (bare.patch, bare.children, bare.outcomes, bare.oscillating, bare.lookups) == (
        (), (), (), False, frozenset())
