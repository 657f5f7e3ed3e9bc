"""URL parsing with Go's ``net/url`` semantics, for the Kubernetes CEL ``url()`` functions.

`engine.cel.library` calls `parse_url` for ``url(s)`` / ``isURL(s)`` and the accessors
(``getScheme()``, ``getHost()``, ``getHostname()``, ``getPort()``, ``getEscapedPath()``,
``getQuery()``). Python's `urllib.parse` accepts and splits things differently, so the
parts Kubernetes depends on are written out here after Go's ``url.ParseRequestURI`` (the
validity check: an absolute URI or an absolute path) and ``url.Parse`` (the components):
scheme syntax, authority with userinfo, host and port validation, ``%`` escapes, the
escaped path (``RawPath`` when it is a valid encoding) and ``Query()`` in matrix form.
Pure functions, no CEL import.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass

_ALNUM = frozenset(string.ascii_letters + string.digits)
_SCHEME_CHARS = _ALNUM | frozenset("+-.")
_UNRESERVED = _ALNUM | frozenset("-_.~")
_PATH_KEEP = _UNRESERVED | frozenset("$&+,/:;=@")
_HOST_KEEP = _UNRESERVED | frozenset("!$&'()*+,;=:[]<>\"")
_ENCODED_PATH_OK = _PATH_KEEP | frozenset("!'()*[]%")
_USERINFO_OK = _ALNUM | frozenset("-._:~!$&'()*+,;=%@")
_HEX = frozenset(string.hexdigits)


class URLError(ValueError):
    """Not a URL by Go's ``net/url`` rules."""


@dataclass(frozen=True)
class URL:
    """The parts of a parsed URL, as Go's ``url.URL`` holds them."""

    scheme: str = ""
    opaque: str = ""
    host: str = ""
    path: str = ""
    raw_path: str = ""
    raw_query: str = ""

    def hostname(self) -> str:
        return _split_host_port(self.host)[0]

    def port(self) -> str:
        return _split_host_port(self.host)[1]

    def escaped_path(self) -> str:
        if self.raw_path and _valid_encoded(self.raw_path):
            return self.raw_path
        if self.path == "*":
            return "*"
        return _escape(self.path, _PATH_KEEP)

    def query(self) -> dict[str, list[str]]:
        """``url.Query()``: repeated keys give several values; bad pairs are skipped."""
        result: dict[str, list[str]] = {}
        for pair in self.raw_query.split("&"):
            if not pair or ";" in pair:
                continue
            key, _, value = pair.partition("=")
            try:
                key, value = _unescape(key, query=True), _unescape(value, query=True)
            except URLError:
                continue
            result.setdefault(key, []).append(value)
        return result


def parse_url(text: str) -> URL:
    """``url(s)``: valid for ``ParseRequestURI``, components as ``url.Parse`` sees them."""
    _parse(text, via_request=True)
    without_fragment, _, fragment = text.partition("#")
    _unescape(fragment, query=False)
    return _parse(without_fragment, via_request=False)


def is_url(text: str) -> bool:
    try:
        _parse(text, via_request=True)
    except URLError:
        return False
    return True


def parse_request_uri(text: str) -> URL:
    """Go's ``url.ParseRequestURI``: an absolute URI or an absolute path, no fragment."""
    return _parse(text, via_request=True)


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` for the text error messages carry."""
    return json.dumps(text, ensure_ascii=False)


def _parse(raw: str, *, via_request: bool) -> URL:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in raw):
        raise URLError("net/url: invalid control character in URL")
    if not raw and via_request:
        raise URLError("empty url")
    if raw == "*":
        return URL(path="*")
    scheme, rest = _scheme(raw)
    raw_query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest, _, raw_query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return URL(scheme=scheme, opaque=rest, raw_query=raw_query)
        if via_request:
            raise URLError("invalid URI for request")
        if ":" in rest.partition("/")[0]:
            raise URLError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not via_request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = _authority_host(authority)
    path = _unescape(rest, query=False)
    raw_path = "" if _escape(path, _PATH_KEEP) == rest else rest
    return URL(scheme=scheme, host=host, path=path, raw_path=raw_path, raw_query=raw_query)


def _scheme(raw: str) -> tuple[str, str]:
    for index, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if char in _SCHEME_CHARS:
            if index == 0:
                return "", raw
            continue
        if char == ":":
            if index == 0:
                raise URLError("missing protocol scheme")
            return raw[:index].lower(), raw[index + 1:]
        return "", raw
    return "", raw


def _authority_host(authority: str) -> str:
    userinfo, at, host = authority.rpartition("@")
    if at and not set(userinfo) <= _USERINFO_OK:
        raise URLError("net/url: invalid userinfo")
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise URLError("missing ']' in host")
        port = host[close + 1:]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if not _valid_optional_port(port):
        raise URLError(f"invalid port {port!r} after host")
    for char in host:
        if char.isascii() and char not in _HOST_KEEP and char != "%":
            raise URLError(f"invalid character {char!r} in host name")
    return _unescape(host, query=False)


def _valid_optional_port(port: str) -> bool:
    if not port:
        return True
    return port[0] == ":" and all(char in string.digits for char in port[1:])


def _split_host_port(host: str) -> tuple[str, str]:
    name, port = host, ""
    colon = host.rfind(":")
    if colon >= 0 and _valid_optional_port(host[colon:]):
        name, port = host[:colon], host[colon + 1:]
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name, port


def _unescape(text: str, *, query: bool) -> str:
    if "%" not in text and not (query and "+" in text):
        return text
    out = bytearray()
    data = text.encode()
    index = 0
    while index < len(data):
        byte = data[index]
        if byte == ord("%"):
            pair = data[index + 1:index + 3].decode("latin-1")
            if len(pair) != 2 or not set(pair) <= _HEX:
                escape = data[index:index + 3].decode(errors="replace")
                raise URLError(f"invalid URL escape {escape!r}")
            out.append(int(pair, 16))
            index += 3
            continue
        out.append(ord(" ") if query and byte == ord("+") else byte)
        index += 1
    return out.decode(errors="surrogateescape")


def _escape(text: str, keep: frozenset[str]) -> str:
    return "".join(
        chr(byte) if chr(byte) in keep else f"%{byte:02X}"
        for byte in text.encode(errors="surrogateescape")
    )


def _valid_encoded(text: str) -> bool:
    return all(char in _ENCODED_PATH_OK for char in text)
