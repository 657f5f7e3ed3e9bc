"""Writing rule-set status back: what `StatusBoard` renders, only when it changed.

The rule-set controller's status thread calls `flush()` every `status_interval` while it
leads (and once more on shutdown); its rebuild thread calls `forget()` when rule sets go
away. Writes go through the shared `Writer`. One
merge patch of the status subresource per rule set whose rendered status differs from
the last one written; nothing at steady state.

A write that fails is tried again at a later flush, not at every one: after an
exponential backoff per rule set (`retry_initial` doubling up to `retry_max`) and never
before the server's Retry-After. What was last written is guarded by a lock (two
threads use it), never held during a request; a rule set forgotten while its status
is being written is not remembered as written afterwards (it may come back under the
same name, and its status must then be written again). Flushes are serialised.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from engine.kube.errors import ApiError, NotFound
from engine.rules.model import RuleSetRef

from ..clock import Clock, RealClock
from ..status import StatusBoard
from ..writer import Writer

log = logging.getLogger(__name__)


class StatusWriter:
    def __init__(self, writer: Writer, board: StatusBoard, *, clock: Clock | None = None,
                 retry_initial: float = 1.0, retry_max: float = 10.0) -> None:
        self._writer = writer
        self._board = board
        self._clock = clock or RealClock()
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._lock = threading.Lock()  # guards the three maps below
        self._written: dict[RuleSetRef, Any] = {}
        self._not_before: dict[RuleSetRef, float] = {}  # failed: no retry before this
        self._delay: dict[RuleSetRef, float] = {}  # the next failure's backoff
        self._forgotten: dict[RuleSetRef, int] = {}  # how often each was forgotten
        self._writing: set[RuleSetRef] = set()  # status requests in flight
        self._flushing = threading.Lock()

    def forget(self, present: set[RuleSetRef]) -> None:
        """Drop what we know of rule sets that are gone."""
        with self._lock:
            gone = (set(self._written) | self._writing) - present
            for ref in gone:
                self._forgotten[ref] = self._forgotten.get(ref, 0) + 1
                self._written.pop(ref, None)
                self._not_before.pop(ref, None)
                self._delay.pop(ref, None)
        for ref in gone:
            self._board.removed(ref)

    def flush(self) -> None:
        with self._flushing:
            for ref in self._board.dirty():
                self._flush_one(ref)

    def _flush_one(self, ref: RuleSetRef) -> None:
        now = self._clock.now()
        with self._lock:
            waiting = self._not_before.get(ref, now) > now
        if waiting:
            self._board.mark_dirty(ref)  # still owed; a later flush writes it
            return
        body = self._board.render(ref)
        with self._lock:
            if body is None or self._written.get(ref) == body:
                return
            forgotten = self._forgotten.get(ref, 0)
            self._writing.add(ref)
        try:
            self._writer.rule_set_status(ref, body)
        except NotFound:
            self._board.removed(ref)
        except ApiError as error:
            with self._lock:
                delay = self._delay.get(ref, self._retry_initial)
                self._delay[ref] = min(delay * 2, self._retry_max)
                wait = max(delay, error.retry_after or 0.0)
                self._not_before[ref] = self._clock.now() + wait
            log.warning("could not write the status of %s (again in %.0fs): %s", ref, wait,
                        error)
            self._board.mark_dirty(ref)
        else:
            with self._lock:
                if self._forgotten.get(ref, 0) == forgotten:
                    self._written[ref] = body
                self._not_before.pop(ref, None)
                self._delay.pop(ref, None)
        finally:
            with self._lock:
                self._writing.discard(ref)
