"""An API server that is down for a minute: how many requests the engine's workers send
meanwhile, and how soon they finish once it is back.

Four worker threads run the manager's loop (get, request, done, forget or retry with
backoff) on a real WorkQueue and Breaker with a fake clock; the "API server" is a
function that fails (no answer, or a 5xx) while it is down and reports every request
to the breaker as `Transport` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from runtime_fakes import step_clock

from engine.runtime.clock import FakeClock
from engine.runtime.controller.queue import WorkQueue
from engine.runtime.ratelimit import Breaker
from tests.support import eventually

KEYS = 1000
WORKERS = 4


class Server:
    def __init__(self, breaker: Breaker, failure: str) -> None:
        self.lock = threading.Lock()
        self.breaker = breaker
        self.failure = failure
        self.down = True
        self.requests = 0
        self.done: set[str] = set()

    def patch(self, key: str) -> bool:
        with self.lock:
            self.requests += 1
            down = self.down
            if not down:
                self.done.add(key)
        self.breaker.observe("PATCH", self.failure if down else "200")
        return not down


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def run_workers(queue: WorkQueue[str], server: Server) -> Iterator[None]:
    def work() -> None:
        while (key := queue.get()) is not None:
            ok = server.patch(key)
            queue.done(key)
            if ok:
                queue.forget(key)
            else:
                queue.add_rate_limited(key)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    yield
    queue.shutdown()
    for thread in threads:
        thread.join(5)


@pytest.mark.parametrize("failure", ["error", "503", "500"])
def test_a_minute_of_outage_costs_a_few_dozen_requests_and_recovery_is_prompt(
        clock: FakeClock, failure: str) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=clock)  # client-go's limiter: 10 qps, burst 100
    reconnects: list[float] = []
    breaker = Breaker(clock=clock, pause=queue.pause, random_unit=lambda: 0.0,
                      reconnect=lambda: reconnects.append(clock.now()))
    server = Server(breaker, failure)
    workers = run_workers(queue, server)
    next(workers)
    try:
        for number in range(KEYS):
            queue.add(f"key-{number}")
        eventually(lambda: server.requests > 0, what="the first request")
        step_clock(clock, 60.0, threads=WORKERS)
        # a pause of 0.5 s doubling to 15 s: about eight rounds of at most four requests
        assert server.requests <= 8 * WORKERS, server.requests
        assert breaker.outages <= 8
        server.down = False
        took = step_clock(clock, 600.0, threads=WORKERS,
                          until=lambda: len(server.done) == KEYS)
        assert len(server.done) == KEYS
        assert took <= 15.0, "back to work within one pause of the server's return"
        assert len(reconnects) == 1, "the informers were told once that it is back"
    finally:
        next(workers, None)


def test_answers_below_500_are_not_an_outage_and_the_first_one_ends_it(
        clock: FakeClock) -> None:
    paused: list[float] = []
    reconnects: list[float] = []
    breaker = Breaker(clock=clock, pause=paused.append, random_unit=lambda: 0.0,
                      reconnect=lambda: reconnects.append(clock.now()), settle=1.0)
    for code in ("200", "404", "409", "422", "429"):
        breaker.observe("PATCH", code)
    assert paused == [] and reconnects == []
    breaker.observe("GET", "error")
    breaker.observe("PATCH", "500")  # sent before the pause began: the same outage
    assert paused == [0.5]
    clock.advance(0.5)
    breaker.observe("PATCH", "503")
    assert paused == [0.5, 1.0]
    clock.advance(1.0)
    breaker.observe("WATCH", "200")  # a watch cache answers while etcd is down
    breaker.observe("PATCH", "error")
    assert paused == [0.5, 1.0, 2.0] and reconnects == []
    clock.advance(2.0)
    breaker.observe("GET", "200")  # a real answer: the outage is over
    assert reconnects == [clock.now()], "the informers are told to stop backing off"
    assert paused == [0.5, 1.0, 2.0, 1.0], "and the workers wait for the caches to settle"
    breaker.observe("GET", "200")
    assert len(reconnects) == 1
    breaker.observe("PATCH", "error")  # a new outage starts from the shortest pause
    assert paused == [0.5, 1.0, 2.0, 1.0, 0.5]
