"""What the informer caches: everything rules can read, without `managedFields`
(`engine.runtime.source.slim`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from runtime_fakes import CM, ExpectList, ExpectWatch, ScriptedListWatcher, eventually

from engine.objects import Obj
from engine.runtime.clock import FakeClock
from engine.runtime.source.informer import EventHandler, Informer, InformerSettings
from engine.runtime.source.slim import slim

MANAGED = [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}]


def served(name: str, rv: str = "1") -> Obj:
    """A ConfigMap as the API server sends it, decoded on its own (as a watch event is)."""
    text = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": "default", "resourceVersion": rv,
        "labels": {"app": "web", "tier": "front"}, "managedFields": MANAGED},
        "data": {"mode": "production", "script": "x" * 100}})
    return json.loads(text)  # type: ignore[no-any-return]


def test_managed_fields_go_and_everything_else_stays_equal() -> None:
    obj = served("a")
    kept = slim(obj)
    assert "managedFields" not in kept["metadata"]
    assert obj["metadata"]["managedFields"] == MANAGED, "the input is left alone"
    without = {**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                   if k != "managedFields"}}
    assert kept == without


def test_an_object_without_managed_fields_is_kept_as_it_is() -> None:
    obj = served("a")
    del obj["metadata"]["managedFields"]
    assert slim(obj) is obj


@pytest.fixture
def source() -> Iterator[ScriptedListWatcher]:
    fake = ScriptedListWatcher()
    yield fake
    assert fake.surprises == []


def test_the_informer_caches_and_hands_out_the_slim_object(
        source: ScriptedListWatcher) -> None:
    watch = ExpectWatch("10")
    source.expect(CM, ExpectList([served("a", "5")], "10"), watch)
    informer = Informer(CM, source=source, clock=FakeClock(),
                        settings=InformerSettings(resync_period=0))
    handed: list[Obj] = []
    informer.add_handler(EventHandler(on_add=handed.append,
                                      on_update=lambda old, new: handed.append(new)))
    informer.start()
    try:
        assert informer.wait_synced(timeout=5)
        eventually(lambda: source.remaining(CM) == 0, what="the watch to be opened")
        watch.stream.push("MODIFIED", served("a", "12"))
        eventually(lambda: len(handed) == 2, what="the update")
        cached = informer.store.get("default", "a")
        assert cached is handed[-1]
        assert cached is not None and "managedFields" not in cached["metadata"]
        assert cached["metadata"]["resourceVersion"] == "12"
        assert "managedFields" not in handed[0]["metadata"]
    finally:
        informer.stop()


def test_no_transform_caches_what_the_server_sent(source: ScriptedListWatcher) -> None:
    source.expect(CM, ExpectList([served("a", "5")], "10"), ExpectWatch("10"))
    informer = Informer(CM, source=source, clock=FakeClock(),
                        settings=InformerSettings(resync_period=0, transform=None))
    informer.start()
    try:
        assert informer.wait_synced(timeout=5)
        cached = informer.store.get("default", "a")
        assert cached is not None and cached["metadata"]["managedFields"] == MANAGED
        eventually(lambda: source.remaining(CM) == 0, what="the watch to be opened")
    finally:
        informer.stop()
