"""The engine as last compiled, shared by every part of the runtime.

The rule-set controller builds a new `Current` on each recompilation and publishes it
in the one `Loaded` the manager made (its only writer); the object controller, the
router and the admission webhooks call `Loaded.get` whenever they start a piece of work
and keep using the value they got. `Current` is immutable and publishing replaces one
reference, so readers need no lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from engine.evaluate.engine import Engine
from engine.rules.model import RuleSet, RuleSetRef


@dataclass(frozen=True)
class Current:
    """The engine as last compiled, with the rule sets it came from."""

    engine: Engine
    rule_sets: dict[RuleSetRef, RuleSet]


class Loaded:
    """Holds the `Current` engine: published by the rule-set controller, read by all."""

    def __init__(self) -> None:
        self._current = Current(Engine([]), {})
        self._ready = threading.Event()

    def get(self) -> Current:
        return self._current

    def publish(self, current: Current) -> None:
        self._current = current

    def mark_ready(self) -> None:
        """The rule sets were compiled and their caches waited for, once."""
        self._ready.set()

    def ready(self) -> bool:
        return self._ready.is_set()
