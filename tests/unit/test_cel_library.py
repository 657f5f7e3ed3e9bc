"""The pure parts of the Kubernetes library: addresses, semvers, formats, order keys, wiring.

Go's texts and canonical forms are pinned by cases; the order keys of tagged values
are checked against the values' own order by properties; the wiring of declarations to
runtimes is checked for gaps. The libraries' behaviour inside CEL is the conformance
corpus's (test_cel_conformance.py).
"""

from __future__ import annotations

import ipaddress
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cel import library, names, netaddr, semver
from engine.cel.library.declare import GROWTH, LIMIT_PREFIX, guarded
from engine.cel.library.quantities import order_key

# --- addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "canonical"), [
    ("192.168.0.1", "192.168.0.1"),
    ("2001:DB8::ABCD", "2001:db8::abcd"),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("2001:db8::0:0:0:abcd", "2001:db8::abcd"),
    ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # one zero field stays
    ("::", "::"),
    ("::1", "::1"),
    ("1::", "1::"),
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
    ("::1.2.3.4", "::102:304"),
    ("fe80::1%eth0", "fe80::1%eth0"),
])
def test_addresses_print_as_go_does(text: str, canonical: str) -> None:
    assert str(netaddr.parse_addr(text)) == canonical


@pytest.mark.parametrize(("text", "message"), [
    ("192.168.0.1.0", 'ParseAddr("192.168.0.1.0"): IPv4 address too long'),
    ("192.168.0", 'ParseAddr("192.168.0"): IPv4 address too short'),
    ("1.2.3.256", 'ParseAddr("1.2.3.256"): IPv4 field has value >255'),
    ("01.2.3.4", 'ParseAddr("01.2.3.4"): IPv4 field has octet with leading zero'),
    ("1..2.3", 'ParseAddr("1..2.3"): IPv4 field must have at least one digit (at ".2.3")'),
    ("2001:db8:::68",
     'ParseAddr("2001:db8:::68"): each colon-separated field must have at least one digit '
     '(at ":68")'),
    ("1:2:3:4:5:6:7:8:9", 'ParseAddr("1:2:3:4:5:6:7:8:9"): trailing garbage after address '
                          '(at "9")'),
    ("1::2::3", 'ParseAddr("1::2::3"): multiple :: in address (at ":3")'),
    ("12345::", 'ParseAddr("12345::"): each colon-separated field must have at most 4 hex '
                'digits (at "12345::")'),
    ("abc", 'ParseAddr("abc"): unable to parse IP'),
    ("%eth0", 'ParseAddr("%eth0"): missing IPv6 address'),
])
def test_address_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(netaddr.AddrError) as raised:
        netaddr.parse_addr(text)
    assert str(raised.value) == message


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_ipv6_text_round_trips_and_matches_rfc_5952(value: int) -> None:
    addr = netaddr.Addr(value, 128)
    assert netaddr.parse_addr(str(addr)) == addr
    if not addr.is4in6:
        assert str(addr) == ipaddress.IPv6Address(value).compressed


def test_prefixes() -> None:
    prefix = netaddr.parse_prefix("192.168.0.1/24")
    assert str(prefix) == "192.168.0.1/24" and str(prefix.masked()) == "192.168.0.0/24"
    assert prefix.contains(netaddr.parse_addr("192.168.0.200"))
    assert not prefix.contains(netaddr.parse_addr("::1"))
    for text, message in [("1.2.3.4/33", "prefix length out of range"),
                          ("1.2.3.4/024", 'bad bits after slash: "024"'),
                          ("1.2.3.4", "no '/'")]:
        with pytest.raises(netaddr.AddrError, match=message):
            netaddr.parse_prefix(text)


# --- semvers -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("", "Version string empty"),
    ("1.0", "No Major.Minor.Patch elements found"),
    ("01.0.0", 'Major number must not contain leading zeroes "01"'),
    ("1.a.0", 'Invalid character(s) found in minor number "a"'),
    ("1.0.0-", "Prerelease is empty"),
    ("1.0.0-01", 'Numeric PreRelease version must not contain leading zeroes "01"'),
    ("1.0.0+", "Build meta data is empty"),
    ("1.0.0-a_b", 'Invalid character(s) found in prerelease "a_b"'),
])
def test_semver_errors(text: str, message: str) -> None:
    with pytest.raises(semver.SemverError) as raised:
        semver.parse(text)
    assert str(raised.value) == message


