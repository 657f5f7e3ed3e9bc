"""Kubernetes `resource.Quantity`, in pure Python: parsing, canonical form, arithmetic.

Rule authors compare resource amounts in CEL conditions
(``quantity(c.resources.limits.memory).isLessThan(quantity('1Gi'))``); the CEL library
functions in `engine.cel.library` call this module. It mirrors
``k8s.io/apimachinery/pkg/api/resource`` (``ParseQuantity``, ``CanonicalizeBytes``,
``Add``/``Sub``/``Cmp``) with exact arithmetic on `fractions.Fraction`:

- grammar ``<sign><digits>[.<digits>]<suffix>`` with the same scanner (``1.`` and
  ``.5`` are numbers), except that a number needs at least one digit: ``Mi``, ``.`` and
  ``-`` are errors, as the Kubernetes CEL documentation promises for ``quantity('Mi')``;
- suffixes ``n u m "" k M G T P E`` (DecimalSI), ``Ki Mi Gi Ti Pi Ei`` (BinarySI) and
  ``e<int>`` / ``E<int>`` (DecimalExponent); no case correction (``200K`` is an error);
- values are rounded away from zero to a multiple of 10⁻⁹; BinarySI values are capped
  at 2⁶³-1 in magnitude; a BinarySI value strictly between -1 and 1 becomes DecimalSI;
- the canonical string keeps the parsed format, moves every factor of 10 (or 1024) into
  the largest suffix and never emits fractional digits (``1.5`` → ``1500m``,
  ``1.5Gi`` → ``1536Mi``).

Deliberate differences, each where Kubernetes misbehaves or cannot be followed safely:
an exponent beyond ±`MAX_EXPONENT` is an error (Kubernetes truncates it to int32 and
would build a number of a billion digits); DecimalSI values past ``E`` print in exponent
form (``1e21``, as current Kubernetes does) and BinarySI ones as ``1024Ei``; `is_integer`
is about the value (Kubernetes answers from its internal representation, so ``1000m``
and ``1Pi`` report false there).

Quantities compare and hash by value only (``1Ki == 1024``), like Kubernetes' ``Equal``;
the format only affects how a quantity prints.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass
from fractions import Fraction

MAX_EXPONENT = 1000
"""Largest decimal exponent accepted in ``1e<n>`` form; far beyond any real resource."""

_INT64_MAX = 2**63 - 1
_NANO = 10**9
_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {power // 10: suffix for suffix, power in _BINARY_SUFFIXES.items()}
_BINARY_BY_POWER[0] = ""


class QuantityError(ValueError):
    """A string is not a valid quantity, or a quantity cannot become what was asked."""


class Format(enum.Enum):
    """How a quantity prints; chosen by the suffix it was parsed from."""

    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    """An exact amount (a multiple of 10⁻⁹ after parsing) and the format it prints in."""

    value: Fraction
    format: Format = Format.DECIMAL_SI

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value == other.value

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return canonical(self)

    def compare(self, other: Quantity) -> int:
        """-1, 0 or 1, as Kubernetes' ``Cmp``."""
        return (self.value > other.value) - (self.value < other.value)

    def sign(self) -> int:
        return (self.value > 0) - (self.value < 0)

    def add(self, other: Quantity) -> Quantity:
        """The sum, in the receiver's format (the other's when the receiver is zero)."""
        form = other.format if self.value == 0 else self.format
        return Quantity(self.value + other.value, form)

    def sub(self, other: Quantity) -> Quantity:
        form = other.format if self.value == 0 else self.format
        return Quantity(self.value - other.value, form)

    def add_int(self, number: int) -> Quantity:
        return self.add(Quantity(Fraction(number), Format.DECIMAL_EXPONENT))

    def sub_int(self, number: int) -> Quantity:
        return self.sub(Quantity(Fraction(number), Format.DECIMAL_EXPONENT))

    def is_integer(self) -> bool:
        """True when `as_integer` would succeed: a whole number within int64."""
        return self.value.denominator == 1 and -(2**63) <= self.value <= _INT64_MAX

    def as_integer(self) -> int:
        if not self.is_integer():
            raise QuantityError("cannot convert value to integer")
        return int(self.value)

    def as_approximate_float(self) -> float:
        try:
            return float(self.value)
        except OverflowError:
            return math.inf if self.value > 0 else -math.inf


