"""Live engine, `generate.clone`: a Secret copied into labelled namespaces follows its
source (a key changed, a key removed) and goes when the source is deleted; the copy's
template reads the rule's `variables`."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import NAMESPACE, cluster_rule_set, rule_set, unique

pytestmark = pytest.mark.cluster
SECRET = GVK("", "v1", "Secret")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": {"purpose": "pull"}},
            "data": {key: b64(value) for key, value in data.items()}}


def copy_rule(source_namespace: str, label: str) -> dict[str, Any]:
    return {
        "name": "copy",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["Namespace"]}],
                  "selector": {"matchLabels": {"clone-test": label}}},
        "variables": [{"name": "target", "expression": "object.metadata.name"}],
        "generate": {
            "clone": {"apiVersion": "v1", "kind": "Secret", "namespace": source_namespace,
                      "name": "registry-pull"},
            "template": {"metadata": {"labels": {"copied-into": "{{ variables.target }}"}}},
        },
    }


def data_of(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    try:
        found = cluster.get(SECRET, namespace, name)
    except NotFound:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}


def test_a_cloned_secret_follows_its_source_and_goes_with_it(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    source = objects.create(secret(namespace, "registry-pull", token="one", old="x"))
    label = unique("pull")
    target = unique("e2e-target")
    made = objects.create({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": target, "labels": {"clone-test": label}}})
    objects.create(cluster_rule_set(unique("clone"), [copy_rule(namespace, label)]))

    copy = eventually(lambda: admin.get(SECRET, target, "registry-pull"), what="the copy")
    assert data_of(admin, target, "registry-pull") == {"token": "one", "old": "x"}
    labels = copy["metadata"]["labels"]
    assert labels["purpose"] == "pull" and labels["copied-into"] == target
    assert labels["edict.dev/rule"] == "copy"
    assert copy["metadata"]["ownerReferences"][0]["uid"] == made["metadata"]["uid"]
    assert copy["metadata"]["uid"] != source["metadata"]["uid"]

    # A key of the source changes: only the source's watch event can bring it over.
    admin.patch_merge(SECRET, namespace, "registry-pull", {"data": {"token": b64("two")}})
    eventually(lambda: data_of(admin, target, "registry-pull") == {"token": "two", "old": "x"},
               what="the copy follows a changed key")
    # A key is removed from the source: it goes from the copy too.
    admin.patch_merge(SECRET, namespace, "registry-pull", {"data": {"old": None}})
    eventually(lambda: data_of(admin, target, "registry-pull") == {"token": "two"},
               what="the removed key goes from the copy")
    # The source is deleted: the rule is skipped for missing data and, synchronized, its
    # copy is pruned (as when any rule stops producing a child).
    admin.delete(SECRET, namespace, "registry-pull")
    eventually(lambda: data_of(admin, target, "registry-pull") is None,
               what="the copy is pruned with its source")
    # The source comes back: so does the copy.
    admin.create(secret(namespace, "registry-pull", token="three"))
    eventually(lambda: data_of(admin, target, "registry-pull") == {"token": "three"},
               what="the copy is made again")


def test_a_rule_set_cannot_clone_from_another_namespace(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    other = unique("e2e-other")
    objects.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    objects.create(secret(other, "registry-pull", token="secret"))
    objects.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "app", "namespace": namespace}})
    name = unique("steal")
    rule = {"name": "steal",
            "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
            "generate": {"clone": {"apiVersion": "v1", "kind": "Secret", "namespace": other,
                                   "name": "registry-pull"},
                         "template": {"metadata": {"name": "stolen"}}}}
    objects.create(rule_set(namespace, name, [rule]))

    def refused() -> str:
        status = admin.get(GVK("edict.dev", "v1alpha1", "RuleSet"), namespace, name)
        rules = {r["name"]: r for r in (status.get("status") or {}).get("rules") or []}
        return str(rules.get("steal", {}).get("lastError") or "")

    message = eventually(refused, what="the confinement error on the status")
    assert "generate.clone looks up Secret registry-pull" in message
    assert f"only reads its own namespace {namespace!r}" in message
    with pytest.raises(NotFound):
        admin.get(SECRET, namespace, "stolen")
    assert admin.get(NAMESPACE, None, other)  # untouched
