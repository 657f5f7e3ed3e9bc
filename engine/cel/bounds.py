"""Bounds on CEL values for the cost estimate: sizes carried through every operation.

`engine.cel.cost` walks a checked tree with them and `engine.cel.cost_rules` says what
each function costs and gives back. A `Bound` is an upper bound on a value: its length
as a string and as a list or map, how many values and characters it holds, and a bound
of its elements. Units: one per operation on a small value or list element copied
(about 30 ns and 32 bytes), `CHAR` per character of string work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ITERATIONS = 10_000
"""cel-expr-python's fixed budget of comprehension iterations per evaluation."""
CHAR = 0.1
"""Cost of scanning or copying one character."""
PYTHON_CALL = 50.0
"""Cost of calling a library function written in Python, before converting values."""
CONVERT = 5.0
"""Cost of converting one value between CEL and Python."""
INFINITE = math.inf


@dataclass(frozen=True)
class Bound:
    """Upper bounds on a value: its length as a string and as a list or map, how many
    values it holds (itself included) and how many characters; `item` bounds each element
    (None: the same as this value, as for data of unknown shape)."""

    chars: float = 0.0
    items: float = 0.0
    count: float = 1.0
    text: float = 0.0
    item: Bound | None = None
    data: bool = False  # from the bound variables (a map of it may have any string keys)

    def element(self) -> Bound:
        return self.item if self.item is not None else self

    def weight(self) -> float:
        return self.count + CHAR * self.text


SCALAR = Bound()


def string(length: float) -> Bound:
    return Bound(chars=length, text=length)


def join(left: Bound, right: Bound) -> Bound:
    """A bound of either value."""
    if left is right:
        return left
    item = None if left.item is None or right.item is None else join(left.item, right.item)
    return Bound(max(left.chars, right.chars), max(left.items, right.items),
                 max(left.count, right.count), max(left.text, right.text), item,
                 left.data or right.data)
