"""The templated leaves of a shape rendered straight from the variables, in the plain case.

Writers, item writers, child makers and patch writers (`engine.evaluate`) render only the
templated strings of a template (`Template.render_leaves`): a budget opened, a scope
made over Jinja2's globals, each string run by its `fast.py` runner. Most of those
strings are a path (``{{ item.name }}``, ``{{ params.cpu }}``), a path through the
``string`` filter (``{{ object.spec.replicas | string }}``) or text around paths
(``"{{ object.metadata.name }}-config"``); when every step of every path finds its key
in a plain ``dict`` and the values are plain text, numbers, booleans or null, the
result is known without any of that machinery. `plan_of` describes such a string once,
when it is compiled; `renderer` compiles a sequence of them, once per writer, into one
Python function that renders them or declines (None, or the caller's ordinary rendering
called from it); `render` is that function made and called at once.

What `render` gives is what the runners give on the same budget, and it declines
wherever they could do anything else: a name that is not a variable (a Jinja2 global),
a step that is not a ``dict`` holding its key (the sandbox's getattr then decides), a
value a lone expression would copy (`plain.to_plain`: maps, lists, odd types) or a text
would check (`environment._finalize`), any size at or over the limits, work the budget
would charge past its clock check or its allowance (the ``string`` filter costs
`limits.FILTER_COST` plus the weight of what it takes and gives), and a rendering
already under way (whose limits and budget are the outer one's). tests/unit/
test_templating_direct.py checks on random variables that both give the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jinja2 import nodes

from engine.templating.fast import text_parts
from engine.templating.limits import _ACTIVE, CLOCK_EVERY, FILTER_COST, TemplateLimits
from engine.templating.plain import _INT_MAX, _INT_MIN

# Names Jinja2's code generator treats specially (as `fast._SPECIAL_NAMES`).
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})
_SHIFT = 6  # `limits.weight`: one unit per 64 characters of a string


class Path:
    """A variable and the keys below it, perhaps through ``| string``."""

    __slots__ = ("name", "steps", "stringed")

    def __init__(self, name: str, steps: tuple[str | int, ...], stringed: bool) -> None:
        self.name = name
        self.steps = steps
        self.stringed = stringed


class Text:
    """Text around paths: its parts in order, literal text or a `Path`."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str | Path, ...]) -> None:
        self.parts = parts


Plan = Path | Text


def plan_of(tree: nodes.Template, expression: nodes.Expr | None) -> Plan | None:
    """The plan of a string whose lone expression is `expression` (None: printed as
    text), or None when it is more than paths, ``| string`` and text."""
    if expression is not None:
        return _path(expression)
    parts = text_parts(tree, _path)
    return None if parts is None else Text(tuple(parts))


def _path(node: nodes.Node) -> Path | None:
    stringed = False
    if isinstance(node, nodes.Filter):
        if (node.name != "string" or node.node is None or node.args or node.kwargs
                or node.dyn_args is not None or node.dyn_kwargs is not None):
            return None
        stringed, node = True, node.node
    steps: list[str | int] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            steps.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
            steps.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load" or node.name in _SPECIAL_NAMES:
        return None
    steps.reverse()
    return Path(node.name, tuple(steps), stringed)


def render(plans: Sequence[Plan], variables: Mapping[str, Any], limits: TemplateLimits
           ) -> list[Any] | None:
    """The values of the strings `plans` describe, rendered from `variables` on a budget
    of `limits` as `Template.render_leaves` renders them; None: render them so."""
    return renderer(tuple(plans), limits)(variables)


Renderer = Callable[[Mapping[str, Any]], "list[Any] | None"]


