"""Live: a ClusterRuleSet's `spec.api` becomes a real CRD the engine installs, updates,
and deletes only as `onDelete` says; a CRD that is not the rule set's is never adopted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import CLUSTER_RULE_SET, CONFIGMAP, cluster_rule_set, condition, unique

pytestmark = pytest.mark.cluster
CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")


def operator(name: str, group: str, **api: Any) -> dict[str, Any]:
    return cluster_rule_set(name, [{
        "name": "config",
        "match": {"resources": [{"kinds": ["Gadget"]}]},
        "generate": {"template": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "{{ object.metadata.name }}-config"},
            "data": {"size": "{{ object.spec.size | string }}"}}},
    }], api={"group": group, "kind": "Gadget", "spec": {"size": "integer | default=3"},
             **api})


def get(cluster: Cluster, gvk: GVK, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        return cluster.get(gvk, namespace, name)
    except NotFound:
        return None


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]
    return spec


@pytest.fixture
def remove_crds(admin: Cluster) -> Any:
    """CRDs a test leaves behind (onDelete: Keep, or a failing test) go afterwards."""
    names: list[str] = []
    yield names.append
    for name in names:
        with contextlib.suppress(NotFound):
            admin.delete(CRD, None, name)


def test_the_engine_installs_updates_and_retires_the_api(
        admin: Cluster, objects: Objects, namespace: str,
        start_engine: Callable[..., Manager], remove_crds: Callable[[str], None]) -> None:
    group = f"{unique('g')}.example.edict.dev"
    name, crd_name = unique("api"), f"gadgets.{group}"
    remove_crds(crd_name)
    start_engine()
    admin.create(operator(name, group))
    crd = eventually(lambda: get(admin, CRD, None, crd_name), what="CRD installed")
    assert crd["metadata"]["labels"]["edict.dev/api-of"] == name
    assert "ownerReferences" not in crd["metadata"]
    gadget = GVK(group, "v1alpha1", "Gadget")
    made = eventually(lambda: admin.create({
        "apiVersion": f"{group}/v1alpha1", "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": namespace}, "spec": {}}),
        what="the kind is served")
    assert made["spec"] == {"size": 3}  # the server fills the default of the short schema
    child = eventually(lambda: get(admin, CONFIGMAP, namespace, "g1-config"),
                       what="a rule of the rule set matched the new kind")
    assert child["data"] == {"size": "3"}

    # A new field in the rule set: the CRD follows. (A merge patch, as `kubectl patch`
    # sends: a read-then-replace races the engine's writes of the rule set's status.)
    admin.patch_merge(CLUSTER_RULE_SET, None, name, {"spec": {"api": {"spec": {
        "colour": "string | enum=red,blue default=red"}}}})
    eventually(lambda: "colour" in schema_of(admin.get(CRD, None, crd_name))["properties"],
               what="CRD updated")
    # the server may still update the CRD's status: its generation says whether its spec
    # was written again
    generation = admin.get(CRD, None, crd_name)["metadata"]["generation"]

    # The rule set goes while a Gadget exists: the CRD stays (WhenEmpty)...
    admin.delete(CLUSTER_RULE_SET, None, name)
    eventually(lambda: get(admin, CONFIGMAP, namespace, "g1-config") is None,
               what="children pruned with their rule set")
    assert get(admin, gadget, namespace, "g1") is not None
    assert admin.get(CRD, None, crd_name)["metadata"]["generation"] == generation
    # ...until the last object of it is gone.
    admin.delete(gadget, namespace, "g1")
    eventually(lambda: get(admin, CRD, None, crd_name) is None, timeout=60,
               what="CRD deleted once empty")


def test_on_delete_keep_and_delete(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager,
        remove_crds: Callable[[str], None]) -> None:
    kept_group, gone_group = (f"{unique(p)}.example.edict.dev" for p in ("k", "d"))
    for group in (kept_group, gone_group):
        remove_crds(f"gadgets.{group}")
    kept = objects.create(operator(unique("keep"), kept_group, onDelete="Keep"))
    gone = objects.create(operator(unique("del"), gone_group, onDelete="Delete"))
    for group in (kept_group, gone_group):
        eventually(lambda g=group: get(admin, CRD, None, f"gadgets.{g}"), what="installed")
        eventually(lambda g=group: admin.create({
            "apiVersion": f"{g}/v1alpha1", "kind": "Gadget",
            "metadata": {"name": "x", "namespace": namespace}, "spec": {}}),
            what="the kind is served")
    admin.delete(CLUSTER_RULE_SET, None, gone["metadata"]["name"])
    eventually(lambda: get(admin, CRD, None, f"gadgets.{gone_group}") is None,
               what="Delete: the CRD goes, objects and all")
    admin.delete(CLUSTER_RULE_SET, None, kept["metadata"]["name"])
    engine.rebuild()  # the same sync the deletion started; the CRD is kept whatever
    assert get(admin, CRD, None, f"gadgets.{kept_group}") is not None


def test_a_crd_that_is_not_the_rule_sets_is_not_adopted(
        admin: Cluster, objects: Objects, engine: Manager,
        remove_crds: Callable[[str], None]) -> None:
    group = f"{unique('o')}.example.edict.dev"
    remove_crds(f"gadgets.{group}")
    from engine.errors import Where
    from engine.rules.api import crd_for
    foreign = crd_for({"group": group, "kind": "Gadget", "spec": {"other": "string"}},
                      where=Where())
    admin.create(foreign)
    name = unique("adopt")
    objects.create(operator(name, group))

    refusal = f"gadgets.{group} exists and is not ClusterRuleSet {name}'s"

    def degraded() -> dict[str, Any] | None:
        # Under load the rule set may first be Degraded for another reason (the foreign
        # CRD not yet served); what must come is the refusal to adopt it.
        found = condition(admin.get(CLUSTER_RULE_SET, None, name), "Degraded")
        return found if found and found["status"] == "True" and refusal in found[
            "message"] else None

    eventually(degraded, what="the refusal reported on the rule set",
               detail=lambda: repr(condition(admin.get(CLUSTER_RULE_SET, None, name),
                                             "Degraded")))
    crd = admin.get(CRD, None, f"gadgets.{group}")
    assert "edict.dev/api-of" not in (crd["metadata"].get("labels") or {})
    assert "other" in schema_of(crd)["properties"]
