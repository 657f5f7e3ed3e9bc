"""The CEL half of offline schema validation: `x-kubernetes-validations` rules of the CRDs.

`engine.rules.schema` walks a rule set against the CRD schema and calls `check_rule` for
each validation rule it meets, with the value at that node bound to `self` — as the API
server does. Rules are compiled once and cached. A rule whose evaluation fails (a key
that is not there, CEL's limits) fails the object, as the API server refuses it
("no such key: … evaluating rule"); only a rule that does not compile offline counts as
satisfied (the API server remains the judge of last resort).
"""

from __future__ import annotations

import functools
from typing import Any

from engine.cel import Program, compile_expression
from engine.errors import CelError, CompileError, Where


@functools.cache
def _program(rule: str) -> Program | None:
    try:
        return compile_expression(rule, where=Where(field="x-kubernetes-validations"),
                                  variables=("self",))
    except CompileError:
        return None


def check_rule(rule: str, value: Any) -> bool:
    program = _program(rule)
    if program is None:
        return True
    try:
        return program.evaluate({"self": value}) is True
    except CelError:
        return False
