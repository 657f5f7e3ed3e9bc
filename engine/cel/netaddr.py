"""IP addresses and CIDR prefixes with Go's ``net/netip`` semantics, in pure Python.

`engine.cel.library` calls this for Kubernetes' ``ip()``/``cidr()`` library. Python's
`ipaddress` accepts and prints some addresses differently, and Kubernetes' error texts
are Go's, so the parts Kubernetes depends on are written out after ``netip``:
``ParseAddr`` (strict IPv4 without leading zeros, IPv6 with an embedded IPv4 tail and a
zone), ``Addr.String`` (RFC 5952, ``::ffff:1.2.3.4`` for mapped addresses),
``ParsePrefix``, ``Prefix.Masked`` and ``Contains``, and the address classes.
Kubernetes refuses zones and IPv4-mapped IPv6 addresses on top (`parse_ip`,
`parse_cidr`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

_HEX = "0123456789abcdefABCDEF"


class AddrError(ValueError):
    """Not an IP address (or prefix) by Go's rules; the message is Go's."""


@dataclass(frozen=True)
class Addr:
    """An IPv4 (`bits` 32) or IPv6 (`bits` 128) address as an integer, and its zone."""

    value: int
    bits: int
    zone: str = ""

    @property
    def is4(self) -> bool:
        return self.bits == 32

    @property
    def is4in6(self) -> bool:
        return self.bits == 128 and self.value >> 32 == 0xFFFF

    def __str__(self) -> str:
        if self.is4:
            return ".".join(str(self.value >> shift & 0xFF) for shift in (24, 16, 8, 0))
        if self.is4in6:
            return "::ffff:" + str(Addr(self.value & 0xFFFFFFFF, 32)) + _zone(self.zone)
        fields = [self.value >> shift & 0xFFFF for shift in range(112, -1, -16)]
        start, length = _longest_zero_run(fields)
        parts = [f"{field:x}" for field in fields]
        if length >= 2:
            text = ":".join(parts[:start]) + "::" + ":".join(parts[start + length:])
        else:
            text = ":".join(parts)
        return text + _zone(self.zone)

    def is_unspecified(self) -> bool:
        return self.value == 0

    def is_loopback(self) -> bool:
        return self.value >> 24 == 127 if self.is4 else self.value == 1

    def is_multicast(self) -> bool:
        return self.value >> 28 == 0xE if self.is4 else self.value >> 120 == 0xFF

    def is_link_local_multicast(self) -> bool:
        if self.is4:
            return self.value >> 8 == 0xE00000
        return self.value >> 112 & 0xFF0F == 0xFF02

    def is_link_local_unicast(self) -> bool:
        if self.is4:
            return self.value >> 16 == 0xA9FE
        return self.value >> 118 == 0x3FA  # fe80::/10

    def is_global_unicast(self) -> bool:
        if self.is4 and self.value in (0, 0xFFFFFFFF):
            return False
        return not (self.value == 0 or self.is_loopback() or self.is_multicast()
                    or self.is_link_local_unicast())


@dataclass(frozen=True)
class Prefix:
    """A CIDR prefix: an address (host bits kept as written) and a prefix length."""

    addr: Addr
    length: int

    def __str__(self) -> str:
        return f"{self.addr}/{self.length}"

    def masked(self) -> Prefix:
        host = self.addr.bits - self.length
        return Prefix(Addr(self.addr.value >> host << host, self.addr.bits), self.length)

    def contains(self, addr: Addr) -> bool:
        if addr.bits != self.addr.bits or addr.zone:
            return False
        host = self.addr.bits - self.length
        return addr.value >> host == self.addr.value >> host


def parse_addr(text: str) -> Addr:
    """Go's ``netip.ParseAddr``."""
    for char in text:
        if char == ".":
            return Addr(_ipv4(text, text), 32)
        if char == ":":
            return _ipv6(text)
        if char == "%":
            raise _error(text, "missing IPv6 address")
    raise _error(text, "unable to parse IP")


def parse_prefix(text: str) -> Prefix:
    """Go's ``netip.ParsePrefix``."""
    slash = text.rfind("/")
    if slash < 0:
        raise _prefix_error(text, "no '/'")
    try:
        addr = parse_addr(text[:slash])
    except AddrError as error:
        raise _prefix_error(text, str(error)) from None
    if not addr.is4 and addr.zone:
        raise _prefix_error(text, "IPv6 zones cannot be present in a prefix")
    digits = text[slash + 1:]
    if (len(digits) > 1 and not "1" <= digits[0] <= "9") or not _is_go_int(digits):
        raise _prefix_error(text, "bad bits after slash: " + _quote(digits))
    length = int(digits)
    if not 0 <= length <= addr.bits:
        raise _prefix_error(text, "prefix length out of range")
    return Prefix(addr, length)


