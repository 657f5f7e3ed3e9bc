"""Pruning (engine/runtime/rulesets/prune.py): which cached children the sweep deletes.

Table-driven on seam fakes: a cache of children and triggers (`cached`, `informer`),
and a writer that records deletes — and fails loudly on any other call. The rules of
why a child is an orphan are `engine.evaluate.sweep.why_orphaned`'s; these cases check
that the live sweep asks it with the live facts (every rule set loaded, a trigger only
gone when its cache has listed) and acts on the answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.evaluate.children import RULE_LABEL, RULE_SET_LABEL, TRIGGER_ANNOTATION
from engine.evaluate.engine import Engine
from engine.kube.errors import ApiError, Forbidden, NotFound
from engine.objects import GVK, Obj
from engine.rules.load import parse_rule_set
from engine.rules.model import RuleSetRef
from engine.runtime.current import Current
from engine.runtime.rulesets.prune import prune_orphans
from engine.runtime.source.store import Store as CacheStore
from engine.runtime.source.watches import NotWatched
from engine.runtime.source.world import RULE_SET_INDEX, rule_set_index

CM = GVK("", "v1", "ConfigMap")
SECRET = GVK("", "v1", "Secret")


def rules(name: str, *, mode: str = "Enforce", synchronize: bool = True) -> Any:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": name},
        "spec": {"mode": mode, "rules": [{
            "name": "copy", "match": {"resources": [{"apiVersion": "v1",
                                                     "kinds": ["ConfigMap"]}]},
            "generate": {"synchronize": synchronize, "template": {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "{{ object.metadata.name }}"}}}}]}})


def child(name: str, *, rule_set: str = "t", rule: str = "copy",
          trigger: str = "v1/ConfigMap/n/a", ours: bool = True) -> Obj:
    labels = {RULE_SET_LABEL: rule_set, RULE_LABEL: rule} if ours else {}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "n", "uid": f"uid-{name}",
                         "labels": labels, "annotations": {TRIGGER_ANNOTATION: trigger}}}


TRIGGER = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "a", "namespace": "n"}}


class Store:
    def __init__(self, objects: list[Obj]) -> None:
        self.objects = objects

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return next((o for o in self.objects if o["metadata"]["name"] == name and (
            o["metadata"].get("namespace") == namespace)), None)


class Informer:
    def __init__(self, objects: list[Obj], synced: bool) -> None:
        self.store = Store(objects)
        self.synced = synced

    def has_synced(self) -> bool:
        return self.synced


class Caches:
    """The watches the sweep reads: children (Secrets) and triggers (ConfigMaps)."""

    def __init__(self, children: list[Obj], triggers: list[Obj] | None, synced: bool) -> None:
        self.children = children
        self.triggers = Informer(triggers or [], synced) if triggers is not None else None

    def cached_indexed(self, gvk: GVK, index_name: str) -> list[Obj]:
        """What the informer's store answers, with the index the router registers."""
        assert gvk == SECRET, f"unexpected cached_indexed({gvk})"
        store = CacheStore()
        store.add_index(RULE_SET_INDEX, rule_set_index)
        for obj in self.children:
            store.upsert(obj)
        return store.indexed(index_name)

    def informer(self, gvk: GVK) -> Informer:
        assert gvk == CM, f"unexpected informer({gvk})"
        if self.triggers is None:
            raise NotWatched(gvk)
        return self.triggers

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to WatchManager.{name}")


class Deletes:
    """The writer, as far as pruning may use it."""

    def __init__(self, answer: ApiError | None = None) -> None:
        self.answer = answer
        self.deleted: list[tuple[str, str | None, RuleSetRef | None]] = []

    def delete(self, gvk: GVK, namespace: str | None, name: str, *, uid: str | None,
               rule_set: RuleSetRef | None, current: Current) -> None:
        assert gvk == SECRET and uid == f"uid-{name}", "deletes are uid-guarded"
        self.deleted.append((name, namespace, rule_set))
        if self.answer is not None:
            raise self.answer

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Writer.{name}")


T = rules("t")
LOADED = Current(Engine([T]), {T.ref: T})
CASES: list[tuple[str, Current, Obj, list[Obj] | None, bool, bool]] = [
    # (case, loaded rule sets, the child, cached triggers (None: kind not watched),
    #  trigger cache synced, pruned)
    ("rule, rule set and trigger exist", LOADED, child("c"), [TRIGGER], True, False),
    ("its trigger is gone", LOADED, child("c"), [], True, True),
    ("its trigger's cache has not listed: unknown, kept", LOADED, child("c"), [], False,
     False),
    ("its trigger's kind is not watched: unknown, kept", LOADED, child("c"), None, True,
     False),
    ("its rule set is gone", LOADED, child("c", rule_set="gone"), [TRIGGER], True, True),
    ("its rule is gone", LOADED, child("c", rule="renamed"), [TRIGGER], True, True),
    ("not Edict's (no labels)", LOADED, child("c", ours=False), [], True, False),
    ("a malformed trigger reference", LOADED, child("c", trigger="nonsense"), [], True,
     False),
    ("an Audit rule set writes nothing, prunes nothing",
     Current(Engine([a := rules("t", mode="Audit")]), {a.ref: a}), child("c"), [], True,
     False),
    ("a rule without synchronize leaves its children",
     Current(Engine([s := rules("t", synchronize=False)]), {s.ref: s}), child("c"), [],
     True, False),
]


@pytest.mark.parametrize(("current", "obj", "triggers", "synced", "pruned"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_which_children_are_pruned(current: Current, obj: Obj, triggers: list[Obj] | None,
                                   synced: bool, pruned: bool) -> None:
    writer = Deletes()
    count = prune_orphans([SECRET], current=current,
                          watches=Caches([obj], triggers, synced),  # type: ignore[arg-type]
                          writer=writer)  # type: ignore[arg-type]
    assert count == int(pruned)
    assert [name for name, _, _ in writer.deleted] == (["c"] if pruned else [])


def test_a_prune_goes_out_as_the_rule_set_it_belongs_to() -> None:
    writer = Deletes()
    prune_orphans([SECRET], current=LOADED,
                  watches=Caches([child("c")], [], True),  # type: ignore[arg-type]
                  writer=writer)  # type: ignore[arg-type]
    assert writer.deleted == [("c", "n", T.ref)]


@pytest.mark.parametrize(("answer", "counted"), [
    (NotFound("gone", status=404), 0),
    (Forbidden("no", status=403), 0),
], ids=["already gone", "refused: logged, the next sweep tries again"])
def test_a_failed_delete_is_not_counted_and_stops_nothing(answer: ApiError,
                                                           counted: int) -> None:
    writer = Deletes(answer)
    children = [child("c"), child("d")]
    count = prune_orphans([SECRET], current=LOADED,
                          watches=Caches(children, [], True),  # type: ignore[arg-type]
                          writer=writer)  # type: ignore[arg-type]
    assert count == counted
    assert [name for name, _, _ in writer.deleted] == ["c", "d"]
