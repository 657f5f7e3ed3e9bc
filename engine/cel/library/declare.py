"""How a Kubernetes library function is declared: its checker signature and its runtime.

Each library module of `engine.cel.library` lists `Overload` values. From them
`engine.cel.library` builds two things that cel-expr-python takes separately:

- the type-checker's declarations, as an environment config (YAML): the signatures
  exactly as Kubernetes declares them, with opaque types (``kubernetes.Quantity``,
  ``net.IP``…) the runtime of cel-expr-python 0.1.3 cannot represent;
- the runtime functions (`Runtime`), registered under names starting with ``@`` (which
  no expression can write) on kinds the runtime can carry: an opaque value is a tagged
  string (`engine.cel.values`).

`engine.cel.rewrite` routes each checked call of a Kubernetes overload to its runtime.
Every runtime implementation is wrapped by `guarded`: any Python exception becomes a
CEL error with a clear message, a string result that the binding could not carry
intact (a NUL character) is an error instead of a truncated value, and so is a string
result much longer than the strings it was made from (`GROWTH`: none of these functions
should grow text, the bound makes sure a mistake cannot).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GROWTH = 8192
"""How many characters a library function's string result may exceed twice its longest
string argument by (canonical quantities and format messages are a few hundred)."""
LIMIT_PREFIX = "edict limit: "
"""Errors raised with this prefix are limits (see `engine.cel.adapter.classify`)."""


class LibraryError(ValueError):
    """A library function refused its input (the message is what the rule author reads)."""


class LibraryLimit(LibraryError):
    """A library function would do more work than it is allowed to."""


@dataclass(frozen=True)
class Runtime:
    """A function the runtime calls: a name no expression can write, kinds it can carry."""

    name: str
    params: tuple[str, ...]  # runtime kinds, receiver first: string, int, list, map, dyn...
    result: str
    impl: Callable[..., Any]
    member: bool = False


@dataclass(frozen=True)
class Overload:
    """One overload as Kubernetes declares it, and the runtime that serves it.

    `args` are checker types, receiver first for a member overload. `runtime` None
    means the library's built-in runtime already serves it (cross-type comparisons).
    `optional` marks functions Kubernetes declares with an optional result: their
    runtime returns the value or its zero, and the call is wrapped in
    ``optional.ofNonZeroValue`` (the runtime cannot return optionals from Python).
    """

    function: str
    id: str
    args: tuple[str, ...]
    result: str
    runtime: Runtime | None = None
    member: bool = False
    optional: bool = False


def guarded(impl: Callable[..., Any]) -> Callable[..., Any]:
    """`impl` with its failures as clear errors and its results checked."""
    @functools.wraps(impl)
    def call(*args: Any) -> Any:
        try:
            result = impl(*args)
        except LibraryLimit as error:
            raise ValueError(LIMIT_PREFIX + str(error)) from None
        except (LibraryError, ValueError, TypeError, ArithmeticError) as error:
            raise ValueError(str(error) or type(error).__name__) from None
        _check_carried(result)
        if type(result) is str and len(result) > GROWTH + 2 * max(
                (len(arg) for arg in args if isinstance(arg, str)), default=0):
            raise ValueError(f"{LIMIT_PREFIX}{impl.__name__} gave {len(result)} characters, "
                             "far more than its arguments hold")
        return result
    return call


def _check_carried(result: Any) -> None:
    """The binding cuts strings at NUL on their way back into CEL: refuse instead."""
    if type(result) is str:
        if "\x00" in result:
            raise ValueError("the result holds a NUL character, which cannot be passed back "
                             "into CEL intact")
    elif type(result) is list:
        for item in result:
            _check_carried(item)
    elif type(result) is dict:
        for key, item in result.items():
            _check_carried(key)
            _check_carried(item)
    elif type(result) is bytes and b"\x00" in result:
        raise ValueError("the result holds a NUL byte, which cannot be passed back into CEL "
                         "intact")


def type_desc(text: str, indent: int) -> list[str]:
    """A checker type (``list(int)``, ``map(string, dyn)``...) as YAML TypeDesc lines."""
    name, params = _split_type(text)
    pad = " " * indent
    lines = [f'{pad}type_name: "{name}"']
    if params:
        lines.append(f"{pad}params:")
        for param in params:
            inner = type_desc(param, indent + 4)
            lines.append(f"{pad}  - {inner[0].lstrip()}")
            lines.extend(inner[1:])
    return lines


def _split_type(text: str) -> tuple[str, list[str]]:
    if "(" not in text:
        return text, []
    name, _, rest = text.partition("(")
    params, depth, start = [], 0, 0
    inner = rest[:-1]
    for index, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            params.append(inner[start:index].strip())
            start = index + 1
    params.append(inner[start:].strip())
    return name, params


def functions_yaml(overloads: list[Overload]) -> list[str]:
    """The ``functions:`` section declaring `overloads` (grouped by function name)."""
    by_name: dict[str, list[Overload]] = {}
    for overload in overloads:
        by_name.setdefault(overload.function, []).append(overload)
    lines = ["functions:"]
    for name in sorted(by_name):
        lines += [f'  - name: "{name}"', "    overloads:"]
        for overload in by_name[name]:
            lines.append(f'      - id: "{overload.id}"')
            args = list(overload.args)
            if overload.member:
                lines.append("        target:")
                lines += type_desc(args.pop(0), 10)
            if args:
                lines.append("        args:")
                for arg in args:
                    desc = type_desc(arg, 12)
                    lines.append("          - " + desc[0].lstrip())
                    lines += desc[1:]
            lines.append("        return:")
            lines += type_desc(overload.result, 10)
    return lines
