"""`ApiInstaller` alone, on a seam fake of the cluster that fails on any call it does not
expect: what it installs, what it leaves alone, what it deletes. The real API server's
side is in tests/e2e/test_live_api.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.kube.errors import NotFound
from engine.objects import GVK
from engine.rules.api import crd_of
from engine.rules.load import parse_rule_set
from engine.rules.model import RuleSet, RuleSetRef
from engine.runtime.rulesets.apis import CRD, ApiInstaller
from engine.runtime.status import StatusBoard


class FakeCluster:
    """CRDs by name, and the number of objects of each kind; nothing else."""

    def __init__(self, crds: dict[str, dict[str, Any]] | None = None,
                 objects: dict[GVK, int] | None = None) -> None:
        self.crds = dict(crds or {})
        self.objects = objects or {}
        self.writes: list[str] = []

    def get(self, gvk: GVK, namespace: str | None, name: str) -> dict[str, Any]:
        assert gvk == CRD, f"Must not be called: get {gvk}"
        if name not in self.crds:
            raise NotFound(name)
        return {**self.crds[name], "status": {"conditions": [
            {"type": "Established", "status": "True"}]}}

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        assert obj["kind"] == "CustomResourceDefinition"
        name = obj["metadata"]["name"]
        self.crds[name] = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1",
                                               "uid": f"uid-{name}"}}
        self.writes.append(f"create {name}")
        return obj

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: list[dict[str, Any]]) -> dict[str, Any]:
        assert gvk == CRD and ops[0]["op"] == "test"
        self.writes.append(f"patch {name}")
        return self.crds[name]

    def delete(self, gvk: GVK, namespace: str | None, name: str, **_: Any) -> dict[str, Any]:
        assert gvk == CRD
        self.writes.append(f"delete {name}")
        return self.crds.pop(name)

    def list(self, gvk: GVK, *, label_selector: str | None = None,
             limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
        if gvk == CRD:
            assert label_selector == "edict.dev/api-of"
            return [c for c in self.crds.values()
                    if "edict.dev/api-of" in c["metadata"].get("labels", {})], "1"
        assert gvk in self.objects, f"Must not be called: list {gvk}"
        return [{}] * self.objects[gvk], "1"


def operator(name: str, kind: str = "Gadget", **api: Any) -> RuleSet:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": name},
        "spec": {"api": {"group": "example.com", "kind": kind, **api}, "rules": [{
            "name": "r", "match": {"resources": [{"kinds": [kind]}]},
            "mutate": {"template": {"metadata": {"labels": {"a": "b"}}}}}]}})


def installer(cluster: FakeCluster) -> tuple[ApiInstaller, StatusBoard]:
    board = StatusBoard(now=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    apis = ApiInstaller(cluster, board=board, wait=lambda _: True,  # type: ignore[arg-type]
                        clock=lambda: 0.0)
    return apis, board


def loaded(*rule_sets: RuleSet) -> dict[RuleSetRef, RuleSet]:
    return {rs.ref: rs for rs in rule_sets}


def degraded(board: StatusBoard, ref: RuleSetRef) -> str:
    status = board.render(ref)
    assert status is not None
    (found,) = [c for c in status["conditions"] if c["type"] == "Degraded"]
    return str(found["message"]) if found["status"] == "True" else ""


def test_install_once_then_write_only_when_the_rule_set_changes() -> None:
    cluster = FakeCluster()
    apis, _ = installer(cluster)
    gadgets = operator("gadgets")
    assert apis.sync(loaded(gadgets), present=[gadgets.ref]) is True
    assert apis.sync(loaded(gadgets), present=[gadgets.ref]) is False
    changed = operator("gadgets", spec={"size": "integer"})
    assert apis.sync(loaded(changed), present=[changed.ref]) is True
    assert cluster.writes == ["create gadgets.example.com", "patch gadgets.example.com"]


def test_one_rule_set_per_api_and_no_adoption() -> None:
    foreign = crd_of(operator("x", kind="Widget"))
    assert foreign is not None
    del foreign["metadata"]["labels"]
    cluster = FakeCluster({"widgets.example.com": foreign})
    apis, board = installer(cluster)
    first, second, widgets = operator("a"), operator("b"), operator("w", kind="Widget")
    for rule_set in (first, second, widgets):
        board.loaded(rule_set.ref, generation=1, rules={"r": ""})
    apis.sync(loaded(first, second, widgets), present=[first.ref, second.ref, widgets.ref])
    assert cluster.writes == ["create gadgets.example.com"]
    assert "already the api of ClusterRuleSet a" in degraded(board, second.ref)
    assert "exists and is not ClusterRuleSet w's" in degraded(board, widgets.ref)
    assert degraded(board, first.ref) == ""


@pytest.mark.parametrize(("on_delete", "objects", "deleted"), [
    ("WhenEmpty", 1, False), ("WhenEmpty", 0, True), ("Delete", 1, True), ("Keep", 0, False),
])
def test_a_gone_rule_set_s_api_goes_as_on_delete_says(on_delete: str, objects: int,
                                                        deleted: bool) -> None:
    gadgets = operator("gadgets", onDelete=on_delete)
    crd = crd_of(gadgets)
    assert crd is not None
    cluster = FakeCluster({"gadgets.example.com": crd},
                          {GVK("example.com", "v1alpha1", "Gadget"): objects})
    apis, _ = installer(cluster)
    apis.sync({}, present=[])
    assert cluster.writes == (["delete gadgets.example.com"] if deleted else [])


def test_a_rule_set_that_is_there_but_does_not_load_keeps_its_api() -> None:
    gadgets = operator("gadgets")
    crd = crd_of(gadgets)
    assert crd is not None
    cluster = FakeCluster({"gadgets.example.com": crd})  # no Gadget: listing one fails
    apis, _ = installer(cluster)
    apis.sync({}, present=[gadgets.ref])  # present, not loaded (a bad edit)
    assert cluster.writes == []
    # Loaded without an api: no longer declared, so retired (no objects left).
    cluster.objects[GVK("example.com", "v1alpha1", "Gadget")] = 0
    plain = parse_rule_set({**_document("gadgets")})
    apis.sync(loaded(plain), present=[plain.ref])
    assert cluster.writes == ["delete gadgets.example.com"]


def _document(name: str) -> dict[str, Any]:
    return {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
            "metadata": {"name": name},
            "spec": {"rules": [{"name": "r", "match": {"resources": [
                {"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
                "mutate": {"template": {"metadata": {"labels": {"a": "b"}}}}}]}}
