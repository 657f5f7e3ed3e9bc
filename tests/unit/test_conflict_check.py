"""The engine's one conflict check (two rules of one pass asserting incompatible things).

A later rule conflicts with an earlier one when it sets a path the earlier one set to a
different value, or sets something beneath a path the earlier one set to a scalar, a
list or `{}`-free value (a deletion above is no conflict: both leave the path as the
later rule says). The check runs inside `Engine.evaluate`, so it is tested there: a
table of the cases, and a property against an independent oracle over random partials.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate.engine import Engine
from engine.evaluate.world import ManifestWorld
from engine.patching import json_equal
from engine.rules.load import parse_rule_set

WIDGETS = {"resources": [{"apiVersion": "example.com/v1", "kinds": ["Widget"]}]}


def conflicts(earlier: dict[str, Any], later: dict[str, Any],
              spec: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(path, winner, loser) of every conflict between rule `first` setting `earlier`
    and rule `second` setting `later` under `spec` of one Widget."""
    rule_set = parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "s"},
        "spec": {"rules": [
            {"name": "first", "match": WIDGETS, "mutate": {"template": {"spec": earlier}}},
            {"name": "second", "match": WIDGETS, "mutate": {"template": {"spec": later}}},
        ]}}, source="s.yaml")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": "n"}, "spec": spec or {}}
    result = Engine([rule_set]).evaluate(widget, world=ManifestWorld([widget]))
    return [(c.path, c.winner[1], c.loser[1]) for c in result.conflicts]


CASES = [
    ("same path, different values", {"a": 1}, {"a": 2}, ["/spec/a"]),
    ("same path, same value", {"a": 1}, {"a": 1}, []),
    ("1 and true differ", {"a": 1}, {"a": True}, ["/spec/a"]),
    ("set beneath an earlier scalar", {"a": 1}, {"a": {"b": 2}}, ["/spec/a/b"]),
    ("set beneath an earlier list", {"a": [1]}, {"a": {"b": 2}}, ["/spec/a/b"]),
    ("'exists' then a scalar", {"a": {}}, {"a": 1}, ["/spec/a"]),
    ("'exists' then set beneath", {"a": {}}, {"a": {"b": 1}}, []),
    ("a scalar above an earlier set", {"a": {"b": 2}}, {"a": 1}, []),
    ("delete, then set beneath", {"a": None}, {"a": {"b": 1}}, []),
    ("delete, then set", {"a": None}, {"a": 1}, ["/spec/a"]),
    ("disjoint paths", {"a": {"b": 1}}, {"a": {"c": 2}}, []),
]


@pytest.mark.parametrize(("earlier", "later", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_conflict_table(earlier: dict[str, Any], later: dict[str, Any],
                        expected: list[str]) -> None:
    assert conflicts(earlier, later) == [(path, "second", "first") for path in expected]


def leaves(partial: dict[str, Any], above: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """What a partial asserts: its non-map values and its empty maps, by path."""
    out: dict[tuple[str, ...], Any] = {}
    for key, value in partial.items():
        if isinstance(value, dict) and value:
            out.update(leaves(value, (*above, key)))
        else:
            out[(*above, key)] = value
    return out


def oracle(earlier: dict[str, Any], later: dict[str, Any]) -> set[str]:
    before = leaves(earlier)
    found = set()
    for path, value in leaves(later).items():
        same = path in before and not json_equal(before[path], value)
        beneath = any(path[:cut] in before and before[path[:cut]] is not None
                      and not isinstance(before[path[:cut]], dict)
                      for cut in range(1, len(path)))
        if same or beneath:
            found.add("/spec/" + "/".join(path))
    return found


KEYS = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.integers(0, 2), st.sampled_from(["x", "y"]), st.booleans(),
                    st.none(), st.just({}), st.lists(st.integers(0, 1), max_size=2))
PARTIALS = st.recursive(SCALARS, lambda inner: st.dictionaries(KEYS, inner, min_size=1,
                                                               max_size=3), max_leaves=6)
TOP = st.dictionaries(KEYS, PARTIALS, min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(earlier=TOP, later=TOP)
def test_conflicts_match_the_oracle(earlier: dict[str, Any], later: dict[str, Any]) -> None:
    found = conflicts(earlier, later)
    assert {path for path, _, _ in found} == oracle(earlier, later)
    assert all((winner, loser) == ("second", "first") for _, winner, loser in found)
