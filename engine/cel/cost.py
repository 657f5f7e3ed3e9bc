"""The cost of a CEL expression, estimated from its checked tree and bounds on its inputs.

`engine.cel.adapter` calls `estimate` when an expression compiles (inputs of a modest
reference object, `static_inputs`; and inputs at their largest allowed sizes) and,
through a per-program cache, before an evaluation (the measured sizes of the actual
data, `measured_inputs`); `engine.cel.limits` says what happens above the limits. The
estimate follows the Kubernetes estimator in spirit: every node costs one unit, string
work a unit per ten characters, and a size is carried for every value (`Bound`) so
that growth is seen: ``s.replace('a', 'aaaaaaaaaa')`` bounds its result at ten times
``s``, nine of them in a row at 10⁹ times.

It is also fitted to what cel-expr-python actually does: ``map``/``filter`` (and the
two-variable ``transformList``) build their result by copying the list so far on every
iteration, so their cost is the square of their length (measured: 9,999 elements, 5 s
and 1.6 GB); a Python library function pays for converting its arguments and result;
the runtime stops any evaluation after 10,000 comprehension iterations in all, so loop
bodies never run more often than that. A comprehension's accumulator is sized by
evaluating its step once: a step that grows it faster than by a fixed amount per
iteration (only reachable through the internal accumulator name) makes the cost
unbounded.

The checker's types narrow the bounds (a ``string`` holds one value, an ``int`` no
characters). Otherwise every data value is assumed as large as the largest of its kind
in the data: as long as the longest string, the longest list, and holding as many values
and characters as the whole (for a variable) or as its largest part (for anything
selected or iterated over in it; the input check measures both). Sound, if pessimistic.
The static estimate does the same on a reference object whose largest part is one
entry's share of its longest list: a screen for what cannot work on ordinary objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from engine.cel.inputs import Sizes
from engine.cel.limits import CelLimits
from engine.cel.syntax import Loop, Node

ITERATIONS = 10_000
"""cel-expr-python's fixed budget of comprehension iterations per evaluation."""
CHAR = 0.1
"""Cost of scanning or copying one character."""
PYTHON_CALL = 50.0
"""Cost of calling a library function written in Python, before converting values."""
CONVERT = 5.0
"""Cost of converting one value between CEL and Python."""
INFINITE = math.inf


@dataclass(frozen=True)
class Bound:
    """Upper bounds on a value: its length as a string and as a list or map, how many
    values it holds (itself included) and how many characters; `item` bounds each element
    (None: the same as this value, as for data of unknown shape)."""

    chars: float = 0.0
    items: float = 0.0
    count: float = 1.0
    text: float = 0.0
    item: Bound | None = None
    data: bool = False  # from the bound variables (a map of it may have any string keys)

    def element(self) -> Bound:
        return self.item if self.item is not None else self

    def weight(self) -> float:
        return self.count + CHAR * self.text


SCALAR = Bound()


def string(length: float) -> Bound:
    return Bound(chars=length, text=length)


def join(left: Bound, right: Bound) -> Bound:
    """A bound of either value."""
    if left is right:
        return left
    item = None if left.item is None or right.item is None else join(left.item, right.item)
    return Bound(max(left.chars, right.chars), max(left.items, right.items),
                 max(left.count, right.count), max(left.text, right.text), item,
                 left.data or right.data)


def _data(chars: float, items: float, count: float, text: float,
          levels: tuple[tuple[float, float], ...]) -> Bound:
    """Data of unknown shape: the whole within the totals, its parts within each depth's
    (the deepest level standing for all below it)."""
    bound: Bound | None = None
    for level_count, level_text in reversed(levels):
        bound = Bound(chars, items, level_count, level_text, bound, True)
    return Bound(chars, items, count, text, bound, True)


@dataclass(frozen=True)
class Inputs:
    """What the variables an expression reads may hold."""

    data: Bound