def renderer(plans: tuple[Plan, ...], limits: TemplateLimits, *,
             otherwise: Callable[[Mapping[str, Any]], list[Any]] | None = None) -> Renderer:
    """`render` of these `plans` on `limits`, compiled once into one Python function.

    The function is what `render` does, specialised: every lookup of every path, every
    check of a value and of the budget written out in order, the limits and keys bound
    as names of its namespace (no data is ever part of the source: only names made
    here), so that rendering the leaves of a writer costs one call. Each check declines
    exactly where the runners could do anything else (see the module docstring): the
    function then gives None, or what `otherwise` gives for the variables (the ordinary
    rendering, called from the same function).
    """
    lines = ["def render(variables):", "    if budget() is not None:  # `under_way`",
             "        return None"]
    names: dict[str, Any] = {
        "budget": _ACTIVE.get, "D": _DECLINE, "dict": dict, "str": str, "bool": bool,
        "int": int, "float": float, "type": type, "len": len, "isfinite": math.isfinite,
        "MAXS": limits.max_string, "IMIN": _INT_MIN, "IMAX": _INT_MAX,
        "FC": FILTER_COST, "otherwise": otherwise}
    stringed = any((type(plan) is Path and plan.stringed)
                   or (type(plan) is Text and any(type(part) is Path and part.stringed
                                                  for part in plan.parts))
                   for plan in plans)
    if stringed:
        lines.append("    spent = 0")
    results: list[str] = []
    prefixes: dict[tuple[str | int, ...], str] = {}  # a path's prefix -> its value's name
    maps: set[str] = set()  # the names of values already checked to be a `dict`

    def constant(value: Any) -> str:
        name = f"C{len(names)}"
        names[name] = value
        return name

    def found(path: Path, into: str) -> None:
        # `_found`: the value at the path, through `| string` when it says so; a prefix
        # of a path already followed is not followed again (nothing changes in between)
        head = f"v{len(prefixes)}"
        at = prefixes.get((path.name,))
        if at is None:
            lines.append(f"    {head} = variables.get({constant(path.name)}, D)")
            lines.append(f"    if {head} is D:")
            lines.append("        return None")
            at = prefixes[(path.name,)] = head
        for depth, key in enumerate(path.steps):
            prefix = (path.name, *path.steps[:depth + 1])
            step = prefixes.get(prefix)
            if step is None:
                step = f"v{len(prefixes)}"
                if at not in maps:
                    lines.append(f"    if type({at}) is not dict:")
                    lines.append("        return None")
                    maps.add(at)
                lines.append(f"    {step} = {at}.get({constant(key)}, D)")
                lines.append(f"    if {step} is D:")
                lines.append("        return None")
                prefixes[prefix] = step
            at = step
        lines.append(f"    {into} = {at}")
        if not path.stringed:
            return
        lines.extend([
            f"    k = type({into})",
            "    if k is str:",
            f"        if len({into}) > MAXS:",
            "            return None",
            f"        spent += FC + 2 * (len({into}) >> {_SHIFT})",
            f"    elif (k is int or k is bool) and {into}.bit_length() // 3 + 1 <= MAXS:",
            f"        {into} = str({into})",
            f"        spent += FC + (len({into}) >> {_SHIFT})",
            f"    elif {into} is None:",
            f"        {into} = 'None'",
            f"        spent += FC + ({len('None')} >> {_SHIFT})",
            "    else:",
            "        return None"])

    for number, plan in enumerate(plans):
        out = f"r{number}"
        results.append(out)
        if type(plan) is Path:
            found(plan, out)
            # what `fast._native` returns as it is
            lines.extend([
                f"    k = type({out})",
                f"    if not ((k is str and len({out}) <= MAXS) or {out} is None or k is bool"
                f" or (k is int and IMIN <= {out} <= IMAX) or (k is float and isfinite({out}))):",
                "        return None"])
            continue
        assert type(plan) is Text
        chunks: list[str] = []
        for part_number, part in enumerate(plan.parts):
            if type(part) is str:
                chunks.append(constant(part))
                continue
            assert type(part) is Path
            value = f"p{number}_{part_number}"
            found(part, value)
            lines.extend([
                f"    k = type({value})",
                "    if k is str:",
                "        pass",
                f"    elif {value} is None:",
                f"        {value} = ''",  # `_finalize`
                f"    elif (k is int or k is bool) and {value}.bit_length() // 3 + 1 <= MAXS:",
                f"        {value} = str({value})",  # `_finalize`'s size check, then printed
                "    else:",
                "        return None"])
            chunks.append(value)
        joined = " + ".join(chunks) if chunks else "''"  # every chunk is a `str` here
        lines.append(f"    {out} = {joined}")
        lines.append(f"    if len({out}) > MAXS:")
        lines.append("        return None")
    if stringed:
        allowance = constant(limits.max_operations)
        lines.append(f"    if spent >= {CLOCK_EVERY} or spent > {allowance}:")
        lines.append("        return None  # the budget would look at its clock, or refuse")
    elif CLOCK_EVERY <= 0 or limits.max_operations < 0:  # what `spent` 0 would meet
        lines.append("    return None")
    lines.append(f"    return [{', '.join(results)}]")
    source = "\n".join(lines)
    if otherwise is not None:  # the source holds no data: these are only its own words
        source = source.replace("return None", "return otherwise(variables)")
    namespace: dict[str, Any] = dict(names)
    exec(compile(source, "<edict direct renderer>", "exec"), namespace)
    made: Renderer = namespace["render"]
    return made


class _Decline:
    """Not found: render the ordinary way."""


_DECLINE = _Decline()
