"""Language features Kubernetes' CEL has and the library's defaults lack, declared here.

- **Cross-type numeric comparisons** (Kubernetes 1.28): ``1 < 1.5``, ``2u > 1``. The
  runtime already compares across int, uint and double; only the type-checker refuses,
  so the standard ``<``, ``<=``, ``>``, ``>=`` are replaced by declarations that add the
  mixed overloads (`COMPARISONS`; no runtime of ours).
- **``string()`` of an IP or CIDR**: ``string`` is redeclared the same way with its
  standard overloads (`STRING`) plus Kubernetes' (in `engine.cel.library.network`).
- **Type names** (``type(ip('::1')) == net.IP``): each Kubernetes type name is a
  variable of type ``type(T)`` for the checker (`TYPE_NAMES`); `engine.cel.rewrite`
  turns the name into a string constant and ``type(x)`` of such a value into
  `TYPE_OF`, which gives the same string.
- **Two-variable comprehensions** (1.32) come from the library's own extension, whose
  ``transformMap``/``transformMapEntry`` call ``cel.@mapInsert``, which its runtime
  lacks: `MAP_INSERT` is that function (calls are routed to it).
"""

from __future__ import annotations

from typing import Any

from engine.cel import values
from engine.cel.library.declare import LibraryError, Overload, Runtime, guarded

_NUMBERS = {"int": "int64", "uint": "uint64", "double": "double"}
_SAME = {"bool": "bool", "int": "int64", "uint": "uint64", "double": "double",
         "string": "string", "bytes": "bytes", "google.protobuf.Timestamp": "timestamp",
         "google.protobuf.Duration": "duration"}
_OPERATORS = {"_<_": "less", "_<=_": "less_equals", "_>_": "greater",
              "_>=_": "greater_equals"}

COMPARISONS = [
    *(Overload(op, f"{prefix}_{name}", (t, t), "bool")
      for op, prefix in _OPERATORS.items() for t, name in _SAME.items()),
    *(Overload(op, f"{prefix}_{_NUMBERS[a]}_{_NUMBERS[b]}", (a, b), "bool")
      for op, prefix in _OPERATORS.items() for a in _NUMBERS for b in _NUMBERS if a != b),
]

STRING = [Overload("string", f"{name}_to_string", (t,), "string") for t, name in _SAME.items()]

TYPE_NAMES = tuple(values.KINDS.values())

TYPE_OF = Runtime("@k8s.typeOf", ("string",), "string",
                  guarded(lambda value: _type_of(value)))


def _type_of(value: Any) -> str:
    kind = values.kind_of(value)
    if kind is None:
        raise LibraryError("no such overload: type() of a Kubernetes value that is not one")
    return kind


def _map_insert(mapping: dict[Any, Any], key: Any, value: Any = None) -> dict[Any, Any]:
    result = dict(mapping)
    additions = key if value is None and isinstance(key, dict) else {key: value}
    for item_key, item in additions.items():
        if item_key in result:
            raise LibraryError(f"insert failed: key {item_key!r} already exists")
        result[item_key] = item
    return result


MAP_INSERT = [
    Runtime("@k8s.mapInsert", ("map", "dyn", "dyn"), "map", guarded(_map_insert)),
    Runtime("@k8s.mapInsert", ("map", "map"), "map", guarded(_map_insert)),
]
