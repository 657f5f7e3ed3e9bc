"""What each CEL function costs and gives back, for the estimate of `engine.cel.cost`.

`call(name, args, node)` takes the bounds of a call's receiver and arguments and returns
the cost of the call itself and a bound of its result. Functions that can grow what they
give back (``+``, ``replace``, ``split``, ``join``, ``format``, ``strings.quote``,
``base64.encode``, ``bytes``, ``string``, ``findAll``, map insertion) have their own
rule; the Kubernetes library's functions are charged for converting their arguments
and result between CEL and Python; anything else is linear in its arguments and gives
back nothing larger than them.
"""

from __future__ import annotations

from engine.cel.bounds import CHAR, CONVERT, PYTHON_CALL, SCALAR, Bound, join, string
from engine.cel.syntax import Node


def _python(args: list[Bound], result: Bound) -> float:
    """Calling a library function written in Python: converting in and out."""
    moved = sum(arg.count for arg in args) + result.count
    chars = sum(arg.text for arg in args) + result.text
    return PYTHON_CALL + CONVERT * moved + 0.01 * chars


def call(name: str, args: list[Bound], node: Node) -> tuple[float, Bound]:
    """Cost of one call (its arguments excluded) and a bound of its result."""
    rule = _RULES.get(name)
    if rule is not None:
        return rule(args, node)
    if name.startswith("@k8s.") or name in _PYTHON:
        result = _python_result(name, args)
        return _python(args, result) + CHAR * sum(arg.chars for arg in args), result
    # A function that only inspects its arguments: linear in them, no growth.
    cost = 1 + sum(CHAR * arg.chars + arg.items for arg in args)
    result = SCALAR
    for arg in args:
        result = join(result, arg)
    return cost, result


def _concat(args: list[Bound], node: Node) -> tuple[float, Bound]:
    if len(args) != 2:
        return 1.0, SCALAR
    left, right = args
    result = Bound(left.chars + right.chars, left.items + right.items, left.count + right.count,
                   left.text + right.text, None if left.item is None or right.item is None
                   else join(left.element(), right.element()))
    return 1 + CHAR * result.chars + result.items, result


def _equality(args: list[Bound], node: Node) -> tuple[float, Bound]:
    left, right = args
    return 1 + min(left.count, right.count) + CHAR * min(left.text, right.text), SCALAR


def _scan(args: list[Bound], node: Node) -> tuple[float, Bound]:
    """contains, indexOf on strings: a naive search may take length times needle."""
    receiver = args[0]
    needle = args[1].chars if len(args) > 1 else 0.0
    return 1 + CHAR * (receiver.chars + needle) + 0.001 * receiver.chars * needle, SCALAR


def _affix(args: list[Bound], node: Node) -> tuple[float, Bound]:
    """startsWith, endsWith: compare the shorter length."""
    return 1 + CHAR * min(args[0].chars, args[1].chars if len(args) > 1 else 0.0), SCALAR


def _same_length(args: list[Bound], node: Node) -> tuple[float, Bound]:
    return 1 + CHAR * args[0].chars, string(args[0].chars)


def _replace(args: list[Bound], node: Node) -> tuple[float, Bound]:
    receiver, new = args[0], args[2] if len(args) > 2 else SCALAR
    old = node.args[0] if node.args else None
    if old is not None and old.kind == "const" and isinstance(old.value, str) and old.value:
        out = receiver.chars * max(1.0, new.chars / len(old.value))
    else:
        out = receiver.chars + (receiver.chars + 1) * new.chars
    return 1 + receiver.chars + CHAR * out, string(out)


def _split(args: list[Bound], node: Node) -> tuple[float, Bound]:
    receiver = args[0]
    pieces = receiver.chars + 1
    return (1 + CHAR * receiver.chars + pieces,
            Bound(0, pieces, pieces + 1, receiver.chars, string(receiver.chars)))


def _join(args: list[Bound], node: Node) -> tuple[float, Bound]:
    parts = args[0]
    separator = args[1].chars if len(args) > 1 else 0.0
    out = parts.text + parts.items * separator
    return 1 + CHAR * out + parts.items, string(out)


