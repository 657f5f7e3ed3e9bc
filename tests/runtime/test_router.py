"""The router: which keys one informer event queues (and when it asks for a recompile).

Table-driven over seam fakes: a cache of Namespaces and ConfigMaps the router may list
(`watches.cached`), a reconciler that only answers `known_converged` and `own_writes`,
and a real WorkQueue on a fake clock whose keys are read back after each event.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.evaluate.children import RULE_SET_LABEL, TRIGGER_ANNOTATION
from engine.evaluate.engine import Engine
from engine.objects import GVK, Obj, ObjectKey, key_of
from engine.rules.load import parse_rule_set
from engine.runtime.clock import FakeClock
from engine.runtime.controller.dependencies import Dependencies
from engine.runtime.controller.echoes import OwnWrites
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.controller.routing import Router
from engine.runtime.current import Current
from engine.runtime.kinds import CLUSTER_RULE_SET_GVK, NAMESPACE_GVK

CM = GVK("", "v1", "ConfigMap")
SECRET = GVK("", "v1", "Secret")
RULES = parse_rule_set({
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet", "metadata": {"name": "t"},
    "spec": {"rules": [{"name": "label", "match": {"resources": [
        {"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "mutate": {"template": {"metadata": {"labels": {"done": "yes"}}}}}]}})
CURRENT = Current(Engine([RULES]), {RULES.ref: RULES})


def cm(name: str, rv: str = "1", namespace: str = "n", **metadata: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv,
                         **metadata}}


def secret(name: str, **metadata: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "n", "resourceVersion": "1",
                         **metadata}}


def namespace(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "resourceVersion": "1", "labels": labels}}


def rule_set(generation: int, spec: Any, status: Any = None) -> Obj:
    return {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
            "metadata": {"name": "t", "generation": generation}, "spec": spec,
            "status": status or {}}


class Cache:
    """`watches.cached_versions` over fixed objects; any other call is a bug."""

    def __init__(self, *objects: Obj) -> None:
        self.objects = objects

    def cached_versions(self, gvk: GVK, namespace: str | None = None
                        ) -> list[tuple[tuple[str, str], str]]:
        return [((o["metadata"].get("namespace", ""), o["metadata"]["name"]),
                 o["metadata"]["resourceVersion"])
                for o in self.objects if (o["apiVersion"], o["kind"]) == (
                    gvk.api_version, gvk.kind)
                and namespace in (None, o["metadata"].get("namespace"))]

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to WatchManager.{name}")


class Memory:
    """The reconciler as the router sees it: what it found converged, its own writes."""

    def __init__(self, converged: dict[ObjectKey, str] | None = None) -> None:
        self.converged = converged or {}
        self.own_writes = OwnWrites()

    def known_converged(self, key: ObjectKey, resource_version: str) -> bool:
        return self.converged.get(key) == resource_version

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Reconciler.{name}")


def router(cache: Cache, memory: Memory | None = None,
           dependencies: Dependencies | None = None
           ) -> tuple[Router, WorkQueue[ObjectKey], list[str]]:
    queue: WorkQueue[ObjectKey] = WorkQueue(clock=FakeClock())
    recompiles: list[str] = []
    return Router(queue=queue, watches=cache,  # type: ignore[arg-type]
                  dependencies=dependencies or Dependencies(),
                  reconciler=memory or Memory(),  # type: ignore[arg-type]
                  current=lambda: CURRENT,
                  rule_sets_changed=lambda: recompiles.append("recompile")), queue, recompiles


def drained(queue: WorkQueue[ObjectKey]) -> set[ObjectKey]:
    out = set()
    while (key := queue.get(timeout=0)) is not None:
        out.add(key)
        queue.done(key)
    return out


A, B = cm("a"), cm("b")
OTHER_NS = cm("c", namespace="m")
CHILD = secret("child", labels={RULE_SET_LABEL: "t"},
               annotations={TRIGGER_ANNOTATION: "v1/ConfigMap/n/a"})
STRAY = secret("stray", annotations={TRIGGER_ANNOTATION: "v1/ConfigMap/n/a"})
BAD_REF = secret("bad", labels={RULE_SET_LABEL: "t"},
                 annotations={TRIGGER_ANNOTATION: "not-a-reference"})

CASES: list[tuple[str, GVK, Obj, Obj | None, set[ObjectKey]]] = [
    # (case, kind, new, old (None: added or deleted), keys queued)
    ("a trigger added", CM, A, None, {key_of(A)}),
    ("a trigger changed", CM, cm("a", "2"), A, {key_of(A)}),
    ("a kind no rule matches", SECRET, secret("s"), None, set()),
    ("a child: its trigger", SECRET, CHILD, None, {key_of(A)}),
    ("an annotation without Edict's label is not ours", SECRET, STRAY, None, set()),
    ("a malformed trigger reference", SECRET, BAD_REF, None, set()),
    ("a namespace added: every trigger in it", NAMESPACE_GVK, namespace("n"), None,
     {key_of(A), key_of(B)}),
    ("a namespace's labels changed", NAMESPACE_GVK, namespace("n", team="x"),
     namespace("n"), {key_of(A), key_of(B)}),
    ("a namespace changed but not its labels", NAMESPACE_GVK,
     {**namespace("n"), "spec": {"finalizers": ["kubernetes"]}}, namespace("n"), set()),
]


def handler_of(route: Any, gvk: GVK) -> Any:
    """The one event handler `route` gives an informer of `gvk` (a seam fake)."""

    class Informer:
        handlers: list[Any] = []

        def add_index(self, name: str, fn: Any) -> None:
            pass

        def add_handler(self, handler: Any) -> None:
            self.handlers.append(handler)

    informer = Informer()
    informer.gvk = gvk  # type: ignore[attr-defined]
    route.prepare(informer)
    (handler,) = informer.handlers
    return handler


@pytest.mark.parametrize(("gvk", "new", "old", "queued"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_one_event_queues_these_keys(gvk: GVK, new: Obj, old: Obj | None,
                                     queued: set[ObjectKey]) -> None:
    route, queue, recompiles = router(Cache(A, B, OTHER_NS))
    route.route(gvk, new, old)
    assert drained(queue) == queued
    assert recompiles == []


def test_a_resync_of_a_converged_version_queues_nothing_and_of_another_queues_it() -> None:
    route, queue, _ = router(Cache(), Memory({key_of(A): "1"}))
    route.route(CM, A, A)  # a resync delivers the same object as old and new
    assert drained(queue) == set()
    newer = cm("a", "2")
    route.route(CM, newer, newer)
    assert drained(queue) == {key_of(A)}


def test_the_handler_declines_the_resync_of_a_converged_version_only() -> None:
    route, _, _ = router(Cache(), Memory({key_of(A): "1"}))
    handler = handler_of(route, CM)
    assert handler.resync_wanted(("n", "a"), "1") is False
    assert handler.resync_wanted(("n", "a"), "2") is True
    assert handler.resync_wanted(("n", "b"), "1") is True


def test_keys_queued_share_one_namespace_string() -> None:
    route, queue, _ = router(Cache())
    for name in ("a", "b"):
        obj = cm(name)
        obj["metadata"]["namespace"] = "".join(["n", "s"])  # a string of its own
        route.route(CM, obj)
    first, second = sorted(drained(queue), key=lambda k: k.name)
    assert first.namespace == "ns" and first.namespace is second.namespace


def test_the_echo_of_our_own_write_is_dropped_once() -> None:
    memory = Memory()
    route, queue, _ = router(Cache(), memory)
    memory.own_writes.begin(key_of(A))
    memory.own_writes.end(key_of(A), "2")
    route.route(CM, cm("a", "2"), A)
    assert drained(queue) == set()
    route.route(CM, cm("a", "2"), A)  # the same version again is not ours any more
    assert drained(queue) == {key_of(A)}


def test_an_object_looked_up_queues_the_triggers_that_read_it() -> None:
    dependencies = Dependencies()
    looked_up = secret("config")
    dependencies.record(key_of(A), {key_of(looked_up)})
    route, queue, _ = router(Cache(), dependencies=dependencies)
    route.route(SECRET, looked_up, None)
    assert drained(queue) == {key_of(A)}


@pytest.mark.parametrize(("new", "old", "recompile"), [
    (rule_set(2, {"rules": ["x"]}), rule_set(1, {"rules": []}), True),
    (rule_set(1, {"rules": []}, {"phase": "x"}), rule_set(1, {"rules": []}), False),
], ids=["spec changed", "status only (our own write)"])
def test_rule_set_events_ask_for_a_recompile_not_keys(new: Obj, old: Obj,
                                                      recompile: bool) -> None:
    route, queue, recompiles = router(Cache())
    handler = handler_of(route, CLUSTER_RULE_SET_GVK)
    handler.on_update(old, new)
    assert recompiles == (["recompile"] if recompile else [])
    handler.on_add(new)
    handler.on_delete(new)
    assert recompiles[-2:] == ["recompile", "recompile"]
    assert drained(queue) == set()


def test_enqueue_skips_what_is_known_converged_when_asked() -> None:
    route, queue, _ = router(Cache(A, B, OTHER_NS), Memory({key_of(A): "1"}))
    route.enqueue([CM], unless_converged=True)
    assert drained(queue) == {key_of(B), key_of(OTHER_NS)}
    route.enqueue([CM], namespace="m")
    assert drained(queue) == {key_of(OTHER_NS)}