def static_inputs(limits: CelLimits) -> Inputs:
    """The reference object of `CelLimits` (modest, typical of Kubernetes objects): its
    largest part holds as many values as one entry of its longest list's share."""
    values, text = float(limits.reference_values), float(limits.reference_characters)
    share = float(limits.reference_list_length)
    part = (max(values / share, 1.0), max(text / share, float(limits.reference_string_length)))
    return Inputs(_data(float(limits.reference_string_length), share, values, text, (part,)))


def largest_inputs(limits: CelLimits) -> Inputs:
    """Data at the input limits of `CelLimits`."""
    chars = float(limits.max_string_length)
    return Inputs(_data(chars, float(limits.max_list_length), chars / 2, chars,
                        ((chars / 2, chars),)))


def measured_inputs(sizes: Sizes) -> Inputs:
    return Inputs(_data(float(sizes.chars), float(sizes.items), float(sizes.count),
                        float(sizes.text),
                        tuple((float(count), float(text)) for count, text in sizes.levels)))


def estimate(root: Node, names: tuple[str, ...], inputs: Inputs,
             types: Mapping[int, str] | None = None) -> float:
    """The cost of evaluating `root` once, with `names` bound to data within `inputs`;
    `types` (the checker's, by node id) narrow what a value can be."""
    estimator = _Estimator(inputs, types or {})
    env = dict.fromkeys(names, inputs.data)
    cost, _ = estimator.node(root, env, 1.0)
    read = {node.name for node in root.walk() if node.kind == "ident"} & set(names)
    data = inputs.data
    return cost + len(read) * (CONVERT * data.count + 0.01 * data.text)  # converting it


_SCALAR_TYPES = frozenset({"int", "uint", "double", "bool", "null_type",
                           "google.protobuf.Duration", "google.protobuf.Timestamp"})


def _narrow(bound: Bound, kind: str | None) -> Bound:
    """A bound no larger than what a value of checked type `kind` can be."""
    if kind is None or kind == "dyn":
        return bound
    if kind in _SCALAR_TYPES:
        return SCALAR
    if kind in ("string", "bytes") or ("." in kind and "(" not in kind):
        return Bound(bound.chars, 0.0, 1.0, bound.chars)  # strings, Kubernetes' tagged values
    if kind.startswith(("list(", "map(")):
        return Bound(0.0, bound.items, bound.count, bound.text, bound.item)
    return bound