def _format(args: list[Bound], node: Node) -> tuple[float, Bound]:
    template, values = args[0], args[1] if len(args) > 1 else SCALAR
    out = template.chars + 32 * values.count + values.text
    return 1 + CHAR * out + values.count, string(out)


COMPILE = 5.0
"""Cost of compiling one character of a regular expression (linear: see engine.regex)."""


def _regex(text: Bound, pattern: Bound) -> float:
    """Searching `text` with a pattern: RE2 is linear in the text, times the pattern's size
    when it falls back from its DFA, plus compiling the pattern."""
    return CHAR * text.chars * (1 + pattern.chars / 10) + COMPILE * pattern.chars


def _matches(args: list[Bound], node: Node) -> tuple[float, Bound]:
    text, pattern = args[0], args[1] if len(args) > 1 else SCALAR
    return 1 + _regex(text, pattern), SCALAR


def _index(args: list[Bound], node: Node) -> tuple[float, Bound]:
    container, key = args
    return 1 + CHAR * key.chars, container.element()


def _contains_in(args: list[Bound], node: Node) -> tuple[float, Bound]:
    _, container = args
    return 1 + container.count + CHAR * container.text, SCALAR


def _sets(args: list[Bound], node: Node) -> tuple[float, Bound]:
    left, right = args
    return 1 + left.items * right.weight() + right.items * left.weight(), SCALAR


def _to_string(args: list[Bound], node: Node) -> tuple[float, Bound]:
    return 1 + CHAR * args[0].chars, string(max(args[0].chars, 32.0))


def _to_bytes(args: list[Bound], node: Node) -> tuple[float, Bound]:
    return 1 + CHAR * args[0].chars, string(4 * args[0].chars)


def _base64_encode(args: list[Bound], node: Node) -> tuple[float, Bound]:
    out = 4 * args[0].chars / 3 + 4
    return 1 + CHAR * out, string(out)


def _quote(args: list[Bound], node: Node) -> tuple[float, Bound]:
    out = 10 * args[0].chars + 2
    return 1 + CHAR * out, string(out)


def _passthrough(args: list[Bound], node: Node) -> tuple[float, Bound]:
    result = SCALAR
    for arg in args:
        result = join(result, arg)
    return 1.0, result


def _map_insert(args: list[Bound], node: Node) -> tuple[float, Bound]:
    mapping = args[0]
    added = args[1] if len(args) == 2 else Bound(0, 1, args[1].count + args[2].count,
                                                 args[1].text + args[2].text,
                                                 join(args[1], args[2]))
    items = added.items if len(args) == 2 else 1.0
    result = Bound(0, mapping.items + items, mapping.count + added.count,
                   mapping.text + added.text,
                   None if mapping.item is None else join(mapping.element(), added.element()))
    return _python(args, result), result


def _find_all(args: list[Bound], node: Node) -> tuple[float, Bound]:
    text, pattern = args[0], args[1]
    result = Bound(0, text.chars + 1, text.chars + 2, text.chars, string(text.chars))
    return _python(args, result) + _regex(text, pattern), result


def _find(args: list[Bound], node: Node) -> tuple[float, Bound]:
    text, pattern = args[0], args[1]
    result = string(text.chars)
    return _python(args, result) + _regex(text, pattern), result


def _python_result(name: str, args: list[Bound]) -> Bound:
    """Results of the Kubernetes library: tagged values and texts no longer than their input
    (plus room for canonical digits), or small values."""
    longest = max((arg.chars for arg in args), default=0.0)
    if name in ("getQuery",):
        return Bound(0, longest, longest + 1, longest, string(longest))
    if name in ("validate",):
        return Bound(0, 3, 4, 1500, string(500))
    if name in ("min", "max"):
        return args[0].element() if args else SCALAR
    if name in _TEXT_RESULTS:
        return string(sum(arg.chars for arg in args) + 2200)
    return SCALAR


