"""`split_patch`: one guarded patch for the object, one for its status, whatever the two
objects share (its quick path, taken when both have the same status value or neither
has one, gives what splitting both objects gives)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate.engine import split_patch
from engine.patching import make_patch

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.text(max_size=2))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
    max_leaves=8)
OBJECTS = st.fixed_dictionaries(
    {"metadata": st.fixed_dictionaries({"name": st.just("x"),
                                        "resourceVersion": st.sampled_from(["1", "2"])})},
    optional={"spec": VALUES, "status": VALUES, "data": VALUES})


def _split_by_hand(current: dict[str, Any], desired: dict[str, Any]) -> tuple[Any, Any]:
    """The two patches from the two objects split: without status, and metadata with
    status (when the status values differ)."""
    main = make_patch({k: v for k, v in current.items() if k != "status"},
                      {k: v for k, v in desired.items() if k != "status"})
    if current.get("status") == desired.get("status"):
        return main, []
    meta = {"metadata": current["metadata"]}
    return main, make_patch({**meta, **({"status": current["status"]}
                                        if "status" in current else {})},
                            {**meta, **({"status": desired["status"]}
                                        if "status" in desired else {})})


@settings(max_examples=400, deadline=None)
@given(OBJECTS, OBJECTS, st.booleans())
def test_split_patch_is_the_two_patches(current: dict[str, Any], other: dict[str, Any],
                                        share_status: bool) -> None:
    desired = copy.deepcopy(other)
    if share_status and "status" in current:  # the quick path: the very status value
        desired["status"] = current["status"]
    patch, status_patch = split_patch(current, desired)
    expected, expected_status = _split_by_hand(current, desired)
    assert patch == expected
    assert status_patch == expected_status
    assert not any(op["path"].startswith("/status") for op in patch)


def test_an_object_equal_to_itself_needs_no_patch() -> None:
    obj = {"metadata": {"name": "x", "resourceVersion": "1"}, "status": None}
    assert split_patch(obj, obj) == ([], [])
    assert split_patch(obj, {"metadata": {"name": "x", "resourceVersion": "1"}}) == ([], [])
