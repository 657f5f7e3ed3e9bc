"""The record of what a child's template set (`engine.patching.owned`) and taking away
what an older record has and a newer one does not."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Where
from engine.objects import GVK
from engine.patching import merge, owned
from engine.schemas.catalogue import builtin

WHERE = Where(rule="owned")
SECRET = builtin().for_kind(GVK("", "v1", "Secret"))
DEPLOY = builtin().for_kind(GVK("apps", "v1", "Deployment"))


def record(template: dict[str, Any], schema: Any) -> owned.FieldSet:
    _, assignments = merge({}, template, where=WHERE, schema=schema)
    return owned.field_set(assignments)


def test_the_record_reads_like_managed_fields() -> None:
    fields = record({"data": {"a": "x"}, "metadata": {"labels": {"l": "v"}}}, SECRET)
    assert fields == {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:l": {}}}}
    pod = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "ports": [{"containerPort": 80}]}]}}}}
    fields = record(pod, DEPLOY)
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"app"}': {
        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}}}}
    assert owned.decode(owned.encode(fields)) == fields


@pytest.mark.parametrize("text", [None, 3, "", "not json", "[1]", '{"x:": {}}', '{"f:a": 1}'])
def test_what_is_not_a_record_reads_as_none(text: Any) -> None:
    assert owned.decode(text) is None


CASES: list[tuple[str, Any, dict[str, Any], dict[str, Any], dict[str, Any], Any]] = [
    ("a dropped key goes, others stay",
     SECRET, {"data": {"a": "1", "b": "2"}}, {"data": {"a": "1"}},
     {"data": {"a": "1", "b": "2", "c": "3"}, "metadata": {"name": "s"}},
     {"data": {"a": "1", "c": "3"}, "metadata": {"name": "s"}}),
    ("a map left empty goes with the key",
     SECRET, {"metadata": {"annotations": {"x": "1"}}}, {},
     {"metadata": {"name": "s", "annotations": {"x": "1"}}},
     {"metadata": {"name": "s"}}),
    ("a map others use stays",
     SECRET, {"metadata": {"annotations": {"x": "1"}}}, {},
     {"metadata": {"name": "s", "annotations": {"x": "1", "y": "2"}}},
     {"metadata": {"name": "s", "annotations": {"y": "2"}}}),
    ("a dropped container goes whole, defaults and all",
     DEPLOY, {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"},
                                                            {"name": "b", "image": "j"}]}}}},
     {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}},
     {"spec": {"template": {"spec": {"containers": [
         {"name": "a", "image": "i", "imagePullPolicy": "Always"},
         {"name": "b", "image": "j", "imagePullPolicy": "Always"},
         {"name": "c", "image": "k"}]}}}},
     {"spec": {"template": {"spec": {"containers": [
         {"name": "a", "image": "i", "imagePullPolicy": "Always"},
         {"name": "c", "image": "k"}]}}}}),
    ("a dropped port of a kept container goes; the container stays",
     DEPLOY, {"spec": {"template": {"spec": {"containers": [
         {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]}}}},
     {"spec": {"template": {"spec": {"containers": [
         {"name": "a", "ports": [{"containerPort": 80}]}]}}}},
     {"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [
         {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 81, "protocol": "TCP"}]}]}}}},
     {"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [
         {"containerPort": 80, "protocol": "TCP"}]}]}}}}),
    ("still rendered: nothing goes",
     SECRET, {"data": {"a": "1"}}, {"data": {"a": "2"}}, {"data": {"a": "1"}},
     {"data": {"a": "1"}}),
]


@pytest.mark.parametrize(("schema", "before", "now", "obj", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_remove_dropped(schema: Any, before: dict[str, Any], now: dict[str, Any],
                        obj: dict[str, Any], expected: Any) -> None:
    old, new = record(before, schema), record(now, schema)
    assert owned.remove_dropped(obj, old, new, schema=schema) == expected
    assert owned.remove_dropped(obj, new, new, schema=schema) is obj
