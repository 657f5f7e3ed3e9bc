"""The work queue keeps client-go's promises; time is a fake clock throughout."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.clock import FakeClock
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.ratelimit import RateLimiter, RateLimitSettings
from tests.support import eventually

NO_BUCKET = RateLimitSettings(qps=1e9, burst=1_000_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, settings: RateLimitSettings = NO_BUCKET) -> WorkQueue[str]:
    return WorkQueue(clock=clock, settings=settings)


def drain(q: WorkQueue[str]) -> list[str]:
    keys = []
    while (key := q.get(timeout=0)) is not None:
        keys.append(key)
        q.done(key)
    return keys


def test_a_waiting_key_is_queued_once(clock: FakeClock) -> None:
    q = make(clock)
    for key in ["a", "b", "a", "a", "b", "c"]:
        q.add(key)
    assert len(q) == 3
    assert drain(q) == ["a", "b", "c"]


def test_a_key_readded_while_in_progress_runs_again_after_done(clock: FakeClock) -> None:
    q = make(clock)
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0, "must not be handed to a second worker while in progress"
    assert q.get(timeout=0) is None
    q.done("a")
    assert len(q) == 1
    assert q.get(timeout=0) == "a"
    q.done("a")
    assert q.get(timeout=0) is None


def test_busy_while_a_key_waits_or_is_in_a_workers_hands(clock: FakeClock) -> None:
    q = make(clock)
    assert not q.busy
    q.add_after("a", 1.0)
    assert not q.busy, "a delayed key is not work yet"
    clock.advance(1.0)
    assert q.busy, "its delay is over: it waits"
    assert q.get(timeout=0) == "a"
    assert q.busy and len(q) == 0, "in a worker's hands"
    q.done("a")
    assert not q.busy


def test_done_without_readd_does_not_requeue(clock: FakeClock) -> None:
    q = make(clock)
    q.add("a")
    q.done(q.get(timeout=0) or "")
    assert len(q) == 0 and q.in_progress == 0


def test_never_two_workers_on_one_key(clock: FakeClock) -> None:
    q = make(clock)
    lock = threading.Lock()
    busy: set[str] = set()
    overlaps: list[str] = []
    handled: Counter[str] = Counter()

    def worker() -> None:
        while (key := q.get()) is not None:
            with lock:
                if key in busy:
                    overlaps.append(key)
                busy.add(key)
            for _ in range(200):  # hold the key long enough for others to try it
                pass
            with lock:
                busy.discard(key)
                handled[key] += 1
            q.done(key)

    workers = [threading.Thread(target=worker) for _ in range(6)]
    for thread in workers:
        thread.start()
    for round_ in range(300):
        for key in ("a", "b", "c"):
            q.add(key)
        if round_ % 50 == 0:
            eventually(lambda: len(q) == 0 and q.in_progress == 0, what="the queue to drain")
    eventually(lambda: len(q) == 0 and q.in_progress == 0, what="the queue to drain")
    q.shutdown()
    for thread in workers:
        thread.join(5)
    assert overlaps == []
    assert set(handled) == {"a", "b", "c"}


def test_backoff_doubles_per_failure_up_to_the_cap(clock: FakeClock) -> None:
    limiter = RateLimiter(RateLimitSettings(base_delay=0.005, max_delay=1.0, qps=1e9,
                                            burst=10**6), clock=clock)
    delays = [limiter.when("a") for _ in range(12)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1.0 and max(delays) == 1.0
    assert delays == sorted(delays)
    assert limiter.when("b") == 0.005, "backoff is per key"
    for _ in range(2000):
        limiter.when("a")  # no overflow however often it fails
    assert limiter.when("a") == 1.0


def test_default_backoff_is_5ms_to_1000s(clock: FakeClock) -> None:
    settings = RateLimitSettings()
    assert (settings.base_delay, settings.max_delay, settings.qps, settings.burst) == (
        0.005, 1000.0, 10.0, 100)


def test_forget_resets_the_backoff(clock: FakeClock) -> None:
    q = make(clock)
    for _ in range(5):
        q.add_rate_limited("a")
    assert q.num_requeues("a") == 5
    q.forget("a")
    assert q.num_requeues("a") == 0
    q.add_rate_limited("b")
    q.forget("a")
    q.add_rate_limited("a")
    clock.advance(0.005)
    assert sorted(drain(q)) == ["a", "b"]


def test_done_with_forget_is_done_then_forget(clock: FakeClock) -> None:
    """One turn of the lock does both: the key handed out again if it was re-added
    meanwhile, its backoff reset; without `forget`, the backoff stays."""
    for forget in (True, False):
        q = make(clock)
        q.add("a")
        assert q.get(timeout=0) == "a"
        for _ in range(3):
            q.add_rate_limited("a")  # failures counted while it is processed
        q.add("a")  # changed meanwhile: queued again once done
        q.done("a", forget=forget)
        assert q.num_requeues("a") == (0 if forget else 3)
        assert q.get(timeout=0) == "a"


def test_rate_limited_key_waits_for_its_backoff(clock: FakeClock) -> None:
    q = make(clock)
    q.add_rate_limited("a")  # 5 ms
    q.add_rate_limited("a")  # 10 ms from now; the earlier 5 ms wins
    assert q.get(timeout=0) is None
    clock.advance(0.004)
    assert len(q) == 0
    clock.advance(0.001)
    assert drain(q) == ["a"]
    q.add_rate_limited("a")  # third failure: 20 ms
    clock.advance(0.019)
    assert len(q) == 0
    clock.advance(0.001)
    assert drain(q) == ["a"]


def test_overall_token_bucket_limits_retries(clock: FakeClock) -> None:
    limiter = RateLimiter(RateLimitSettings(base_delay=0.0, max_delay=1.0, qps=10, burst=2),
                          clock=clock)
    assert [limiter.when(k) for k in "abcd"] == pytest.approx([0.0, 0.0, 0.1, 0.2])
    clock.advance(10)  # the bucket refills, up to its burst
    assert [limiter.when(k) for k in "efg"] == pytest.approx([0.0, 0.0, 0.1])


def test_bucket_delay_applies_in_the_queue(clock: FakeClock) -> None:
    q = make(clock, RateLimitSettings(base_delay=0.001, max_delay=1.0, qps=1, burst=1))
    q.add_rate_limited("a")
    q.add_rate_limited("b")  # no token left: one second
    clock.advance(0.001)
    assert drain(q) == ["a"]
    clock.advance(0.998)
    assert drain(q) == []
    clock.advance(0.001)
    assert drain(q) == ["b"]


def test_delayed_keys_come_out_in_time_order(clock: FakeClock) -> None:
    q = make(clock)
    q.add_after("a", 3)
    q.add_after("b", 1)
    q.add_after("c", 2)
    q.add_after("d", 0)
    assert drain(q) == ["d"]
    assert q.delayed == 3
    clock.advance(1.5)
    assert drain(q) == ["b"]
    clock.advance(5)
    assert drain(q) == ["c", "a"]


def test_earliest_delay_wins_and_waiting_keys_are_deduplicated(clock: FakeClock) -> None:
    q = make(clock)
    q.add_after("a", 5)
    q.add_after("a", 1)
    q.add_after("a", 3)
    clock.advance(1)
    q.add("a")
    assert drain(q) == ["a"]
    clock.advance(10)
    assert drain(q) == [], "the superseded delays must not fire again"


def test_a_blocked_get_wakes_for_a_delayed_key(clock: FakeClock) -> None:
    q = make(clock)
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(q.get()))
    thread.start()
    q.add_after("a", 2)
    clock.advance(1)
    assert got == []
    clock.advance(1)
    thread.join(5)
    assert got == ["a"]


def test_get_times_out_in_clock_time(clock: FakeClock) -> None:
    q = make(clock)
    got: list[str | None] = ["not yet"]
    thread = threading.Thread(target=lambda: got.__setitem__(0, q.get(timeout=2)))
    thread.start()
    eventually(clock.asleep, what="get to block")
    clock.advance(1)
    eventually(clock.asleep, what="get to block again")
    assert thread.is_alive() and got == ["not yet"]
    clock.advance(1)
    thread.join(5)
    assert got == [None]


def test_shutdown_wakes_every_getter(clock: FakeClock) -> None:
    q = make(clock)
    results: list[str | None] = []
    getters = [threading.Thread(target=lambda: results.append(q.get())) for _ in range(4)]
    for thread in getters:
        thread.start()
    q.shutdown()
    for thread in getters:
        thread.join(5)
    assert results == [None] * 4
    assert q.shutting_down
    q.add("late")
    q.add_after("late", 1)
    assert q.get(timeout=0) is None


def test_shutdown_lets_in_progress_keys_finish(clock: FakeClock) -> None:
    q = make(clock)
    q.add("a")
    q.add("b")
    assert q.get(timeout=0) == "a"
    q.shutdown()
    assert q.get(timeout=0) is None, "queued keys are not handed out after shutdown"
    assert not q.wait_idle(timeout=0)
    threading.Timer(0.01, lambda: q.done("a")).start()
    assert q.wait_idle()


def test_a_held_key_waits_for_its_hold_however_it_is_added(clock: FakeClock) -> None:
    q = make(clock)
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.hold("a", 7.0)  # the server answered 429 with Retry-After: 7
    q.add("a")  # an event on the object meanwhile
    q.done("a")
    q.add_rate_limited("a")  # the worker's retry: 5 ms of backoff
    q.add("a")
    clock.advance(6.99)
    assert drain(q) == [], "nothing before Retry-After"
    clock.advance(0.01)
    assert drain(q) == ["a"], "then exactly once"
    q.add("a")
    assert drain(q) == ["a"], "the hold is over"


def test_a_hold_moves_a_waiting_key_back_and_the_longest_hold_wins(clock: FakeClock) -> None:
    q = make(clock)
    q.add("a")
    q.add("b")
    q.hold("a", 5.0)
    q.hold("a", 2.0)  # shorter: ignored
    assert drain(q) == ["b"]
    clock.advance(4.9)
    assert drain(q) == []
    clock.advance(0.1)
    assert drain(q) == ["a"]
    q.hold("c", 1.0)  # a key nobody added is not added by a hold
    clock.advance(2)
    assert drain(q) == []


def test_a_paused_queue_hands_out_nothing_until_the_pause_ends(clock: FakeClock) -> None:
    q = make(clock)
    q.add("a")
    q.pause(2.0)
    q.pause(1.0)  # shorter: the longer pause stands
    q.add("b")
    q.add("a")
    q.add_after("c", 0.5)
    assert q.paused and drain(q) == []
    clock.advance(1.99)
    assert drain(q) == []
    clock.advance(0.01)
    assert not q.paused
    assert drain(q) == ["a", "b", "c"]


def test_a_getter_sleeps_through_a_pause(clock: FakeClock) -> None:
    q = make(clock)
    got: list[str | None] = []
    q.add("a")
    q.pause(5.0)
    thread = threading.Thread(target=lambda: got.append(q.get()))
    thread.start()
    eventually(clock.asleep, what="get to wait for the pause")
    assert clock.next_wake() == clock.now() + 5.0
    clock.advance(5.0)
    thread.join(5)
    assert got == ["a"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "get", "done", "after", "hold", "tick"]),
                          st.sampled_from("abc")), max_size=60))
def test_model_no_key_is_handed_out_twice_and_none_is_lost(ops: list[tuple[str, str]]) -> None:
    clock = FakeClock()
    q = make(clock)
    held: set[str] = set()
    owed: set[str] = set()  # added since last handed out (directly or via delay)
    for op, key in ops:
        if op == "add":
            q.add(key)
            owed.add(key)
        elif op == "after":
            q.add_after(key, 1)
        elif op == "hold":
            q.hold(key, 2)
        elif op == "tick":
            clock.advance(1)
        elif op == "get":
            got = q.get(timeout=0)
            if got is not None:
                assert got not in held
                held.add(got)
                owed.discard(got)
        elif op == "done" and key in held:
            held.discard(key)
            q.done(key)
    for key in list(held):
        q.done(key)
    clock.advance(10)
    assert owed <= set(drain(q))
