"""The one sandboxed Jinja2 environment every Edict template runs in, and `omit`.

`structured.py` compiles every templated string with `ENV`; nothing else builds a
Jinja2 environment. Templates come from whoever may create a RuleSet, so this assumes
hostile input: `ImmutableSandboxedEnvironment` (no underscore attributes, no internals,
no mutating methods: the variables are the engine's cached objects), no loader (no
``include``/``import``/``extends``), an allowlist of methods on ``str``, ``dict``,
``list`` and numbers, and no ``str.format`` (the way in of past sandbox escapes; the
``format`` filter and ``~`` remain). Every operation that can grow a string or list out
of proportion to its input is checked against the rendering's limits first
(`limits.py`): ``*``, ``**``, ``+``, ``%``, ``~``, printing a container, the growing
``str`` methods and built-in filters; ``range`` is bounded by
`TemplateLimits.max_items`. Work is bounded too: every call, filter and test is charged
to the rendering's budget here, every loop iteration, comparison and slice by the code
`codegen.py` generates, each weighted by the size of what it works on; regular
expressions are RE2 (linear in the text).

An undefined value never prints: ``'x{{ [object.missing] }}'`` is an error, as
``'x{{ object.missing }}'`` is (StrictUndefined refuses ``str``, and here ``repr`` too,
so no container holding one can print as ``[Undefined]``).

Output: autoescape off; ``None`` prints as the empty string (as in Ansible); ``omit``
inside a longer text is an error; a block scalar keeps its trailing newline; block tags
eat their newline (``trim_blocks``); ``break``/``continue`` work. ``random``, which
would make rendering non-deterministic (a write on every reconcile), is removed, as are
``pprint``, ``wordwrap``, ``urlize`` and ``xmlattr``, which have no use here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, Final, NoReturn

from jinja2 import Environment, StrictUndefined, pass_environment
from jinja2.exceptions import TemplateRuntimeError, UndefinedError
from jinja2.filters import do_batch, do_center, do_format, do_indent, make_attrgetter, sync_do_slice
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from engine.templating import limits
from engine.templating.codegen import CheckedCodeGenerator
from engine.templating.filters import (
    FILTERS,
    SizeLimitExceeded,
    check_items,
    check_join,
    check_length,
    check_percent_format,
    check_replace,
    check_size,
)
from engine.templating.keep import Keep
from engine.templating.limits import CALL_COST, FILTER_COST, TEST_COST, spend, weight

_MAX_INT_BITS = 1 << 16


class _Omit:
    """The type of `OMIT`: one instance, printed as ``omit``, copied as itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "omit"

    def __reduce__(self) -> str:
        return "OMIT"


OMIT: Final[object] = _Omit()
"""What ``{{ omit }}`` evaluates to; the key or list item holding it is dropped."""


class MissingVariable(UndefinedError):
    """A template used a top-level variable that the caller did not pass."""


class _Undefined(StrictUndefined):
    """`StrictUndefined` whose message says which variable, key or item is missing."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name, owner = self._undefined_name, self._undefined_obj
        if owner is missing:
            return f"variable {name!r} is undefined"
        if isinstance(owner, Mapping):
            keys = ", ".join(str(key) for key in islice(owner, 20))
            more = ", ..." if len(owner) > 20 else ""
            has = f"its keys: {keys}{more}" if keys else "it is empty"
            return f"the mapping has no key {name!r} ({has})"
        if isinstance(owner, Sequence) and not isinstance(owner, str):
            return f"the list of {len(owner)} items has no item {name!r}"
        return f"a {type(owner).__name__} value has no attribute {name!r}"

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_obj is missing and not self._undefined_hint:
            raise MissingVariable(self._undefined_message)
        raise self._undefined_exception(self._undefined_message)

    # `str([undefined])` calls repr: it must fail like `str(undefined)` does.
    __repr__ = _fail_with_undefined_error


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if value is OMIT:
        raise TemplateRuntimeError(
            "omit can only be a whole value ('{{ omit }}' or '{{ x | default(omit) }}'), "
            "not part of a longer text"
        )
    if type(value) is not str:
        check_size(value, "the printed value")
    return value


_SAFE_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, frozenset({
        "capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum",
        "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
        "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
        "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "upper", "zfill",
    })),
    (dict, frozenset({"items", "keys", "values", "get"})),
    ((list, tuple), frozenset({"index", "count"})),
    ((int, float), frozenset({"is_integer"})),
)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        seq, times = (right, left) if isinstance(left, int) else (left, right)
        if isinstance(seq, str) and isinstance(times, int):
            check_length(len(seq) * times, "the repeated string")
        elif isinstance(seq, list | tuple) and isinstance(times, int):
            check_items(len(seq) * times, "the repeated list")
        elif (isinstance(left, int) and isinstance(right, int)
              and left.bit_length() + right.bit_length() > _MAX_INT_BITS):
            raise SizeLimitExceeded("the product is too large a number")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0 and left.bit_length() * right > _MAX_INT_BITS:
            raise SizeLimitExceeded("the power is too large a number")
    elif operator == "+" and isinstance(left, str) and isinstance(right, str):
        check_length(len(left) + len(right), "the concatenated string")
    elif operator == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
        check_items(len(left) + len(right), "the concatenated list")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right)


def _check_str_call(text: str, method: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Check a call of a growing ``str`` method; returns the arguments to call it with."""
    if method in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        check_length(args[0], f"{method}'s result")
    elif method == "replace" and len(args) >= 2:
        check_replace(text, str(args[0]), str(args[1]), count=args[2] if len(args) > 2 else None)
    elif method == "join" and args:
        items = list(args[0])
        check_join(text, items)
        return (items, *args[1:])
    return args


class EdictEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with Edict's size checks, allowlists and key-first attribute lookup."""

    code_generator_class = CheckedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Kubernetes objects have keys named like dict methods (`values` in a
        # matchExpression, `items` in a List): data wins over methods.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        for kind, allowed in _SAFE_METHODS:
            if isinstance(obj, kind):
                return attr in allowed
        return True

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            args = _check_str_call(owner, getattr(__obj, "__name__", ""), args)
        call = super().call
        return limits.charged(CALL_COST + weight(owner), call, __context, __obj, *args,
                              **kwargs)

    @staticmethod
    def counted(iterable: Any) -> Iterator[Any]:
        """A ``{% for %}`` loop's iterable: one operation per item."""
        return limits.counted(iterable)

    @staticmethod
    def charged(value: Any) -> Any:
        """The right side of a comparison, charged for its size."""
        spend(1 + weight(value))
        return value

    def wrap_str_format(self, value: Any) -> None:
        return None  # no str.format: it is refused as an attribute not on the allowlist

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``: Jinja2's ``str_join``, refusing results over the limit."""
        known = 0
        for part in parts:
            if type(part) is str:
                known += len(part)
            else:
                check_size(part, "the joined string")
        check_length(known, "the joined string")
        text = "".join(map(str, parts))
        check_length(len(text), "the joined string")
        spend(1 + weight(text))
        return text


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    step = len(width) if isinstance(width, str) else width
    check_length(len(text) + (text.count("\n") + 1) * step, "indent's result")
    return do_indent(text, width, first, blank)


def _capped(name: str, builtin: Callable[..., Any],
            check: Callable[[int, str], None]) -> Callable[..., Any]:
    """The built-in filter `name`, refusing a second argument (a width, a count) over the
    limit."""

    def capped(value: Any, size: int, *args: Any) -> Any:
        check(size, f"{name}'s result")
        return builtin(value, size, *args)

    return capped


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    check_percent_format(str(value), args or tuple(kwargs.values()))
    return do_format(value, *args, **kwargs)


@pass_environment
def _join(env: Environment, value: Iterable[Any], d: str = "",
          attribute: str | int | None = None) -> str:
    items = list(value)
    if attribute is not None:
        items = [make_attrgetter(env, attribute)(item) for item in items]
    check_join(d, items)
    return d.join(str(item) for item in items)


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    check_replace(text, old, new, count=count)
    return text.replace(old, new, -1 if count is None else count)


def _string(value: Any) -> str:
    check_size(value, "the string")
    return str(value)


def _range(*args: int) -> range:
    """``range``, at most `TemplateLimits.max_items` long."""
    numbers = range(*args)
    check_items(len(numbers), "range")
    spend(1)
    return numbers


def _charged(function: Callable[..., Any], cost: int) -> Callable[..., Any]:
    """A filter or test that charges the budget for what it takes and gives."""

    def charged(*args: Any, **kwargs: Any) -> Any:
        return limits.charged(cost, function, *args, **kwargs)

    return functools.update_wrapper(charged, function)  # keeps Jinja2's pass_* marker


_CHECKED_BUILTINS: dict[str, Callable[..., Any]] = {
    "center": _capped("center", do_center, check_length), "indent": _indent,
    "batch": _capped("batch", do_batch, check_items),
    "slice": _capped("slice", sync_do_slice, check_items),
    "format": _format, "join": _join, "replace": _replace, "string": _string,
    "tojson": FILTERS["to_json"],  # without Jinja2's HTML escaping
}
_REMOVED_BUILTINS = ("random", "pprint", "wordwrap", "urlize", "xmlattr")


def _build() -> EdictEnvironment:
    env = EdictEnvironment(
        undefined=_Undefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        extensions=["jinja2.ext.loopcontrols"],
    )
    for name in _REMOVED_BUILTINS:
        del env.filters[name]
    env.filters.update(_CHECKED_BUILTINS)
    env.filters.update(FILTERS)
    env.add_extension(Keep)  # `keep` and `random_string`: values rendered once (keep.py)
    filters: dict[str, Any] = dict(env.filters)
    tests: dict[str, Any] = dict(env.tests)
    env.filters = {name: _charged(f, FILTER_COST) for name, f in filters.items()}
    env.tests = {name: _charged(f, TEST_COST) for name, f in tests.items()}
    env.globals.pop("lipsum", None)
    env.globals["range"] = _range
    env.globals["omit"] = OMIT
    return env


ENV: Final[EdictEnvironment] = _build()
"""The shared environment. Read-only after import: never add filters or globals to it."""
