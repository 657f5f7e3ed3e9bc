"""The cost of a CEL expression, estimated from its checked tree and bounds on its inputs.

`engine.cel.adapter` calls `estimate` when an expression compiles (inputs of a modest
reference object, `static_inputs`; and inputs at their largest allowed sizes) and,
through a per-program cache, before an evaluation (the measured sizes of the actual
data, `measured_inputs`); `engine.cel.limits` says what happens above the limits. Value
bounds are in `engine.cel.bounds`, what each function costs in `engine.cel.cost_rules`.
The estimate follows the Kubernetes estimator in spirit: every node costs one unit, string
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

from collections.abc import Mapping
from dataclasses import dataclass

from engine.cel import cost_rules
from engine.cel.bounds import CONVERT, INFINITE, ITERATIONS, SCALAR, Bound, join, string
from engine.cel.inputs import Sizes
from engine.cel.limits import CelLimits
from engine.cel.syntax import Loop, Node

__all__ = ["CONVERT", "Bound", "Inputs", "estimate", "largest_inputs", "measured_inputs",
           "static_inputs"]

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
        cost, bound = cost_rules.call(str(node.name), [bound for _, bound in results], node)
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
