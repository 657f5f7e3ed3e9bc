"""Laying a generated child onto nothing in one walk gives exactly what merge gives.

`engine.patching.lay`: on random children (maps with nulls, empty maps, `$keep` and
`$patch` keys, lists with and without their keys, repeated keys, ownerReferences of
every sort) and schemas (none, ConfigMap, Deployment, ResourceQuota), whenever `lay`
answers, its object equals ``merge({}, child)``'s — with the same keys in the same
order — and its record equals `owned.field_set` of merge's assignments; where merge
raises, `lay` must have declined.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import MergeError, Where
from engine.objects import GVK
from engine.patching import merge, owned
from engine.patching.lay import lay
from engine.schemas import Node
from engine.schemas.catalogue import builtin

WHERE = Where(rule_set="random", rule="r")
OWNED = ("metadata", "annotations", "edict.dev/owned-fields")
KEYS = ["metadata", "labels", "annotations", "name", "namespace", "data", "spec", "hard",
        "selector", "matchLabels", "replicas", "ownerReferences", "edict.dev/owned-fields",
        "$keep", "$patch", "a"]
SCALARS = st.one_of(st.text(max_size=3), st.integers(-2, 2), st.booleans(),
                    st.sampled_from([1.0, 0.5, "1", 1]))
REF_KEYS = ["uid", "name", "kind", "apiVersion", "controller", "$patch", "$keep"]
REFS = st.lists(st.one_of(
    st.dictionaries(st.sampled_from(REF_KEYS), st.one_of(st.none(), SCALARS), max_size=4),
    st.fixed_dictionaries({"uid": st.sampled_from(["u1", "u2", 1, "1"]),
                           "name": st.one_of(st.none(), SCALARS)}),
    st.fixed_dictionaries({"uid": st.sampled_from(["u1", "u2"]),
                           "extra": st.dictionaries(st.sampled_from(KEYS), SCALARS)}),
    SCALARS), max_size=3)
JSON = st.recursive(st.one_of(st.none(), SCALARS, REFS),
                    lambda inner: st.one_of(st.lists(inner, max_size=2),
                                            st.dictionaries(st.sampled_from(KEYS), inner,
                                                            max_size=4)),
                    max_leaves=12)
SCHEMAS: dict[str, Node | None] = {
    "none": None,
    "ConfigMap": builtin().for_kind(GVK("", "v1", "ConfigMap")),
    "Deployment": builtin().for_kind(GVK("apps", "v1", "Deployment")),
    "ResourceQuota": builtin().for_kind(GVK("", "v1", "ResourceQuota")),
}


def children() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly child-like: metadata with labels, annotations and ownerReferences."""
    metadata = st.fixed_dictionaries({"name": SCALARS}, optional={
        "labels": st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), SCALARS)),
        "annotations": st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), SCALARS)),
        "ownerReferences": REFS, "namespace": st.one_of(st.none(), SCALARS)})
    child_like = st.fixed_dictionaries({"metadata": metadata}, optional={
        "data": JSON, "spec": JSON, "a": JSON})
    return st.one_of(child_like, st.dictionaries(st.sampled_from(KEYS), JSON, max_size=4))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(children(), st.sampled_from(sorted(SCHEMAS)))
def test_lay_is_merge_onto_nothing(child: dict[str, Any], schema_name: str) -> None:
    schema = SCHEMAS[schema_name]
    fast = lay(child, schema=schema, skip=[OWNED])
    try:
        laid, assignments = merge({}, child, where=WHERE, schema=schema)
    except MergeError:
        assert fast is None, child
        return
    if fast is None:
        return
    record = owned.field_set(assignments, skip=[OWNED])
    assert fast[0] == laid
    assert json.dumps(fast[0]) == json.dumps(laid)  # same keys in the same order
    assert fast[1] == record
    assert owned.encode(fast[1]) == owned.encode(record)


@pytest.mark.parametrize("child", [
    {"metadata": {"name": "x", "ownerReferences": [{"uid": "u", "name": "t"}]},
     "data": {"a": "1", "b": None, "c": {}}},
    {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
     "spec": {"hard": {"pods": "50"}}},
])
def test_lay_answers_for_plain_children(child: dict[str, Any]) -> None:
    schema = SCHEMAS["ConfigMap"]
    fast = lay(child, schema=schema, skip=[OWNED])
    assert fast is not None
    laid, assignments = merge({}, child, where=WHERE, schema=schema)
    assert fast == (laid, owned.field_set(assignments, skip=[OWNED]))


@pytest.mark.parametrize("child", [
    {"metadata": {"name": "x"}, "data": {"$keep": "v"}},  # a keep marker: resolved first
    {"metadata": {"name": "x", "ownerReferences": [{"name": "t"}]}},  # no uid
    {"metadata": {"name": "x", "ownerReferences": [{"uid": "u"}, {"uid": "u"}]}},
    {"metadata": {"name": "x", "ownerReferences": [{"uid": 1}, {"uid": "1"}]}},
    {"metadata": {"name": "x"}, "data": ["a"]},  # an unkeyed list
    {"metadata": {"name": "x"}, "data": {1: "a"}},  # a key that is no string
    {"metadata": {"name": "x"}, "data": {"a": object()}},  # not JSON data
])
def test_lay_declines_what_merge_must_decide(child: dict[str, Any]) -> None:
    assert lay(child, schema=SCHEMAS["ConfigMap"], skip=[OWNED]) is None
