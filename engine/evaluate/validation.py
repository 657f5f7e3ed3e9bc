"""The CEL half of offline schema validation: `x-kubernetes-validations` rules of the CRDs.

`engine.rules.schema` walks a rule set against the CRD schema and calls `check_rule` for
each validation rule it meets, with the value at that node bound to `self` — as the API
server does. Rules are compiled once and cached; a rule that cannot be evaluated offline
counts as satisfied (the API server remains the judge of last resort) — except when its
evaluation goes over CEL's limits: the API server refuses such an object, and so does
this check (fail closed).
"""

from __future__ import annotations

import functools
from typing import Any

from engine.cel import Program, compile_expression
from engine.errors import CelError, CelLimitExceeded, CompileError, Where


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
    except CelLimitExceeded:
        return False
    except CelError:
        return True
