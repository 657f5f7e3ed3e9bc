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


def test_outside_writes_that_look_like_the_echo_are_reconciled(
        admin: Cluster, kubeconfig: str, objects: Objects, namespace: str,
        start_engine: Callable[..., Manager]) -> None:
    """The echo of the engine's own write is recognised by its bytes (decoded from the
    PATCH answer, engine/kube/answers.py) and its resourceVersion (not reconciled,
    echoes.py). Another client's write of the same kind of patch, leaving the same
    labels, is neither: it is routed and reconciled, and written again when needed."""
    objects.create(configmap(namespace, "mimic"))
    engine = start_engine()
    objects.create(cluster_rule_set(unique("mimic"), [label_rule(namespace, team="platform")]))
    eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "mimic").get("team")
               == "platform", what="labelled")
    eventually(lambda: metric(engine, "edict_writes_total", kind="patch") == 1,
               what="one patch")
    other = Cluster.connect(kubeconfig)
    try:
        def guarded(*ops: dict[str, Any]) -> None:
            version = admin.get(CONFIGMAP, namespace, "mimic")["metadata"]["resourceVersion"]
            other.patch_json(CONFIGMAP, namespace, "mimic", [
                {"op": "test", "path": "/metadata/resourceVersion", "value": version}, *ops])

        def reconciled() -> float:
            return metric(engine, "edict_reconciles_total", result="success")

        # the engine's own patch again, and a change the rule does not read
        before = reconciled()
        guarded({"op": "add", "path": "/metadata/labels/team", "value": "platform"},
                {"op": "add", "path": "/data/a", "value": "2"})
        eventually(lambda: reconciled() > before, what="the outside write reconciled")
        assert metric(engine, "edict_writes_total", kind="patch") == 1
        # the same object as the engine left it, but for the label
        guarded({"op": "remove", "path": "/metadata/labels/team"})
        eventually(lambda: labels_of(admin, CONFIGMAP, namespace, "mimic").get("team")
                   == "platform", what="labelled again")
        eventually(lambda: metric(engine, "edict_writes_total", kind="patch") == 2,
                   what="a second patch")
    finally:
        other.close()
