"""The informer against a scripted ListWatcher that fails loudly on any unexpected call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from runtime_fakes import CM, ExpectList, ExpectWatch, ScriptedListWatcher, eventually, obj

from engine.kube.errors import Forbidden, Gone, ServerError
from engine.objects import Obj, name_of
from engine.runtime.clock import FakeClock
from engine.runtime.informer import EventHandler, Informer, InformerSettings
from engine.runtime.store import index_by_label, index_by_owner_uid


class Recorder:
    """An EventHandler that records what it is told, as short strings."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[str] = []

    def handler(self) -> EventHandler:
        return EventHandler(on_add=self.add, on_update=self.update, on_delete=self.delete)

    def _record(self, text: str) -> None:
        with self.lock:
            self.seen.append(text)

    def add(self, new: Obj) -> None:
        self._record(f"add {name_of(new)}@{new['metadata']['resourceVersion']}")

    def update(self, old: Obj, new: Obj) -> None:
        verb = "resync" if old is new else "update"
        self._record(f"{verb} {name_of(new)}@{new['metadata']['resourceVersion']}")

    def delete(self, old: Obj) -> None:
        self._record(f"delete {name_of(old)}")

    def take(self) -> list[str]:
        with self.lock:
            seen, self.seen = self.seen, []
            return seen


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source() -> Iterator[ScriptedListWatcher]:
    fake = ScriptedListWatcher()
    yield fake
    assert fake.surprises == []


@pytest.fixture
def informers() -> Iterator[list[Informer]]:
    started: list[Informer] = []
    yield started
    for informer in started:
        informer.stop()


def start(source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer],
          recorder: Recorder | None = None, **settings: Any) -> Informer:
    informer = Informer(CM, source=source, clock=clock,
                        settings=InformerSettings(**{"resync_period": 0, **settings}))
    if recorder is not None:
        informer.add_handler(recorder.handler())
    informer.start()
    informers.append(informer)
    return informer


