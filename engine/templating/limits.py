"""How much one rendering may build and do: the limits, and the budget that enforces them.

Templates come from rule-set authors and read data that anyone who can write an object
may have shaped, so every rendering runs on a budget. `Template.render` (and
`render_string`) opens one with `open_budget`; the sandbox (`environment.py`), the filters
(`filters.py`), `fast.py` and `plain.py` read the active limits with
`current` and charge work with `spend`. Compiling a string opens a budget too, so the
constant folding Jinja2 does while compiling is bounded the same way.

What counts: a loop iteration is one operation, a comparison or a slice one, a test
`TEST_COST`, a match of ``regex_replace`` `MATCH_COST`, a filter `FILTER_COST`, a call
(a function, a macro, a method) `CALL_COST` — each plus the `weight` of the values it
takes and gives (the items of a container, one per 64 characters of a string), so a
pass over a large value costs in proportion to the value. The costs follow what each
takes in CPython (a sandboxed call is some forty times a loop iteration); the default
budget is about a second of one slow core. `max_seconds` is a backstop on top, for
work the model underestimates (comparing two large nested values is one operation):
the deadline is checked every `CLOCK_EVERY` operations, on a clock the caller may
inject.

Sizes are checked by the `check_*` functions below, *before* a big value is allocated
wherever the growth comes from an argument (a width, a repeat count, a replacement);
constant-factor growth is caught afterwards. Going over a limit raises `LimitExceeded`
inside Jinja2's code; the template layer turns it into `TemplateLimitExceeded`, a
`TemplateError` that names the limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import Undefined

from engine.errors import TemplateError, Where


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """The limits of one rendering; every field has a default (see docs/security.md)."""

    max_string: int = 1024 * 1024
    """The longest string a template may build or print, in characters (1 MiB)."""
    max_items: int = 100_000
    """The longest list a repetition or concatenation may build, and ``range()``."""
    max_value: int = 4 * 1024 * 1024
    """The size of one native value: characters of its strings plus one per item."""
    max_depth: int = 100
    """How deep one native value may nest lists and mappings."""
    max_operations: int = 1_000_000
    """Work units per rendering: loop iterations, calls, filters, tests, comparisons."""
    max_seconds: float = 2.0
    """Wall-clock time per rendering (a backstop; checked every `CLOCK_EVERY` units)."""
    max_regex_pattern: int = 4096
    """The longest regular expression a filter accepts, in characters."""
    max_regex_input: int = 1024 * 1024
    """The longest text a regular expression runs on, in characters."""


DEFAULT_LIMITS: Final = TemplateLimits()

CALL_COST: Final = 10
FILTER_COST: Final = 5
TEST_COST: Final = 2
MATCH_COST: Final = 20  # one match of a regex_replace: a step of Python code in re2
CLOCK_EVERY: Final = 256
_STRING_SHIFT: Final = 6  # one unit per 64 characters


class LimitExceeded(Exception):
    """Raised inside Jinja2's code when a rendering goes over a limit; `limit` names the
    field of `TemplateLimits`."""

    def __init__(self, message: str, *, limit: str = "max_string") -> None:
        super().__init__(message)
        self.limit = limit


class TemplateLimitExceeded(TemplateError):
    """A rendering went over one of its `TemplateLimits`; `limit` names which."""

    def __init__(self, message: str, *, limit: str, where: Where | None = None) -> None:
        self.limit = limit
        super().__init__(message, where=where)


class Budget:
    """What one rendering may still do. Not thread-safe: one per rendering."""

    __slots__ = ("_clock", "_deadline", "_next_check", "left", "limits")

    def __init__(self, limits: TemplateLimits, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.left = limits.max_operations
        self._clock = clock
        self._deadline = clock() + limits.max_seconds
        self._next_check = self.left - CLOCK_EVERY

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left <= self._next_check:
            if self.left < 0:
                raise LimitExceeded(
                    f"the template did more than {self.limits.max_operations} operations "
                    "(loop iterations, calls, filters and comparisons, weighted by the size "
                    "of what they work on)", limit="max_operations")
            self._next_check = self.left - CLOCK_EVERY
            if self._clock() > self._deadline:
                raise LimitExceeded(f"the template ran for more than "
                                    f"{self.limits.max_seconds:g} s", limit="max_seconds")


_ACTIVE: ContextVar[Budget | None] = ContextVar("edict_template_budget", default=None)


def current() -> TemplateLimits:
    """The limits of the rendering under way (the defaults outside one)."""
    budget = _ACTIVE.get()
    return DEFAULT_LIMITS if budget is None else budget.limits


def under_way() -> bool:
    """Whether a rendering's budget is open (a caller shares one for several)."""
    return _ACTIVE.get() is not None


