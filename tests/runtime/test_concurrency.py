"""The write gate: never more writes in flight than its limit, and a limit that follows
the server — one more per window of answered writes, halved when the server says it is
overloaded (429, 5xx), never past its bounds."""

from __future__ import annotations

import threading

import pytest
from runtime_fakes import eventually

from engine.kube.errors import Conflict, ServerError, Timeout, TooManyRequests
from engine.runtime.concurrency import WriteGate


def write(gate: WriteGate, error: Exception | None = None) -> None:
    """One write through the gate, failing with `error` if given."""
    try:
        with gate.slot():
            if error is not None:
                raise error
    except Exception as raised:
        assert raised is error


def test_grows_by_one_per_window_of_answers_up_to_the_maximum() -> None:
    gate = WriteGate(initial=2, maximum=5)
    for expected in (3, 4, 5, 5):
        for _ in range(gate.limit):
            write(gate)
        assert gate.limit == expected


@pytest.mark.parametrize("error", [TooManyRequests("slow down", retry_after=1.0),
                                   ServerError("etcd timeout"), Timeout("no answer")])
def test_an_overloaded_server_halves_the_limit_once_per_window(error: Exception) -> None:
    gate = WriteGate(initial=8, maximum=16)
    write(gate, error)
    write(gate, error)
    assert gate.limit == 4, "halved once, not for every 429 of the same burst"
    for _ in range(3):
        write(gate)
    write(gate, error)
    assert gate.limit == 4, "still the same window"
    write(gate)
    assert gate.limit == 5, "a window of answers: one more"
    write(gate, error)
    assert gate.limit == 2, "a new window may halve it again"
    for _ in range(4):
        for _ in range(gate.limit):
            write(gate)
        write(gate, error)
    assert gate.limit == 1, "never below the minimum"


def test_a_refusal_is_an_answer_not_an_overload() -> None:
    gate = WriteGate(initial=2, maximum=4)
    write(gate, Conflict("changed"))
    write(gate)
    assert gate.limit == 3


def test_a_failure_of_our_own_is_neither() -> None:
    gate = WriteGate(initial=2, maximum=4)
    write(gate, ValueError("a bug before the request"))
    write(gate)
    assert gate.limit == 2 and gate.in_flight == 0


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


def test_an_answer_wakes_as_many_waiters_as_may_write_now() -> None:
    gate = WriteGate(initial=1, maximum=2)
    gate.acquire()  # the only slot, held
    entered: list[int] = []
    lock = threading.Lock()
    leave = threading.Event()

    def writer(number: int) -> None:
        gate.acquire()
        with lock:
            entered.append(number)
        leave.wait(5)
        gate.release(None)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    assert gate.in_flight == 1 and not entered
    # its answer ends a window of one: the limit grows to two, so two waiters may write
    gate.release(None)
    eventually(lambda: len(entered) == 2, what="two waiters writing")
    assert gate.limit == 2 and gate.in_flight == 2
    leave.set()
    for thread in threads:
        thread.join(5)
    assert len(entered) == 3 and gate.in_flight == 0


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError):
        WriteGate(minimum=3, maximum=2)


class FailingPatches:
    """A Cluster whose patches fail with `error`; anything else is a bug."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def patch_json(self, *_: object) -> dict[str, object]:
        if self.error is not None:
            raise self.error
        return {"metadata": {"resourceVersion": "2"}}


@pytest.mark.parametrize("error", [None, TooManyRequests("slow down"), Conflict("changed"),
                                   ValueError("a bug before the request")])
def test_the_writers_patch_holds_a_slot_as_slot_does(error: Exception | None) -> None:
    """`Writer.patch` takes and gives back its slot by hand: the gate learns the same."""
    from prometheus_client import CollectorRegistry

    from engine.evaluate.engine import Engine
    from engine.objects import GVK
    from engine.runtime.current import Current
    from engine.runtime.metrics import EngineMetrics
    from engine.runtime.writer import Writer

    by_hand, through_slot = WriteGate(initial=8, maximum=16), WriteGate(initial=8, maximum=16)
    writer = Writer(FailingPatches(error), gate=by_hand,  # type: ignore[arg-type]
                    metrics=EngineMetrics(CollectorRegistry()))
    for _ in range(9):
        try:
            writer.patch(GVK("", "v1", "ConfigMap"), "n", "a", [], rule_set=None,
                         current=Current(Engine([]), {}))
        except Exception as raised:
            assert raised is error
        write(through_slot, error)
        assert (by_hand.limit, by_hand.in_flight) == (through_slot.limit, 0)
