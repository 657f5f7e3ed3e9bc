"""A rule's `variables`: named CEL expressions, computed once per evaluation of the rule.

`engine.evaluate.compile` calls `compile_variables` when a rule set loads and
`unknown_uses` to refuse a `variables.x` the rule does not define (in CEL and in
templates); `engine.evaluate.run.variables` calls `evaluate` once per evaluation of a rule
that has variables (a rule without them never gets here), and binds the result as
`variables` for the condition, `forEach`, templates, validations and `readyWhen`.

As in ValidatingAdmissionPolicy's `spec.variables`: a list of `{name, expression}`, in
order, a later expression may read an earlier one (`variables.a`), never a later one nor
itself. A variable is computed before the condition, once per evaluation, never per
`forEach` item (so it may not read `item`). A variable that fails fails its rule like a
condition would: skipped when the data it reads is not there, an error otherwise; the
message names the variable (`variables[1] 'ports'`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from engine.cel import Bindings, CelLimits, Program, bind, compile_expression
from engine.errors import CompileError, Where
from engine.rules.model import Rule
from engine.templating.environment import ENV

NAME = "variables"
"""The variable holding them all (`variables.<name>`)."""


@dataclass(frozen=True, eq=False)
class CompiledVariable:
    name: str
    program: Program
    reads_earlier: bool  # reads `variables`: evaluated with the ones before it bound


def field_of(index: int, name: str) -> str:
    """How errors name a variable: `variables[1] 'ports'`."""
    return f"variables[{index}] {name!r}"


def compile_variables(rule: Rule, *, where: Where, limits: CelLimits | None = None
                      ) -> tuple[tuple[CompiledVariable, ...], list[CompileError]]:
    """The rule's variables compiled in order, and what is wrong with them."""
    compiled: list[CompiledVariable] = []
    errors: list[CompileError] = []
    defined: list[str] = []
    for index, variable in enumerate(rule.variables):
        at = where.with_field(field_of(index, variable.name))
        try:
            program = compile_expression(variable.expression, where=at, limits=limits)
        except CompileError as error:
            errors.append(error)
            defined.append(variable.name)
            continue
        if program.reads_of("item") != frozenset():
            errors.append(CompileError(
                "a variable is computed once per evaluation, not per forEach item: it "
                "cannot read item (read it in the template or forEach instead)", where=at))
        for name in sorted(names_read(program)):
            if name not in defined:
                later = " (variables can only read the ones before them)" if (
                    name in {v.name for v in rule.variables}) else ""
                errors.append(CompileError(f"variables.{name} is not defined here{later}",
                                           where=at))
        reads = program.reads_of(NAME) != frozenset()
        compiled.append(CompiledVariable(variable.name, program, reads))
        defined.append(variable.name)
    return tuple(compiled), errors


def names_read(program: Program) -> frozenset[str]:
    """The variable names a compiled expression reads as `variables.<name>` (empty
    when it reads them in a way that names none, `variables[key]`)."""
    paths = program.reads_of(NAME)
    return frozenset(path[0] for path in paths or () if path)


def unknown_uses(rule: Rule, *, programs: Iterable[Program | None],
                 templates: Iterable[tuple[str, Any]], where: Where) -> list[CompileError]:
    """A `CompileError` for every `variables.x` that `programs` or the templated strings
    of `templates` (field, YAML value) read and the rule does not define."""
    defined = {v.name for v in rule.variables}
    errors = []
    for program in programs:
        if program is None:
            continue
        for name in sorted(names_read(program) - defined):
            errors.append(CompileError(undefined_message(name, defined), where=program.where))
    for field, value in templates:
        for name in sorted(template_names(value) - defined):
            errors.append(CompileError(undefined_message(name, defined),
                                       where=where.with_field(field)))
    return errors


def undefined_message(name: str, defined: Iterable[str]) -> str:
    known = ", ".join(sorted(defined)) or "none"
    return f"variables.{name} is not a variable of this rule (its variables: {known})"


def template_names(value: Any) -> set[str]:
    """The names read as `variables.<name>` (or `variables['name']`) in the templated
    strings and keys of a YAML value. Text that does not parse is left to the template
    compiler, which reports it."""
    found: set[str] = set()
    for text in _strings(value):
        if NAME not in text:
            continue
        try:
            tree = ENV.parse(text)
        except TemplateSyntaxError:
            continue
        found.update(_chain_heads(tree))
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _chain_heads(tree: nodes.Node) -> Iterator[str]:
    """The first step of every `variables.<step>` chain in a Jinja2 tree (a guard such
    as `| default` changes nothing: a rule's variables are known when it loads)."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        inner = node.node
        if not (isinstance(inner, nodes.Name) and inner.name == NAME and inner.ctx == "load"):
            continue
        if isinstance(node, nodes.Getattr):
            yield node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.arg.value


def evaluate(variables: tuple[CompiledVariable, ...], values: dict[str, Any], *,
             memo: dict[tuple[int, int], Any] | None = None) -> dict[str, Any]:
    """Every variable's value, in order (`values`: what the rule's expressions see).

    Raises the `CelError` of the first variable that fails (its `where` names it).
    Variables that read no other variable share one binding of `values`, so the trigger
    is converted for CEL once for all of them. `memo` (one per pass of an evaluation)
    keeps the values per rule and object, so a generate rule's `readyWhen` reuses what
    rendering its children computed.
    """
    obj = values.get("object")
    key = (id(variables), id(obj))
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] is variables and hit[1] is obj:  # ids are not reused
        found: dict[str, Any] = hit[2]
        return found  # read-only, like every bound value
    out = _evaluate(variables, values)
    if memo is not None:
        memo[key] = (variables, obj, out)
    return out


def _evaluate(variables: tuple[CompiledVariable, ...], values: dict[str, Any]
              ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shared: Bindings | None = None
    for variable in variables:
        if variable.reads_earlier:
            out[variable.name] = variable.program.evaluate({**values, NAME: dict(out)})
            continue
        if shared is None:
            shared = bind(values)
        out[variable.name] = variable.program.evaluate(shared)
    return out
