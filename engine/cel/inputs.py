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

Data may not carry the tag of a Kubernetes value either (`engine.cel.values.MARK`: the
nonce makes it unguessable; refusing it makes it unusable even if it leaked). Any
failure raises `InputRejected` with a message naming where in the data it is; the
adapter makes it a `engine.errors.CelBug` (the rule errors: fail closed).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.cel.limits import CelLimits
from engine.cel.values import MARK


class InputRejected(Exception):
    """Data that cannot be bound into CEL faithfully (NUL, surrogates) or within the limits."""

    def __init__(self, message: str, *, limit: bool = False, cost: bool = False) -> None:
        super().__init__(message)
        self.limit = limit
        self.cost = cost  # converting it alone would cost more than an evaluation may


@dataclass(frozen=True)
class Sizes:
    """Measured bounds of bound data: the longest string (characters), the longest list or
    map (entries), how many values there are and how many characters in all, and the
    same two totals for the largest part at each depth (what a chain of selections or
    iterations can get)."""

    chars: int = 0
    items: int = 0
    count: int = 0
    text: int = 0
    levels: tuple[tuple[int, int], ...] = ()
    """For each depth below the variables (their entries, the entries' entries…, at most
    `LEVELS` deep, the last standing for all deeper), the most values and characters one
    container there holds."""

    exact: bool = True
    """False for the quick upper bounds of `bounds`."""

    def flat(self) -> tuple[int, ...]:
        """Every measure in one tuple (for comparing sizes component by component)."""
        return (self.chars, self.items, self.count, self.text,
                *itertools.chain.from_iterable(self.levels))


_SCALARS = frozenset({int, float, bool, type(None)})
LEVELS = 8
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def bounds(variables: Mapping[str, Any], limits: CelLimits, *,
           max_values: float = math.inf) -> Sizes | None:
    """Quick upper bounds of `Sizes`, or None when only `inspect` can decide.

    The data as JSON text is made in C, several times faster than walking it in Python:
    a NUL shows there as ``\\u0000``, a lone surrogate fails to encode, a tag shows its
    private-use character; the longest string and the total characters are at most the
    text's length, the longest list at most its commas plus one, the values at most its
    commas and brackets, the depth at most its brackets. When any of these could break a
    limit, or the data is not JSON, `inspect` walks it exactly.
    """
    try:
        text = _ENCODER.encode(variables)
    except (TypeError, ValueError, RecursionError, OverflowError):
        return None
    if "\\u0000" in text or MARK[0] in text or not (text.isascii() or _encodes(text)):
        return None
    brackets = text.count("[") + text.count("{")
    commas = text.count(",")
    count = len(variables) + commas + brackets
    if (brackets > limits.max_depth or len(text) > limits.max_string_length
            or commas >= limits.max_list_length or count > max_values):
        return None
    return Sizes(len(text), commas + 1, count, len(text), ((count, len(text)),) * LEVELS,
                 exact=False)



def plain_bounds(variables: Mapping[str, Any], limits: CelLimits, *,
                 max_values: float = math.inf) -> Sizes | None:
    """Upper bounds of `Sizes` for plain data, or None: for the quick forms of
    `engine.cel.program.Program` that answer without binding anything (see
    `plain_measures`)."""
    measures = plain_measures(variables, limits, max_values=max_values)
    if measures is None:
        return None
    longest, items, count, chars = measures
    return Sizes(longest, items, count, chars, ((count, chars),) * LEVELS, exact=False)


def plain_measures(variables: Mapping[str, Any], limits: CelLimits, *,
                   max_values: float = math.inf) -> tuple[int, int, int, int] | None:
    """`plain_bounds` as a tuple (longest string or key, longest container, values,
    characters; each level holds the same two totals), or None: a tuple is made several
    times faster than `Sizes`, and a quick form that fits sizes already accepted needs
    no more.

    Plain: maps with ASCII string keys, lists, ASCII strings, int64 integers, booleans
    and null, and nothing `inspect` could refuse (no NUL, no tag, no surrogate: ASCII
    strings carry none of them) — exactly the data the library converts as it is, so
    that an expression's answer cannot depend on a repair (`values.plain`). Within
    every limit with a margin (a depth one short of the limit, no value count or length
    at the limit), so where this gives sizes `inspect` accepts the data and measures
    no more than them. None for anything else: the program decides.
    """
    low, high = -(2 ** 63), 2 ** 63
    longest = items = chars = containers = 0
    count = len(variables)
    max_depth = limits.max_depth - 1
    # level by level (the variables' values at depth 1), containers only: scalars are
    # handled in their container's loop, a map's keys and values in one loop
    level: list[Any] = []
    for value in variables.values():
        kind = type(value)
        if kind is dict or kind is list:
            level.append(value)
        elif kind is str:
            if "\x00" in value or not value.isascii():
                return None
            chars += len(value)
            if len(value) > longest:
                longest = len(value)
        elif kind is int:
            if not low <= value < high:
                return None
        elif not (kind is bool or value is None):
            return None
    depth = 1
    while level:
        if depth > max_depth:
            return None
        below: list[Any] = []
        push = below.append
        for value in level:
            size = len(value)
            if size > items:
                items = size
            containers += size + 1
            if containers > max_values:
                return None
            count += size
            if type(value) is dict:
                for key, item in value.items():
                    if type(key) is not str or "\x00" in key or not key.isascii():
                        return None
                    length = len(key)
                    chars += length
                    if length > longest:
                        longest = length
                    kind = type(item)
                    if kind is str:
                        if "\x00" in item or not item.isascii():
                            return None
                        length = len(item)
                        chars += length
                        if length > longest:
                            longest = length
                    elif kind is dict or kind is list:
                        push(item)
                    elif kind is int:
                        if not low <= item < high:
                            return None
                    elif not (kind is bool or item is None):
                        return None
                continue
            for item in value:
                kind = type(item)
                if kind is str:
                    if "\x00" in item or not item.isascii():
                        return None
                    length = len(item)
                    chars += length
                    if length > longest:
                        longest = length
                elif kind is dict or kind is list:
                    push(item)
                elif kind is int:
                    if not low <= item < high:
                        return None
                elif not (kind is bool or item is None):
                    return None
        level = below
        depth += 1
    if (longest >= limits.max_string_length or items >= limits.max_list_length
            or count > max_values):
        return None
    return longest, items, count, chars