_TEXT_RESULTS = frozenset({
    "quantity", "add", "sub", "url", "getScheme", "getHost", "getHostname", "getPort",
    "getEscapedPath", "ip", "cidr", "masked", "semver", "format.named"}) | frozenset(
    f"format.{name}" for name in ("dns1123Label", "dns1123Subdomain", "dns1035Label",
                                  "qualifiedName", "dns1123LabelPrefix",
                                  "dns1123SubdomainPrefix", "dns1035LabelPrefix", "labelValue",
                                  "uri", "uuid", "byte", "date", "datetime"))
_PYTHON = frozenset({
    "quantity", "isQuantity", "sign", "isGreaterThan", "isLessThan", "compareTo",
    "asApproximateFloat", "asInteger", "isInteger", "add", "sub", "isSorted", "sum", "min",
    "max", "indexOf", "lastIndexOf", "url", "isURL", "getScheme", "getHost", "getHostname",
    "getPort", "getEscapedPath", "getQuery", "ip", "isIP", "ip.isCanonical", "family",
    "isUnspecified", "isLoopback", "isLinkLocalMulticast", "isLinkLocalUnicast",
    "isGlobalUnicast", "cidr", "isCIDR", "containsIP", "containsCIDR", "prefixLength",
    "masked", "semver", "isSemver", "major", "minor", "patch", "format.named",
    "validate"}) | _TEXT_RESULTS

def _cheap(args: list[Bound], node: Node) -> tuple[float, Bound]:
    return 1.0, SCALAR


def _parse_text(args: list[Bound], node: Node) -> tuple[float, Bound]:
    """int(), double(), duration()... of a string: one pass over it."""
    return 1 + CHAR * args[0].chars, SCALAR


def _compare(args: list[Bound], node: Node) -> tuple[float, Bound]:
    return 1 + CHAR * min(arg.chars for arg in args), SCALAR


def _index_of(args: list[Bound], node: Node) -> tuple[float, Bound]:
    """``indexOf`` of a string (built in) or of a list (Kubernetes'): the dearer of both."""
    as_text, _ = _scan(args, node)
    return max(as_text, _python(args, SCALAR) + args[0].weight()), SCALAR


_CHEAP = ("_&&_", "_||_", "!_", "-_", "_-_", "_*_", "_/_", "_%_", "size", "type",
          "@not_strictly_false", "hasValue", "optional.none", "getFullYear", "getMonth",
          "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes",
          "getSeconds", "getMilliseconds", "math.ceil", "math.floor", "math.round",
          "math.trunc", "math.abs", "math.sign", "math.isInf", "math.isNaN", "math.isFinite",
          "math.bitAnd", "math.bitOr", "math.bitXor", "math.bitNot", "math.bitShiftLeft",
          "math.bitShiftRight", "math.sqrt")
_PARSES = ("int", "uint", "double", "bool", "duration", "timestamp")
_COMPARES = ("_<_", "_<=_", "_>_", "_>=_")


_RULES = {
    "_+_": _concat, "_==_": _equality, "_!=_": _equality,
    "contains": _scan, "startsWith": _affix, "endsWith": _affix,
    "lowerAscii": _same_length, "upperAscii": _same_length, "trim": _same_length,
    "reverse": _same_length, "substring": _same_length, "charAt": _same_length,
    "replace": _replace, "split": _split, "join": _join, "format": _format,
    "matches": _matches, "_[_]": _index, "_[?_]": _index, "@in": _contains_in,
    "sets.contains": _sets, "sets.equivalent": _sets, "sets.intersects": _sets,
    "string": _to_string, "bytes": _to_bytes, "base64.encode": _base64_encode,
    "base64.decode": _same_length, "strings.quote": _quote,
    "dyn": _passthrough, "optional.of": _passthrough, "optional.ofNonZeroValue": _passthrough,
    "orValue": _passthrough, "or": _passthrough, "value": _passthrough,
    "_?_:_": _passthrough, "_?._": _index,
    "cel.@mapInsert": _map_insert, "findAll": _find_all, "find": _find,
    "indexOf": _index_of, "lastIndexOf": _index_of,
    **dict.fromkeys(_CHEAP, _cheap), **dict.fromkeys(_PARSES, _parse_text),
    **dict.fromkeys(_COMPARES, _compare),
}