class _Estimator:
    def __init__(self, inputs: Inputs, types: Mapping[int, str]) -> None:
        self.inputs = inputs
        self.types = types

    def node(self, node: Node, env: Mapping[str, Bound], repeat: float) -> tuple[float, Bound]:
        cost, bound = self._node(node, env, repeat)
        return cost, _narrow(bound, self.types.get(node.id))

    def _node(self, node: Node, env: Mapping[str, Bound], repeat: float) -> tuple[float, Bound]:
        kind = node.kind
        if kind == "const":
            value = node.value
            if isinstance(value, str | bytes):
                return 1.0, string(float(len(value)))
            return 1.0, SCALAR
        if kind == "ident":
            return 1.0, env.get(str(node.name), SCALAR)
        if kind == "select":
            assert node.operand is not None
            cost, bound = self.node(node.operand, env, repeat)
            return cost + 1, SCALAR if node.test_only else bound.element()
        if kind == "list":
            return self._list(node, env, repeat)
        if kind == "map":
            return self._map(node, env, repeat)
        if kind == "comprehension":
            return self._comprehension(node, env, repeat)
        args = ([node.operand] if node.operand is not None else []) + list(node.args)
        results = [self.node(arg, env, repeat) for arg in args]
        cost, bound = _call(str(node.name), [bound for _, bound in results], node)
        return cost + sum(c for c, _ in results), bound

    def _list(self, node: Node, env: Mapping[str, Bound], repeat: float) -> tuple[float, Bound]:
        results = [self.node(item, env, repeat) for item in node.args]
        item = SCALAR
        for _, bound in results:
            item = join(item, bound)
        count = 1 + sum(bound.count for _, bound in results)
        text = sum(bound.text for _, bound in results)
        cost = 1 + len(results) + sum(c for c, _ in results)
        return cost, Bound(0, len(results), count, text, item)

    def _map(self, node: Node, env: Mapping[str, Bound], repeat: float) -> tuple[float, Bound]:
        cost, item, count, text = 1.0, SCALAR, 1.0, 0.0
        for entry in node.entries:
            for part in (entry.key, entry.value):
                if part is None:
                    continue
                part_cost, bound = self.node(part, env, repeat)
                cost += part_cost + 1
                count += bound.count
                text += bound.text
                item = join(item, bound)
        return cost, Bound(0, len(node.entries), count, text, item)

    def _comprehension(self, node: Node, env: Mapping[str, Bound],
                       repeat: float) -> tuple[float, Bound]:
        loop = node.loop
        assert loop is not None
        range_cost, over = self.node(loop.iter_range, env, repeat)
        init_cost, accu = self.node(loop.accu_init, env, repeat)
        empty = loop.iter_range.kind == "list" and not loop.iter_range.args
        count = 0.0 if empty else min(over.items, max(ITERATIONS / repeat, 1.0))
        element = over.element()
        inner = dict(env)
        if loop.iter_var2:  # an index of a list or a key of a map (keys of data: strings)
            key = join(SCALAR, string(self.inputs.data.chars)) if over.data else element
            inner[loop.iter_var], inner[loop.iter_var2] = key, element
        else:
            inner[loop.iter_var] = element
        inner[loop.accu_var] = accu
        once = self.node(loop.step, inner, repeat * max(count, 1.0))[1]
        growth = _growth(accu, once)
        probe = _grow(accu, growth, 1000.0)
        inner[loop.accu_var] = probe
        beyond = self.node(loop.step, inner, repeat * max(count, 1.0))[1]
        if not _within(beyond, _grow(probe, growth, 1.0)):
            return INFINITE, accu  # the step grows the accumulator faster than linearly
        inner[loop.accu_var] = accu
        first = self._step(loop, inner, repeat * max(count, 1.0))
        final = _grow(accu, growth, count)
        inner[loop.accu_var] = final
        last = self._step(loop, inner, repeat * max(count, 1.0))
        result_cost, result = self.node(loop.result, inner, repeat)
        body = count * ((first + last) / 2 + 1)  # macro steps are affine in the accumulator
        return range_cost + init_cost + body + result_cost, result


    def _step(self, loop: Loop, env: Mapping[str, Bound], repeat: float) -> float:
        step_cost, _ = self.node(loop.step, env, repeat)
        condition_cost, _ = self.node(loop.condition, env, repeat)
        return step_cost + condition_cost


def _growth(before: Bound, after: Bound) -> Bound:
    """What one step adds (its `item`: a bound of the elements after it)."""
    return Bound(max(after.chars - before.chars, 0.0), max(after.items - before.items, 0.0),
                 max(after.count - before.count, 0.0), max(after.text - before.text, 0.0),
                 after.item, after.data)


def _grow(start: Bound, growth: Bound, times: float) -> Bound:
    """`start` after `times` steps adding `growth`."""
    item = start.item if growth.item is None else join(start.element(), growth.item)
    return Bound(start.chars + times * growth.chars, start.items + times * growth.items,
                 start.count + times * growth.count, start.text + times * growth.text, item,
                 start.data or growth.data)


def _within(actual: Bound, allowed: Bound) -> bool:
    slack = 1.000001
    return (actual.chars <= allowed.chars * slack + 1 and actual.items <= allowed.items * slack + 1
            and actual.count <= allowed.count * slack + 1
            and actual.text <= allowed.text * slack + 1)


def _python(args: list[Bound], result: Bound) -> float:
    """Calling a library function written in Python: converting in and out."""
    moved = sum(arg.count for arg in args) + result.count
    chars = sum(arg.text for arg in args) + result.text
    return PYTHON_CALL + CONVERT * moved + 0.01 * chars


def _call(name: str, args: list[Bound], node: Node) -> tuple[float, Bound]:
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
"""Cost of compiling one character of a regular expression (linear: see engine.cel.regex)."""


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