def inspect(variables: Mapping[str, Any], limits: CelLimits, *,
            max_values: float = math.inf) -> Sizes:
    """Check every value under `variables` and measure it; raise `InputRejected`.

    One pass, iterative (the depth is bounded here, not by the C stack), scalars handled
    in the loop of their container, then one pass back over the containers to total
    their subtrees: about half a microsecond per value, the same order as the library's
    own conversion of it. Past `max_values` values the walk stops: converting that many
    would already cost more than an evaluation may.
    """
    max_chars = max_items = 0
    count = chars = 0  # top-level scalars; containers are totalled in `nodes`
    max_depth = limits.max_depth
    scalars = _SCALARS
    nodes: list[list[int]] = []  # per container: parent index, depth, values, characters
    stack: list[tuple[Any, int, int]] = [(value, 1, -1) for value in variables.values()]
    push, pop = stack.append, stack.pop
    seen = 0
    while stack:
        value, depth, parent = pop()
        kind = type(value)
        if kind in scalars:
            count += 1
            continue
        if kind is str:
            count += 1
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
            count += 1
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
            count += 1
            continue  # a datetime, a set...: the library refuses it, the repair converts
        if len(value) > max_items:
            max_items = len(value)
        seen += len(value) + 1
        if seen > max_values:
            raise InputRejected(f"the data it reads holds more than {max_values:,.0f} values: "
                                "converting them alone costs more than an evaluation may "
                                "(limit cel.runtime_cost_limit)", limit=True, cost=True)
        if depth > max_depth:
            raise _rejected(variables, limits)
        depth += 1
        here = len(nodes)
        own_count, own_chars = 1, 0
        items = value.values() if mapping else value
        if mapping:
            for key in value:
                if type(key) is str:
                    own_chars += len(key)
                    if "\x00" in key or not (key.isascii() or _encodes(key)):
                        raise _rejected(variables, limits)
                elif isinstance(key, bytes | bytearray) and b"\x00" in key:
                    raise _rejected(variables, limits)
        for item in items:
            item_kind = type(item)
            if item_kind is str:
                own_count += 1
                own_chars += len(item)
                if len(item) > max_chars:
                    max_chars = len(item)
                if "\x00" in item or not (item.isascii() or _encodes(item)):
                    raise _rejected(variables, limits)
            elif item_kind in scalars:
                own_count += 1
            else:
                push((item, depth, here))
        nodes.append([parent, depth - 1, own_count, own_chars])
    if max_chars > limits.max_string_length or max_items > limits.max_list_length:
        raise _rejected(variables, limits)
    level_count, level_chars = [1] * LEVELS, [max_chars] * LEVELS
    for parent, depth, subtree_count, subtree_chars in reversed(nodes):
        if parent >= 0:  # nodes are in pre-order: every child comes after its parent
            nodes[parent][2] += subtree_count
            nodes[parent][3] += subtree_chars
            level = min(depth, LEVELS + 1) - 2
            if subtree_count > level_count[level]:
                level_count[level] = subtree_count
            if subtree_chars > level_chars[level]:
                level_chars[level] = subtree_chars
        else:
            count += subtree_count
            chars += subtree_chars
    if nodes:
        for level in range(LEVELS - 2, -1, -1):  # what is deeper is also in the shallower
            if level_count[level + 1] > level_count[level]:
                level_count[level] = level_count[level + 1]
            if level_chars[level + 1] > level_chars[level]:
                level_chars[level] = level_chars[level + 1]
    return Sizes(max_chars, max_items, count, chars,
                 tuple(zip(level_count, level_chars, strict=True)))


def _encodes(text: str) -> bool:
    """A non-ASCII string that is valid Unicode and carries no tag of a Kubernetes value."""
    if MARK in text:
        return False
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
            if depth > limits.max_depth:
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
    if MARK in text:
        return "holds the tag of a Kubernetes value, which data cannot carry"
    if not (text.isascii() or _encodes(text)):
        return "holds a lone surrogate, which is not valid Unicode"
    if len(text) > limits.max_string_length:
        return (f"is a string of {len(text)} characters, longer than the limit of "
                f"{limits.max_string_length}")
    return ""