def parse_ip(text: str) -> Addr:
    """Kubernetes' ``ip()``: ``ParseAddr`` without zones and IPv4-mapped IPv6 addresses."""
    try:
        addr = parse_addr(text)
    except AddrError as error:
        raise AddrError(f"IP Address {_quote(text)} parse error during conversion from string: "
                        f"{error}") from None
    if addr.zone:
        raise AddrError(f"IP address {_quote(text)} with zone value is not allowed")
    if addr.is4in6:
        raise AddrError(f"IPv4-mapped IPv6 address {_quote(text)} is not allowed")
    return addr


def parse_cidr(text: str) -> Prefix:
    """Kubernetes' ``cidr()``: ``ParsePrefix`` without IPv4-mapped IPv6 addresses."""
    try:
        prefix = parse_prefix(text)
    except AddrError as error:
        raise AddrError("network address parse error during conversion from string: network "
                        f"address parse error during conversion from string: {error}") from None
    if prefix.addr.is4in6:
        raise AddrError("network address parse error during conversion from string: IPv4-mapped "
                        f"IPv6 address {_quote(text)} is not allowed")
    return prefix


def _ipv4(whole: str, text: str) -> int:
    fields: list[int] = []
    value, digits = 0, 0
    for index, char in enumerate(text):
        if "0" <= char <= "9":
            if digits == 1 and value == 0:
                raise _error(whole, "IPv4 field has octet with leading zero")
            value = value * 10 + ord(char) - 48
            digits += 1
            if value > 255:
                raise _error(whole, "IPv4 field has value >255")
        elif char == ".":
            if index == 0 or index == len(text) - 1 or text[index - 1] == ".":
                raise _error(whole, "IPv4 field must have at least one digit", text[index:])
            if len(fields) == 3:
                raise _error(whole, "IPv4 address too long")
            fields.append(value)
            value, digits = 0, 0
        else:
            raise _error(whole, "unexpected character", text[index:])
    if len(fields) < 3:
        raise _error(whole, "IPv4 address too short")
    fields.append(value)
    return fields[0] << 24 | fields[1] << 16 | fields[2] << 8 | fields[3]


def _ipv6(whole: str) -> Addr:
    text, zone = whole, ""
    if "%" in text:
        text, _, zone = text.partition("%")
        if not zone:
            raise _error(whole, "zone must be a non-empty string")
    groups: list[int] = []  # 16-bit fields
    ellipsis = -1
    if text.startswith("::"):
        ellipsis, text = 0, text[2:]
        if not text:
            return Addr(0, 128, zone)
    while len(groups) < 8:
        count = 0
        value = 0
        while count < len(text) and text[count] in _HEX:
            value = value << 4 | int(text[count], 16)
            count += 1
            if count > 4:
                raise _error(whole, "each colon-separated field must have at most 4 hex digits",
                             text)
        if count == 0:
            raise _error(whole, "each colon-separated field must have at least one digit", text)
        if count < len(text) and text[count] == ".":
            if ellipsis < 0 and len(groups) != 6:
                raise _error(whole, "embedded IPv4 address must replace the final 2 fields of "
                             "the address", text)
            if len(groups) > 6:
                raise _error(whole, "too many hex fields to fit an embedded IPv4 at the end of "
                             "the address", text)
            four = _ipv4(whole, text)
            groups += [four >> 16, four & 0xFFFF]
            text = ""
            break
        groups.append(value)
        text = text[count:]
        if not text:
            break
        if text[0] != ":":
            raise _error(whole, "unexpected character, want colon", text)
        if len(text) == 1:
            raise _error(whole, "colon must be followed by more characters", text)
        text = text[1:]
        if text[0] == ":":
            if ellipsis >= 0:
                raise _error(whole, "multiple :: in address", text)
            ellipsis, text = len(groups), text[1:]
            if not text:
                break
    if text:
        raise _error(whole, "trailing garbage after address", text)
    if len(groups) < 8:
        if ellipsis < 0:
            raise _error(whole, "address string too short")
        groups[ellipsis:ellipsis] = [0] * (8 - len(groups))
    elif ellipsis >= 0:
        raise _error(whole, "the :: must expand to at least one field of zeros", text)
    value = 0
    for group in groups:
        value = value << 16 | group
    return Addr(value, 128, zone)


def _longest_zero_run(fields: list[int]) -> tuple[int, int]:
    best_start, best_length, start = -1, 0, -1
    for index, field in enumerate([*fields, 1]):
        if field == 0 and start < 0:
            start = index
        elif field != 0 and start >= 0:
            if index - start > best_length:
                best_start, best_length = start, index - start
            start = -1
    return best_start, best_length


def _is_go_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return bool(body) and body.isascii() and body.isdigit()


def _zone(zone: str) -> str:
    return "%" + zone if zone else ""


def _quote(text: str) -> str:
    """Go's ``strconv.Quote`` for the printable text these messages carry."""
    return json.dumps(text, ensure_ascii=False)


def _error(whole: str, message: str, at: str = "") -> AddrError:
    where = f" (at {_quote(at)})" if at else ""
    return AddrError(f"ParseAddr({_quote(whole)}): {message}{where}")


def _prefix_error(whole: str, message: str) -> AddrError:
    return AddrError(f"netip.ParsePrefix({_quote(whole)}): {message}")