def test_lists_then_watches_from_the_lists_version(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    watch = ExpectWatch("10")
    source.expect(CM, ExpectList([obj("a", "5"), obj("b", "7")], "10"), watch)
    recorder = Recorder()
    informer = start(source, clock, informers, recorder)
    assert informer.wait_synced(timeout=5)
    assert recorder.take() == ["add a@5", "add b@7"]
    assert informer.store.get("default", "a") == obj("a", "5")
    eventually(lambda: source.remaining(CM) == 0, what="the watch to be opened")

    watch.stream.push("ADDED", obj("c", "11"))
    watch.stream.push("MODIFIED", obj("a", "12", data={"x": "1"}))
    watch.stream.push("DELETED", obj("b", "13"))
    eventually(lambda: informer.resource_version == "13", what="the events")
    assert recorder.take() == ["add c@11", "update a@12", "delete b"]
    assert [name_of(o) for o in informer.store.list()] == ["a", "c"]
    assert informer.store.get("default", "a")["data"] == {"x": "1"}  # type: ignore[index]

    informer.stop()
    assert watch.stream.closed.is_set(), "stop() closes the open watch"


def test_bookmarks_move_the_version_the_next_watch_starts_from(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    first, second = ExpectWatch("10"), ExpectWatch("25")
    source.expect(CM, ExpectList([obj("a", "5")], "10"), first, second)
    recorder = Recorder()
    informer = start(source, clock, informers, recorder)
    informer.wait_synced(timeout=5)
    eventually(lambda: source.remaining(CM) == 1, what="the first watch")
    bookmark = {"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"resourceVersion": "25"}}
    first.stream.push("BOOKMARK", bookmark)
    eventually(lambda: informer.resource_version == "25", what="the bookmark")
    first.stream.end()  # the server's timeoutSeconds: resume, do not list again
    eventually(lambda: source.remaining(CM) == 0, what="the second watch")
    assert source.count("list") == 1
    assert recorder.take() == ["add a@5"], "a bookmark is not an object event"


def test_gone_lists_again_and_delivers_what_changed_meanwhile(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    watch = ExpectWatch("10")
    source.expect(CM, ExpectList([obj("a", "5"), obj("b", "6"), obj("c", "7")], "10"), watch,
                  ExpectList([obj("a", "5"), obj("b", "20"), obj("d", "21")], "30"),
                  ExpectWatch("30"))
    recorder = Recorder()
    informer = start(source, clock, informers, recorder)
    informer.wait_synced(timeout=5)
    recorder.take()
    eventually(lambda: source.remaining(CM) == 2, what="the first watch")
    watch.stream.fail(Gone("too old resource version", status=410, reason="Expired"))
    eventually(lambda: source.remaining(CM) == 0, what="the re-list and the new watch")
    eventually(lambda: informer.resource_version == "30", what="the re-list")
    assert sorted(recorder.take()) == ["add d@21", "delete c", "update b@20"]
    assert [name_of(o) for o in informer.store.list()] == ["a", "b", "d"]


def test_watch_error_event_410_also_lists_again(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    watch = ExpectWatch("10")
    source.expect(CM, ExpectList([], "10"), watch, ExpectList([], "40"), ExpectWatch("40"))
    informer = start(source, clock, informers)
    informer.wait_synced(timeout=5)
    eventually(lambda: source.remaining(CM) == 2, what="the first watch")
    watch.stream.push("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
    eventually(lambda: source.remaining(CM) == 0, what="the re-list")


def test_errors_back_off_in_clock_time_then_retry(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    source.expect(CM, ExpectList(error=ServerError("etcd down", status=503)),
                  ExpectList(error=ServerError("etcd down", status=503)),
                  ExpectList([obj("a", "1")], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=1.0, backoff_max=30.0)
    eventually(lambda: clock.waiters > 0, what="the first backoff")
    assert source.count("list") == 1
    assert not informer.has_synced()
    clock.advance(0.5)
    assert source.count("list") == 1
    clock.advance(0.5)
    eventually(lambda: source.count("list") == 2, what="the retry after 1s")
    eventually(lambda: clock.waiters > 0, what="the second backoff")
    clock.advance(1.9)  # the backoff doubled to 2s
    assert source.count("list") == 2
    clock.advance(0.1)
    eventually(informer.has_synced, what="the third list")
    eventually(lambda: source.remaining(CM) == 0, what="the watch")


def test_waiting_for_a_cache_can_end_at_its_first_failure(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    source.expect(CM, ExpectList(error=Forbidden("configmaps is forbidden")),
                  ExpectList([obj("a", "1")], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=1.0)
    # the clock stands still: only the failure can end this wait
    assert informer.wait_synced(timeout=30, or_failing=True) is False
    assert isinstance(informer.last_error, Forbidden)
    assert informer.wait_synced(timeout=30, or_failing=True) is False  # still failing
    eventually(lambda: clock.waiters > 0, what="the backoff")
    clock.advance(1.0)  # the retry lists
    eventually(informer.has_synced, what="the retry's list")
    eventually(lambda: informer.last_error is None, what="the error to clear")
    assert informer.wait_synced(timeout=30, or_failing=True) is True
    eventually(lambda: source.remaining(CM) == 0, what="the watch")


def test_indexes_follow_adds_updates_and_deletes(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    def owned(name: str, rv: str, owner: str, team: str) -> Obj:
        return obj(name, rv, metadata={"ownerReferences": [{"uid": owner}],
                                       "labels": {"team": team}})

    watch = ExpectWatch("10")
    source.expect(CM, ExpectList([owned("a", "1", "u1", "red"), owned("b", "2", "u1", "blue")],
                                 "10"), watch)
    informer = Informer(CM, source=source, clock=clock,
                        settings=InformerSettings(resync_period=0))
    informer.add_index("owner", index_by_owner_uid)
    informer.start()
    informers.append(informer)
    informer.wait_synced(timeout=5)
    informer.add_index("team", index_by_label("team"))  # added late: indexes what is there

    def names(index: str, value: str) -> list[str]:
        return [name_of(o) for o in informer.store.by_index(index, value)]

    assert names("owner", "u1") == ["a", "b"]
    assert names("team", "red") == ["a"]
    eventually(lambda: source.remaining(CM) == 0, what="the watch")
    watch.stream.push("MODIFIED", owned("a", "11", "u2", "blue"))
    watch.stream.push("ADDED", owned("c", "12", "u2", "green"))
    watch.stream.push("DELETED", owned("b", "13", "u1", "blue"))
    eventually(lambda: informer.resource_version == "13", what="the events")
    assert names("owner", "u1") == []
    assert names("owner", "u2") == ["a", "c"]
    assert names("team", "blue") == ["a"]
    assert names("team", "red") == []
    with pytest.raises(KeyError, match="no index 'nope'"):
        informer.store.by_index("nope", "x")


def test_resync_redelivers_every_cached_object(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    source.expect(CM, ExpectList([obj("a", "1"), obj("b", "2")], "3"), ExpectWatch("3"))
    recorder = Recorder()
    informer = start(source, clock, informers, recorder, resync_period=60)
    informer.wait_synced(timeout=5)
    assert recorder.take() == ["add a@1", "add b@2"]
    eventually(lambda: clock.waiters > 0, what="the resync timer")
    clock.advance(59)
    assert recorder.take() == []
    clock.advance(1)
    eventually(lambda: len(recorder.seen) == 2, what="the resync")
    assert recorder.take() == ["resync a@1", "resync b@2"]
    eventually(lambda: clock.waiters > 0, what="the next resync timer")
    clock.advance(60)
    eventually(lambda: len(recorder.seen) == 2, what="the second resync")


def test_late_handlers_get_the_cache_and_a_failing_handler_harms_no_one(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    watch = ExpectWatch("3")
    source.expect(CM, ExpectList([obj("a", "1")], "3"), watch)

    def broken(_: Obj) -> None:
        raise RuntimeError("handler bug")

    informer = start(source, clock, informers)
    informer.add_handler(EventHandler(on_add=broken))
    informer.wait_synced(timeout=5)
    recorder = Recorder()
    informer.add_handler(recorder.handler())
    assert recorder.take() == ["add a@1"]
    eventually(lambda: source.remaining(CM) == 0, what="the watch")
    watch.stream.push("ADDED", obj("b", "4"))
    eventually(lambda: recorder.seen == ["add b@4"], what="delivery despite the broken one")


def test_the_fake_fails_loudly_on_unexpected_calls() -> None:
    fake = ScriptedListWatcher()
    with pytest.raises(AssertionError, match="must not be called"):
        fake.list(CM)
    assert len(fake.surprises) == 1
