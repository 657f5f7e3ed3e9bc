"""The informer against a scripted ListWatcher that fails loudly on any unexpected call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from runtime_fakes import CM, ExpectList, ExpectWatch, ScriptedListWatcher, obj, step_clock

from engine.kube.errors import ConnectionFailed, Forbidden, Gone, ServerError, TooManyRequests
from engine.objects import Obj, name_of
from engine.runtime.clock import FakeClock
from engine.runtime.source import store as store_module
from engine.runtime.source.informer import EventHandler, Informer, InformerSettings
from engine.runtime.source.store import index_by_label, index_by_owner_uid
from tests.support import eventually


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
          recorder: Recorder | None = None, random_unit: float = 0.0,
          **settings: Any) -> Informer:
    """An informer on `source`; jitter draws `random_unit` (0: the shortest delays)."""
    informer = Informer(CM, source=source, clock=clock, random_unit=lambda: random_unit,
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


class PagedSource(ScriptedListWatcher):
    """Calls `transform` on each listed item like `Cluster.list` (or, with `ignore`,
    does not), noting how many objects the informer has cached after each."""

    def __init__(self, *, ignore: bool = False) -> None:
        super().__init__()
        self.ignore = ignore
        self.informer: Informer | None = None
        self.cached_after: list[int] = []

    def list(self, gvk: Any, *, transform: Any = None, **options: Any) -> Any:
        items, version = super().list(gvk, **options)
        if self.ignore:
            return items, version
        out = []
        for item in items:
            out.append(transform(item))
            assert self.informer is not None
            self.cached_after.append(len(self.informer.store))
        return out, version


@pytest.mark.parametrize("ignore", [False, True], ids=["transform called", "ignored"])
def test_a_list_is_cached_as_its_items_arrive_and_slimmed(
        clock: FakeClock, informers: list[Informer], ignore: bool) -> None:
    source = PagedSource(ignore=ignore)
    managed = {"managedFields": [{"manager": "x"}]}
    source.expect(CM, ExpectList([obj("a", "1", metadata=managed), obj("b", "2"),
                                  obj("c", "3", metadata=managed)], "4"), ExpectWatch("4"))
    recorder = Recorder()
    informer = Informer(CM, source=source, clock=clock,
                        settings=InformerSettings(resync_period=0))
    source.informer = informer
    informer.add_handler(recorder.handler())
    informer.start()
    informers.append(informer)
    assert informer.wait_synced(timeout=5)
    assert source.cached_after == ([] if ignore else [1, 2, 3])
    assert recorder.take() == ["add a@1", "add b@2", "add c@3"]
    assert informer.store.list() == [obj("a", "1"), obj("b", "2"), obj("c", "3")]
    eventually(lambda: source.remaining(CM) == 0, what="the watch to be opened")
    assert source.surprises == []


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
    eventually(lambda: source.remaining(CM) == 2, what="the first watch")
    watch.stream.push("MODIFIED", obj("a", "5"))
    watch.stream.fail(Gone("too old resource version", status=410, reason="Expired"))
    # the watch had delivered something: the re-list follows at once, clock standing still
    eventually(lambda: source.remaining(CM) == 0, what="the re-list and the new watch")
    eventually(lambda: informer.resource_version == "30", what="the re-list")
    assert sorted(recorder.take()) == ["add a@5", "add b@6", "add c@7", "add d@21",
                                       "delete c", "update b@20"]
    assert [name_of(o) for o in informer.store.list()] == ["a", "b", "d"]
    assert source.lists[1]["resource_version"] is None, \
        "the re-list is a consistent read, not a list from the expired version"


def test_watch_error_event_410_also_lists_again(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    watch = ExpectWatch("10")
    source.expect(CM, ExpectList([], "10"), watch, ExpectList([], "40"), ExpectWatch("40"))
    informer = start(source, clock, informers)
    informer.wait_synced(timeout=5)
    eventually(lambda: source.remaining(CM) == 2, what="the first watch")
    watch.stream.push("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
    # Gone at once, nothing delivered: a short watch, so the re-list waits for the backoff
    eventually(clock.asleep, what="the backoff")
    assert source.count("list") == 1
    clock.advance(0.8)
    eventually(lambda: source.remaining(CM) == 0, what="the re-list")
    eventually(lambda: informer.resource_version == "40", what="the new version")


def test_a_watch_that_ends_at_once_without_events_backs_off(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    watches = [ExpectWatch("10") for _ in range(4)]
    for watch in watches[:3]:
        watch.stream.end()  # each one ends as soon as it is opened
    source.expect(CM, ExpectList([], "10"), *watches)
    start(source, clock, informers, backoff_initial=1.0, backoff_max=3.0)
    for count, delay in ((1, 1.0), (2, 2.0), (3, 3.0)):  # doubling, capped at 3 s
        eventually(clock.asleep, what=f"the backoff after watch {count}")
        assert source.count("watch") == count, "a short watch must not be re-opened at once"
        clock.advance(delay - 0.01)
        eventually(clock.asleep, what="the rest of the backoff")
        assert source.count("watch") == count
        clock.advance(0.01)
        eventually(lambda c=count: source.count("watch") == c + 1, what="the next watch")
    assert source.count("list") == 1, "a watch that merely ended resumes, it does not list"


def test_a_watch_that_ends_after_a_while_resumes_at_once(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    first, second = ExpectWatch("10"), ExpectWatch("10")
    source.expect(CM, ExpectList([], "10"), first, second)
    start(source, clock, informers, min_watch_duration=1.0)
    eventually(lambda: source.count("watch") == 1, what="the first watch")
    clock.advance(300)  # a quiet watch until the server's timeout
    first.stream.end()
    eventually(lambda: source.count("watch") == 2, what="the watch to be resumed")
    assert not clock.asleep(), "no backoff after a watch of normal length"


def test_watch_timeouts_are_jittered_between_one_and_two_times_the_setting(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    source.expect(CM, ExpectList([], "10"), ExpectWatch("10"))
    start(source, clock, informers, random_unit=0.5, watch_timeout=300)
    eventually(lambda: source.remaining(CM) == 0, what="the watch")
    assert source.watch_timeouts == [450]
    assert source.lists == [{"namespace": None, "resource_version": None, "limit": 500}]


@pytest.mark.parametrize("linger", [0.0, 0.02, 0.5])
def test_each_watch_lingers_as_the_settings_say(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer],
        linger: float) -> None:
    source.expect(CM, ExpectList([], "10"), ExpectWatch("10"))
    start(source, clock, informers, linger=linger)
    eventually(lambda: source.remaining(CM) == 0, what="the watch")
    assert source.lingers == [linger]
    assert InformerSettings().linger == 0.02  # the engine's informers batch busy watches


def test_errors_back_off_in_clock_time_then_retry(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    source.expect(CM, ExpectList(error=ServerError("etcd down", status=500)),
                  ExpectList(error=ServerError("etcd down", status=500)),
                  ExpectList([obj("a", "1")], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=1.0, backoff_max=30.0)
    eventually(clock.asleep, what="the first backoff")
    assert source.count("list") == 1
    assert not informer.has_synced()
    clock.advance(0.5)
    eventually(clock.asleep, what="the rest of the first backoff")
    assert source.count("list") == 1
    clock.advance(0.5)
    eventually(lambda: source.count("list") == 2, what="the retry after 1s")
    eventually(clock.asleep, what="the second backoff")
    clock.advance(1.9)  # the backoff doubled to 2s
    eventually(clock.asleep, what="the rest of the second backoff")
    assert source.count("list") == 2
    clock.advance(0.1)
    eventually(informer.has_synced, what="the third list")
    eventually(lambda: source.remaining(CM) == 0, what="the watch")


@pytest.mark.parametrize("error", [
    TooManyRequests("too many requests", status=429, retry_after=7.0),
    ServerError("shutting down", status=503, retry_after=7.0),
], ids=["429", "503"])
def test_a_failed_list_waits_at_least_retry_after(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer],
        error: Exception) -> None:
    source.expect(CM, ExpectList(error=error), ExpectList([], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=0.8)
    eventually(clock.asleep, what="the wait after the refusal")
    clock.advance(6.99)  # the backoff alone (0.8 s) would have listed long ago
    eventually(clock.asleep, what="the rest of Retry-After")
    assert source.count("list") == 1
    clock.advance(0.01)
    eventually(informer.has_synced, what="the list after Retry-After")


def test_a_refused_watch_waits_at_least_retry_after_then_resumes_without_listing(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    refused = TooManyRequests("too many requests", status=429, retry_after=5.0)
    source.expect(CM, ExpectList([], "2"), ExpectWatch("2", error=refused), ExpectWatch("2"))
    start(source, clock, informers)
    eventually(clock.asleep, what="the wait after the refused watch")
    clock.advance(4.99)
    eventually(clock.asleep, what="the rest of Retry-After")
    assert source.count("watch") == 1
    clock.advance(0.01)
    eventually(lambda: source.remaining(CM) == 0, what="the watch again")
    assert source.count("list") == 1


def test_retry_now_cuts_a_backoff_short(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    down = ConnectionFailed("connection refused", reason="ConnectionFailed")
    source.expect(CM, ExpectList(error=down), ExpectList([], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=30.0)
    eventually(clock.asleep, what="the backoff")
    informer.retry_now()  # the engine saw the server answer again
    eventually(informer.has_synced, what="the list, long before 30 s")
    eventually(lambda: source.remaining(CM) == 0, what="the watch")
    informer.retry_now()  # not backing off: nothing to cut short, nothing happens
    assert source.count("list") == 2 and source.count("watch") == 1


def test_retry_now_does_not_cut_retry_after_short(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    refused = TooManyRequests("too many requests", status=429, retry_after=10.0)
    source.expect(CM, ExpectList(error=refused), ExpectList([], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=30.0)
    eventually(clock.asleep, what="the wait")
    informer.retry_now()
    eventually(lambda: clock.next_wake() == 1010.0, what="the wait for what the server asked")
    assert source.count("list") == 1
    clock.advance(10.0)  # Retry-After passed: the nudge ends the rest of the backoff
    eventually(informer.has_synced, what="the list after Retry-After, not after 30 s")


@pytest.mark.parametrize("random_unit", [0.0, 0.5, 0.999])
def test_an_api_server_down_for_a_minute_gets_a_handful_of_requests(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer],
        random_unit: float) -> None:
    down = ConnectionFailed("connection refused", reason="ConnectionFailed")
    watch = ExpectWatch("2")
    source.expect(CM, ExpectList([], "2"), watch,
                  *[ExpectWatch("2", error=down) for _ in range(60)])
    start(source, clock, informers, random_unit=random_unit)  # client-go's 0.8 s .. 30 s
    eventually(lambda: source.count("watch") == 1, what="the watch")
    watch.stream.fail(down)  # the server goes away
    step_clock(clock, 60.0)
    # without jitter: retries at 0.8, 2.4, 5.6, 12, 24.8 and 50.4 s
    assert source.count("watch") - 1 <= 6
    assert source.count("list") == 1, "the version is kept: the watch resumes, no re-list"


def test_waiting_for_a_cache_can_end_at_its_first_failure(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer]) -> None:
    source.expect(CM, ExpectList(error=Forbidden("configmaps is forbidden")),
                  ExpectList([obj("a", "1")], "2"), ExpectWatch("2"))
    informer = start(source, clock, informers, backoff_initial=1.0)
    # the clock stands still: only the failure can end this wait
    assert informer.wait_synced(timeout=30, or_failing=True) is False
    assert isinstance(informer.last_error, Forbidden)
    assert informer.wait_synced(timeout=30, or_failing=True) is False  # still failing
    eventually(clock.asleep, what="the backoff")
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
    eventually(clock.asleep, what="the resync timer")
    clock.advance(59)
    eventually(clock.asleep, what="the rest of the resync period")
    assert recorder.take() == []
    clock.advance(1)
    eventually(lambda: len(recorder.seen) == 2, what="the resync")
    assert recorder.take() == ["resync a@1", "resync b@2"]
    eventually(clock.asleep, what="the next resync timer")
    clock.advance(60)
    eventually(lambda: len(recorder.seen) == 2, what="the second resync")


def test_a_resync_a_handler_declines_is_not_delivered_nor_decoded(
        source: ScriptedListWatcher, clock: FakeClock, informers: list[Informer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    source.expect(CM, ExpectList([obj("a", "1"), obj("b", "2"), obj("c", "3")], "4"),
                  ExpectWatch("4"))
    recorder = Recorder()
    asked: list[tuple[tuple[str, str], str]] = []

    def wanted(key: tuple[str, str], version: str) -> bool:
        asked.append((key, version))
        return key[1] == "b"

    informer = start(source, clock, informers, resync_period=60, decoded=0)
    informer.add_handler(EventHandler(on_update=recorder.update, resync_wanted=wanted))
    informer.wait_synced(timeout=5)
    decoded: list[bytes] = []
    real = store_module.decode
    def counted(data: bytes) -> Obj:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(store_module, "decode", counted)
    eventually(clock.asleep, what="the resync timer")
    clock.advance(60)
    eventually(lambda: len(asked) == 3, what="the resync")
    eventually(lambda: len(recorder.seen) == 1, what="the one delivery")
    assert recorder.take() == ["resync b@2"]
    assert sorted(asked) == [(("default", "a"), "1"), (("default", "b"), "2"),
                             (("default", "c"), "3")]
    assert len(decoded) == 1, "only the object delivered is decoded"


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