def spend(units: int) -> None:
    """Charge `units` operations to the rendering under way, if any."""
    budget = _ACTIVE.get()
    if budget is not None:
        budget.spend(units)


def check_length(length: int, what: str) -> None:
    """Refuse to build a string of `length` characters when that is over the limit."""
    limit = current().max_string
    if length > limit:
        raise LimitExceeded(f"{what} would be {length} characters long, over the limit of "
                            f"{limit}", limit="max_string")


def check_size(value: Any, what: str) -> None:
    """Refuse to turn `value` into text when even a lower bound of its length is too big,
    or when it holds an undefined value (which must never print as ``Undefined``).

    Counts the characters of every string and one per item, stopping as soon as the
    bound is passed, so shared references (a list holding one long string many times,
    YAML aliases) cannot make the walk itself expensive.
    """
    limit = current().max_string
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item) + 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | KeysView | ValuesView | ItemsView):
            total += len(item) + 1
            stack.extend(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Undefined):
            item._fail_with_undefined_error()
        else:
            total += 1
        if total > limit:
            check_length(total, what)


def check_items(count: int, what: str) -> None:
    limit = current().max_items
    if count > limit:
        raise LimitExceeded(f"{what} would have {count} items, over the limit of {limit}",
                            limit="max_items")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


def check_percent_format(template: str, args: Any) -> None:
    """Refuse ``%`` formats whose widths or precisions would build a huge string."""
    limit = current().max_string
    for width, precision in _PERCENT_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise LimitExceeded("a '*' width or precision is not allowed")
            if number and int(number) > limit:
                check_length(int(number), "a formatted field")
    check_size(args, "the formatted values")


def check_join(separator: str, items: list[Any]) -> None:
    check_size(items, "join's result")
    check_length(len(separator) * len(items), "join's result")


def check_replace(text: str, old: str, new: str, *, count: int | None) -> None:
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    check_length(len(text) + found * (len(new) - len(old)), "replace's result")


def weight(value: Any) -> int:
    """What working on `value` costs beyond one operation: its items, or its length in
    units of 64 characters."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) >> _STRING_SHIFT
    if kind is list or kind is dict or kind is tuple or kind is range:
        return len(value)
    return 0


def charged(cost: int, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `function`, charging `cost` plus the weight of its arguments first and the
    weight of its result after."""
    budget = _ACTIVE.get()
    if budget is None:
        return function(*args, **kwargs)
    budget.spend(cost + sum(map(weight, args)))
    result = function(*args, **kwargs)
    budget.spend(weight(result))
    return result


def open_budget(limits: TemplateLimits, *, clock: Callable[[], float] = time.monotonic
                ) -> Token[Budget | None] | None:
    """Start a budget with `limits` unless one is under way (a caller may open one for
    several renderings); hand the result to `close_budget` when the rendering ends."""
    if _ACTIVE.get() is not None:
        return None
    return _ACTIVE.set(Budget(limits, clock=clock))


def close_budget(token: Token[Budget | None] | None) -> None:
    if token is not None:
        _ACTIVE.reset(token)


@contextmanager
def rendering(limits: TemplateLimits | None = None, *,
              clock: Callable[[], float] = time.monotonic) -> Iterator[Budget]:
    """Run the block on one budget: the one under way, or a new one with `limits`.

    A caller that renders several templates for one decision (every ``forEach`` item of
    a rule) can share one budget between them this way.
    """
    token = open_budget(limits or DEFAULT_LIMITS, clock=clock)
    try:
        budget = _ACTIVE.get()
        assert budget is not None
        yield budget
    finally:
        close_budget(token)


def counted(iterable: Any) -> Iterator[Any]:
    """Iterate `iterable`, charging one operation per item (every ``{% for %}`` loop)."""
    budget = _ACTIVE.get()
    if budget is None:
        yield from iterable
        return
    for item in iterable:
        budget.spend(1)
        yield item
