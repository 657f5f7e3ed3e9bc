"""Turning what an expression gave into a plain value a Kubernetes object can hold.

`structured.py` and `fast.py` call `to_plain` on the value of every lone
``{{ expression }}``: the result is a fresh copy, so the caller may mutate it without
touching the variables (the engine's cached objects), and its size is bounded.
"""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

from jinja2 import Undefined

from engine.templating.environment import OMIT
from engine.templating.filters import SizeLimitExceeded, check_length
from engine.templating.limits import DEFAULT_LIMITS, current

MAX_VALUE = DEFAULT_LIMITS.max_value
"""The default size of one native value: characters of its strings plus one per item."""


# Python prints integers of at most 4,300 digits: anything longer could not be output.
_INT_MAX = 10**4000
_INT_MIN = -_INT_MAX


def to_plain(value: Any, budget: list[int] | None = None, depth: int = 0) -> Any:
    """A fresh plain value (dict, list, str, int, float, bool, None) from what an expression
    gave: tuples and generators become lists, omits inside are dropped, undefined raises.

    Only what a Kubernetes object (JSON) can hold comes out: string keys, finite numbers
    (integers of at most 4,000 digits), at most `TemplateLimits.max_depth` nested
    containers.
    """
    budget = [current().max_value] if budget is None else budget
    kind = type(value)
    budget[0] -= len(value) + 1 if kind is str else 1
    if budget[0] < 0:
        raise SizeLimitExceeded(f"the value is over the size limit of {current().max_value}",
                                limit="max_value")
    if kind is str:
        check_length(len(value), "the string")
        return value
    if value is None or kind is bool or value is OMIT:
        return value
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError("the number has more than 4,000 digits")
        return value
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a number a Kubernetes object can hold")
        return value
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if depth >= current().max_depth:
        raise SizeLimitExceeded(f"the value nests deeper than the limit of "
                                f"{current().max_depth}", limit="max_depth")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mapping keys must be strings, not {key!r}")
            item = to_plain(item, budget, depth + 1)
            if item is not OMIT:
                out[str(key)] = item
        return out
    if isinstance(value, list | tuple | range | Iterator | KeysView | ValuesView | ItemsView):
        items = [to_plain(item, budget, depth + 1) for item in value]
        return [item for item in items if item is not OMIT]
    for base in (str, int, float):  # subclasses such as Markup or an IntEnum
        if isinstance(value, base):
            return to_plain(base(value), budget, depth)
    raise TypeError(f"the value is a {kind.__name__}, which a Kubernetes object cannot hold")
