"""Lint of a rule's Jinja2 templates: every templated string and key, one at a time.

Each string is parsed with the engine's own sandboxed environment, then checked:

- `template-syntax`: it does not parse;
- `undefined-variable`: it reads a name that is no variable (`parms.team`), with the
  closest real one; `item-outside-foreach`: `item`/`index` where no forEach sets them
  (a lookup's name, a rule without forEach);
- `unknown-filter`, `unknown-test`: a filter or test the environment does not have
  (also inside an `{% if %}`, where Jinja2 would only fail when the branch runs);
- `undefined-param`, `undefined-context`: `params.x` the rule set does not define,
  `context.x` the rule does not look up — unless guarded (`| default(...)`,
  `is defined`), which is how a template says a key may be missing;
- `template-compile`: anything else that stops the string compiling as the engine
  compiles it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from engine.cli.lintchecks.expressions import missing_key, unknown_context, unknown_variable
from engine.cli.lintchecks.findings import Finding, listing, near
from engine.cli.lintchecks.subject import (
    FOR_EACH_VARIABLES,
    Subject,
    lookup_steps,
    template_variables,
)
from engine.rules.model import Generate, Mutate, StatusAction
from engine.templating.compiled import compile_string
from engine.templating.environment import ENV

_MARKERS = ("{{", "{%", "{#")
_GUARDS = frozenset({"default", "d"})
_GUARD_TESTS = frozenset({"defined", "undefined", "none"})
Steps = tuple[str | int, ...]


def check(subject: Subject) -> Iterator[Finding]:
    """Findings for every template of the rule (action and context lookups)."""
    action = subject.rule.action
    for_each = subject.for_each_field is not None
    if isinstance(action, Mutate):
        if action.json_patch is not None:
            yield from _value(subject, action.json_patch, ("mutate", "jsonPatch"), for_each)
        else:
            yield from _value(subject, action.template, ("mutate", "template"), for_each)
    elif isinstance(action, Generate):
        yield from _value(subject, action.template, ("generate", "template"), for_each)
    elif isinstance(action, StatusAction):
        yield from _value(subject, action.template, ("status", "template"), False)
    for lookup in subject.rule.lookups:  # context, and the source of generate.clone
        steps = lookup_steps(lookup)
        yield from _value(subject, lookup.name, (*steps, "name"), False)
        if lookup.namespace is not None:
            yield from _value(subject, lookup.namespace, (*steps, "namespace"), False)


def templated_strings(value: Any, steps: Steps = ()) -> Iterator[tuple[Steps, str, bool]]:
    """(path, text, is a key) of every string and key of a YAML value holding Jinja2."""
    if isinstance(value, str):
        if any(marker in value for marker in _MARKERS):
            yield steps, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and any(marker in key for marker in _MARKERS):
                yield (*steps, key), key, True
            yield from templated_strings(item, (*steps, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from templated_strings(item, (*steps, index))


def _value(subject: Subject, value: Any, steps: Steps, for_each: bool) -> Iterator[Finding]:
    for path, text, key in templated_strings(value, steps):
        found = list(_string(subject, text, path, for_each))
        if not found:
            try:
                compile_string(text)
            except Exception as exc:
                found.append(subject.finding("template-compile",
                                             f"{_snippet(text)}: {exc}", *path))
        yield from (replace(f, key=key) for f in found)


def _string(subject: Subject, text: str, path: Steps, for_each: bool) -> Iterator[Finding]:
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError as exc:
        yield subject.finding("template-syntax",
                              f"{_snippet(text)}: {exc.message} (line {exc.lineno})", *path)
        return
    allowed = set(subject.template_variables)
    if for_each:
        allowed.update(name for name in FOR_EACH_VARIABLES if name in template_variables())
    for name in sorted(_free_names(tree) - allowed - set(ENV.globals)):
        if name in FOR_EACH_VARIABLES and not for_each:
            yield subject.finding(
                "item-outside-foreach",
                f"{_snippet(text)} reads {name!r}, which is only set while a forEach renders "
                "the template", *path)
        else:
            yield subject.finding(
                "undefined-variable",
                f"{_snippet(text)} reads {name!r}, which is no variable"
                f"{near(name, allowed)} (variables: {listing(allowed)})", *path)
    for node in tree.find_all(nodes.Filter):
        if node.name not in ENV.filters:
            yield subject.finding(
                "unknown-filter", f"{_snippet(text)}: no filter {node.name!r}"
                f"{near(node.name, ENV.filters)}", *path)
    for test in tree.find_all(nodes.Test):
        if test.name not in ENV.tests:
            yield subject.finding(
                "unknown-test", f"{_snippet(text)}: no test {test.name!r}"
                f"{near(test.name, ENV.tests)}", *path)
    for chain in chains(tree, roots=frozenset({"params", "context", "variables"})):
        if chain.root == "variables" and chain.steps and (
                chain.steps[0] not in subject.variable_names):
            yield subject.finding("undefined-variable", f"{_snippet(text)}: "
                                  f"{unknown_variable(subject, chain.steps[0])}", *path)
        if chain.guarded or not chain.steps or chain.root == "variables":
            continue
        if chain.root == "params":
            problem = missing_key(subject.rule_set.params, chain.steps)
            if problem is not None:
                yield subject.finding("undefined-param", f"{_snippet(text)}: {problem}", *path)
        elif chain.steps[0] not in subject.context_aliases:
            yield subject.finding("undefined-context", f"{_snippet(text)}: "
                                  f"{unknown_context(subject, chain.steps[0])}", *path)


@dataclass(frozen=True)
class Chain:
    """`root.a['b'].c`: the keys a template reads under one variable."""

    root: str
    steps: tuple[str, ...]
    guarded: bool  # under `| default(...)` or an `is defined` test: may be missing


def chains(tree: nodes.Node, *, roots: frozenset[str]) -> list[Chain]:
    """Every chain of attribute and literal-key steps from one of `roots`.

    A method call's receiver ends its chain (`params.get('x')` reads `params`, not a
    key `get`); a step that is not a literal (`params[name]`, `params.list[0]`) ends it
    too, whatever follows.
    """
    found: list[Chain] = []
    _visit(tree, roots, found, guarded=False)
    return found


def _visit(node: nodes.Node, roots: frozenset[str], found: list[Chain], *,
           guarded: bool) -> None:
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr | nodes.Getitem):
        _visit(node.node.node, roots, found, guarded=guarded)
        if isinstance(node.node, nodes.Getitem):
            _visit(node.node.arg, roots, found, guarded=guarded)
        extra = [node.dyn_args, node.dyn_kwargs]
        children: list[nodes.Node] = [*node.args, *node.kwargs]
        for child in [*children, *(e for e in extra if e is not None)]:
            _visit(child, roots, found, guarded=guarded)
        return
    if isinstance(node, nodes.Filter) and node.name in _GUARDS and node.node is not None:
        _visit(node.node, roots, found, guarded=True)
        arguments: list[nodes.Node] = [*node.args, *node.kwargs]
        for argument in arguments:
            _visit(argument, roots, found, guarded=guarded)
        return
    if isinstance(node, nodes.Test) and node.name in _GUARD_TESTS:
        _visit(node.node, roots, found, guarded=True)
        return
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        steps: list[str] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                steps.append(current.attr)
            elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str):
                steps.append(current.arg.value)
            else:
                _visit(current.arg, roots, found, guarded=guarded)
                steps.clear()
            current = current.node
        if isinstance(current, nodes.Name) and current.name in roots and current.ctx == "load":
            found.append(Chain(current.name, tuple(reversed(steps)), guarded))
        else:
            _visit(current, roots, found, guarded=guarded)
        return
    for child in node.iter_child_nodes():
        _visit(child, roots, found, guarded=guarded)


def _free_names(tree: nodes.Template) -> set[str]:
    """Names the template reads but never sets (`{% set %}`, loop targets, macros and
    their arguments, `loop` inside a for, `caller` inside a macro): found on the tree
    alone, without running Jinja2's code generator (which would fail on the first
    unknown filter and fold constants)."""
    loaded = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    stored = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    stored.update(m.name for m in tree.find_all(nodes.Macro))
    if any(True for _ in tree.find_all(nodes.For)):
        stored.add("loop")
    if any(True for _ in tree.find_all((nodes.Macro, nodes.CallBlock))):
        stored.update(("caller", "varargs", "kwargs"))
    return loaded - stored


def _snippet(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "...'"
