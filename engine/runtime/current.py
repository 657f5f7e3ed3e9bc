"""The engine as last compiled, shared by every part of the runtime.

The rule-set controller builds a new `Current` on each recompilation and publishes it
by replacing one reference (an atomic assignment); the object controller, the router
and the admission webhooks read that reference whenever they start a piece of work and
keep using the value they read. `Current` is immutable, so no lock is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.evaluate.engine import Engine
from engine.rules.model import RuleSet, RuleSetRef


@dataclass(frozen=True)
class Current:
    """The engine as last compiled, with the rule sets it came from."""

    engine: Engine
    rule_sets: dict[RuleSetRef, RuleSet]
