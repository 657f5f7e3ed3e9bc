"""Live engine, mutate rules: existing and new objects change; steady state writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.runtime.manager import Manager, ManagerSettings
from tests.support import eventually

from .conftest import Objects
from .live import (
    CONFIGMAP,
    EVENT,
    cluster_rule_set,
    configmap,
    labels_of,
    metric,
    unique,
)

pytestmark = pytest.mark.cluster


def label_rule(namespace: str, **labels: str) -> dict[str, object]:
    return {"name": "team-label",
            "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                      "namespaces": [namespace]},
            "mutate": {"template": {"metadata": {"labels": labels}}}}


def test_mutates_existing_and_new_objects_and_then_writes_nothing(
        admin: Cluster, objects: Objects, namespace: str,
        start_engine: Callable[..., Manager]) -> None:
    objects.create(configmap(namespace, "before"))
    engine = start_engine(resync=1.0)
    objects.create(cluster_rule_set(unique("mut"), [label_rule(namespace, team="platform")]))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "before").get("team")
               == "platform", what="existing object labelled")
    objects.create(configmap(namespace, "after"))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "after").get("team")
               == "platform", what="new object labelled")
    eventually(lambda: metric(engine, "edict_writes_total", kind="patch") == 2,
               what="exactly one patch per object")
    versions = {n: admin.get(CONFIGMAP, namespace, n)["metadata"]["resourceVersion"]
                for n in ("before", "after")}
    resyncs = metric(engine, "edict_reconciles_total", result="success")
    # Several resync periods pass: every object is reconciled again, nothing is written.
    eventually(lambda: metric(engine, "edict_reconciles_total", result="success")
               >= resyncs + 4, timeout=20, what="resyncs")
    assert metric(engine, "edict_writes_total", kind="patch") == 2
    assert {n: admin.get(CONFIGMAP, namespace, n)["metadata"]["resourceVersion"]
            for n in ("before", "after")} == versions


def test_events_on_triggers_say_what_changed_and_which_rule(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    objects.create(configmap(namespace, "evented"))
    rule_set_name = unique("events")
    objects.create(cluster_rule_set(rule_set_name, [label_rule(namespace, team="x")]))

    def applied_event() -> list[str]:
        items, _ = admin.list(EVENT, namespace=namespace)
        return [e["message"] for e in items if e.get("reason") == "RuleApplied"
                and e["involvedObject"]["name"] == "evented"]

    messages = eventually(applied_event, what="a RuleApplied event")
    assert "rule 'team-label'" in messages[0] and rule_set_name in messages[0]
    assert "/metadata/labels" in messages[0]


class InterferingCluster:
    """The engine's client, with another writer striking between the engine's read and
    its write: before each of the engine's first patches of an object, the object is
    changed on the real API server, so the guarded patch really fails (409/422)."""

    def __init__(self, real: Cluster, strikes: int) -> None:
        self._real = real
        self._left: dict[str, int] = {}
        self._strikes = strikes
        self.struck = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def patch_json(self, gvk: Any, namespace: str | None, name: str, ops: Any) -> Any:
        left = self._left.setdefault(name, self._strikes)
        if left and gvk == CONFIGMAP:
            self._left[name] = left - 1
            self._real.patch_merge(gvk, namespace, name, {"metadata": {"annotations": {
                "other-writer": str(left)}}})
            self.struck += 1
        return self._real.patch_json(gvk, namespace, name, ops)


def test_a_concurrent_writer_causing_conflicts_does_not_stop_convergence(
        admin: Cluster, objects: Objects, namespace: str) -> None:
    names = [f"busy-{i}" for i in range(5)]
    for name in names:
        objects.create(configmap(namespace, name))
    client = InterferingCluster(admin, strikes=2)
    engine = Manager(client, ManagerSettings(workers=2, status_interval=0.2))  # type: ignore[arg-type]
    engine.start()
    try:
        objects.create(cluster_rule_set(unique("busy"), [label_rule(namespace, calm="yes")]))
        for name in names:
            eventually(lambda name=name: labels_of(admin, CONFIGMAP, namespace, name).get(
                "calm") == "yes", timeout=60, what=f"{name} labelled despite conflicts")
    finally:
        engine.stop()
    assert client.struck == 2 * len(names)  # every object lost two races...
    assert metric(engine, "edict_reconciles_total", result="requeue") >= 2 * len(names)
    for name in names:  # ...and still carries both writers' changes
        annotations = admin.get(CONFIGMAP, namespace, name)["metadata"]["annotations"]
        assert annotations["other-writer"] == "1"
