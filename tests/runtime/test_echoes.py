"""OwnWrites: which watch events are the echo of the engine's own write."""

from __future__ import annotations

from engine.objects import GVK, ObjectKey
from engine.runtime.controller.echoes import OwnWrites

A = ObjectKey(GVK("", "v1", "ConfigMap"), "ns", "a")
B = ObjectKey(GVK("", "v1", "ConfigMap"), "ns", "b")


def test_the_echo_after_the_write_is_dropped_once() -> None:
    writes = OwnWrites()
    writes.begin(A)
    assert writes.end(A, "7") is False
    assert writes.is_echo(A, "7") is True
    assert writes.is_echo(A, "7") is False  # a resync or a replay is routed again


def test_other_versions_and_other_keys_are_not_echoes() -> None:
    writes = OwnWrites()
    writes.begin(A)
    writes.end(A, "7")
    assert writes.is_echo(B, "7") is False
    assert writes.is_echo(A, "8") is False  # someone else's later write
    assert writes.is_echo(A, "7") is True  # still waiting for ours


def test_the_echo_arriving_before_the_answer_is_held_and_not_requeued() -> None:
    writes = OwnWrites()
    writes.begin(A)
    assert writes.is_echo(A, "7") is True  # held back while the write is in flight
    assert writes.end(A, "7") is False  # it was ours: nothing to reconcile
    assert writes.is_echo(A, "7") is False  # and it is not expected a second time


def test_another_event_during_the_write_is_requeued() -> None:
    writes = OwnWrites()
    writes.begin(A)
    writes.is_echo(A, "7")
    writes.is_echo(A, "9")  # someone wrote after us
    assert writes.end(A, "7") is True


def test_an_event_during_a_failed_or_altered_write_is_requeued() -> None:
    writes = OwnWrites()
    writes.begin(A)
    writes.is_echo(A, "7")
    assert writes.end(A, None) is True  # conflict, or the server changed what we sent
    writes.begin(B)
    assert writes.end(B, None) is False  # nothing arrived: nothing was held back
    assert writes.is_echo(B, "8") is False


def test_a_new_write_forgets_the_echo_of_the_previous_one() -> None:
    writes = OwnWrites()
    writes.begin(A)
    writes.end(A, "7")
    writes.begin(A)  # a later reconcile writes again before the first echo came
    assert writes.is_echo(A, "7") is True  # held (in flight), decided by end()
    assert writes.end(A, "9") is True  # "7" was not the echo of this write
