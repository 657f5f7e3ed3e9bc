"""``compareTo``, ``isLessThan`` and ``isGreaterThan``: one runtime for quantities and semvers.

Kubernetes declares these methods for both ``kubernetes.Quantity`` and
``kubernetes.Semver``; a call whose receiver the type-checker only knows as ``dyn``
may be either, so a single runtime serves both and dispatches on the tag
(`engine.cel.values`). Two values of different kinds do not compare.
"""

from __future__ import annotations

import functools
from typing import Any

from engine.cel import quantity as qty
from engine.cel import semver, values
from engine.cel.library.declare import LibraryError, Runtime, guarded


@functools.lru_cache(maxsize=4096)
def read_quantity(tagged: str) -> qty.Quantity:
    text = values.untag(tagged, "q")
    if text is None:
        raise LibraryError("no such overload: the value is not a quantity (convert it with "
                           "quantity(...) first)")
    return qty.parse_quantity(text)


@functools.lru_cache(maxsize=4096)
def read_semver(tagged: str) -> semver.Version:
    text = values.untag(tagged, "s")
    if text is None:
        raise LibraryError("no such overload: the value is not a semver (convert it with "
                           "semver(...) first)")
    return semver.parse(text)


def compare(left: Any, right: Any) -> int:
    kinds = values.kind_of(left), values.kind_of(right)
    if kinds[0] != kinds[1] or kinds[0] not in ("kubernetes.Quantity", "kubernetes.Semver"):
        raise LibraryError(f"no such overload: cannot compare {_what(left)} with {_what(right)}")
    if kinds[0] == "kubernetes.Quantity":
        return read_quantity(left).compare(read_quantity(right))
    return read_semver(left).compare(read_semver(right))


def _what(value: Any) -> str:
    return values.kind_of(value) or type(value).__name__


RUNTIMES = {
    "compareTo": Runtime("@k8s.compareTo", ("string", "string"), "int", guarded(compare), True),
    "isLessThan": Runtime("@k8s.isLessThan", ("string", "string"), "bool",
                          guarded(lambda a, b: compare(a, b) < 0), True),
    "isGreaterThan": Runtime("@k8s.isGreaterThan", ("string", "string"), "bool",
                             guarded(lambda a, b: compare(a, b) > 0), True),
}
