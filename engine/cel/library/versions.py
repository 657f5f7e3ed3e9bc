"""Kubernetes' semver library (1.33): ``semver()``, ``isSemver()`` and the Semver methods.

Declared as in ``k8s.io/apiserver/pkg/cel/library/semverlib.go`` (version 1, with the
``normalize`` flag); parsing and comparing in `engine.cel.semver`. At run time a semver
is a tagged string whose text leaves out build metadata (Kubernetes' ``==`` ignores it,
as comparing does) and whose order key sorts as versions compare.
"""

from __future__ import annotations

import functools

from engine.cel import semver, values
from engine.cel.library.declare import LibraryError, Overload, Runtime, guarded
from engine.cel.library.ordering import RUNTIMES as ORDERING
from engine.cel.library.ordering import read_semver

S = "kubernetes.Semver"


@functools.lru_cache(maxsize=4096)
def _parse(text: str, normalize: bool = False) -> str:
    try:
        version = semver.parse(text, normalize=normalize)
    except semver.SemverError as error:
        raise LibraryError(str(error)) from None
    return values.tag("s", str(version), version.key())


def _is_semver(text: str, normalize: bool = False) -> bool:
    return semver.is_semver(text, normalize=normalize)


def _part(name: str) -> Runtime:
    def impl(tagged: str) -> int:
        return int(getattr(read_semver(tagged), name))
    return Runtime(f"@k8s.semver.{name}", ("string",), "int", guarded(impl), True)


_SEMVER = Runtime("@k8s.semver", ("string",), "string", guarded(_parse))
_SEMVER_NORMALIZE = Runtime("@k8s.semver", ("string", "bool"), "string", guarded(_parse))
_IS_SEMVER = Runtime("@k8s.isSemver", ("string",), "bool", guarded(_is_semver))
_IS_SEMVER_NORMALIZE = Runtime("@k8s.isSemver", ("string", "bool"), "bool",
                               guarded(_is_semver))


OVERLOADS = [
    Overload("semver", "string_to_semver", ("string",), S, _SEMVER),
    Overload("semver", "string_bool_to_semver", ("string", "bool"), S, _SEMVER_NORMALIZE),
    Overload("isSemver", "is_semver_string", ("string",), "bool", _IS_SEMVER),
    Overload("isSemver", "is_semver_string_bool", ("string", "bool"), "bool",
             _IS_SEMVER_NORMALIZE),
    Overload("isGreaterThan", "semver_is_greater_than", (S, S), "bool",
             ORDERING["isGreaterThan"], member=True),
    Overload("isLessThan", "semver_is_less_than", (S, S), "bool", ORDERING["isLessThan"],
             member=True),
    Overload("compareTo", "semver_compare_to", (S, S), "int", ORDERING["compareTo"],
             member=True),
    *(Overload(name, f"semver_{name}", (S,), "int", _part(name), member=True)
      for name in ("major", "minor", "patch")),
]
