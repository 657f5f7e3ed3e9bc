"""Rule-set status writes: only on change, backing off (and honouring Retry-After) when
refused, and safe while the rebuild thread forgets rule sets during a flush."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.kube.errors import ApiError, Forbidden, NotFound, ServerError, TooManyRequests
from engine.objects import GVK, Obj
from engine.rules.model import RuleSetRef
from engine.runtime.clock import FakeClock
from engine.runtime.metrics import EngineMetrics
from engine.runtime.rulesets.status_writer import StatusWriter
from engine.runtime.status import StatusBoard
from engine.runtime.writer import Writer

REF = RuleSetRef("ClusterRuleSet", "", "team")


def writer_for(api: object) -> Writer:
    return Writer(api, metrics=EngineMetrics(CollectorRegistry()))  # type: ignore[arg-type]


class StatusApi:
    """Records status patches; refuses them with `refusal` while it is set."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: list[str] = []
        self.attempts = 0
        self.refusal: ApiError | None = None
        self.during_patch: Callable[[], None] = lambda: None

    def patch_merge_status(self, gvk: GVK, namespace: str | None, name: str,
                           patch: Obj) -> Obj:
        with self.lock:
            self.attempts += 1
            if self.refusal is not None:
                raise self.refusal
            self.written.append(name)
        self.during_patch()
        return {}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


@pytest.fixture
def board() -> StatusBoard:
    board = StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    board.loaded(REF, generation=1, rules={"r": ""})
    return board


def test_a_status_is_written_once_and_not_again_at_steady_state(board: StatusBoard) -> None:
    api = StatusApi()
    writer = StatusWriter(writer_for(api), board, clock=FakeClock())  # type: ignore[arg-type]
    writer.flush()
    board.mark_dirty(REF)  # nothing changed in what it renders
    writer.flush()
    assert api.written == ["team"]


def test_a_refused_write_waits_for_retry_after(board: StatusBoard) -> None:
    api, clock = StatusApi(), FakeClock()
    writer = StatusWriter(writer_for(api), board, clock=clock, retry_initial=1.0)  # type: ignore[arg-type]
    api.refusal = TooManyRequests("too many requests", status=429, retry_after=8.0)
    writer.flush()
    api.refusal = None
    for _ in range(7):  # a flush a second, as the manager's status thread does
        clock.advance(1.0)
        writer.flush()
    assert api.written == [], "not before Retry-After"
    clock.advance(1.0)
    writer.flush()
    assert api.written == ["team"]


def test_refused_writes_back_off_exponentially(board: StatusBoard) -> None:
    api, clock = StatusApi(), FakeClock()
    writer = StatusWriter(writer_for(api), board, clock=clock, retry_initial=1.0,  # type: ignore[arg-type]
                          retry_max=8.0)
    api.refusal = ServerError("etcd is down", status=500)
    tried_at = []
    for second in range(40):  # a flush a second
        before = api.attempts
        writer.flush()
        if api.attempts > before:
            tried_at.append(second)
        clock.advance(1.0)
    # doubling from 1 s, capped at 8 s
    assert tried_at == [0, 1, 3, 7, 15, 23, 31, 39]
    assert api.written == []


def test_a_rule_set_forgotten_while_its_status_is_written_is_written_again(
        board: StatusBoard) -> None:
    api = StatusApi()
    writer = StatusWriter(writer_for(api), board, clock=FakeClock())  # type: ignore[arg-type]
    # the rebuild thread sees the rule set deleted while the status thread writes it
    api.during_patch = lambda: writer.forget(set())
    writer.flush()
    api.during_patch = lambda: None
    board.loaded(REF, generation=1, rules={"r": ""})  # created again, same status
    writer.flush()
    assert api.written == ["team", "team"]


STATUS_CASES: list[tuple[str, ApiError | None, int, float | None]] = [
    # (case, the server's answer to the first write, writes made by the next flushes
    #  one clock second apart over 20 s, first retry at (seconds; None: never))
    ("written: nothing more to write", None, 1, None),
    ("404: the rule set is gone, never retried", NotFound("gone", status=404), 1, None),
    ("500: retried after the first backoff", ServerError("etcd", status=500), 2, 1.0),
    ("429 with Retry-After 8: not sooner",
     TooManyRequests("slow down", status=429, retry_after=8.0), 2, 8.0),
    ("403: retried with backoff like any refusal", Forbidden("no", status=403), 2, 1.0),
]


@pytest.mark.parametrize(("answer", "writes", "retry_at"),
                         [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES])
def test_each_answer_to_a_status_write(board: StatusBoard, answer: ApiError | None,
                                       writes: int, retry_at: float | None) -> None:
    api = StatusApi()
    clock = FakeClock()
    writer = StatusWriter(writer_for(api), board, clock=clock, retry_initial=1.0)
    api.refusal = answer
    started = clock.now()
    writer.flush()
    api.refusal = None
    retried: list[float] = []
    for _ in range(20):
        clock.advance(1.0)
        before = api.attempts
        writer.flush()
        if api.attempts > before:
            retried.append(clock.now() - started)
    assert api.attempts == writes
    assert retried == ([retry_at] if retry_at is not None else [])
    if isinstance(answer, NotFound):
        assert board.render(REF) is None, "a rule set gone from the server leaves the board"
