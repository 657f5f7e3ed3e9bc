"""`Pass.again` makes what the constructor makes for the next pass of an evaluation.

The engine makes its first pass with the constructor and the others (the confirming
pass, the final pass of generate and validate rules) with `again`, which sets the slots
itself: every slot must be set, the state shared by the passes of one evaluation the
very same objects, each pass's own records new and empty.
"""

from __future__ import annotations

import pytest

from engine.evaluate.request import Request
from engine.evaluate.run import Pass
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK

SHARED = ("world", "ns_obj", "lookups", "bound", "schema", "request", "gvk", "seen")
OWN = ("assigned", "conflicts", "changers", "views", "named_values")


@pytest.mark.parametrize("makers", [None, True, False])
@pytest.mark.parametrize("alone", [None, frozenset(), frozenset({1, 2})])
def test_again_is_the_constructor_with_the_same_arguments(
        makers: bool | None, alone: frozenset[int] | None) -> None:
    world = ManifestWorld()
    request = Request.__new__(Request)
    first = Pass(world, {"kind": "Namespace"}, set(), {}, schema=None, request=request,
                 gvk=GVK("apps", "v1", "Deployment"), makers=False,
                 alone=frozenset({3}), seen={})
    # the first pass's own records, which the next must not see
    first.assigned[("a",)] = (None, 1)
    first.changers.add(1)
    first.views[(1, ("x",))] = ({}, {})
    first.named_values[(1, 2)] = 3
    again = first.again(makers=makers, alone=alone)
    made = Pass(first.world, first.ns_obj, first.lookups, first.bound, schema=first.schema,
                request=first.request, gvk=first.gvk,
                makers=first.makers if makers is None else makers,
                alone=first.alone if alone is None else alone, seen=first.seen)
    assert set(SHARED) | set(OWN) | {"makers", "alone"} == set(Pass.__slots__)
    for name in SHARED:
        assert getattr(again, name) is getattr(first, name)
    for name in OWN:
        assert getattr(again, name) == getattr(made, name)
        assert not getattr(again, name)
        assert getattr(again, name) is not getattr(first, name)
    assert again.makers is made.makers
    assert again.alone == made.alone
