"""Kubernetes' IP and CIDR libraries (1.30): ``ip()``, ``cidr()`` and their methods.

Declared as in ``k8s.io/apiserver/pkg/cel/library/ip.go`` and ``cidr.go``, with Go's
``net/netip`` semantics and messages (`engine.cel.netaddr`). At run time an IP is a
tagged string holding its canonical text, a CIDR one holding the prefix as written
(``192.168.0.1/24`` stays unmasked, as Kubernetes keeps it); ``string(ip)`` gives that
text. As in Kubernetes, ``containsCIDR`` compares the other prefix's address unmasked.
"""

from __future__ import annotations

import functools

from engine.cel import netaddr, values
from engine.cel.library.declare import LibraryError, Overload, Runtime, guarded

IP, CIDR = "net.IP", "net.CIDR"


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> str:
    try:
        return values.tag("i", str(netaddr.parse_ip(text)))
    except netaddr.AddrError as error:
        raise LibraryError(str(error)) from None


@functools.lru_cache(maxsize=4096)
def _cidr(text: str) -> str:
    try:
        return values.tag("c", str(netaddr.parse_cidr(text)))
    except netaddr.AddrError as error:
        raise LibraryError(str(error)) from None


@functools.lru_cache(maxsize=4096)
def read_ip(tagged: str) -> netaddr.Addr:
    text = values.untag(tagged, "i")
    if text is None:
        raise LibraryError("no such overload: the value is not an IP (convert it with ip(...) "
                           "first)")
    return netaddr.parse_addr(text)


@functools.lru_cache(maxsize=4096)
def read_cidr(tagged: str) -> netaddr.Prefix:
    text = values.untag(tagged, "c")
    if text is None:
        raise LibraryError("no such overload: the value is not a CIDR (convert it with "
                           "cidr(...) first)")
    return netaddr.parse_prefix(text)


def _is(parse: object, text: str) -> bool:
    assert callable(parse)
    try:
        parse(text)
    except netaddr.AddrError:
        return False
    return True


def _is_canonical(text: str) -> bool:
    try:
        return str(netaddr.parse_ip(text)) == text
    except netaddr.AddrError as error:
        raise LibraryError(str(error)) from None


def _contains_ip(tagged: str, other: str) -> bool:
    addr = read_ip(other) if values.kind_of(other) else read_ip(_ip(other))
    return read_cidr(tagged).contains(addr)


def _contains_cidr(tagged: str, other: str) -> bool:
    mine = read_cidr(tagged)
    theirs = read_cidr(other) if values.kind_of(other) else read_cidr(_cidr(other))
    same_network = mine.masked() == netaddr.Prefix(theirs.addr, mine.length)
    return same_network and mine.length <= theirs.length


def _method(name: str, result: str, impl: object) -> Runtime:
    assert callable(impl)
    return Runtime(f"@k8s.{name}", ("string",), result, guarded(impl), True)


def _ip_method(name: str, test: str) -> Overload:
    runtime = _method(f"ip.{name}", "bool", lambda tagged: getattr(read_ip(tagged), test)())
    return Overload(name, f"ip_{_snake(name)}", (IP,), "bool", runtime, member=True)


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


_TO_STRING = Runtime("@k8s.string", ("string",), "string",
                     guarded(lambda tagged: _text(tagged)))


def _text(tagged: str) -> str:
    text = values.untag(tagged, "i")
    if text is None:
        text = values.untag(tagged, "c")
    if text is None:
        raise LibraryError("no such overload: string() of a value that is not an IP or CIDR")
    return text


_CONTAINS_IP = Runtime("@k8s.containsIP", ("string", "string"), "bool",
                       guarded(_contains_ip), True)
_CONTAINS_CIDR = Runtime("@k8s.containsCIDR", ("string", "string"), "bool",
                         guarded(_contains_cidr), True)

OVERLOADS = [
    Overload("ip", "string_to_ip", ("string",), IP,
             Runtime("@k8s.ip", ("string",), "string", guarded(_ip))),
    Overload("isIP", "is_ip", ("string",), "bool",
             Runtime("@k8s.isIP", ("string",), "bool",
                     guarded(lambda text: _is(netaddr.parse_ip, text)))),
    Overload("ip.isCanonical", "ip_is_canonical", ("string",), "bool",
             Runtime("@k8s.ip.isCanonical", ("string",), "bool", guarded(_is_canonical))),
    Overload("family", "ip_family", (IP,), "int",
             _method("ip.family", "int", lambda tagged: 4 if read_ip(tagged).is4 else 6),
             member=True),
    _ip_method("isUnspecified", "is_unspecified"),
    _ip_method("isLoopback", "is_loopback"),
    _ip_method("isLinkLocalMulticast", "is_link_local_multicast"),
    _ip_method("isLinkLocalUnicast", "is_link_local_unicast"),
    _ip_method("isGlobalUnicast", "is_global_unicast"),
    Overload("string", "ip_to_string", (IP,), "string", _TO_STRING),
    Overload("cidr", "string_to_cidr", ("string",), CIDR,
             Runtime("@k8s.cidr", ("string",), "string", guarded(_cidr))),
    Overload("isCIDR", "is_cidr", ("string",), "bool",
             Runtime("@k8s.isCIDR", ("string",), "bool",
                     guarded(lambda text: _is(netaddr.parse_cidr, text)))),
    Overload("containsIP", "cidr_contains_ip_string", (CIDR, "string"), "bool", _CONTAINS_IP,
             member=True),
    Overload("containsIP", "cidr_contains_ip_ip", (CIDR, IP), "bool", _CONTAINS_IP,
             member=True),
    Overload("containsCIDR", "cidr_contains_cidr_string", (CIDR, "string"), "bool",
             _CONTAINS_CIDR, member=True),
    Overload("containsCIDR", "cidr_contains_cidr", (CIDR, CIDR), "bool", _CONTAINS_CIDR,
             member=True),
    Overload("ip", "cidr_ip", (CIDR,), IP,
             _method("cidr.ip", "string",
                     lambda tagged: values.tag("i", str(read_cidr(tagged).addr))),
             member=True),
    Overload("prefixLength", "cidr_prefix_length", (CIDR,), "int",
             _method("cidr.prefixLength", "int", lambda tagged: read_cidr(tagged).length),
             member=True),
    Overload("masked", "cidr_masked", (CIDR,), CIDR,
             _method("cidr.masked", "string",
                     lambda tagged: values.tag("c", str(read_cidr(tagged).masked()))),
             member=True),
    Overload("string", "cidr_to_string", (CIDR,), "string", _TO_STRING),
]
