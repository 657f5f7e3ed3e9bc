"""The Kubernetes CEL library functions that cel-expr-python lacks, as one CEL extension.

`engine.cel.adapter` adds `extension()` to the one shared environment. Declared here
(the semantics follow ``k8s.io/apiserver/pkg/cel/library``):

- quantities: ``quantity(s)``, ``isQuantity(s)``, ``q.isGreaterThan(q)``,
  ``q.isLessThan(q)``, ``q.compareTo(q)``, ``q.add(q|int)``, ``q.sub(q|int)``,
  ``q.asInteger()``, ``q.asApproximateFloat()``, ``q.sign()`` (and ``sign(q)``),
  ``q.isInteger()`` — arithmetic in `engine.cel.quantity`;
- lists: ``l.isSorted()``, ``l.sum()``, ``l.min()``, ``l.max()``, ``l.indexOf(x)``,
  ``l.lastIndexOf(x)`` with CEL's equality and ordering (``1 == 1.0``, ``true != 1``);
- URLs: ``url(s)``, ``isURL(s)``, ``u.getScheme()``, ``u.getHost()``,
  ``u.getHostname()``, ``u.getPort()``, ``u.getEscapedPath()``, ``u.getQuery()`` —
  parsing in `engine.cel.urls`;
- regular expressions: ``s.find(re)``, ``s.findAll(re)``, ``s.findAll(re, limit)``.

How the binding shapes this: runtime overloads only match concrete kinds (a ``dyn``
parameter never matches), so ``indexOf`` has one overload per element kind (not
``null``: its overload collides with ``int`` in the checker), and
quantities and URLs are tagged strings (see `engine.cel.values`); their member functions
are declared on ``string`` and reject untagged strings at run time. An implementation
signals failure by raising: the binding turns the exception into a CEL error value that
the adapter classifies as `engine.errors.CelBug`. Regular expressions run on Python's
``re`` (RE2 is not reachable from Python here): RE2 syntax that ``re`` lacks (``\\pL``,
``\\z``) is an error, and a pathological pattern can backtrack for long.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from typing import Any

from cel_expr_python import cel

from engine.cel import quantity as qty
from engine.cel import urls
from engine.cel.values import QUANTITY_TAG, URL_TAG

_T = cel.Type
_STRING, _INT, _BOOL, _DOUBLE = _T.STRING, _T.INT, _T.BOOL, _T.DOUBLE
_LIST = _T.List(_T.DYN)
_ITEM_KINDS = {"int": _T.INT, "uint": _T.UINT, "double": _T.DOUBLE, "string": _T.STRING,
               "bool": _T.BOOL, "bytes": _T.BYTES, "list": _LIST,
               "map": _T.Map(_T.DYN, _T.DYN)}
_INT64_MAX = 2**63 - 1


def extension() -> Any:
    """The ``edict.kubernetes`` CEL extension with every function of this module."""
    return cel.CelExtension("edict.kubernetes", _quantity_decls() + _list_decls()
                            + _url_decls() + _regex_decls())


def _fn(name: str, overloads: list[tuple[str, Any, list[Any], bool, Callable[..., Any]]]) -> Any:
    return cel.FunctionDecl(name, [
        cel.Overload(overload_id, result, params, is_member=member, impl=impl)
        for overload_id, result, params, member, impl in overloads])


def _member(name: str, result: Any, params: list[Any], impl: Callable[..., Any]) -> Any:
    return _fn(name, [(f"edict_{name}_{len(params)}", result, params, True, impl)])


# --- quantities -------------------------------------------------------------------

def _tag_quantity(quantity: qty.Quantity) -> str:
    return QUANTITY_TAG + qty.canonical(qty.Quantity(quantity.value))


@functools.lru_cache(maxsize=4096)
def _quantity(tagged: str) -> qty.Quantity:
    if not tagged.startswith(QUANTITY_TAG):
        raise TypeError(f"{tagged!r} is not a quantity: convert it with quantity(...) first")
    return qty.parse_quantity(tagged[len(QUANTITY_TAG):])


@functools.lru_cache(maxsize=4096)
def _parse_quantity(text: str) -> str:
    try:
        return _tag_quantity(qty.parse_quantity(text))
    except qty.QuantityError as error:
        raise ValueError(f"quantity({text!r}): {error}") from None


def _as_integer(tagged: str) -> int:
    try:
        return _quantity(tagged).as_integer()
    except qty.QuantityError as error:
        raise ValueError(f"asInteger(): {error}") from None


def _quantity_decls() -> list[Any]:
    q = _quantity
    return [
        _fn("quantity", [("edict_quantity", _STRING, [_STRING], False, _parse_quantity)]),
        _fn("isQuantity", [("edict_isQuantity", _BOOL, [_STRING], False, qty.is_quantity)]),
        _member("isGreaterThan", _BOOL, [_STRING, _STRING], lambda a, b: q(a) > q(b)),
        _member("isLessThan", _BOOL, [_STRING, _STRING], lambda a, b: q(a) < q(b)),
        _member("compareTo", _INT, [_STRING, _STRING], lambda a, b: q(a).compare(q(b))),
        _fn("add", [
            ("edict_add_quantity", _STRING, [_STRING, _STRING], True,
             lambda a, b: _tag_quantity(q(a).add(q(b)))),
            ("edict_add_int", _STRING, [_STRING, _INT], True,
             lambda a, n: _tag_quantity(q(a).add_int(n)))]),
        _fn("sub", [
            ("edict_sub_quantity", _STRING, [_STRING, _STRING], True,
             lambda a, b: _tag_quantity(q(a).sub(q(b)))),
            ("edict_sub_int", _STRING, [_STRING, _INT], True,
             lambda a, n: _tag_quantity(q(a).sub_int(n)))]),
        _member("asInteger", _INT, [_STRING], _as_integer),
        _member("asApproximateFloat", _DOUBLE, [_STRING], lambda a: q(a).as_approximate_float()),
        _member("isInteger", _BOOL, [_STRING], lambda a: q(a).is_integer()),
        _fn("sign", [("edict_sign_member", _INT, [_STRING], True, lambda a: q(a).sign()),
                     ("edict_sign", _INT, [_STRING], False, lambda a: q(a).sign())]),
    ]


# --- lists ------------------------------------------------------------------------

def _cel_equal(left: Any, right: Any) -> bool:
    """CEL equality on converted values: numbers across int/double, bool is not a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_cel_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_cel_equal(v, right[k])
                                                   for k, v in left.items())
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and bool(left == right)


