"""Tests of `engine.patching.merge` and of assignment conflicts: one table per rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import MergeError, Where
from engine.patching import DELETE, Assignment, format_path, merge
from engine.patching.assignments import ItemKey
from engine.schemas import Node, Table

WHERE = Where(rule_set="defaults", rule="owner-label", field="mutate.template")

BY_NAME = {"l": "map", "k": ["name"]}
# A small kind with the markers of the built-in ones (containers and env by name, ports
# by containerPort+protocol with protocol defaulting to TCP, volumeMounts by mountPath,
# tolerations atomic, finalizers a set, an atomic map), plus fields with no schema.
TABLE = Table({
    "t.Root": {"f": {
        "spec": "t.DeploySpec", "volumes": {**BY_NAME, "i": "any"},
        "env": {**BY_NAME, "i": "t.Env"}, "c": {**BY_NAME, "i": "any"},
        "finalizers": {"l": "set", "i": "string"}, "selector": {"m": "atomic", "v": "string"},
        "metadata": {"f": {"labels": {"v": "string"}, "name": "string"}},
    }},
    "t.DeploySpec": {"f": {"template": {"f": {"spec": "t.PodSpec"}}}},
    "t.PodSpec": {"f": {"containers": {**BY_NAME, "i": "t.Container"},
                        "tolerations": {"l": "atomic", "i": "any"}}},
    "t.Container": {"f": {
        "name": "string", "image": "string", "env": {**BY_NAME, "i": "t.Env"},
        "ports": {"l": "map", "k": ["containerPort", "protocol"], "i": "t.Port"},
        "volumeMounts": {"l": "map", "k": ["mountPath"], "i": "any"},
        "command": {"i": "string"}, "args": {"i": "string"}}},
    "t.Port": {"f": {"containerPort": "integer", "name": "string",
                     "protocol": {"s": "string", "d": "TCP"}}},
    "t.Env": {"f": {"name": "string", "value": "string", "valueFrom": "any"}},
})
SCHEMA: Node | None = TABLE.node("t.Root")


def merged(target: Any, partial: Any) -> Any:
    return merge(target, partial, where=WHERE, schema=SCHEMA)[0]


def assigned(target: Any, partial: Any) -> dict[tuple[Any, ...], Any]:
    return {a.path: a.value for a in merge(target, partial, where=WHERE, schema=SCHEMA)[1]}


def name(value: str) -> ItemKey:
    return ItemKey.of_keys({"name": value})


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


MERGE_CASES: list[tuple[str, Any, Any, Any]] = [
    # maps
    ("maps merge", {"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}),
    ("new key", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ("new nested map", {}, {"m": {"l": {"x": "y"}}}, {"m": {"l": {"x": "y"}}}),
    ("empty partial", {"a": 1}, {}, {"a": 1}),
    ("empty map kept", {"a": {"b": 1}}, {"a": {}}, {"a": {"b": 1}}),
    ("empty map created", {}, {"a": {}}, {"a": {}}),
    # scalars
    ("scalar replaces", {"a": 1}, {"a": 2}, {"a": 2}),
    ("string replaces", {"a": "x"}, {"a": "y"}, {"a": "y"}),
    ("bool is not int", {"a": 1}, {"a": True}, {"a": True}),
    ("float replaces", {"a": 1}, {"a": 1.5}, {"a": 1.5}),
    ("escaping keys", {}, {"metadata": {"labels": {"app.kubernetes.io/name": "w"}}},
     {"metadata": {"labels": {"app.kubernetes.io/name": "w"}}}),
    # null deletes
    ("null deletes", {"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ("null on absent key", {"b": 2}, {"a": None}, {"b": 2}),
    ("null deletes nested", {"m": {"a": 1, "b": 2}}, {"m": {"a": None}}, {"m": {"b": 2}}),
    ("null deletes a map", {"m": {"a": 1}, "k": 1}, {"m": None}, {"k": 1}),
    ("null dropped from new map", {}, {"m": {"a": None, "b": 1}}, {"m": {"b": 1}}),
    ("null dropped from map onto scalar", {"m": 3}, {"m": {"a": None}}, {"m": {}}),
    # lists replace
    ("list replaces", {"a": [1, 2, 3]}, {"a": [4]}, {"a": [4]}),
    ("empty list replaces", {"a": [1]}, {"a": []}, {"a": []}),
    ("list of unnamed maps replaces", {"t": [{"key": "a"}]}, {"t": [{"key": "b"}]},
     {"t": [{"key": "b"}]}),
    ("list with null item kept", {}, {"a": [1, None]}, {"a": [1, None]}),
    ("maps in replaced lists lose nulls", {}, {"a": [{"k": None, "v": 1}]}, {"a": [{"v": 1}]}),
    ("a list the schema does not know replaces, named items or not",
     {"a": [{"name": "x", "v": 1}]}, {"a": [{"name": "y"}]}, {"a": [{"name": "y"}]}),
    ("an atomic list replaces", pod({"name": "app", "tolerations": [{"key": "a"}]}),
     {"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}},
     {"spec": {"template": {"spec": {"containers": [{"name": "app", "tolerations": [
         {"key": "a"}]}], "tolerations": [{"key": "b"}]}}}}),
    ("an atomic map replaces", {"selector": {"a": "1", "b": "2"}}, {"selector": {"c": "3"}},
     {"selector": {"c": "3"}}),
    ("a granular map merges", {"metadata": {"labels": {"a": "1"}}},
     {"metadata": {"labels": {"b": "2"}}}, {"metadata": {"labels": {"a": "1", "b": "2"}}}),
    # sets
    ("a set unions", {"finalizers": ["a", "b"]}, {"finalizers": ["c", "a"]},
     {"finalizers": ["c", "a", "b"]}),
    ("a set onto nothing", {}, {"finalizers": ["x"]}, {"finalizers": ["x"]}),
    ("a set keeps what it has", {"finalizers": ["a", "b"]}, {"finalizers": ["b"]},
     {"finalizers": ["a", "b"]}),
    # keyed lists: several keys and defaults
    ("an unnamed port is kept beside a named one",
     pod({"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}]}),
     pod({"name": "app", "ports": [{"name": "metrics", "containerPort": 9090}]}),
     pod({"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                   {"name": "metrics", "containerPort": 9090}]})),
    ("a missing protocol key takes its default TCP",
     pod({"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "a"}]}),
     pod({"name": "app", "ports": [{"containerPort": 80, "name": "b"}]}),
     pod({"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "b"}]})),
    ("same port, other protocol: a new item",
     pod({"name": "app", "ports": [{"containerPort": 53, "protocol": "TCP"}]}),
     pod({"name": "app", "ports": [{"containerPort": 53, "protocol": "UDP"}]}),
     pod({"name": "app", "ports": [{"containerPort": 53, "protocol": "TCP"},
                                   {"containerPort": 53, "protocol": "UDP"}]})),
    ("volumeMounts by mountPath: a second mount of one volume",
     pod({"name": "app", "volumeMounts": [{"name": "certs", "mountPath": "/other",
                                           "subPath": "a"}]}),
     pod({"name": "app", "volumeMounts": [{"name": "certs", "mountPath": "/etc/ssl/certs"}]}),
     pod({"name": "app", "volumeMounts": [
         {"name": "certs", "mountPath": "/other", "subPath": "a"},
         {"name": "certs", "mountPath": "/etc/ssl/certs"}]})),
    # named lists
    ("named item merged in place",
     pod({"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}),
     pod({"name": "app", "image": "a:2"}),
     pod({"name": "app", "image": "a:2"}, {"name": "side", "image": "s:1"})),
    ("new items go where server-side apply puts them",
     pod({"name": "app"}),
     pod({"name": "z"}, {"name": "app", "image": "a"}, {"name": "b"}),
     pod({"name": "z"}, {"name": "app", "image": "a"}, {"name": "b"})),
    ("shared items in the partial's order, the target's own keep their places",
     pod({"name": "a"}, {"name": "x"}, {"name": "b"}, {"name": "y"}),
     pod({"name": "b"}, {"name": "n"}, {"name": "a"}),
     pod({"name": "x"}, {"name": "b"}, {"name": "y"}, {"name": "n"}, {"name": "a"})),
    ("nested named lists: env merged by name",
     pod({"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
     pod({"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}),
     pod({"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                                 {"name": "C", "value": "4"}]})),
    ("env: value replaced by valueFrom",
     pod({"name": "app", "env": [{"name": "A", "value": "1"}]}),
     pod({"name": "app", "env": [{"name": "A", "value": None,
                                  "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}),
     pod({"name": "app", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]})),
    ("ports merged by containerPort and protocol, not by name",
     pod({"name": "app", "ports": [{"name": "http", "containerPort": 80}]}),
     pod({"name": "app", "ports": [{"name": "http", "containerPort": 8080},
                                   {"name": "metrics", "containerPort": 9090}]}),
     pod({"name": "app", "ports": [{"name": "http", "containerPort": 80},
                                   {"name": "http", "containerPort": 8080},
                                   {"name": "metrics", "containerPort": 9090}]})),
    ("volumes merged by name",
     {"volumes": [{"name": "cache", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "a"}}]},
     {"volumes": [{"name": "cfg", "configMap": {"name": "b"}}, {"name": "tmp", "emptyDir": {}}]},
     {"volumes": [{"name": "cache", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "b"}},
                  {"name": "tmp", "emptyDir": {}}]}),
    ("null deletes a field of an item",
     pod({"name": "app", "image": "a", "command": ["x"]}),
     pod({"name": "app", "command": None}),
     pod({"name": "app", "image": "a"})),
    ("$patch: delete removes an item",
     pod({"name": "app"}, {"name": "istio-proxy", "image": "p"}),
     pod({"name": "istio-proxy", "$patch": "delete"}),
     pod({"name": "app"})),
    ("$patch: delete of an absent item", pod({"name": "app"}),
     pod({"name": "gone", "$patch": "delete"}), pod({"name": "app"})),
    ("$patch: delete onto nothing", {}, {"c": [{"name": "x", "$patch": "delete"}]}, {"c": []}),
    ("named list onto missing key", {}, {"c": [{"name": "x", "a": None}]}, {"c": [{"name": "x"}]}),
    ("named list onto empty list", {"c": []}, {"c": [{"name": "x"}]}, {"c": [{"name": "x"}]}),
    ("keyed list onto a list with an item it cannot key", {"c": ["a", {"name": "x", "v": 1}]},
     {"c": [{"name": "x", "w": 2}]}, {"c": ["a", {"name": "x", "v": 1, "w": 2}]}),
    ("repeated target key: the first is merged, the repeat dropped (as the server does)",
     {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
     {"env": [{"name": "A", "value": "3"}]},
     {"env": [{"name": "A", "value": "3"}]}),
    # mixed kinds replace
    ("map onto scalar", {"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ("map onto list", {"a": [1]}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ("scalar onto map", {"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),
    ("list onto map", {"a": {"b": 1}}, {"a": [1]}, {"a": [1]}),
    ("named list onto map", {"a": {"b": 1}}, {"a": [{"name": "x"}]}, {"a": [{"name": "x"}]}),
    ("scalar onto null", {"a": None}, {"a": 1}, {"a": 1}),
    ("tuples become lists", {}, {"a": (1, 2)}, {"a": [1, 2]}),
]


@pytest.mark.parametrize(("target", "partial", "expected"),
                         [case[1:] for case in MERGE_CASES], ids=[case[0] for case in MERGE_CASES])
def test_merge_rules(target: Any, partial: Any, expected: Any) -> None:
    before_target, before_partial = copy.deepcopy(target), copy.deepcopy(partial)
    result = merged(target, partial)
    assert result == expected
    assert [type(v) for v in _leaves(result)] == [type(v) for v in _leaves(expected)]
    assert target == before_target and partial == before_partial
    assert merged(result, partial) == result  # idempotent


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for key in sorted(value) for leaf in _leaves(value[key])]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


ERROR_CASES: list[tuple[str, Any, Any, str]] = [
    ("partial is a list", {}, [1], "the template must render a map"),
    ("partial is a scalar", {}, "x", "the template must render a map"),
    ("partial is null", {}, None, "not null"),
    ("target is a list", [1], {}, "cannot merge onto a list"),
    ("non-string key", {}, {"a": {1: "x"}}, "at a: key 1 is not a string"),
    ("not JSON data", {}, {"a": {"b": {1, 2}}}, "at a.b: a value of type set is not JSON data"),
    ("repeated name", {}, pod({"name": "app"}, {"name": "app"}),
     "spec.template.spec.containers[name=app]: name=app appears twice"),
    ("item without its key", {}, pod({"image": "x"}),
     "spec.template.spec.containers[0]: this list merges items by name; the item has no 'name'"),
    ("$patch in an atomic list", {}, {"a": [{"name": "x", "$patch": "delete"}]},
     "$patch is only understood on an item of a list merged by keys"),
    ("a set of maps", {}, {"finalizers": [{"a": 1}]}, "holds scalars"),
    ("a repeated set item", {}, {"finalizers": ["a", "a"]}, "'a' appears twice in this set"),
    ("unknown $patch", {}, {"c": [{"name": "x", "$patch": "replace"}]},
     "the only item directive"),
    ("$patch: delete with fields", {}, {"c": [{"name": "x", "$patch": "delete", "image": "i"}]},
     "the only item directive"),
]


@pytest.mark.parametrize(("target", "partial", "message"),
                         [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES])
def test_merge_errors(target: Any, partial: Any, message: str) -> None:
    with pytest.raises(MergeError) as caught:
        merge(target, partial, where=WHERE, schema=SCHEMA)
    assert message in str(caught.value)
    assert caught.value.where == WHERE
    assert "rule set 'defaults', rule 'owner-label'" in str(caught.value)


C = ("spec", "template", "spec", "containers")

ASSIGNMENT_CASES: list[tuple[str, Any, Any, dict[tuple[Any, ...], Any]]] = [
    ("scalar", {}, {"spec": {"replicas": 3}}, {("spec", "replicas"): 3}),
    ("null is DELETE, present or not", {"a": 1}, {"a": None, "b": None},
     {("a",): DELETE, ("b",): DELETE}),
    ("unchanged values are still assigned", {"a": 1}, {"a": 1}, {("a",): 1}),
    ("list leaf", {}, {"args": ["a", "b"]}, {("args",): ["a", "b"]}),
    ("empty map is 'exists'", {}, {"a": {}}, {("a",): {}}),
    ("named items by name", {},
     pod({"name": "app", "image": "i", "env": [{"name": "A", "value": "1"}]}),
     {(*C, name("app"), "image"): "i", (*C, name("app"), "env", name("A"), "value"): "1"}),
    ("name-only item is 'exists'", pod({"name": "app"}), pod({"name": "app"}),
     {(*C, "name=app"): {}}),
    ("$patch: delete", {}, pod({"name": "x", "$patch": "delete"}), {(*C, "name=x"): DELETE}),
    ("keyed list onto unkeyable target: still by name", {"c": ["s"]},
     {"c": [{"name": "x", "v": 1}]}, {("c", name("x"), "v"): 1}),
    ("set items by value", {}, {"finalizers": ["a"]},
     {("finalizers", ItemKey.of_value("a")): "a"}),
    ("ports by both keys", {}, pod({"name": "app", "ports": [{"containerPort": 80}]}),
     {(*C, name("app"), "ports", ItemKey.of_keys({"containerPort": 80, "protocol": "TCP"})):
      {}}),
    ("an atomic map is one leaf", {}, {"selector": {"a": "1"}}, {("selector",): {"a": "1"}}),
    ("map onto scalar", {"a": 1}, {"a": {"b": 2}}, {("a", "b"): 2}),
    ("empty partial assigns nothing", {"a": 1}, {}, {}),
]


@pytest.mark.parametrize(("target", "partial", "expected"),
                         [case[1:] for case in ASSIGNMENT_CASES],
                         ids=[case[0] for case in ASSIGNMENT_CASES])
def test_assignments(target: Any, partial: Any, expected: dict[tuple[Any, ...], Any]) -> None:
    assert assigned(target, partial) == expected


def test_assignment_values_match_the_result() -> None:
    target = pod({"name": "app", "image": "a"})
    result, assignments = merge(target, pod({"name": "app", "args": ["x"]}), where=WHERE,
                                schema=SCHEMA)
    (only,) = assignments
    assert only.path == (*C, "name=app", "args")
    assert only.value == ["x"]
    assert result["spec"]["template"]["spec"]["containers"][0]["args"] == only.value


def test_result_shares_untouched_subtrees_and_nothing_with_partial() -> None:
    target = {"metadata": {"labels": {"a": "1"}}, "spec": {"x": {"y": 1}}}
    partial = {"metadata": {"labels": {"b": "2"}, "annotations": {"k": "v"}}, "list": [{"m": 1}]}
    result = merged(target, partial)
    assert result["spec"] is target["spec"]
    assert result["metadata"] is not target["metadata"]
    assert result["metadata"]["annotations"] is not partial["metadata"]["annotations"]
    assert result["list"] is not partial["list"]
    assert result["list"][0] is not partial["list"][0]


def test_merge_returns_target_itself_when_nothing_changes() -> None:
    target = pod({"name": "app", "image": "a", "env": [{"name": "A", "value": "1"}]})
    partial = pod({"name": "app", "image": "a", "env": [{"name": "A", "value": "1"}]})
    assert merged(target, partial) is target
    assert merged(target, {"absent": None}) is target
    built = {"a": "".join(["x", "y"]), "b": [1, "".join(["z"])]}  # equal, not identical
    assert merged(built, {"a": "".join(["x", "y"]), "b": [1, "z"]}) is built


def _a(path: tuple[Any, ...], value: Any) -> Assignment:
    return Assignment(path, value)


@pytest.mark.parametrize(("path", "text"), [
    (("spec", "replicas"), "spec.replicas"),
    ((*C, name("app"), "image"), "spec.template.spec.containers[name=app].image"),
    ((*C, name("app"), "ports", ItemKey.of_keys({"containerPort": 80, "protocol": "TCP"})),
     "spec.template.spec.containers[name=app].ports[containerPort=80,protocol=TCP]"),
    (("metadata", "labels", "app.kubernetes.io/name"), "metadata.labels['app.kubernetes.io/name']"),
    (("items", 0), "items[0]"),
    ((), "(the whole object)"),
])
def test_format_path(path: tuple[Any, ...], text: str) -> None:
    assert format_path(path) == text