def parse_quantity(text: str) -> Quantity:
    """Parse like Kubernetes' ``resource.ParseQuantity``; raise `QuantityError`."""
    if not text:
        raise QuantityError("quantities must not be empty")
    if text == "0":
        return Quantity(Fraction(0), Format.DECIMAL_SI)
    positive, num, denom, suffix = _scan(text)
    base, exponent, form = _interpret(text, suffix)
    mantissa = int(num + denom)
    if base == 10:
        nanos = _round_up_nanos(mantissa, exponent - len(denom))
    else:
        nanos = _ceil_div(mantissa * 2**exponent * _NANO, 10 ** len(denom))
    value = Fraction(nanos, _NANO)
    if form is Format.BINARY_SI:
        value = min(value, Fraction(_INT64_MAX))
        if 0 < value < 1:
            form = Format.DECIMAL_SI
    return Quantity(value if positive else -value, form)


def is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def canonical(quantity: Quantity) -> str:
    """Kubernetes' canonical string: no fractional digits, the largest exact suffix."""
    value = quantity.value
    if value == 0:
        return "0"
    form = quantity.format
    if form is Format.BINARY_SI and (-1024 < value < 1024 or value.denominator != 1):
        form = Format.DECIMAL_SI
    if form is Format.BINARY_SI:
        number, power = int(value), 0
        while number % 1024 == 0 and power < 6:
            number, power = number // 1024, power + 1
        return f"{number}{_BINARY_BY_POWER[power]}"
    number, exponent = _decimal_mantissa(value)
    if form is Format.DECIMAL_EXPONENT:
        return f"{number}e{exponent}" if exponent else str(number)
    if exponent > 18:
        return f"{number}e{exponent}"
    return f"{number}{_DECIMAL_BY_EXPONENT[exponent]}"


def _scan(text: str) -> tuple[bool, str, str, str]:
    """Split into sign, integer digits, fraction digits, suffix (Go's parseQuantityString)."""
    positive, pos, end = True, 0, len(text)
    if text[0] in "+-":
        positive, pos = text[0] == "+", 1
    if not any(char in _DIGITS for char in text[pos:pos + 2]):
        raise QuantityError(f"{text!r} is not a quantity: it has no number")
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(
            f"{text!r} is not a quantity: expected a number with an optional suffix "
            "(n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or e<exponent>)"
        )
    return positive, num, denom, text[suffix_start:]


def _interpret(text: str, suffix: str) -> tuple[int, int, Format]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    digits = suffix[1:].lstrip("+-")
    if (len(suffix) > 1 and suffix[0] in "eE" and digits and set(digits) <= _DIGITS
            and len(suffix) - len(digits) <= 2):
        exponent = int(suffix[1:])
        if abs(exponent) > MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent beyond ±{MAX_EXPONENT} is not supported")
        return 10, exponent, Format.DECIMAL_EXPONENT
    raise QuantityError(f"{text!r}: unable to parse quantity's suffix {suffix!r}")


def _round_up_nanos(mantissa: int, scale: int) -> int:
    """mantissa * 10^scale in units of 10⁻⁹, rounded away from zero (mantissa ≥ 0)."""
    shift = scale + 9
    if shift >= 0:
        return int(mantissa * 10**shift)
    if mantissa == 0:
        return 0
    if -shift > len(str(mantissa)):
        return 1  # smaller than one nano: Kubernetes rounds it up to 1n
    return _ceil_div(mantissa, 10**-shift)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _decimal_mantissa(value: Fraction) -> tuple[int, int]:
    """value = number * 10^exponent, exponent the largest multiple of 3 keeping it whole."""
    nanos = value * _NANO
    number = nanos.numerator if nanos.denominator == 1 else _away_from_zero(nanos)
    exponent = -9
    while number % 10 == 0:
        number, exponent = number // 10, exponent + 1
    rest = exponent % 3
    return number * 10**rest, exponent - rest


def _away_from_zero(value: Fraction) -> int:
    return math.ceil(value) if value > 0 else math.floor(value)
