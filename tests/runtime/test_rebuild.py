"""The rule-set controller's rebuild (engine/runtime/rulesets/controller.py), step by step.

A real WatchManager over a scripted source (RuleSets, ClusterRuleSets, Namespaces and
the ConfigMaps the rules match), a fake clock, and seam fakes for the rest: discovery
(`resource_for`), the schema fetcher, and a writer that must not be called (this replica
does not lead, so nothing is pruned or written). Each test calls `rebuild()` directly and
checks what it published, watched, reported and queued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from runtime_fakes import CM, ExpectList, ExpectWatch, LiveStream, ScriptedListWatcher

from engine.kube.discovery import Resource
from engine.kube.errors import NotFound
from engine.objects import GVK, Obj
from engine.rules.model import RuleSetRef
from engine.runtime.clock import FakeClock
from engine.runtime.current import Loaded
from engine.runtime.kinds import CLUSTER_RULE_SET_GVK, NAMESPACE_GVK, RULE_SET_GVK
from engine.runtime.metrics import EngineMetrics
from engine.runtime.rulesets.controller import ENGINE, RuleSetController, RuleSetSettings
from engine.runtime.source.informer import InformerSettings
from engine.runtime.source.watches import WatchManager
from engine.runtime.status import StatusBoard
from tests.support import eventually

WIDGET = GVK("example.com", "v1", "Widget")  # no such kind in this cluster


def cluster_rule_set(name: str, kind: GVK = CM, label: str = "yes") -> Obj:
    return {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
            "metadata": {"name": name, "generation": 1, "resourceVersion": "1"},
            "spec": {"rules": [{"name": "label", "match": {"resources": [
                {"apiVersion": kind.api_version, "kinds": [kind.kind]}]},
                "mutate": {"template": {"metadata": {"labels": {"done": label}}}}}]}}


class Discovery:
    """What the controller asks the cluster: whether a kind exists. Nothing else."""

    def resource_for(self, gvk: GVK) -> Resource:
        if gvk == WIDGET:
            raise NotFound(f"{gvk} is not served", status=404)
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s",
                        namespaced=gvk not in (NAMESPACE_GVK, CLUSTER_RULE_SET_GVK),
                        verbs=frozenset(), has_status=True)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


class Schemas:
    def __init__(self) -> None:
        self.ensured: list[set[GVK]] = []

    def refresh(self) -> None:
        pass

    def ensure(self, gvks: Any) -> None:
        self.ensured.append(set(gvks))


class NoWrites:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a standby must not write: Writer.{name}")


class Setup:
    def __init__(self, rule_sets: list[Obj], *, cm_watched: bool) -> None:
        self.clock = FakeClock()
        self.source = ScriptedListWatcher()
        self.crs_stream = LiveStream()
        self.source.expect(RULE_SET_GVK, ExpectList([], "1"), ExpectWatch("1"))
        self.source.expect(CLUSTER_RULE_SET_GVK, ExpectList(rule_sets, "1"),
                           ExpectWatch("1", self.crs_stream))
        self.source.expect(NAMESPACE_GVK, ExpectList([], "1"), ExpectWatch("1"))
        if cm_watched:
            self.source.expect(CM, ExpectList([], "1"), ExpectWatch("1"))
        self.watches = WatchManager(source=self.source, clock=self.clock,
                                    settings=InformerSettings(resync_period=0))
        self.loaded = Loaded()
        self.board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
        self.enqueued: list[set[GVK]] = []
        self.replaced: list[set[GVK]] = []
        self.schemas = Schemas()
        self.metrics = EngineMetrics(CollectorRegistry())
        self.controller = RuleSetController(
            Discovery(), RuleSetSettings(sync_timeout=5.0),  # type: ignore[arg-type]
            clock=self.clock, watches=self.watches, loaded=self.loaded, board=self.board,
            writer=NoWrites(), schemas=self.schemas,  # type: ignore[arg-type]
            metrics=self.metrics, changed=threading.Event(), leading=lambda: False,
            enqueue=self.enqueued.append,
            forget_converged=lambda: pytest.fail("not at a rebuild"),
            rules_replaced=lambda old, new, changed: self.replaced.append(changed))
        for gvk in (RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK):
            self.watches.acquire(gvk, ENGINE)

    def status(self, name: str) -> dict[str, Any]:
        return self.board.render(RuleSetRef("ClusterRuleSet", "", name)) or {}


@pytest.fixture
def made() -> Iterator[list[Setup]]:
    setups: list[Setup] = []
    yield setups
    for setup in setups:
        setup.watches.stop()
        assert setup.source.surprises == []


def test_a_rebuild_publishes_the_engine_watches_its_kinds_and_queues_their_objects(
        made: list[Setup]) -> None:
    setup = Setup([cluster_rule_set("team")], cm_watched=True)
    made.append(setup)
    assert not setup.loaded.ready()
    setup.controller.requeue_everything()
    setup.controller.rebuild()
    current = setup.loaded.get()
    assert [ref.name for ref in current.rule_sets] == ["team"]
    assert current.engine.trigger_kinds() == {CM}
    assert setup.watches.held_by(ENGINE) == {RULE_SET_GVK, CLUSTER_RULE_SET_GVK,
                                             NAMESPACE_GVK, CM}
    assert setup.loaded.ready()
    assert setup.enqueued == [set()], (
        "at start every trigger kind, but ConfigMaps' cache started here, under these "
        "rules: its list queued each object as it came")
    assert {CM} in setup.schemas.ensured, "schemas fetched before evaluation"
    assert setup.metrics.registry.get_sample_value("edict_watched_kinds") == 4.0

    setup.controller.rebuild()  # nothing changed
    assert setup.enqueued[-1] == set(), "nothing changed: nothing queued"
    assert setup.loaded.get().rule_sets == current.rule_sets
    assert setup.replaced == [{CM}, set()], (
        "the reconciler is told, per rebuild, which kinds' rules changed: what an "
        "engine found converged of the others still holds")


def test_a_changed_rule_set_queues_its_kinds_and_a_removed_one_releases_them(
        made: list[Setup]) -> None:
    setup = Setup([cluster_rule_set("team")], cm_watched=True)
    made.append(setup)
    setup.controller.rebuild()
    changed = {**cluster_rule_set("team", label="again"),
               "metadata": {"name": "team", "generation": 2, "resourceVersion": "2"}}
    setup.crs_stream.push("MODIFIED", changed)
    eventually(lambda: setup.watches.informer(CLUSTER_RULE_SET_GVK).store.get(
        None, "team")["metadata"]["generation"] == 2, what="the change in the cache")
    setup.controller.rebuild()
    assert setup.enqueued[-1] == {CM}, "the changed rule set's trigger kinds"

    setup.crs_stream.push("DELETED", changed)
    eventually(lambda: setup.watches.informer(CLUSTER_RULE_SET_GVK).store.get(
        None, "team") is None, what="the deletion in the cache")
    setup.controller.rebuild()
    assert setup.loaded.get().rule_sets == {}
    assert CM not in setup.watches.watched(), "no rule needs ConfigMaps any more"
    assert setup.enqueued[-1] == {CM}


def test_a_kind_the_cluster_lacks_disables_the_rule_and_is_not_watched(
        made: list[Setup]) -> None:
    setup = Setup([cluster_rule_set("widgets", kind=WIDGET)], cm_watched=False)
    made.append(setup)
    setup.controller.rebuild()
    assert WIDGET not in setup.watches.watched()
    rule = next(r for r in setup.status("widgets")["rules"] if r["name"] == "label")
    assert "does not exist in this cluster" in rule["lastError"]
    assert setup.loaded.ready(), "the rest loads: one missing CRD never blocks the engine"


class ListSpy:
    """The source's list, noting what the published engine triggered on and which
    schemas had been fetched when each kind was listed."""

    def __init__(self, setup: Setup) -> None:
        self.seen: dict[GVK, tuple[frozenset[GVK], int]] = {}
        real = setup.source.list

        def spied(gvk: GVK, **kwargs: Any) -> Any:
            self.seen[gvk] = (setup.loaded.get().engine.trigger_kinds(),
                              len(setup.schemas.ensured))
            return real(gvk, **kwargs)

        setup.source.list = spied  # type: ignore[method-assign]


def looking_up_a_configmap() -> Obj:
    """A ClusterRuleSet whose label rule on ConfigMaps also looks one up."""
    looking = cluster_rule_set("lookup")
    looking["spec"]["rules"][0]["context"] = {
        "defaults": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-system",
                     "name": "defaults"}}
    return looking


def test_rules_reading_only_their_trigger_are_published_before_its_cache_lists(
        made: list[Setup]) -> None:
    setup = Setup([cluster_rule_set("team")], cm_watched=True)
    made.append(setup)
    spy = ListSpy(setup)
    setup.controller.rebuild()
    triggers, schemas = spy.seen[CM]
    assert triggers == {CM}, (
        "the rules were published before ConfigMaps were listed: each object is queued "
        "as its page arrives, the first write does not wait for the whole list")
    assert schemas == 1, "the kind's schema was fetched before any object could be evaluated"
    assert setup.enqueued == [set()], "listed under these rules: nothing to queue again"
    assert setup.replaced == [{CM}], "the reconciler was told before the publication"
    assert setup.loaded.ready()


def test_rules_reading_another_object_of_a_listing_kind_wait_for_the_whole_list(
        made: list[Setup]) -> None:
    setup = Setup([looking_up_a_configmap()], cm_watched=True)
    made.append(setup)
    spy = ListSpy(setup)
    setup.controller.rebuild()
    assert spy.seen[CM][0] == frozenset(), (
        "a rule that looks up a ConfigMap must not run while ConfigMaps are half "
        "listed (an object not listed yet would look absent): published after the list")
    assert setup.loaded.get().engine.trigger_kinds() == {CM}
    assert setup.enqueued == [{CM}], "so every listed object is queued after it"


def test_a_kind_already_cached_is_queued_whole_when_its_rules_change(
        made: list[Setup]) -> None:
    setup = Setup([cluster_rule_set("team")], cm_watched=True)
    made.append(setup)
    setup.watches.acquire(CM, "someone else")  # listed before any rule names it
    assert setup.watches.wait_synced([CM], timeout=5)
    setup.controller.requeue_everything()
    setup.controller.rebuild()
    assert setup.enqueued == [{CM}], (
        "the cache listed before these rules were published: its objects were never "
        "queued under them, so all are queued now")


def test_rules_reading_a_cache_still_listing_wait_for_it_though_another_holder_started_it(
        made: list[Setup]) -> None:
    setup = Setup([looking_up_a_configmap()], cm_watched=True)
    made.append(setup)
    release = threading.Event()
    real = setup.source.list

    def held(gvk: GVK, **kwargs: Any) -> Any:
        if gvk == CM:
            assert release.wait(10), "the test never let the list go"
        return real(gvk, **kwargs)

    setup.source.list = held  # type: ignore[method-assign]
    setup.watches.acquire(CM, "someone else")  # watched, not new here, still listing
    rebuild = threading.Thread(target=setup.controller.rebuild)
    rebuild.start()
    try:
        eventually(lambda: bool(setup.schemas.ensured), what="the rebuild under way")
        time.sleep(0.3)  # long enough for a publication that must not come
        assert setup.replaced == [] and setup.loaded.get().rule_sets == {}, (
            "a rule that looks up ConfigMaps is not published while their cache lists, "
            "though this rebuild did not start it")
    finally:
        release.set()
        rebuild.join(10)
    assert setup.replaced == [{CM}]
    assert setup.loaded.get().engine.trigger_kinds() == {CM}
    assert setup.enqueued == [{CM}]
