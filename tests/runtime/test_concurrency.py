"""The write gate: never more writes in flight than its limit, and a limit that follows
the server — up while answers stay fast, down by one when they slow, halved when the
server says it is overloaded."""

from __future__ import annotations

import threading

import pytest
from runtime_fakes import eventually

from engine.kube.errors import Conflict, ServerError, TooManyRequests
from engine.runtime.concurrency import WriteGate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(gate: WriteGate, clock: Clock, seconds: float,
          error: Exception | None = None) -> None:
    """One write through the gate that takes `seconds` (and fails with `error`)."""
    try:
        with gate.slot():
            clock.now += seconds
            if error is not None:
                raise error
    except Exception as raised:
        assert raised is error


def test_grows_by_one_per_window_while_answers_stay_fast() -> None:
    clock = Clock()
    gate = WriteGate(initial=2, maximum=5, clock=clock)
    for expected in (3, 4, 5, 5):
        for _ in range(gate.limit):
            write(gate, clock, 0.010)
        assert gate.limit == expected


def test_shrinks_by_one_when_answers_slow_down() -> None:
    clock = Clock()
    gate = WriteGate(initial=4, maximum=8, clock=clock)
    for _ in range(4):
        write(gate, clock, 0.010)
    assert gate.limit == 5
    for _ in range(5):
        write(gate, clock, 0.030)  # three times the best window: queueing in the server
    assert gate.limit == 4
    for _ in range(4):
        write(gate, clock, 0.020)  # twice the best window: hold
    assert gate.limit == 4


@pytest.mark.parametrize("error", [TooManyRequests("slow down", retry_after=1.0),
                                   ServerError("etcd timeout")])
def test_an_overloaded_server_halves_the_limit_once_per_window(error: Exception) -> None:
    clock = Clock()
    gate = WriteGate(initial=8, maximum=16, clock=clock)
    write(gate, clock, 0.010, error)
    write(gate, clock, 0.010, error)
    assert gate.limit == 4, "halved once, not for every 429 of the same burst"
    for _ in range(4):
        write(gate, clock, 0.010)
    write(gate, clock, 0.010, error)
    assert gate.limit == 2, "a later window may halve it again"
    for _ in range(4):
        for _ in range(gate.limit):
            write(gate, clock, 0.010)
        write(gate, clock, 0.010, error)
    assert gate.limit == 1, "never below the minimum"


def test_a_refusal_is_an_answer_not_an_overload() -> None:
    clock = Clock()
    gate = WriteGate(initial=2, maximum=4, clock=clock)
    write(gate, clock, 0.010, Conflict("changed"))
    write(gate, clock, 0.010)
    assert gate.limit == 3


def test_never_more_writes_in_flight_than_the_limit() -> None:
    gate = WriteGate(initial=2, maximum=2)
    release = threading.Event()
    inside: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        with gate.slot():
            with lock:
                inside.append(gate.in_flight)
            release.wait(5)

    threads = [threading.Thread(target=writer) for _ in range(5)]
    for thread in threads:
        thread.start()
    eventually(lambda: len(inside) == 2, what="two writers inside")
    assert gate.in_flight == 2, "the other three wait for a slot"
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(inside) == 5 and max(inside) <= 2 and gate.in_flight == 0


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError):
        WriteGate(minimum=3, maximum=2)
