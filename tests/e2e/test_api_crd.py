"""The CRDs `spec.api` makes are accepted by the real API server, which then refuses
objects exactly as the short schema says (enum, required, minimum/maximum, lengths,
items) and fills its defaults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import Where
from engine.kube.client import Cluster
from engine.kube.errors import Invalid
from engine.objects import GVK
from engine.rules.api import crd_for
from tests.support import eventually, wait_established

from .conftest import Objects
from .live import kind_served, kubectl, unique

pytestmark = pytest.mark.cluster


def api(group: str) -> dict[str, Any]:
    return {
        "group": group, "kind": "Database", "shortNames": [],
        "spec": {"engine": "string | enum=postgres,mysql default=postgres",
                 "storageGB": "integer | minimum=1 maximum=1000 default=10",
                 "users": "[]string | maxItems=2",
                 "name": "string | required minLength=1 maxLength=8",
                 "backup": {"schedule": "string | required", "keep": "integer | default=7"}},
        "status": {"endpoint": "string"},
        "printerColumns": [{"name": "Engine", "jsonPath": ".spec.engine"}],
    }


def test_the_api_server_enforces_the_short_schema(admin: Cluster, kubeconfig: str,
                                                  objects: Objects, namespace: str) -> None:
    group = f"{unique('db')}.example.edict.dev"
    crd = crd_for(api(group), where=Where(rule_set="db"))
    objects.create(crd)
    wait_established(kubeconfig, crd["metadata"]["name"])
    gvk = GVK(group, "v1alpha1", "Database")
    eventually(lambda: kind_served(admin, gvk), timeout=30, what="discovery serving Database")

    def database(object_name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1alpha1", "kind": "Database",
                "metadata": {"name": object_name, "namespace": namespace}, "spec": spec}

    stored = admin.create(database("ok", name="orders", backup={"schedule": "@daily"}))
    assert stored["spec"]["engine"] == "postgres"  # defaults filled by the server
    assert stored["spec"]["storageGB"] == 10
    assert stored["spec"]["backup"]["keep"] == 7
    refused = {
        "enum": database("a", name="x", engine="oracle", backup={"schedule": "s"}),
        "required": database("b", backup={"schedule": "s"}),
        "nested required": database("c", name="x", backup={}),
        "minimum": database("d", name="x", storageGB=0, backup={"schedule": "s"}),
        "maximum": database("e", name="x", storageGB=5000, backup={"schedule": "s"}),
        "maxLength": database("f", name="much-too-long", backup={"schedule": "s"}),
        "maxItems": database("g", name="x", users=["a", "b", "c"], backup={"schedule": "s"}),
        "type": database("h", name="x", storageGB="ten", backup={"schedule": "s"}),
    }
    for why, obj in refused.items():
        with pytest.raises(Invalid) as caught:
            admin.create(obj)
        assert caught.value.causes, why
    # The status subresource and printer columns exist.
    table = json.loads(kubectl(kubeconfig, "get", f"databases.{group}", "-n", namespace,
                               "-o", "json"))
    assert [item["metadata"]["name"] for item in table["items"]] == ["ok"]
    admin.patch_merge_status(gvk, namespace, "ok", {"status": {
        "endpoint": "db:5432", "conditions": [{"type": "Ready", "status": "True"}]}})
    columns = kubectl(kubeconfig, "get", f"databases.{group}", "-n", namespace)
    assert columns.split()[:4] == ["NAME", "READY", "ENGINE", "AGE"]
    assert "True" in columns and "postgres" in columns
