"""The commonest templated strings, run without making a Jinja2 context.

`compiled.py` calls `compile_fast` once per distinct templated string, at compile time,
with the string's parsed (and constant-folded) tree; `structured._Leaf` then tries the
runner before Jinja2. Most strings in rules are a variable path, ``{{ object.metadata.name }}``
or ``{{ item['name'] }}``, perhaps through filters with literal arguments
(``{{ object.spec.replicas | string }}``, ``{{ params.x | default(omit) }}``), or text
around such paths (``"{{ object.metadata.name }}-config"``). Rendering those through
Jinja2 costs a `Context` and a generator per string, several times the lookups
themselves.

This is not a second implementation of the template language: a runner performs exactly
the operations Jinja2's generated code performs for these nodes, with the same objects.
A name is read from the scope, or is ``ENV.undefined(name=...)`` when absent; every step
is ``ENV.getattr`` or ``ENV.getitem`` (inlined only for a `dict` holding the key, which
is what both return then), so keys win over dict methods and the sandbox refuses
internals as before; filters are the functions registered on `ENV`; a printed value is
``str(ENV.finalize(value))``; a lone expression goes through `to_plain`. Runners have no
side effects, and any exception inside one means "ask Jinja2": the leaf runs the string
the ordinary way, which raises the error with Jinja2's message and line. So a runner
either returns what Jinja2 would, or defers to it; `tests/unit/test_templating_fast.py`
checks that property on random variables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, TypeVar

from jinja2 import nodes
from jinja2.utils import _PassArg

from engine.templating.environment import ENV
from engine.templating.filters import SizeLimitExceeded
from engine.templating.limits import current
from engine.templating.plain import _INT_MAX, _INT_MIN, to_plain

Scope = dict[str, Any]
Runner = Callable[[Scope], Any]
"""Renders one templated string from a scope; raising means: render it with Jinja2."""

# Names Jinja2's code generator treats specially (``self`` is a TemplateReference).
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})
# Filters whose results are plain data (no generators, whose text would hold an address)
# and that Jinja2 calls with the value alone or with the environment first.
_FILTERS = frozenset({
    "abs", "b64decode", "b64encode", "capitalize", "center", "combine", "count", "d",
    "default", "dict2items", "dictsort", "dns_label", "first", "float", "format",
    "from_json", "from_yaml", "hash", "indent", "int", "items2dict", "join", "last",
    "length", "lower", "mandatory", "max", "min", "quote", "regex_replace", "regex_search",
    "replace", "round", "sha256", "sort", "string", "sum", "title", "to_json", "to_yaml",
    "tojson", "trim", "truncate", "upper", "urlencode", "wordcount",
})
_CONSTANTS = (str, int, float, bool, type(None))
P = TypeVar("P")

_undefined: Final = ENV.undefined
_getattr: Final = ENV.getattr
_getitem: Final = ENV.getitem
_finalize: Final[Callable[[Any], Any]] = ENV.finalize  # type: ignore[assignment]


def compile_fast(tree: nodes.Template, expression: nodes.Expr | None) -> Runner | None:
    """A runner for `tree`, or None when it holds more than paths, filters and text.

    `expression` is the lone expression of a string rendered natively (see
    `compiled._single_expression`); None renders the whole tree as text.
    """
    if expression is not None:
        value = _expression(expression)
        return None if value is None else _native(value)
    parts = text_parts(tree, _expression)
    return None if parts is None else _text(tuple(parts))


def text_parts(tree: nodes.Template, convert: Callable[[nodes.Node], P | None]
               ) -> list[str | P] | None:
    """The parts of a template printed as text: its literal text, and `convert` of each
    expression; None when the tree holds more than output, or `convert` gives None."""
    parts: list[str | P] = []
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            part = convert(child)
            if part is None:
                return None
            parts.append(part)
    return parts


def _native(value: Runner) -> Runner:
    def run(scope: Scope) -> Any:
        result = value(scope)
        kind = type(result)
        # what to_plain does for these, without its bookkeeping
        if (kind is str and len(result) <= current().max_string) or result is None \
                or kind is bool or (kind is int and _INT_MIN <= result <= _INT_MAX) \
                or (kind is float and math.isfinite(result)):
            return result
        return to_plain(result)

    return run


def _text(parts: tuple[str | Runner, ...]) -> Runner:
    def run(scope: Scope) -> str:
        chunks: list[str] = []
        for part in parts:
            if type(part) is str:
                chunks.append(part)
                continue
            value = part(scope)  # type: ignore[operator]
            chunks.append(value if type(value) is str else str(_finalize(value)))
        text = "".join(chunks)
        if len(text) > current().max_string:
            raise SizeLimitExceeded("the rendered text is over the limit")  # Jinja2 says it
        return text

    return run


def _expression(node: nodes.Node) -> Runner | None:
    if isinstance(node, nodes.Filter):
        return _filter(node)
    return _path(node)


def _path(node: nodes.Node) -> Runner | None:
    """``name``, ``name.key``, ``name['key']``, ``name[0]``... as a runner."""
    steps: list[tuple[str | int, bool]] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            steps.append((node.attr, True))
        elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
            steps.append((node.arg.value, False))
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load" or node.name in _SPECIAL_NAMES:
        return None
    steps.reverse()
    return _lookup(node.name, tuple(steps))


def _lookup(name: str, steps: tuple[tuple[str | int, bool], ...]) -> Runner:
    def run(scope: Scope) -> Any:
        try:
            value = scope[name]
        except KeyError:
            value = _undefined(name=name)
        for key, attribute in steps:
            if type(value) is dict and key in value:
                value = value[key]
            elif attribute:
                value = _getattr(value, key)  # type: ignore[arg-type]
            else:
                value = _getitem(value, key)
        return value

    return run


def _filter(node: nodes.Filter) -> Runner | None:
    if (node.node is None or node.dyn_args is not None or node.dyn_kwargs is not None
            or node.name not in _FILTERS):
        return None
    function = ENV.filters[node.name]
    pass_arg = _PassArg.from_obj(function)
    if pass_arg is not None and pass_arg is not _PassArg.environment:
        return None
    value = _expression(node.node)
    args = [_argument(arg) for arg in node.args]
    kwargs = {keyword.key: _argument(keyword.value) for keyword in node.kwargs}
    if value is None or None in args or None in kwargs.values():
        return None
    if pass_arg is _PassArg.environment:
        function = _with_environment(function)
    if not args and not kwargs:
        return lambda scope: function(value(scope))
    return _call(function, value, args, kwargs)  # type: ignore[arg-type]


def _with_environment(function: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args, **kwargs: function(ENV, *args, **kwargs)


def _call(function: Callable[..., Any], value: Runner,
          args: list[tuple[bool, Any]], kwargs: dict[str, tuple[bool, Any]]) -> Runner:
    if all(constant for constant, _ in args) and all(c for c, _ in kwargs.values()):
        fixed_args = tuple(argument for _, argument in args)
        fixed_kwargs = {key: argument for key, (_, argument) in kwargs.items()}
        return lambda scope: function(value(scope), *fixed_args, **fixed_kwargs)

    def run(scope: Scope) -> Any:
        return function(value(scope),
                        *(a if constant else a(scope) for constant, a in args),
                        **{key: a if constant else a(scope)
                           for key, (constant, a) in kwargs.items()})

    return run


def _argument(node: nodes.Node) -> tuple[bool, Any] | None:
    """(True, a literal) or (False, the runner of a path), or None."""
    if isinstance(node, nodes.Const):
        value = node.value
        # Jinja2 writes a float literal back as str(value): inf or nan would not survive
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return (True, value) if isinstance(value, _CONSTANTS) else None
    getter = _path(node)
    return None if getter is None else (False, getter)