def test_semver_normalize() -> None:
    assert str(semver.parse("v01.02", normalize=True)) == "1.2.0"
    assert str(semver.parse("1", normalize=True)) == "1.0.0"
    with pytest.raises(semver.SemverError, match="short version cannot contain"):
        semver.parse("1-alpha", normalize=True)


identifiers = st.one_of(st.integers(min_value=0, max_value=30).map(str),
                        st.text("ab-", min_size=1, max_size=3))
versions = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}" + ("-" + ".".join(pre)
                                                                   if pre else ""),
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
    st.lists(identifiers, max_size=3))


def compare_as_semver_2(left: semver.Version, right: semver.Version) -> int:
    """semver.org's precedence, written out the textbook way."""
    for a, b in ((left.major, right.major), (left.minor, right.minor),
                 (left.patch, right.patch)):
        if a != b:
            return 1 if a > b else -1
    if not left.pre or not right.pre:
        return (not left.pre) - (not right.pre)
    for a, b in zip(left.pre, right.pre, strict=False):
        if a == b:
            continue
        if isinstance(a, int) != isinstance(b, int):
            return -1 if isinstance(a, int) else 1
        return 1 if a > b else -1  # type: ignore[operator]
    return (len(left.pre) > len(right.pre)) - (len(left.pre) < len(right.pre))


@given(versions, versions)
def test_semver_order_keys_sort_as_versions_compare(left: str, right: str) -> None:
    a, b = semver.parse(left), semver.parse(right)
    assert a.compare(b) == compare_as_semver_2(a, b)


# --- quantities ----------------------------------------------------------------------


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12),
       st.integers(0, 30), st.integers(0, 30))
def test_quantity_order_keys_sort_as_values(a: int, b: int, shift_a: int, shift_b: int) -> None:
    left, right = Fraction(a * 10**shift_a, 10**9), Fraction(b * 10**shift_b, 10**9)
    assert (order_key(left) < order_key(right)) == (left < right)
    assert (order_key(left) == order_key(right)) == (left == right)


# --- formats -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text", "valid"), [
    ("dns1123Label", "a" * 63, True),
    ("dns1123Label", "a" * 64, False),
    ("dns1123Subdomain", "a.b-c.d", True),
    ("dns1035Label", "1abc", False),
    ("qualifiedName", "example.com/MyName", True),
    ("qualifiedName", "/MyName", False),
    ("qualifiedName", "a/b/c", False),
    ("labelValue", "", True),
    ("dns1123LabelPrefix", "a-", True),
    ("uri", "https://example.com/x?y=1", True),
    ("uri", "example.com", False),
    ("uuid", "123E4567E89B12D3A456426614174000", True),
    ("byte", "", False),
    ("date", "2024-02-29", True),
    ("date", "2023-02-29", False),
    ("datetime", "2024-01-01T23:59:59.5+01:00", True),
    ("datetime", "2024-01-01T24:00:00Z", False),
])
def test_formats(name: str, text: str, valid: bool) -> None:
    assert (names.FORMATS[name](text) == []) is valid


# --- wiring --------------------------------------------------------------------------


def test_every_kubernetes_overload_has_a_runtime_that_no_expression_can_name() -> None:
    runtimes = {runtime.name for runtime in library.all_runtimes()}
    for overload in library.OVERLOADS:
        assert overload.runtime is not None, overload.id
        assert overload.runtime.name.startswith("@k8s."), overload.id
        assert overload.runtime.name in runtimes
        assert overload.runtime.member == overload.member, overload.id
    ids = [overload.id for overload in library.OVERLOADS]
    assert len(ids) == len(set(ids))


def test_calls_the_checker_cannot_place_have_a_generic_runtime() -> None:
    functions = {(o.function, o.member) for o in library.OVERLOADS}
    for name, member in functions:
        key = f"{name}/{'member' if member else 'global'}"
        assert name in library.FALLBACKS or key in library.FALLBACKS, key


def test_library_functions_cannot_hand_back_what_cel_would_not_carry_or_what_grew() -> None:
    echo = guarded(lambda text: text)
    assert echo("plain") == "plain"
    with pytest.raises(ValueError, match="NUL character"):
        echo("ok\x00EVIL")
    with pytest.raises(ValueError, match="NUL character"):
        guarded(lambda: ["ok", {"k": "a\x00"}])()
    grow = guarded(lambda text: text * 100)
    assert grow("ab")
    with pytest.raises(ValueError, match=LIMIT_PREFIX):
        grow("a" * GROWTH)
    with pytest.raises(ValueError, match="bad input"):
        guarded(lambda: int("bad input"))()
