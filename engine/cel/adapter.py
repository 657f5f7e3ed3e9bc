"""The one door to cel-expr-python: compile an expression into a checked, bounded `Program`.

Rule loading calls `compile_expression` once per CEL field (``condition``, ``forEach``)
when a rule set loads; CRD validation rules are compiled the same way with their own
variables. Nothing outside `engine.cel` imports ``cel_expr_python``, so the library can
be swapped here. Compiling, in order:

1. refuse expressions longer than ``CelLimits.max_length`` (the library's own ceiling
   is 100,000 characters, its nesting depth 32 levels);
2. parse (after the source rewrites of `engine.cel.source`) and type-check in the
   environment of `engine.cel.environment` (Kubernetes' dialect as of 1.34); an
   optional result must be unwrapped;
3. decode the checked tree (`engine.cel.syntax`) and run Kubernetes' compile-time
   checks (`engine.cel.checks`: regex, duration and timestamp literals, homogeneous
   literals);
4. estimate the cost on a modest reference object (`engine.cel.cost`); above
   ``CelLimits.static_cost_limit`` it does not compile (`CelCostCompileError`);
5. route calls of the Kubernetes library to their runtime (`engine.cel.rewrite`) and
   load the rewritten tree back into the library;
6. find what it reads (`engine.cel.reads`).

Every failure is a `CompileError` naming the rule (via `Where`), with the position and
the library's message. Compiling takes 2 to 4 ms (2-core x86_64, CPython 3.11, under
load), most of it the library's checker and the tree's round trip; docs/cel.md has the
evaluation costs.
"""

from __future__ import annotations

import math
import re

from engine.cel import checks, cost, rewrite, syntax
from engine.cel.environment import VARIABLES, environment, literal_error
from engine.cel.limits import DEFAULT_LIMITS, CelCostCompileError, CelLimits
from engine.cel.program import (
    PROJECTIONS_PER_BINDING,
    Bindings,
    Failure,
    Program,
    bind,
    classify,
    clean,
)
from engine.cel.quick import filter_of, null_check_of, quick_of
from engine.cel.reads import analyse_tree, presence, view_of
from engine.cel.source import prepare
from engine.errors import CompileError, Where

LIBRARY_MAX_LENGTH = 100_000
"""The library's own limit on expression size, in code points."""
_POSITION = re.compile(r"ERROR: <input>:(-?\d+):(-?\d+): ([^\n]*)")

__all__ = ["LIBRARY_MAX_LENGTH", "PROJECTIONS_PER_BINDING", "VARIABLES", "Bindings", "Failure",
           "Program", "bind", "classify", "compile_expression"]


def compile_expression(source: str, *, where: Where, max_length: int | None = None,
                       variables: tuple[str, ...] = VARIABLES,
                       limits: CelLimits | None = None) -> Program:
    """Parse, type-check and bound `source` once; raise `CompileError` naming `where`.

    `variables` are the names the expression may use; Edict's rules use `VARIABLES`.
    `limits` defaults to `CelLimits()`; `max_length`, when given, replaces its
    ``max_length``.
    """
    limits = limits or DEFAULT_LIMITS
    longest = min(limits.max_length if max_length is None else max_length, LIBRARY_MAX_LENGTH)
    if len(source) > longest:
        raise CompileError(f"the CEL expression is {len(source)} characters long; the limit "
                           f"is {longest}: shorten it or split the rule", where=where)
    names = tuple(variables)
    env = environment(names)
    try:
        expression = env.compile(prepare(source))
    except Exception as error:
        raise CompileError(_compile_message(str(error), source), where=where) from None
    returns = str(expression.return_type())
    if returns.startswith("optional_type"):
        raise CompileError(f"{_quote(source)} gives an optional value ({returns}); end it "
                           "with .orValue(default) or test it with .hasValue()", where=where)
    try:
        checked = syntax.decode(expression.serialize())
    except syntax.SyntaxUnknown as error:  # never seen: without a tree it cannot be bounded
        raise CompileError(f"CEL expression {_quote(source)} cannot be analysed: {error}",
                           where=where) from None
    problems = checks.check(checked, literal=literal_error)
    if problems:
        raise CompileError(f"CEL expression {_quote(source)} does not compile: "
                           + "; ".join(problems), where=where)
    static = cost.estimate(checked.root, names, cost.static_inputs(limits), checked.types)
    if static > limits.static_cost_limit:
        raise CelCostCompileError(_static_message(source, static, limits), where=where)
    worst = cost.estimate(checked.root, names, cost.largest_inputs(limits), checked.types)
    try:
        routed = rewrite.rewrite(checked)
        if routed is not None:
            expression = env.deserialize(routed.encode())
    except (rewrite.RewriteError, RuntimeError, ValueError) as error:
        raise CompileError(f"CEL expression {_quote(source)} uses the Kubernetes library too "
                           f"deep inside other expressions to be run: {clean(str(error))}",
                           where=where) from None
    view = view_of(names, analyse_tree(checked.root, names), presence(checked.root, names))
    null_check = null_check_of(checked.root)
    return Program(source=source, where=where, variables=names, limits=limits, cost=static,
                   worst=worst, _expression=expression, _view=view, _tree=checked.root,
                   _types=checked.types, _quick=quick_of(checked.root),
                   _null_check=null_check, _filter=filter_of(checked.root),
                   _null_present=null_check is not None and null_check[1] in view.present.get(
                       null_check[0], ()))


def _static_message(source: str, estimate: float, limits: CelLimits) -> str:
    if math.isinf(estimate):
        why = "its result grows without bound as it iterates"
    else:
        why = (f"its estimated cost on an ordinary object (strings of "
               f"{limits.reference_string_length} characters, lists of "
               f"{limits.reference_list_length} entries) is {estimate:,.0f}, above the limit of "
               f"{limits.static_cost_limit:,} (limit cel.static_cost_limit)")
    return (f"CEL expression {_quote(source)} would do too much work: {why}; look for strings "
            "or lists that grow at every step (chained replace(), nested map())")


def _compile_message(message: str, source: str) -> str:
    problems = []
    for line, column, text in _POSITION.findall(message):
        at = f"line {line}, column {column}: " if int(line) > 0 else ""
        if f"{at}{text}" not in problems:
            problems.append(f"{at}{text}")
    detail = "; ".join(problems) or clean(message)
    if "recursion" in detail or "codepoint limit" in detail:
        detail += " (nesting deeper than 32 or longer than 100,000 characters is refused)"
    return f"CEL expression {_quote(source)} does not compile: {detail}"


def _quote(source: str) -> str:
    return repr(source if len(source) <= 120 else source[:117] + "...")