def _order_key(value: Any) -> tuple[str, Any]:
    """A sort key, or TypeError when CEL has no ordering for the value."""
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int | float):
        return "number", value
    if isinstance(value, str):
        return "string", value
    if isinstance(value, bytes | bytearray):
        return "bytes", bytes(value)
    raise TypeError(f"no ordering for a {type(value).__name__} list element")


def _ordered(items: list[Any]) -> list[tuple[str, Any]]:
    keys = [_order_key(item) for item in items]
    if len({kind for kind, _ in keys}) > 1:
        raise TypeError("list elements of different types cannot be compared")
    return keys


def _is_sorted(items: list[Any]) -> bool:
    keys = _ordered(items)
    return all(a[1] <= b[1] for a, b in itertools.pairwise(keys))


def _extreme(name: str, pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    def impl(items: list[Any]) -> Any:
        if not items:
            raise ValueError(f"{name} called on empty list")
        keys = _ordered(items)
        return items[keys.index(pick(keys, key=lambda pair: pair[1]))]
    return impl


def _sum(items: list[Any]) -> Any:
    if all(type(item) is int for item in items):
        total = sum(items)
        if not -(2**63) <= total <= _INT64_MAX:
            raise ValueError("sum(): integer overflow")
        return total
    if all(type(item) is float for item in items):
        return float(sum(items))
    raise TypeError("sum() needs a list of only ints or only doubles")


def _index_of(items: list[Any], wanted: Any) -> int:
    return next((i for i, item in enumerate(items) if _cel_equal(item, wanted)), -1)


def _last_index_of(items: list[Any], wanted: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if _cel_equal(items[i], wanted)), -1)


def _list_decls() -> list[Any]:
    return [
        _member("isSorted", _BOOL, [_LIST], _is_sorted),
        _member("sum", _T.DYN, [_LIST], _sum),
        _member("min", _T.DYN, [_LIST], _extreme("min", min)),
        _member("max", _T.DYN, [_LIST], _extreme("max", max)),
        _fn("indexOf", [(f"edict_list_indexOf_{kind}", _INT, [_LIST, item], True, _index_of)
                        for kind, item in _ITEM_KINDS.items()]),
        _fn("lastIndexOf", [(f"edict_list_lastIndexOf_{kind}", _INT, [_LIST, item], True,
                             _last_index_of) for kind, item in _ITEM_KINDS.items()]),
    ]


# --- URLs -------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _parse_url(text: str) -> str:
    try:
        urls.parse_url(text)
    except urls.URLError as error:
        raise ValueError(f"URL parse error during conversion from string: {error}") from None
    return URL_TAG + text


@functools.lru_cache(maxsize=4096)
def _url(tagged: str) -> urls.URL:
    if not tagged.startswith(URL_TAG):
        raise TypeError(f"{tagged!r} is not a URL: convert it with url(...) first")
    return urls.parse_url(tagged[len(URL_TAG):])


def _url_decls() -> list[Any]:
    getters: dict[str, Callable[[urls.URL], str]] = {
        "getScheme": lambda u: u.scheme, "getHost": lambda u: u.host,
        "getHostname": urls.URL.hostname, "getPort": urls.URL.port,
        "getEscapedPath": urls.URL.escaped_path}
    return [
        _fn("url", [("edict_url", _STRING, [_STRING], False, _parse_url)]),
        _fn("isURL", [("edict_isURL", _BOOL, [_STRING], False, urls.is_url)]),
        *(_member(name, _STRING, [_STRING], lambda a, get=get: get(_url(a)))
          for name, get in getters.items()),
        _member("getQuery", _T.Map(_STRING, _T.List(_STRING)), [_STRING],
                lambda a: _url(a).query()),
    ]


# --- regular expressions ----------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"Illegal regex: {error}") from None


def _find(text: str, pattern: str) -> str:
    match = _regex(pattern).search(text)
    return match.group() if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's ``FindAllString``: an empty match right after the previous match is skipped."""
    regex, pos, previous_end = _regex(pattern), 0, -1
    found: list[str] = []
    while pos <= len(text) and (limit < 0 or len(found) < limit):
        match = regex.search(text, pos)
        if match is None:
            break
        start, end = match.span()
        accept = not (start == end and start == previous_end)
        pos = end + 1 if end == pos else end
        previous_end = end
        if accept:
            found.append(match.group())
    return found


def _regex_decls() -> list[Any]:
    return [
        _member("find", _STRING, [_STRING, _STRING], _find),
        _fn("findAll", [
            ("edict_findAll_2", _T.List(_STRING), [_STRING, _STRING], True, _find_all),
            ("edict_findAll_3", _T.List(_STRING), [_STRING, _STRING, _INT], True, _find_all)]),
    ]

