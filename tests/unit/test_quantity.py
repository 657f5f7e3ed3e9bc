"""Kubernetes resource.Quantity in pure Python: parsing, canonical form, arithmetic.

Cases marked "k8s" come from apimachinery's own quantity tests.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cel.quantity import (
    MAX_EXPONENT,
    Format,
    Quantity,
    QuantityError,
    canonical,
    is_quantity,
    parse_quantity,
)

DSI, BSI, DEX = Format.DECIMAL_SI, Format.BINARY_SI, Format.DECIMAL_EXPONENT

PARSE = [
    # text, exact value, format (k8s TestQuantityParse)
    ("0", Fraction(0), DSI),
    ("0Ki", Fraction(0), BSI),
    ("1", Fraction(1), DSI),
    ("1Ki", Fraction(1024), BSI),
    ("7Mi", Fraction(7 * 2**20), BSI),
    ("3Ei", Fraction(3 * 2**60), BSI),
    ("5n", Fraction(5, 10**9), DSI),
    ("4u", Fraction(4, 10**6), DSI),
    ("3m", Fraction(3, 1000), DSI),
    ("50k", Fraction(50_000), DSI),
    ("2P", Fraction(2 * 10**15), DSI),
    ("1E", Fraction(10**18), DSI),
    ("12E", Fraction(12 * 10**18), DSI),
    ("1E-3", Fraction(1, 1000), DEX),
    ("1e3", Fraction(1000), DEX),
    ("1.3E+6", Fraction(1_300_000), DEX),
    ("100.035k", Fraction(100_035), DSI),
    ("0.0005k", Fraction(1, 2), DSI),
    ("0.5e-2", Fraction(5, 1000), DEX),
    ("6.987654321G", Fraction(6_987_654_321), DSI),
    ("3.001n", Fraction(4, 10**9), DSI),            # rounds up to the next nano
    ("1.1E-9", Fraction(2, 10**9), DEX),
    ("0.0000000001", Fraction(1, 10**9), DSI),
    ("0.00000012345", Fraction(124, 10**9), DSI),
    ("-0.00000012345", Fraction(-124, 10**9), DSI),  # away from zero
    ("9Ei", Fraction(2**63 - 1), BSI),               # BinarySI is capped
    ("9223372036854775807Ki", Fraction(2**63 - 1), BSI),
    ("100.035Ki", Fraction(10_243_584, 100), BSI),
    ("0.5Mi", Fraction(2**19), BSI),
    ("0.000000000001Ki", Fraction(2, 10**9), DSI),   # rounds up, changes format
    (".001", Fraction(1, 1000), DSI),
    ("1.", Fraction(1), DSI),
    ("1.G", Fraction(10**9), DSI),
    ("+1.5", Fraction(3, 2), DSI),
    ("-1.5", Fraction(-3, 2), DSI),
    ("007", Fraction(7), DSI),
    ("1000E", Fraction(10**21), DSI),                # DecimalSI is not capped
]

INVALID = ["", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
           " 1", "1 ", "200K", "Three", "Mi", "1,3G", ".", "-", "1e", "1ki", "5Xi",
           f"1e{MAX_EXPONENT + 1}", "1e99999999999999999999"]

CANONICAL = [
    # text, canonical string (k8s TestQuantityString / TestQuantityParseEmit)
    ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("300Mi", "300Mi"), ("307200Ki", "300Mi"),
    ("1001Gi", "1001Gi"), ("1.5Gi", "1536Mi"), ("1025Ki", "1025Ki"), ("1025", "1025"),
    ("0.5Ki", "512"), (".001Ki", "1024m"), (".000001Ki", "1024u"), (".000000001Ki", "1024n"),
    ("1000M", "1G"), ("0.001T", "1G"), ("1000u", "1m"), ("1.08", "1080m"),
    ("1080000000n", "1080m"), ("1.5", "1500m"), ("0.5", "500m"), ("300M", "300M"),
    ("1234567M", "1234567M"), ("3k", "3k"), ("1500", "1500"), ("0", "0"), ("0Ki", "0"),
    (".001e12", "1e9"), ("0.001e0", "1e-3"), ("1000e-12", "1e-9"), ("80e-3", "80e-3"),
    ("3e3", "3e3"), ("1.3E+6", "1300e3"), ("1000E", "1e21"), ("5000E", "5e21"),
    ("-1Gi", "-1Gi"), ("-1.5", "-1500m"), ("-0", "0"), ("4Ei", "4Ei"),
]


@pytest.mark.parametrize(("text", "value", "form"), PARSE)
def test_parse(text: str, value: Fraction, form: Format) -> None:
    quantity = parse_quantity(text)
    assert quantity.value == value
    assert quantity.format is form
    assert is_quantity(text)


@pytest.mark.parametrize("text", INVALID)
def test_invalid(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)
    assert not is_quantity(text)


@pytest.mark.parametrize(("text", "expected"), CANONICAL)
def test_canonical(text: str, expected: str) -> None:
    assert str(parse_quantity(text)) == expected


@pytest.mark.parametrize(("left", "right", "expected"), [
    ("0", "0", 0), ("100m", "50m", 1), ("50m", "100m", -1), ("10000T", "100Gi", 1),
    ("200M", "0.2G", 0), ("50M", "50Mi", -1), ("50Mi", "50M", 1), ("1Ki", "1024", 0),
])
def test_compare(left: str, right: str, expected: int) -> None:
    a, b = parse_quantity(left), parse_quantity(right)
    assert a.compare(b) == expected
    assert (a == b) is (expected == 0)
    assert (a < b) is (expected < 0)


@pytest.mark.parametrize(("expression", "expected"), [
    (lambda: q("50k").add(q("20k")), "70k"),
    (lambda: q("50k").add_int(20), "50020"),
    (lambda: q("50k").sub(q("20k")), "30k"),
    (lambda: q("50k").sub_int(20000), "30k"),
    (lambda: q("50k").add_int(20).sub(q("100k")).sub_int(-50000), "20"),
    (lambda: q("1Gi").add(q("512Mi")), "1536Mi"),       # the receiver's format
    (lambda: q("0").add(q("1Gi")), "1Gi"),              # zero takes the other's format
    (lambda: q("100m").sub(q("0")), "100m"),
    (lambda: q("0").sub(q("1Gi")), "-1Gi"),
    (lambda: q("500m").add(q("500m")), "1"),
])
def test_arithmetic(expression: object, expected: str) -> None:
    assert callable(expression)
    result = expression()
    assert isinstance(result, Quantity)
    assert str(result) == expected


@pytest.mark.parametrize(("text", "integer"), [
    ("50000000G", 50_000_000_000_000_000), ("50k", 50_000), ("1000m", 1), ("1Pi", 2**50),
    ("-3", -3), ("9223372036854775807", 2**63 - 1), ("1.5", None), ("1n", None),
    ("9999999999999999999999999999999999999G", None), ("9223372036854775808", None),
])
def test_integers(text: str, integer: int | None) -> None:
    quantity = parse_quantity(text)
    assert quantity.is_integer() is (integer is not None)
    if integer is None:
        with pytest.raises(QuantityError, match="cannot convert value to integer"):
            quantity.as_integer()
    else:
        assert quantity.as_integer() == integer


def test_beyond_the_largest_suffix() -> None:
    assert str(Quantity(Fraction(2**70), BSI)) == "1024Ei"
    assert str(Quantity(Fraction(10**24), DSI)) == "1e24"


def test_sign_and_float() -> None:
    assert [q(t).sign() for t in ("-1m", "0", "3Ki")] == [-1, 0, 1]
    assert q("50k").sub_int(20000).as_approximate_float() == 30000.0
    assert q("1.5Gi").as_approximate_float() == 1.5 * 2**30
    assert q(f"1e{MAX_EXPONENT}").as_approximate_float() == math.inf
    assert q(f"-1e{MAX_EXPONENT}").as_approximate_float() == -math.inf


def q(text: str) -> Quantity:
    return parse_quantity(text)


_suffixes = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E",
                             "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3", "e-3", "E+6", "e-12"])
_texts = st.builds(
    lambda sign, whole, fraction, suffix: f"{sign}{whole}{'.' + fraction if fraction else ''}"
    f"{suffix}",
    st.sampled_from(["", "-", "+"]),
    st.integers(min_value=0, max_value=10**20).map(str),
    st.one_of(st.just(""), st.integers(min_value=0, max_value=10**12).map(str)),
    _suffixes,
)


@given(_texts)
def test_canonical_round_trip(text: str) -> None:
    quantity = parse_quantity(text)
    again = parse_quantity(str(quantity))
    assert again == quantity
    assert str(again) == str(quantity)
    assert canonical(again) == canonical(quantity)


@given(_texts, _texts)
def test_order_is_the_order_of_exact_values(left: str, right: str) -> None:
    a, b = parse_quantity(left), parse_quantity(right)
    assert a.compare(b) == (a.value > b.value) - (a.value < b.value)
    assert (a < b) == (a.value < b.value)
    assert a.add(b).value == a.value + b.value
    assert a.sub(b).value == a.value - b.value


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(0, 9))
def test_parse_matches_fraction_for_decimals(mantissa: int, places: int) -> None:
    text = f"{'-' if mantissa < 0 else ''}{abs(mantissa) // 10**places}"
    if places:
        text += f".{abs(mantissa) % 10**places:0{places}d}"
    assert parse_quantity(text).value == Fraction(mantissa, 10**places)
