"""One informer per kind, shared by holders, stopped when the last holder lets go."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from runtime_fakes import CM, ExpectList, ExpectWatch, ScriptedListWatcher, obj

from engine.objects import GVK
from engine.runtime.clock import FakeClock
from engine.runtime.source.informer import Informer, InformerSettings
from engine.runtime.source.store import index_by_owner_uid
from engine.runtime.source.watches import NotWatched, WatchManager
from tests.support import eventually

DEPLOY = GVK("apps", "v1", "Deployment")


@pytest.fixture
def source() -> Iterator[ScriptedListWatcher]:
    fake = ScriptedListWatcher()
    yield fake
    assert fake.surprises == []


@pytest.fixture
def manager(source: ScriptedListWatcher) -> Iterator[WatchManager]:
    watches = WatchManager(source=source, clock=FakeClock(),
                           settings=InformerSettings(resync_period=0))
    yield watches
    watches.stop()


def test_holders_share_one_informer_until_the_last_releases(
        source: ScriptedListWatcher, manager: WatchManager) -> None:
    watch = ExpectWatch("1")
    source.expect(CM, ExpectList([obj("a", "1")], "1"), watch)
    first = manager.acquire(CM, "ruleset-a")
    second = manager.acquire(CM, "ruleset-b")
    again = manager.acquire(CM, "ruleset-a")  # idempotent
    assert first is second is again
    assert manager.wait_synced([CM], timeout=5)
    eventually(lambda: source.remaining(CM) == 0, what="the watch")
    assert source.count("list") == 1
    assert manager.holders(CM) == {"ruleset-a", "ruleset-b"}
    assert manager.watched() == {CM}

    manager.release(CM, "ruleset-a")
    manager.release(CM, "ruleset-a")  # idempotent
    assert manager.watched() == {CM}
    assert not watch.stream.closed.is_set()

    manager.release(CM, "ruleset-b")
    assert manager.watched() == frozenset()
    assert watch.stream.closed.is_set() and first.stopped
    with pytest.raises(NotWatched, match="not watched"):
        manager.informer(CM)


def test_a_kind_acquired_again_gets_a_fresh_informer(
        source: ScriptedListWatcher, manager: WatchManager) -> None:
    source.expect(CM, ExpectList([], "1"), ExpectWatch("1"), ExpectList([], "9"),
                  ExpectWatch("9"))
    old = manager.acquire(CM, "x")
    manager.wait_synced([CM], timeout=5)
    manager.release(CM, "x")
    new = manager.acquire(CM, "x")
    assert new is not old and manager.informer(CM) is new
    assert manager.wait_synced([CM], timeout=5)
    eventually(lambda: source.remaining(CM) == 0, what="the second watch")


def test_release_all_drops_every_hold_of_a_holder(
        source: ScriptedListWatcher, manager: WatchManager) -> None:
    source.expect(CM, ExpectList([], "1"), ExpectWatch("1"))
    source.expect(DEPLOY, ExpectList([], "1"), ExpectWatch("1"))
    manager.acquire(CM, "a")
    manager.acquire(DEPLOY, "a")
    manager.acquire(DEPLOY, "b")
    assert manager.held_by("a") == {CM, DEPLOY}
    assert manager.wait_synced([CM, DEPLOY], timeout=5)
    eventually(lambda: source.remaining(CM) + source.remaining(DEPLOY) == 0, what="watches")
    manager.release_all("a")
    assert manager.watched() == {DEPLOY}
    assert manager.holders(DEPLOY) == {"b"}
    manager.release(GVK("x", "v1", "Never"), "a")  # unknown kinds are fine


def test_namespace_restriction_and_setup_hook(source: ScriptedListWatcher) -> None:
    source.expect(CM, ExpectList([obj("a", "1", namespace="team-a")], "2", namespace="team-a"),
                  ExpectWatch("2", namespace="team-a"))
    prepared: list[Informer] = []

    def prepare(informer: Informer) -> None:
        informer.add_index("owner", index_by_owner_uid)
        prepared.append(informer)

    manager = WatchManager(source=source, clock=FakeClock(), namespace="team-a",
                           settings=InformerSettings(resync_period=0), on_started=prepare)
    try:
        informer = manager.acquire(CM, "r")
        assert prepared == [informer] and informer.namespace == "team-a"
        assert manager.wait_synced([CM], timeout=5)
        assert manager.unsynced() == frozenset()
        assert informer.store.by_index("owner", "nobody") == []
        eventually(lambda: source.remaining(CM) == 0, what="the watch")
    finally:
        manager.stop()
    assert manager.watched() == frozenset()


def test_unsynced_lists_kinds_still_waiting_for_their_first_list(
        source: ScriptedListWatcher) -> None:
    clock = FakeClock()
    source.expect(CM, ExpectList(error=RuntimeError("no answer yet")), ExpectList([], "1"),
                  ExpectWatch("1"))
    manager = WatchManager(source=source, clock=clock,
                           settings=InformerSettings(resync_period=0, backoff_initial=5,
                                                     jitter=0))
    try:
        manager.acquire(CM, "r")
        eventually(clock.asleep, what="the backoff")
        assert manager.unsynced() == {CM}
        clock.advance(5)
        assert manager.wait_synced([CM], timeout=30)
        assert manager.unsynced() == frozenset()
        eventually(lambda: source.remaining(CM) == 0, what="the watch")
    finally:
        manager.stop()
