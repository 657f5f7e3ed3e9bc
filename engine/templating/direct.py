"""The templated leaves of a shape rendered straight from the variables, in the plain case.

Writers, item writers, child makers and patch writers (`engine.evaluate`) render only the
templated strings of a template (`Template.render_leaves`): a budget opened, a scope
made over Jinja2's globals, each string run by its `fast.py` runner. Most of those
strings are a path (``{{ item.name }}``, ``{{ params.cpu }}``), a path through the
``string`` filter (``{{ object.spec.replicas | string }}``) or text around paths
(``"{{ object.metadata.name }}-config"``); when every step of every path finds its key
in a plain ``dict`` and the values are plain text, numbers, booleans or null, the
result is known without any of that machinery. `plan_of` describes such a string once,
when it is compiled; `render` renders a sequence of them, or declines (None) and the
caller renders them the ordinary way.

What `render` gives is what the runners give on the same budget, and it declines
wherever they could do anything else: a name that is not a variable (a Jinja2 global),
a step that is not a ``dict`` holding its key (the sandbox's getattr then decides), a
value a lone expression would copy (`plain.to_plain`: maps, lists, odd types) or a text
would check (`environment._finalize`), any size at or over the limits, work the budget
would charge past its clock check or its allowance (the ``string`` filter costs
`limits.FILTER_COST` plus the weight of what it takes and gives), and a rendering
already under way (whose limits and budget are the outer one's). tests/unit/
test_templating_direct.py checks on random variables that both give the same values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import nodes

from engine.templating.fast import text_parts
from engine.templating.limits import CLOCK_EVERY, FILTER_COST, TemplateLimits, under_way
from engine.templating.plain import _INT_MAX, _INT_MIN

# Names Jinja2's code generator treats specially (as `fast._SPECIAL_NAMES`).
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})
_SHIFT = 6  # `limits.weight`: one unit per 64 characters of a string


class Path:
    """A variable and the keys below it, perhaps through ``| string``."""

    __slots__ = ("name", "steps", "stringed")

    def __init__(self, name: str, steps: tuple[str | int, ...], stringed: bool) -> None:
        self.name = name
        self.steps = steps
        self.stringed = stringed


class Text:
    """Text around paths: its parts in order, literal text or a `Path`."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str | Path, ...]) -> None:
        self.parts = parts


Plan = Path | Text


def plan_of(tree: nodes.Template, expression: nodes.Expr | None) -> Plan | None:
    """The plan of a string whose lone expression is `expression` (None: printed as
    text), or None when it is more than paths, ``| string`` and text."""
    if expression is not None:
        return _path(expression)
    parts = text_parts(tree, _path)
    return None if parts is None else Text(tuple(parts))


def _path(node: nodes.Node) -> Path | None:
    stringed = False
    if isinstance(node, nodes.Filter):
        if (node.name != "string" or node.node is None or node.args or node.kwargs
                or node.dyn_args is not None or node.dyn_kwargs is not None):
            return None
        stringed, node = True, node.node
    steps: list[str | int] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            steps.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
            steps.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load" or node.name in _SPECIAL_NAMES:
        return None
    steps.reverse()
    return Path(node.name, tuple(steps), stringed)


class _Decline(Exception):
    """Not the plain case: render the ordinary way."""


def render(plans: Sequence[Plan], variables: Mapping[str, Any], limits: TemplateLimits
           ) -> list[Any] | None:
    """The values of the strings `plans` describe, rendered from `variables` on a budget
    of `limits` as `Template.render_leaves` renders them; None: render them so."""
    if under_way():
        return None
    spent = [0]
    try:
        out = [_value(plan, variables, limits, spent) for plan in plans]
    except _Decline:
        return None
    if spent[0] >= CLOCK_EVERY or spent[0] > limits.max_operations:
        return None  # the budget would look at its clock, or refuse
    return out


def _value(plan: Plan, variables: Mapping[str, Any], limits: TemplateLimits,
           spent: list[int]) -> Any:
    if type(plan) is Path:
        value = _found(plan, variables, limits, spent)
        kind = type(value)
        # what `fast._native` returns as it is
        if (kind is str and len(value) <= limits.max_string) or value is None \
                or kind is bool or (kind is int and _INT_MIN <= value <= _INT_MAX) \
                or (kind is float and math.isfinite(value)):
            return value
        raise _Decline
    chunks: list[str] = []
    for part in plan.parts:  # type: ignore[union-attr]
        if type(part) is str:
            chunks.append(part)
            continue
        value = _found(part, variables, limits, spent)  # type: ignore[arg-type]
        kind = type(value)
        if kind is str:
            chunks.append(value)
        elif value is None:
            chunks.append("")  # `_finalize`
        elif (kind is int or kind is bool) and value.bit_length() // 3 + 1 <= limits.max_string:
            chunks.append(str(value))  # `_finalize`'s size check, then printed
        else:
            raise _Decline
    text = "".join(chunks)
    if len(text) > limits.max_string:
        raise _Decline
    return text


def _found(path: Path, variables: Mapping[str, Any], limits: TemplateLimits,
           spent: list[int]) -> Any:
    """The value at `path`, through ``| string`` when it says so."""
    value = variables.get(path.name, _Decline)
    if value is _Decline:
        raise _Decline  # a global, or undefined: the runner decides
    for key in path.steps:
        if type(value) is not dict or key not in value:
            raise _Decline
        value = value[key]
    if not path.stringed:
        return value
    kind = type(value)
    if kind is str:
        if len(value) > limits.max_string:
            raise _Decline
        spent[0] += FILTER_COST + 2 * (len(value) >> _SHIFT)  # takes it, gives it
        return value
    if (kind is int or kind is bool) and value.bit_length() // 3 + 1 <= limits.max_string:
        text = str(value)  # `environment._string`: its size check, then str()
    elif value is None:
        text = "None"
    else:
        raise _Decline
    spent[0] += FILTER_COST + (len(text) >> _SHIFT)
    return text
