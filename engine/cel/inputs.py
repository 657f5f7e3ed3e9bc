"""What is bound into CEL, checked and measured: data reaches CEL intact and bounded, or not at all.

`engine.cel.adapter` calls `inspect` once per activation (the values a program reads,
after projection). cel-expr-python converts a Python ``str`` through a C string, so a
NUL character cuts it short (``"ok\\0EVIL"`` arrives as ``"ok"`` and a condition
could pass that should not); bytes and map keys are cut the same way, and a lone
surrogate fails deep in the library. Its conversion also recurses once per nesting
level and crashes the process past a few thousand. So before any evaluation every
string, key and bytes value is checked and the nesting depth bounded, and the sizes
the cost check needs are measured on the way (`Sizes`): the longest string, the longest
list or map, and the total weight (one per value, one per ten characters).

Any failure raises `InputRejected` with a message naming where in the data it is; the
adapter makes it a `engine.errors.CelBug` (the rule errors: fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.cel.limits import CelLimits


class InputRejected(Exception):
    """Data that cannot be bound into CEL faithfully (NUL, surrogates) or within the limits."""

    def __init__(self, message: str, *, limit: bool = False) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class Sizes:
    """Measured bounds of bound data: the longest string (characters), the longest list or
    map (entries), how many values there are and how many characters in all."""

    chars: int = 0
    items: int = 0
    count: int = 0
    text: int = 0


_SCALARS = frozenset({int, float, bool, type(None)})


def inspect(variables: Mapping[str, Any], limits: CelLimits) -> Sizes:
    """Check every value under `variables` and measure it; raise `InputRejected`.

    One pass, iterative (the depth is bounded here, not by the C stack), scalars handled
    in the loop of their container: about half a microsecond per value, the same order
    as the library's own conversion of it.
    """
    max_chars = max_items = chars = count = 0
    max_depth = limits.max_depth
    scalars = _SCALARS
    stack: list[tuple[Any, int]] = []
    push, pop = stack.append, stack.pop
    for value in variables.values():
        push((value, 1))
    while stack:
        value, depth = pop()
        count += 1
        kind = type(value)
        if kind in scalars:
            continue
        if kind is str:
            chars += len(value)
            if len(value) > max_chars:
                max_chars = len(value)
            if "\x00" in value or not (value.isascii() or _encodes(value)):
                raise _rejected(variables, limits)
            continue
        if kind is dict:
            mapping = True
        elif kind is list:
            mapping = False
        elif isinstance(value, bytes | bytearray):
            chars += len(value)
            max_chars = max(max_chars, len(value))
            if b"\x00" in value:
                raise _rejected(variables, limits)
            continue
        elif isinstance(value, Mapping):
            mapping = True
        elif isinstance(value, tuple):
            mapping = False
        else:
            continue  # a datetime, a set...: the library refuses it, the repair converts
        if len(value) > max_items:
            max_items = len(value)
        if depth >= max_depth:
            raise _rejected(variables, limits)
        depth += 1
        if mapping:
            for key, item in value.items():
                if type(key) is str:
                    chars += len(key)
                    if "\x00" in key or not (key.isascii() or _encodes(key)):
                        raise _rejected(variables, limits)
                elif isinstance(key, bytes | bytearray) and b"\x00" in key:
                    raise _rejected(variables, limits)
                item_kind = type(item)
                if item_kind is str:
                    count += 1
                    chars += len(item)
                    if len(item) > max_chars:
                        max_chars = len(item)
                    if "\x00" in item or not (item.isascii() or _encodes(item)):
                        raise _rejected(variables, limits)
                elif item_kind in scalars:
                    count += 1
                else:
                    push((item, depth))
            continue
        for item in value:
            item_kind = type(item)
            if item_kind is str:
                count += 1
                chars += len(item)
                if len(item) > max_chars:
                    max_chars = len(item)
                if "\x00" in item or not (item.isascii() or _encodes(item)):
                    raise _rejected(variables, limits)
            elif item_kind in scalars:
                count += 1
            else:
                push((item, depth))
    if max_chars > limits.max_string_length or max_items > limits.max_list_length:
        raise _rejected(variables, limits)
    return Sizes(max_chars, max_items, count, chars)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rejected(variables: Mapping[str, Any], limits: CelLimits) -> InputRejected:
    """The first problem, found again with its path (only on the failure path)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, name) for name, value in variables.items()]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value, limits)
            if problem:
                return InputRejected(f"{where} {problem}", limit="limit" in problem)
        elif isinstance(value, bytes | bytearray):
            if b"\x00" in value:
                return InputRejected(f"{where} holds a NUL byte, which cannot be passed into "
                                     "CEL intact")
        elif isinstance(value, Mapping | list | tuple):
            if len(value) > limits.max_list_length:
                return InputRejected(f"{where} has {len(value)} entries, more than the limit "
                                     f"of {limits.max_list_length}", limit=True)
            if depth >= limits.max_depth:
                return InputRejected(f"{where} is nested deeper than the limit of "
                                     f"{limits.max_depth} levels", limit=True)
            if isinstance(value, Mapping):
                for key, item in value.items():
                    problem = _text_problem(key, limits) if isinstance(key, str) else ""
                    if problem or (isinstance(key, bytes | bytearray) and b"\x00" in key):
                        return InputRejected(f"a key of {where} {problem or 'holds a NUL byte'}")
                    stack.append((item, depth + 1, f"{where}.{key}"))
            else:
                stack.extend((item, depth + 1, f"{where}[{index}]")
                             for index, item in enumerate(value))
    return InputRejected("the data cannot be passed into CEL")


def _text_problem(text: str, limits: CelLimits) -> str:
    if "\x00" in text:
        return "holds a NUL character, which cannot be passed into CEL intact"
    if not (text.isascii() or _encodes(text)):
        return "holds a lone surrogate, which is not valid Unicode"
    if len(text) > limits.max_string_length:
        return (f"is a string of {len(text)} characters, longer than the limit of "
                f"{limits.max_string_length}")
    return ""
