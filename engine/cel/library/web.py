"""Kubernetes' URL and regex libraries: ``url()``, ``isURL()``, URL getters, ``find``, ``findAll``.

Declared as in ``k8s.io/apiserver/pkg/cel/library/urls.go`` and ``regex.go``. URLs are
parsed with Go's ``net/url`` rules (`engine.cel.urls`) and live at run time as tagged
strings holding the text they were parsed from. Regular expressions run on RE2
(`engine.regex`), compiled once per pattern; a pattern RE2 rejects is an error
naming it, and ``findAll`` bounds its own work. ``matches`` is CEL's own (RE2 inside the
library) when its pattern is a constant, checked when the expression compiles; with a
pattern computed at run time it goes to `MATCHES`, through the same helper.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from engine import regex
from engine.cel import urls, values
from engine.cel.library.declare import LibraryError, LibraryLimit, Overload, Runtime, guarded

U = "kubernetes.URL"


@functools.lru_cache(maxsize=1024)
def _url(text: str) -> str:
    try:
        urls.parse_url(text)
    except urls.URLError as error:
        raise LibraryError(f"URL parse error during conversion from string: {error}") from None
    return values.tag("u", text)


@functools.lru_cache(maxsize=4096)
def _read(tagged: str) -> urls.URL:
    text = values.untag(tagged, "u")
    if text is None:
        raise LibraryError("no such overload: the value is not a URL (convert it with url(...) "
                           "first)")
    return urls.parse_url(text)


def pattern(text: str) -> regex.Pattern:
    try:
        return regex.compile(text)
    except regex.RegexError as error:
        raise LibraryError(str(error)) from None


def _matches(text: str, expression: str) -> bool:
    return pattern(expression).search(text) is not None


MATCHES = (Runtime("@k8s.matches", ("string", "string"), "bool", guarded(_matches), True),
           Runtime("@k8s.matches.global", ("string", "string"), "bool", guarded(_matches)))
"""``matches`` with a pattern that is not a constant: the built-in would compile whatever
the data holds with no bound on its expansion (`engine.regex.MAX_EXPANSION`)."""


def _find(text: str, expression: str) -> str:
    return pattern(expression).find(text)


def _find_all(text: str, expression: str, limit: int = -1) -> list[str]:
    try:
        return pattern(expression).find_all(text, limit)
    except regex.RegexWorkExceeded as error:
        raise LibraryLimit(str(error)) from None


def _getter(name: str, get: Callable[[urls.URL], object]) -> Overload:
    snake = "".join(f"_{char.lower()}" if char.isupper() else char for char in name)
    runtime = Runtime(f"@k8s.url.{name}", ("string",), "string",
                      guarded(lambda tagged: get(_read(tagged))), True)
    return Overload(name, f"url_{snake}", (U,), "string", runtime, member=True)


_FIND_ALL = Runtime("@k8s.findAll", ("string", "string"), "list", guarded(_find_all), True)
_FIND_ALL_LIMIT = Runtime("@k8s.findAll", ("string", "string", "int"), "list",
                          guarded(_find_all), True)

OVERLOADS = [
    Overload("url", "string_to_url", ("string",), U,
             Runtime("@k8s.url", ("string",), "string", guarded(_url))),
    Overload("isURL", "is_url_string", ("string",), "bool",
             Runtime("@k8s.isURL", ("string",), "bool", guarded(urls.is_url))),
    _getter("getScheme", lambda u: u.scheme),
    _getter("getHost", lambda u: u.host),
    _getter("getHostname", urls.URL.hostname),
    _getter("getPort", urls.URL.port),
    _getter("getEscapedPath", urls.URL.escaped_path),
    Overload("getQuery", "url_get_query", (U,), "map(string, list(string))",
             Runtime("@k8s.url.getQuery", ("string",), "map",
                     guarded(lambda tagged: _read(tagged).query()), True), member=True),
    Overload("find", "string_find_string", ("string", "string"), "string",
             Runtime("@k8s.find", ("string", "string"), "string", guarded(_find), True),
             member=True),
    Overload("findAll", "string_find_all_string", ("string", "string"), "list(string)",
             _FIND_ALL, member=True),
    Overload("findAll", "string_find_all_string_int", ("string", "string", "int"),
             "list(string)", _FIND_ALL_LIMIT, member=True),
]
