"""Live engine, mutate rules: existing and new objects change; steady state writes nothing."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from engine.kube.client import Cluster
from engine.kube.errors import Conflict, Invalid
from engine.runtime.manager import Manager

from .conftest import Objects
from .live import (
    CONFIGMAP,
    EVENT,
    cluster_rule_set,
    configmap,
    eventually,
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


def test_a_concurrent_writer_causing_conflicts_does_not_stop_convergence(
        admin: Cluster, objects: Objects, namespace: str, engine: Manager) -> None:
    names = [f"busy-{i}" for i in range(5)]
    for name in names:
        objects.create(configmap(namespace, name))
    stop = threading.Event()

    def churn() -> None:  # keeps changing the objects, so guarded patches fail
        n = 0
        while not stop.is_set():
            for name in names:
                n += 1
                with contextlib.suppress(Conflict, Invalid):
                    admin.patch_merge(CONFIGMAP, namespace, name,
                                      {"metadata": {"annotations": {"churn": str(n)}}})
            time.sleep(0)

    writers = [threading.Thread(target=churn, daemon=True) for _ in range(3)]
    for writer in writers:
        writer.start()
    try:
        objects.create(cluster_rule_set(unique("busy"), [label_rule(namespace, calm="yes")]))
        for name in names:
            eventually(lambda name=name: labels_of(admin, CONFIGMAP, namespace, name).get(
                "calm") == "yes", timeout=60, what=f"{name} labelled despite conflicts")
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert metric(engine, "edict_reconciles_total", result="requeue") >= 1
