"""Kubernetes' quantity library: ``quantity()``, ``isQuantity()`` and the Quantity methods.

Declared as in ``k8s.io/apiserver/pkg/cel/library/quantity.go`` (Kubernetes 1.28),
with one addition: ``q.sign()`` as a method besides Kubernetes' ``sign(q)`` (its
documentation shows the method form). Arithmetic is exact (`engine.cel.quantity`).
A quantity at run time is a tagged string (`engine.cel.values`): its text is the
canonical DecimalSI form of its value and its order key sorts by value, so ``==`` and
even comparisons through ``dyn`` follow the value.
"""

from __future__ import annotations

import functools
from fractions import Fraction

from engine.cel import quantity as qty
from engine.cel import values
from engine.cel.library.declare import LibraryError, Overload, Runtime, guarded
from engine.cel.library.ordering import RUNTIMES as ORDERING
from engine.cel.library.ordering import read_quantity as _read

Q = "kubernetes.Quantity"


def tag(quantity: qty.Quantity) -> str:
    value = quantity.value
    return values.tag("q", qty.canonical(qty.Quantity(value)), order_key(value))


def order_key(value: Fraction) -> str:
    """Text that sorts as the values do (values are multiples of 10⁻⁹)."""
    nanos = value * 10**9
    number = int(nanos) if nanos.denominator == 1 else round(nanos)
    if number == 0:
        return "1"
    digits = str(abs(number))
    significant = digits.rstrip("0")
    if number > 0:
        return f"2{len(digits):05d}{significant}"
    flipped = "".join(chr(105 - ord(char)) for char in significant)  # 9 - digit
    return f"0{99999 - len(digits):05d}{flipped}~"


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> str:
    try:
        return tag(qty.parse_quantity(text))
    except qty.QuantityError as error:
        raise LibraryError(f"quantity({text!r}): {error}") from None


def _as_integer(tagged: str) -> int:
    try:
        return _read(tagged).as_integer()
    except qty.QuantityError as error:
        raise LibraryError(str(error)) from None


def _add(tagged: str, other: object) -> str:
    if isinstance(other, int) and not isinstance(other, bool):
        return tag(_read(tagged).add_int(other))
    return tag(_read(tagged).add(_read(str(other))))


def _sub(tagged: str, other: object) -> str:
    if isinstance(other, int) and not isinstance(other, bool):
        return tag(_read(tagged).sub_int(other))
    return tag(_read(tagged).sub(_read(str(other))))


def _runtime(name: str, params: tuple[str, ...], result: str, impl: object,
             member: bool = True) -> Runtime:
    assert callable(impl)
    return Runtime(f"@k8s.{name}", params, result, guarded(impl), member)


OVERLOADS = [
    Overload("quantity", "string_to_quantity", ("string",), Q,
             _runtime("quantity", ("string",), "string", _parse, member=False)),
    Overload("isQuantity", "is_quantity_string", ("string",), "bool",
             _runtime("isQuantity", ("string",), "bool", qty.is_quantity, member=False)),
    Overload("sign", "quantity_sign", (Q,), "int",
             _runtime("sign", ("string",), "int", lambda a: _read(a).sign(), member=False)),
    Overload("sign", "edict_quantity_sign_member", (Q,), "int",
             _runtime("sign.member", ("string",), "int", lambda a: _read(a).sign()),
             member=True),
    Overload("compareTo", "quantity_compare_to", (Q, Q), "int", ORDERING["compareTo"],
             member=True),
    Overload("isLessThan", "quantity_is_less_than", (Q, Q), "bool", ORDERING["isLessThan"],
             member=True),
    Overload("isGreaterThan", "quantity_is_greater_than", (Q, Q), "bool",
             ORDERING["isGreaterThan"], member=True),
    Overload("asApproximateFloat", "quantity_get_float", (Q,), "double",
             _runtime("asApproximateFloat", ("string",), "double",
                      lambda a: _read(a).as_approximate_float()), member=True),
    Overload("asInteger", "quantity_get_int", (Q,), "int",
             _runtime("asInteger", ("string",), "int", _as_integer), member=True),
    Overload("isInteger", "quantity_is_integer", (Q,), "bool",
             _runtime("isInteger", ("string",), "bool", lambda a: _read(a).is_integer()),
             member=True),
    Overload("add", "quantity_add", (Q, Q), Q,
             _runtime("add", ("string", "dyn"), "string", _add), member=True),
    Overload("add", "quantity_add_int", (Q, "int"), Q,
             _runtime("add", ("string", "dyn"), "string", _add), member=True),
    Overload("sub", "quantity_sub", (Q, Q), Q,
             _runtime("sub", ("string", "dyn"), "string", _sub), member=True),
    Overload("sub", "quantity_sub_int", (Q, "int"), Q,
             _runtime("sub", ("string", "dyn"), "string", _sub), member=True),
]
