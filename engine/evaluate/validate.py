"""Running a validate rule on the converged trigger: `unchanged`, or `violation` with why.

`Engine` calls `run_validate` once per validate rule, after the fixed point, on the
object as the mutate rules leave it (on a workload, on its pod template seen as a Pod:
`engine.evaluate.podtemplates`). The message is the rule's `messageExpression` when it
gives text, else its `message`, else the expression that does not hold. The drivers
read the outcome: the admission webhook denies or warns, the live engine counts
violations on the rule set, `edict apply` lists them.
"""

from __future__ import annotations

from typing import Any

from engine.errors import CelError, CelMissingData, EdictError
from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import Outcome, Status
from engine.evaluate.request import ADMISSION_ONLY
from engine.evaluate.run import (
    Pass,
    Skip,
    admission_only,
    check_condition,
    variables,
    where_of,
)
from engine.objects import Obj, gvk_of
from engine.rules.model import Validate

MAX_MESSAGE = 1024


def run_validate(rule: CompiledRule, obj: Obj, p: Pass) -> Outcome:
    """A validate rule on the converged object (or its pod template): `unchanged` when
    its expression holds, `violation` with its message when it does not. An expression
    that reads data which is not there is a violation too (fail closed): a requirement
    on a field that is missing does not hold."""
    action = rule.rule.action
    assert isinstance(action, Validate) and rule.validation is not None
    rs = rule.rule_set
    path = rule.rule.match.on_template(p.gvk or gvk_of(obj))
    target = obj if path is None else p.view(obj, path)
    where = ("/" + "/".join(path),) if path is not None else ()
    try:
        values = variables(rule, target, p, template=path)
        check_condition(rule, values, p)
        bindings = p.bindings(rule, values)
        try:
            holds = rule.validation.evaluate(bindings)
        except CelMissingData as exc:
            if admission_only(rule, p):
                raise
            return Outcome(rs.ref, rule.rule.name, Status.VIOLATION,
                           f"{_message(rule, values, p)} ({exc.message})", where)
        if not isinstance(holds, bool):
            raise CelError(f"must give a bool, gave {type(holds).__name__} {holds!r}",
                           where=where_of(rule, "validate.expression"))
    except Skip as skip:
        return Outcome(rs.ref, rule.rule.name, Status.SKIPPED, str(skip))
    except EdictError as exc:
        if admission_only(rule, p):
            return Outcome(rs.ref, rule.rule.name, Status.SKIPPED, ADMISSION_ONLY)
        if isinstance(exc, CelMissingData):
            return Outcome(rs.ref, rule.rule.name, Status.SKIPPED,
                           f"data not there (yet): {exc}")
        return Outcome(rs.ref, rule.rule.name, Status.ERROR, str(exc))
    if holds:
        return Outcome(rs.ref, rule.rule.name, Status.UNCHANGED)
    return Outcome(rs.ref, rule.rule.name, Status.VIOLATION, _message(rule, values, p), where)


def _message(rule: CompiledRule, values: dict[str, Any], p: Pass) -> str:
    """What a violation says: messageExpression when it gives text, else message, else
    the expression that does not hold."""
    action = rule.rule.action
    assert isinstance(action, Validate)
    if rule.message is not None:
        try:
            text = rule.message.evaluate(p.bindings(rule, values))
        except EdictError:
            text = None
        if isinstance(text, str) and text.strip():
            return text[:MAX_MESSAGE]
    return action.message or f"does not hold: {action.expression}"[:MAX_MESSAGE]
