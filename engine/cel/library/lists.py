"""Kubernetes' list library: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``.

Declared as in ``k8s.io/apiserver/pkg/cel/library/lists.go``: ``isSorted``/``min``/``max``
for lists of int, uint, double, bool, duration, timestamp, string and bytes, ``sum`` for
int, uint, double and duration. The runtime can only give back a duration, a timestamp
or a uint from Python when the function declares that result, so each element type has
its own runtime (``@k8s.max.duration``…); a call on a list the type-checker only knows
as ``list(dyn)`` goes to a generic runtime, which handles what data can hold (numbers,
strings, booleans, bytes; a uint comes back as an int). Ordering and equality are CEL's:
``1 == 1.0``, ``true != 1``, numbers of different types compare by value.

``indexOf``/``lastIndexOf`` share their names with the string extension's, which the
environment config cannot redeclare, so they are declared directly (``list(dyn)``, any
item) on one runtime.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from typing import Any

from engine.cel.library.declare import LibraryError, Overload, Runtime, guarded

COMPARABLE = {"int": "int", "uint": "uint", "double": "double", "bool": "bool",
              "duration": "google.protobuf.Duration", "timestamp": "google.protobuf.Timestamp",
              "string": "string", "bytes": "bytes"}
SUMMABLE = ("int", "uint", "double", "duration")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def cel_equal(left: Any, right: Any) -> bool:
    """CEL equality on converted values: numbers across int/double, bool is not a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(cel_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(cel_equal(v, right[k])
                                                   for k, v in left.items())
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, bytes | bytearray) and isinstance(right, bytes | bytearray):
        return bytes(left) == bytes(right)
    return type(left) is type(right) and bool(left == right)


def _order_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, datetime.timedelta):
        return "duration"
    raise LibraryError(f"no such overload: a {type(value).__name__} list element has no order")


def _kinds(items: list[Any]) -> None:
    if len({_order_kind(item) for item in items}) > 1:
        raise LibraryError("no such overload: list elements of different types do not compare")


def _key(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray) else value


def is_sorted(items: list[Any]) -> bool:
    _kinds(items)
    return all(_key(a) <= _key(b) for a, b in itertools.pairwise(items))


def _extreme(name: str, better: Callable[[Any, Any], bool]) -> Callable[[list[Any]], Any]:
    def pick(items: list[Any]) -> Any:
        if not items:
            raise LibraryError(f"{name} called on empty list")
        _kinds(items)
        best = items[0]
        for item in items[1:]:
            if better(_key(item), _key(best)):
                best = item
        return best
    return pick


def _generic_extreme(name: str, better: Callable[[Any, Any], bool]) -> Callable[[list[Any]], Any]:
    typed = _extreme(name, better)

    def pick(items: list[Any]) -> Any:
        found = typed(items)
        if isinstance(found, datetime.datetime | datetime.timedelta):
            raise LibraryError(f"{name}() of a list of durations or timestamps needs a list "
                               "the type-checker knows (not dyn)")
        return found
    return pick


def _sum(kind: str) -> Callable[[list[Any]], Any]:
    def total(items: list[Any]) -> Any:
        if kind == "duration":
            if not all(isinstance(item, datetime.timedelta) for item in items):
                raise LibraryError("no such overload: sum() of a list that is not durations")
            return sum(items, datetime.timedelta())
        if kind == "double" or (kind == "dyn" and items and all(type(i) is float for i in items)):
            if not all(type(item) is float for item in items):
                raise LibraryError("no such overload: sum() mixes doubles with other types")
            return float(sum(items))
        if not all(type(item) is int for item in items):
            raise LibraryError("no such overload: sum() needs a list of only ints, only uints, "
                               "only doubles or only durations")
        result = sum(items)
        low, high = (0, _UINT64_MAX) if kind == "uint" else _INT64
        if not low <= result <= high:
            raise LibraryError(f"{'unsigned ' if kind == 'uint' else ''}integer overflow")
        return result
    return total


def index_of(items: list[Any], wanted: Any) -> int:
    return next((i for i, item in enumerate(items) if cel_equal(item, wanted)), -1)


def last_index_of(items: list[Any], wanted: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if cel_equal(items[i], wanted)), -1)


_RESULT = {"int": "int", "uint": "uint", "double": "double", "bool": "bool",
           "duration": "duration", "timestamp": "timestamp", "string": "string",
           "bytes": "bytes", "dyn": "dyn"}
_SORTED = Runtime("@k8s.isSorted", ("list",), "bool", guarded(is_sorted), True)
_LESS, _MORE = (lambda a, b: a < b), (lambda a, b: a > b)


def _typed(name: str, kind: str, impl: Callable[[list[Any]], Any]) -> Runtime:
    suffix = "" if kind == "dyn" else f".{kind}"
    return Runtime(f"@k8s.{name}{suffix}", ("list",), _RESULT[kind], guarded(impl), True)


FALLBACKS = {
    "isSorted": _SORTED,
    "sum": _typed("sum", "dyn", _sum("dyn")),
    "min": _typed("min", "dyn", _generic_extreme("min", _LESS)),
    "max": _typed("max", "dyn", _generic_extreme("max", _MORE)),
}
"""Runtimes for calls the type-checker resolved to several element types (``list(dyn)``)."""

OVERLOADS = [
    *(Overload("isSorted", f"list_{kind}_is_sorted_bool", (f"list({t})",), "bool", _SORTED,
               member=True) for kind, t in COMPARABLE.items()),
    *(Overload("sum", f"list_{kind}_sum_{kind}", (f"list({COMPARABLE[kind]})",),
               COMPARABLE[kind], _typed("sum", kind, _sum(kind)), member=True)
      for kind in SUMMABLE),
    *(Overload(name, f"list_{kind}_{name}_{kind}", (f"list({t})",), t,
               _typed(name, kind, _extreme(name, better)), member=True)
      for name, better in (("min", _LESS), ("max", _MORE)) for kind, t in COMPARABLE.items()),
]

DIRECT = [
    Runtime("indexOf", ("list", "dyn"), "int", guarded(index_of), True),
    Runtime("lastIndexOf", ("list", "dyn"), "int", guarded(last_index_of), True),
]
"""Declared and run under their own names (see the module docstring)."""
