"""Lint of a rule's CEL: `condition` and `forEach`.

Each expression is compiled exactly as the engine compiles it. When it compiles, what it
reads (`Program.reads_of`) is checked against what the rule has: `params` keys the rule
set defines, `context` names the rule looks up, `item`/`index` only where a forEach sets
them (never in `condition`, nor in the `forEach` expression itself). A condition that
reads nothing is evaluated: if it is always false, the rule never applies.

When an expression does not compile because it names a variable that does not exist
(`parms.team`), the names are found by compiling it once more with the unknown
identifiers declared, and asking the program which of them it reads: the mistake is then
reported as `undefined-variable` with the closest real name, never by reading the CEL
library's error text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from engine.cel import VARIABLES, Program, compile_expression
from engine.cli.lintchecks.findings import Finding, dotted, listing, near
from engine.cli.lintchecks.subject import FOR_EACH_VARIABLES, Subject
from engine.errors import CelError, CompileError, Where
from engine.evaluate.variables import names_read
from engine.rules.model import Generate, Mutate

_STRING = re.compile(r"""'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*\"""",
                     re.DOTALL)
_IDENTIFIER = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\b(?!\s*\()")
_BINDER = re.compile(r"[(,]\s*([A-Za-z_]\w*)\s*,")
_NOT_VARIABLES = frozenset({
    "true", "false", "null", "in", "int", "uint", "double", "bool", "string", "bytes",
    "list", "map", "type", "dyn", "null_type", "math", "strings", "base64", "optional",
    "cel", "sets", "google", "protobuf"})


def check(subject: Subject) -> Iterator[Finding]:
    """Findings for every CEL field of the rule."""
    action = subject.rule.action
    if subject.rule.condition is not None:
        yield from _check_one(subject, subject.rule.condition, "condition", for_each=False,
                              condition=True)
    if isinstance(action, Mutate | Generate) and action.for_each is not None:
        yield from _check_one(subject, action.for_each, subject.rule.action_kind.value,
                              "forEach", for_each=False, condition=False)
    for index, variable in enumerate(subject.rule.variables):
        yield from _check_one(subject, variable.expression, "variables", index, "expression",
                              for_each=False, condition=False)


def _check_one(subject: Subject, source: str, *steps: str | int, for_each: bool,
               condition: bool) -> Iterator[Finding]:
    where = Where(rule_set=subject.rule_set.ref.name, rule=subject.rule.name,
                  field=".".join(map(str, steps)))
    try:
        program = compile_expression(source, where=where)
    except CompileError as exc:
        undefined = _undefined_names(source)
        if not undefined:
            yield subject.finding("cel-compile", exc.message, *steps)
        for name in undefined:
            yield _undefined(subject, name, steps, for_each=for_each)
        return
    yield from check_reads(subject, program, steps, for_each=for_each)
    if condition and not any(program.reads_of(name) != frozenset() for name in VARIABLES):
        yield from _constant(subject, program, steps)


def check_reads(subject: Subject, program: Program, steps: tuple[str | int, ...], *,
                for_each: bool) -> Iterator[Finding]:
    """What a compiled expression reads, against what the rule defines."""
    for name in FOR_EACH_VARIABLES:
        if name in VARIABLES and program.reads_of(name) != frozenset() and not for_each:
            yield _undefined(subject, name, steps, for_each=False)
    params = program.reads_of("params")
    for path in sorted(params or ()):
        problem = missing_key(subject.rule_set.params, path)
        if problem is not None:
            yield subject.finding("undefined-param", problem, *steps)
    context = program.reads_of("context")
    for path in sorted(context or ()):
        if path and path[0] not in subject.context_aliases:
            yield subject.finding("undefined-context", unknown_context(subject, path[0]),
                                  *steps)
    # a variable reads only those before it
    defined = subject.variable_names[:steps[1]] if (
        steps[:1] == ("variables",) and isinstance(steps[1], int)) else subject.variable_names
    for name in sorted(names_read(program)):
        if name not in defined:
            yield subject.finding("undefined-variable", unknown_variable(subject, name, defined),
                                  *steps)


def missing_key(params: Any, path: tuple[str, ...]) -> str | None:
    """Why `params.<path>` does not exist, or None when it does (or cannot be told)."""
    value = params
    for depth, key in enumerate(path):
        if not isinstance(value, dict):
            return None  # a list, a scalar: not something a key path can be checked on
        if key not in value:
            where = "params" + "".join(f".{k}" for k in path[:depth])
            return (f"{where} has no key {key!r}{near(key, map(str, value))} "
                    f"(its keys: {listing(map(str, value))})")
        value = value[key]
    return None


def unknown_context(subject: Subject, alias: str) -> str:
    return (f"context.{alias} is not a lookup of this rule{near(alias, subject.context_aliases)}"
            f" (its lookups: {listing(subject.context_aliases)})")


def unknown_variable(subject: Subject, name: str, defined: tuple[str, ...] | None = None
                     ) -> str:
    """Why `variables.<name>` is wrong here: not a variable of the rule, or a later one."""
    defined = subject.variable_names if defined is None else defined
    later = " (a variable reads only the ones before it)" if (
        name in subject.variable_names) else near(name, defined)
    return f"variables.{name} is not a variable here{later} (variables: {listing(defined)})"


def _undefined(subject: Subject, name: str, steps: tuple[str | int, ...], *,
               for_each: bool) -> Finding:
    if name in FOR_EACH_VARIABLES and not for_each:
        field = dotted(steps)
        return subject.finding(
            "item-outside-foreach",
            f"{name!r} is only set while a forEach renders its template, not in {field}",
            *steps)
    return subject.finding(
        "undefined-variable",
        f"no variable {name!r}{near(name, subject.variables)} "
        f"(variables: {listing(subject.variables)})", *steps)


def _undefined_names(source: str) -> list[str]:
    """The identifiers of `source` that are not variables, if declaring them (and only
    them) makes it compile; else nothing (the expression has another problem)."""
    text = _STRING.sub("''", source)
    binders = set(_BINDER.findall(text))
    candidates = sorted({name for name in _IDENTIFIER.findall(text)
                         if name not in VARIABLES and name not in _NOT_VARIABLES
                         and name not in binders})
    if not candidates:
        return []
    try:
        program = compile_expression(source, where=Where(),
                                     variables=(*VARIABLES, *candidates))
    except CompileError:
        return []
    return [name for name in candidates if program.reads_of(name) != frozenset()]


def _constant(subject: Subject, program: Program, steps: tuple[str | int, ...]
              ) -> Iterator[Finding]:
    try:
        value = program.evaluate({})
    except CelError as exc:
        yield subject.finding("always-fails", f"the condition reads nothing and always "
                              f"fails: {exc.message}", *steps)
        return
    if value is False:
        yield subject.finding("never-applies", "the condition reads nothing and is always "
                              "false: the rule never applies", *steps)
