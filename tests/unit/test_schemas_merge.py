"""The two template features server-side apply cannot be the oracle for (see
tests/e2e/merge_corpus/README.md), merged with the kind's schema from the catalogue:

- ``null`` deletes a key (an apply configuration would store ``""`` for a label);
- ``{name: x, $patch: delete}`` removes an item of a map list (the API server rejects
  the directive in an apply configuration).

Everything else the merge does with a schema is checked against the real server by
tests/e2e/test_merge_differential.py. Until `merge` takes ``schema=``, calling it raises
`TypeError`, which is the only failure these tests expect then.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from engine.errors import Where
from engine.objects import GVK, Obj
from engine.patching import merge
from engine.schemas.catalogue import builtin

pytestmark = pytest.mark.xfail(
    "schema" not in inspect.signature(merge).parameters, raises=TypeError, strict=True,
    reason="merge(..., schema=) comes with the schema-aware merge")

DEPLOYMENT = GVK("apps", "v1", "Deployment")
CONFIGMAP = GVK("", "v1", "ConfigMap")


def merged(live: Obj, template: Obj) -> Any:
    gvk = GVK.of(live["apiVersion"], live["kind"])
    result, _ = merge(live, template, where=Where(), schema=builtin().for_kind(gvk))
    return result


def deployment(**pod_spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team-a"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}


def pod_spec(obj: Obj) -> Any:
    return obj["spec"]["template"]["spec"]


def test_null_deletes_a_key_of_a_granular_map() -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}}
    result = merged(live, {"metadata": {"labels": {"a": None, "c": None}}, "data": {"x": None}})
    assert result["metadata"]["labels"] == {"b": "2"}
    assert "x" not in result.get("data", {})


def test_null_deletes_an_atomic_map_a_list_and_a_struct_whole() -> None:
    live = deployment(nodeSelector={"zone": "a"},
                      tolerations=[{"key": "spot", "operator": "Exists"}],
                      affinity={"nodeAffinity": {}},
                      containers=[{"name": "app", "image": "nginx"}])
    result = merged(live, {"spec": {"template": {"spec": {
        "nodeSelector": None, "tolerations": None, "affinity": None}}}})
    assert pod_spec(result) == {"containers": [{"name": "app", "image": "nginx"}]}


def test_null_deletes_a_field_of_a_map_list_item() -> None:
    live = deployment(containers=[{"name": "app", "image": "nginx", "args": ["-v"]},
                                  {"name": "side", "image": "busybox", "args": ["-q"]}])
    result = merged(live, {"spec": {"template": {"spec": {
        "containers": [{"name": "side", "args": None}]}}}})
    assert pod_spec(result)["containers"] == [
        {"name": "app", "image": "nginx", "args": ["-v"]}, {"name": "side", "image": "busybox"}]


def test_patch_delete_removes_an_item_of_a_map_list_keyed_by_name() -> None:
    live = deployment(containers=[
        {"name": "app", "image": "nginx",
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "side", "image": "busybox"}])
    result = merged(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"},
        {"name": "app", "env": [{"name": "B", "$patch": "delete"}]}]}}}})
    assert pod_spec(result)["containers"] == [
        {"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}]}]


def test_patch_delete_of_an_item_that_is_not_there_changes_nothing() -> None:
    live = deployment(containers=[{"name": "app", "image": "nginx"}])
    result = merged(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "gone", "$patch": "delete"}]}}}})
    assert result == live
