"""Tests of `make_patch`, `apply_patch`, `changed_paths` and `render_diff`: tables of cases."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from engine.errors import PatchError, Where
from engine.patching import apply_patch, changed_paths, make_patch, render_diff

WHERE = Where(rule_set="defaults", rule="fix-it", field="mutate.jsonPatch")

GUARD = {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}

MAKE_CASES: list[tuple[str, Any, Any, list[dict[str, Any]]]] = [
    ("equal", {"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}, []),
    ("equal with 1 and 1.0", {"a": 1}, {"a": 1.0}, []),
    ("key order does not matter", {"a": 1, "b": 2}, {"b": 2, "a": 1}, []),
    ("replace scalar", {"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
    ("1 becomes true", {"a": 1}, {"a": True}, [{"op": "replace", "path": "/a", "value": True}]),
    ("0 becomes false", {"a": 0}, {"a": False}, [{"op": "replace", "path": "/a", "value": False}]),
    ("null becomes a value", {"a": None}, {"a": 0}, [{"op": "replace", "path": "/a", "value": 0}]),
    ("add key", {}, {"a": {"b": 1}}, [{"op": "add", "path": "/a", "value": {"b": 1}}]),
    ("remove key", {"a": 1, "b": 2}, {"b": 2}, [{"op": "remove", "path": "/a"}]),
    ("remove then add", {"a": 1}, {"b": 1},
     [{"op": "remove", "path": "/a"}, {"op": "add", "path": "/b", "value": 1}]),
    ("escaping / as ~1", {"l": {}}, {"l": {"app.kubernetes.io/name": "x"}},
     [{"op": "add", "path": "/l/app.kubernetes.io~1name", "value": "x"}]),
    ("escaping ~ as ~0", {"l": {"a~b": 1}}, {"l": {"a~b": 2}},
     [{"op": "replace", "path": "/l/a~0b", "value": 2}]),
    ("escaping both, in order", {}, {"~1/": 1}, [{"op": "add", "path": "/~01~1", "value": 1}]),
    ("empty key", {"": 1}, {"": 2}, [{"op": "replace", "path": "/", "value": 2}]),
    ("map becomes list", {"a": {"b": 1}}, {"a": [1]},
     [{"op": "replace", "path": "/a", "value": [1]}]),
    ("list becomes scalar", {"a": [1]}, {"a": "x"},
     [{"op": "replace", "path": "/a", "value": "x"}]),
    ("scalar becomes map", {"a": 1}, {"a": {"b": 1}},
     [{"op": "replace", "path": "/a", "value": {"b": 1}}]),
    ("whole document", {"a": 1}, [1], [{"op": "replace", "path": "", "value": [1]}]),
    ("list item changed", {"c": [{"n": "a", "i": 1}, {"n": "b", "i": 1}]},
     {"c": [{"n": "a", "i": 1}, {"n": "b", "i": 2}]},
     [{"op": "replace", "path": "/c/1/i", "value": 2}]),
    ("list grows", {"c": [1, 2]}, {"c": [1, 2, 3, 4]},
     [{"op": "add", "path": "/c/2", "value": 3}, {"op": "add", "path": "/c/3", "value": 4}]),
    ("list shrinks, removed from the end", {"c": [1, 2, 3, 4]}, {"c": [1, 2]},
     [{"op": "remove", "path": "/c/3"}, {"op": "remove", "path": "/c/2"}]),
    ("list grows and one item changes", {"c": [{"n": "a", "i": 1}]},
     {"c": [{"n": "a", "i": 2}, {"n": "b"}]},
     [{"op": "replace", "path": "/c/0/i", "value": 2},
      {"op": "add", "path": "/c/1", "value": {"n": "b"}}]),
    ("shift replaces the list", {"c": [1, 2, 3]}, {"c": [2, 3]},
     [{"op": "replace", "path": "/c", "value": [2, 3]}]),
    ("emptied list is replaced", {"c": [1, 2, 3]}, {"c": []},
     [{"op": "replace", "path": "/c", "value": []}]),
    ("filled list is replaced", {"c": []}, {"c": [1, 2]},
     [{"op": "replace", "path": "/c", "value": [1, 2]}]),
]


@pytest.mark.parametrize(("current", "desired", "expected"), [case[1:] for case in MAKE_CASES],
                         ids=[case[0] for case in MAKE_CASES])
def test_make_patch(current: Any, desired: Any, expected: list[dict[str, Any]]) -> None:
    ops = make_patch(current, desired)
    assert ops == expected
    assert [type(op.get("value")) for op in ops] == [type(op.get("value")) for op in expected]
    assert apply_patch(current, ops, where=WHERE) == desired
    assert jsonpatch.apply_patch(current, ops) == desired  # the reference applier agrees


def with_rv(body: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "x", "resourceVersion": "42"}, **body}


def test_guard_leads_a_patch_when_there_is_a_resource_version() -> None:
    ops = make_patch(with_rv({"spec": {"a": 1}}), with_rv({"spec": {"a": 2}}))
    assert ops == [GUARD, {"op": "replace", "path": "/spec/a", "value": 2}]


@pytest.mark.parametrize(("current", "desired", "guard"), [
    (with_rv({"spec": {"a": 1}}), with_rv({"spec": {"a": 1}}), True),  # converged: no guard
    (with_rv({"spec": {"a": 1}}), with_rv({"spec": {"a": 2}}), False),  # turned off
    ({"metadata": {"name": "x"}, "spec": 1}, {"metadata": {"name": "x"}, "spec": 2}, True),
    ({"metadata": {"resourceVersion": None}, "a": 1},
     {"metadata": {"resourceVersion": None}}, True),
    ({"metadata": "odd", "a": 1}, {"metadata": "odd"}, True),
])
def test_no_guard(current: Any, desired: Any, guard: bool) -> None:
    ops = make_patch(current, desired, guard_resource_version=guard)
    assert all(op["op"] != "test" for op in ops)


def test_make_patch_copies_values() -> None:
    desired = {"a": {"b": [1]}}
    ops = make_patch({}, desired)
    ops[0]["value"]["b"].append(2)
    assert desired == {"a": {"b": [1]}}


def test_make_patch_does_not_mutate() -> None:
    current, desired = with_rv({"a": [1, 2, {"x": 1}]}), with_rv({"a": [1], "b": 2})
    saved = copy.deepcopy((current, desired))
    make_patch(current, desired)
    assert (current, desired) == saved


DOC = {"a": {"b": [1, 2, 3], "c": "x"}, "l/k": {"t~": 1}, "n": None}

APPLY_CASES: list[tuple[str, list[dict[str, Any]], Any]] = [
    ("add key", [{"op": "add", "path": "/d", "value": 1}], {**DOC, "d": 1}),
    ("add replaces existing key", [{"op": "add", "path": "/n", "value": 1}], {**DOC, "n": 1}),
    ("add inserts in a list", [{"op": "add", "path": "/a/b/1", "value": 9}],
     {**DOC, "a": {"b": [1, 9, 2, 3], "c": "x"}}),
    ("add at the list's end", [{"op": "add", "path": "/a/b/3", "value": 9}],
     {**DOC, "a": {"b": [1, 2, 3, 9], "c": "x"}}),
    ("add with -", [{"op": "add", "path": "/a/b/-", "value": 9}],
     {**DOC, "a": {"b": [1, 2, 3, 9], "c": "x"}}),
    ("add null", [{"op": "add", "path": "/z", "value": None}], {**DOC, "z": None}),
    ("add whole document", [{"op": "add", "path": "", "value": [1]}], [1]),
    ("remove key", [{"op": "remove", "path": "/n"}], {"a": DOC["a"], "l/k": DOC["l/k"]}),
    ("remove list item", [{"op": "remove", "path": "/a/b/0"}],
     {**DOC, "a": {"b": [2, 3], "c": "x"}}),
    ("replace escaped", [{"op": "replace", "path": "/l~1k/t~0", "value": 2}],
     {**DOC, "l/k": {"t~": 2}}),
    ("replace whole document", [{"op": "replace", "path": "", "value": {"x": 1}}], {"x": 1}),
    ("move", [{"op": "move", "from": "/a/c", "path": "/c"}],
     {**DOC, "a": {"b": [1, 2, 3]}, "c": "x"}),
    ("move within a list", [{"op": "move", "from": "/a/b/0", "path": "/a/b/2"}],
     {**DOC, "a": {"b": [2, 3, 1], "c": "x"}}),
    ("move onto itself", [{"op": "move", "from": "/a", "path": "/a"}], DOC),
    ("copy", [{"op": "copy", "from": "/a/b", "path": "/b"}], {**DOC, "b": [1, 2, 3]}),
    ("test passes", [{"op": "test", "path": "/a/b", "value": [1, 2, 3]},
                     {"op": "test", "path": "/n", "value": None}], DOC),
    ("sequence sees earlier ops", [{"op": "add", "path": "/m", "value": {}},
                                   {"op": "add", "path": "/m/k", "value": 1},
                                   {"op": "replace", "path": "/m/k", "value": 2}],
     {**DOC, "m": {"k": 2}}),
    ("copy is independent", [{"op": "copy", "from": "/a", "path": "/b"},
                             {"op": "add", "path": "/b/b/-", "value": 4}],
     {**DOC, "b": {"b": [1, 2, 3, 4], "c": "x"}}),
    ("no ops", [], DOC),
]


@pytest.mark.parametrize(("ops", "expected"), [case[1:] for case in APPLY_CASES],
                         ids=[case[0] for case in APPLY_CASES])
def test_apply_patch(ops: list[dict[str, Any]], expected: Any) -> None:
    doc = copy.deepcopy(DOC)
    assert apply_patch(doc, ops, where=WHERE) == expected
    assert doc == DOC  # not mutated
    assert jsonpatch.apply_patch(DOC, ops) == expected  # the reference applier agrees


def test_apply_patch_shares_only_untouched_subtrees() -> None:
    doc = copy.deepcopy(DOC)
    value = {"k": [1]}
    result = apply_patch(doc, [{"op": "add", "path": "/a/v", "value": value}], where=WHERE)
    assert result["l/k"] is doc["l/k"]
    assert result["a"] is not doc["a"]
    assert result["a"]["v"] == value and result["a"]["v"] is not value


ERROR_CASES: list[tuple[str, Any, str]] = [
    ("not a map", ["add"], "operation 0: an operation must be a map, not str"),
    ("unknown op", [{"op": "merge", "path": "/a"}], "unknown op 'merge'"),
    ("missing op", [{"path": "/a"}], "unknown op None"),
    ("missing value", [{"op": "add", "path": "/x"}], "operation 0 (add '/x'): 'value' is missing"),
    ("missing from", [{"op": "move", "path": "/x"}], "'from' is missing"),
    ("path not a string", [{"op": "remove", "path": 3}], "'path' must be a string, not int"),
    ("path without slash", [{"op": "remove", "path": "a"}], "it must be empty or start with '/'"),
    ("bad escape", [{"op": "remove", "path": "/a~2"}], "not '~0' or '~1'"),
    ("remove missing key", [{"op": "remove", "path": "/a/zz"}],
     "operation 0 (remove '/a/zz'): /a/zz does not exist"),
    ("replace missing key", [{"op": "replace", "path": "/q", "value": 1}], "/q does not exist"),
    ("add under missing parent", [{"op": "add", "path": "/q/r", "value": 1}], "/q does not exist"),
    ("add under a scalar", [{"op": "add", "path": "/a/c/r", "value": 1}],
     "/a/c is not a container"),
    ("replace under a scalar", [{"op": "replace", "path": "/a/c/r", "value": 1}],
     "/a/c/r does not exist: its parent is not a container"),
    ("index out of range", [{"op": "add", "path": "/a/b/5", "value": 1}],
     "index 5 is out of range"),
    ("replace past the end", [{"op": "replace", "path": "/a/b/3", "value": 1}],
     "index 3 is out of range"),
    ("leading zero", [{"op": "remove", "path": "/a/b/01"}], "'01' is not a list index"),
    ("dash outside add", [{"op": "remove", "path": "/a/b/-"}], "'-' is not a list index"),
    ("negative index", [{"op": "remove", "path": "/a/b/-1"}], "'-1' is not a list index"),
    ("remove the document", [{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ("move into a child", [{"op": "move", "from": "/a", "path": "/a/x"}],
     "into one of its own children"),
    ("move from missing", [{"op": "move", "from": "/zz", "path": "/y"}], "/zz does not exist"),
    ("test fails", [{"op": "test", "path": "/a/c", "value": "y"}],
     "test failed: the value is 'x', not 'y'"),
    ("test 1 is not true",
     [{"op": "add", "path": "/o", "value": 1}, {"op": "test", "path": "/o", "value": True}],
     "operation 1 (test '/o'): test failed"),
    ("test of a missing path", [{"op": "test", "path": "/zz", "value": None}],
     "/zz does not exist"),
    ("later op fails", [{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/y"}],
     "operation 1 (remove '/y')"),
]


@pytest.mark.parametrize(("ops", "message"), [case[1:] for case in ERROR_CASES],
                         ids=[case[0] for case in ERROR_CASES])
def test_apply_patch_errors(ops: Any, message: str) -> None:
    doc = copy.deepcopy(DOC)
    with pytest.raises(PatchError) as caught:
        apply_patch(doc, ops, where=WHERE)
    assert message in str(caught.value)
    prefix = "rule set 'defaults', rule 'fix-it', field mutate.jsonPatch: "
    assert str(caught.value).startswith(prefix)
    assert doc == DOC


@pytest.mark.parametrize(("patch", "paths"), [
    ([], []),
    ([GUARD, {"op": "replace", "path": "/spec/a", "value": 1}], ["/spec/a"]),
    ([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/a"}], ["/a"]),
    ([{"op": "move", "from": "/a", "path": "/b"}, {"op": "copy", "from": "/c", "path": "/d"}],
     ["/a", "/b", "/d"]),
    ([{"op": "test", "path": "/x", "value": 1}], []),
])
def test_changed_paths(patch: list[dict[str, Any]], paths: list[str]) -> None:
    assert changed_paths(patch) == paths


def test_render_diff() -> None:
    before = {"metadata": {"name": "web", "labels": {"z": "1", "a": "2"}}, "spec": {"replicas": 1}}
    after = {"metadata": {"name": "web", "labels": {"z": "1", "a": "2", "owner": "t"}},
             "spec": {"replicas": 2}}
    text = render_diff(before, after, before_name="Deployment/web", after_name="Deployment/web")
    assert text.splitlines() == [
        "--- Deployment/web",
        "+++ Deployment/web",
        "@@ -3,5 +3,6 @@",
        "   labels:",
        "     z: '1'",
        "     a: '2'",
        "+    owner: t",
        " spec:",
        "-  replicas: 1",
        "+  replicas: 2",
    ]
    assert render_diff(before, copy.deepcopy(before)) == ""


def test_render_diff_of_a_new_object() -> None:
    text = render_diff(None, {"kind": "ConfigMap"})
    assert text.splitlines()[2:] == ["@@ -0,0 +1 @@", "+kind: ConfigMap"]
