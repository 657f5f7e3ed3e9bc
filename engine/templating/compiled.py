"""One distinct templated string, compiled once and shared by every place that holds it.

`structured.py` calls `compile_string` for each templated string and key of a template
when a rule set loads; equal strings across rule sets share the result (an LRU cache).
From one parse it makes the Jinja2 template, the `fast.py` runner when the string is
simple enough, and what the string reads (`reads.py`).

A string that is exactly one ``{{ expression }}`` (whitespace and comments aside) is
compiled as ``{% set result = expression %}`` and read back as a native value; any other
string, and any string compiled with ``text=True``, is printed as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jinja2
from jinja2 import nodes

from engine.templating import limits, reads
from engine.templating.direct import Plan, plan_of
from engine.templating.environment import ENV
from engine.templating.fast import Runner, compile_fast


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled templated string: immutable, shared by every leaf holding it."""

    template: jinja2.Template
    native: bool  # evaluated as a lone expression, not printed
    runner: Runner | None  # fast.py's, when the string is only paths, filters and text
    reads: frozenset[reads.Path] | None  # paths under `object`; None: any of it
    variables: frozenset[str]  # top-level names it reads
    item_reads: frozenset[tuple[str, ...]] | None = None  # the same for `item` (forEach)
    direct: Plan | None = None  # direct.py's, when the string is only paths and text


@lru_cache(maxsize=1024)
def compile_string(source: str, *, text: bool = False) -> Compiled:
    """Compile `source`; Jinja2's `TemplateSyntaxError` (or another error) when it cannot.

    Compiling runs on a budget of the default limits: Jinja2 folds constant expressions
    (``{{ 'a' | upper }}``) by running them while it compiles, and that work is bounded
    like rendering (an expression over the budget is simply left to render time).
    """
    token = limits.open_budget(limits.DEFAULT_LIMITS)
    try:
        return _compile(source, text)
    finally:
        limits.close_budget(token)


def _compile(source: str, text: bool) -> Compiled:
    tree = ENV.parse(source)
    # Jinja2's analysis runs its code generator, which folds constants in the tree the
    # way compiling does: the runner then sees the very literals the template uses.
    names = reads.variables(tree)
    paths = reads.object_reads(tree)
    item_paths = reads.object_reads(tree, "item")
    expression = None if text else _single_expression(tree)
    runner = compile_fast(tree, expression)
    plan = plan_of(tree, expression) if runner is not None else None
    if expression is None:
        return Compiled(ENV.from_string(tree), False, runner, paths, names, item_paths, plan)
    body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
    template = ENV.from_string(nodes.Template(body, lineno=1))
    return Compiled(template, True, runner, paths, names, item_paths, plan)


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [node for node in tree.body[0].nodes
             if not (isinstance(node, nodes.TemplateData) and not node.data.strip())]
    if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
        return parts[0]
    return None
