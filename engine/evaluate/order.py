"""Order among a rule set's generate rules: `readyWhen`, `after`, and where `keep` may go.

`engine.evaluate.compile` calls `compile_order` for every rule when a rule set loads:

- `generate.readyWhen` is CEL over ``child`` (the child as the cluster has it) besides
  the usual variables; it compiles here, once;
- `generate.after` names generate rules of the same rule set whose children must be
  ready before this rule creates its own. A name that is no generate rule of the rule
  set, the rule itself, or a ring of `after` (a → b → a) is a compile error: the rule
  is disabled, and said why (every rule on the ring is);
- the `keep` filter (`engine.templating.keep`) only means something in a generate
  template: anywhere else it is a compile error.

`after_edges` and `rings` are the one definition of the order graph: `edict lint` and
`edict graph` read them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from engine.cel import VARIABLES, CelLimits, Program, compile_expression
from engine.errors import CompileError, Where
from engine.rules.model import Generate, Rule, RuleSet
from engine.templating.keep import uses_keep

CHILD = "child"
READY_VARIABLES = (*VARIABLES, CHILD)
"""What `readyWhen` sees: the rule's variables and ``child``."""


def compile_order(rule_set: RuleSet, rule: Rule, *, where: Where,
                  limits: CelLimits | None = None
                  ) -> tuple[Program | None, list[CompileError]]:
    """The compiled `readyWhen` of a generate rule (None without one), and the errors of
    its `readyWhen`, its `after` and any `keep` where it means nothing."""
    errors: list[CompileError] = []
    action = rule.action
    if not isinstance(action, Generate):
        for field, text in _templated(action, rule):
            if uses_keep(text):
                errors.append(CompileError(
                    "keep only means something in a generate template (a value of the "
                    "child kept once made); here it would write a marker", where=where
                    .with_field(field)))
        return None, errors
    ready_when = None
    if action.ready_when is not None:
        try:
            ready_when = compile_expression(action.ready_when,
                                            where=where.with_field("generate.readyWhen"),
                                            variables=READY_VARIABLES, limits=limits)
        except CompileError as error:
            errors.append(error)
    generators = {r.name for r in rule_set.rules if isinstance(r.action, Generate)}
    at = where.with_field("generate.after")
    for name in action.after:
        if name == rule.name:
            errors.append(CompileError("a rule cannot come after itself", where=at))
        elif name not in generators:
            known = ", ".join(sorted(generators - {rule.name})) or "none"
            errors.append(CompileError(f"{name!r} is no generate rule of this rule set "
                                       f"(its generate rules: {known})", where=at))
    for ring in rings(after_edges(rule_set.rules)):
        if rule.name in ring and len(ring) > 1:
            turn = ring.index(rule.name)
            ring = [*ring[turn:], *ring[:turn]]  # told from this rule
            path = " → ".join([*ring, ring[0]])
            errors.append(CompileError(f"after forms a ring, so none of its rules could "
                                       f"ever create a child: {path}", where=at))
    return ready_when, errors


def _templated(action: Any, rule: Rule) -> Iterator[tuple[str, str]]:
    """(field, text) of every string of the rule's templates and lookups."""
    kind = rule.action_kind.value
    for value, field in ((getattr(action, "template", None), f"{kind}.template"),
                         (getattr(action, "json_patch", None), f"{kind}.jsonPatch")):
        yield from ((field, text) for text in _strings(value))
    for lookup in rule.context:
        for part in (lookup.name, lookup.namespace):
            yield from ((f"context.{lookup.alias}", text) for text in _strings(part))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def after_edges(rules: Iterable[Rule]) -> dict[str, list[str]]:
    """Rule name → the generate rules it comes after (as written; unknown names too)."""
    return {rule.name: list(rule.action.after) for rule in rules
            if isinstance(rule.action, Generate) and rule.action.after}


def rings(edges: dict[str, list[str]]) -> list[list[str]]:
    """The rings of `edges` (each in the order met), a rule after itself included."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in edges:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            name, path = stack.pop()
            for target in edges.get(name, []):
                if target == start:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        found.append(path)
                elif target not in path and target in edges:
                    stack.append((target, [*path, target]))
    return found
