"""Lint of what a rule reads of a `spec.api` kind: fields the schema does not have, and
expressions that fail on the kind's own types.

For a rule whose every matched kind is declared by a loaded rule set's `spec.api`, each
path its CEL (`condition`, `forEach`) and its templated strings read of `object` is
checked against that schema (`engine.rules.apischema`):

- `undefined-field`: `object.spec.storageGb` where the kind has `storageGB` (with the
  closest real field), or a field read beneath a scalar (`object.spec.storageGB.size`);
- `undefined-field` too: a mutate or status template that sets a field the kind does
  not have (the API server would drop it, and the rule would write it again forever);
- `type-error`: the condition or forEach, evaluated on an example object of the kind
  (every field set to a value of its type: defaults and enums first), fails on a type
  (`object.spec.storageGB > '10'`, `object.spec.engine + 1`), or a condition gives no
  bool, a forEach no list. Branches the example does not take are not checked: this is
  a check by example, not a type system.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from engine.cel import Program
from engine.cli.lintchecks.findings import Finding
from engine.cli.lintchecks.subject import Subject
from engine.cli.lintchecks.templates import templated_strings
from engine.errors import CelBug, CelError, CompileError, Where
from engine.evaluate.compile import CompiledRule
from engine.objects import GVK
from engine.rules.api import crd_of, kind_of
from engine.rules.apischema import ApiKind
from engine.rules.model import Generate, Mutate, RuleSet, Status
from engine.templating import compile_template

Steps = tuple[str | int, ...]


def api_kinds(rule_sets: Iterable[RuleSet]) -> dict[GVK, ApiKind]:
    """The kinds the rule sets declare in `spec.api`, with their schemas."""
    out: dict[GVK, ApiKind] = {}
    for rule_set in rule_sets:
        crd = crd_of(rule_set)
        if crd is not None:
            out[GVK.of(*kind_of(rule_set.api))] = ApiKind.of(crd)
    return out


def check(subject: Subject, compiled: CompiledRule, kinds: Mapping[GVK, ApiKind]
          ) -> Iterator[Finding]:
    matched = [kinds.get(gvk) for gvk in subject.rule.match.kinds]
    if not matched or any(kind is None for kind in matched):
        return
    known = [kind for kind in matched if kind is not None]
    action = subject.rule.action_kind.value
    programs: list[tuple[Steps, Program | None]] = [
        (("condition",), compiled.condition), ((action, "forEach"), compiled.for_each)]
    for steps, program in programs:
        if program is not None:
            yield from _reads(subject, program.reads, steps, known)
            yield from _types(subject, program, steps, known[0],
                              wants=bool if steps == ("condition",) else list)
    for steps, text in _strings(subject):
        try:
            reads = compile_template(text, where=Where()).reads
        except CompileError:
            continue  # the template checks report it
        yield from _reads(subject, reads, steps, known)
    written = subject.rule.action
    if isinstance(written, Status):
        yield from _writes(subject, {"status": written.template}, ("status", "template"),
                           known, skip=1)
    elif isinstance(written, Mutate) and written.json_patch is None:
        yield from _writes(subject, written.template, ("mutate", "template"), known)


def _writes(subject: Subject, template: Any, steps: Steps, kinds: list[ApiKind], *,
            skip: int = 0, path: tuple[str, ...] = ()) -> Iterator[Finding]:
    """Fields a template sets (literal keys; a templated key may be anything)."""
    if not isinstance(template, dict):
        return
    for key, value in template.items():
        if not isinstance(key, str) or "{" in key:
            continue
        here = (*path, key)
        at = (*steps, *here[skip:])
        problems = [kind.problem(here) for kind in kinds]
        if all(problems):
            yield subject.finding("undefined-field", f"the template sets a field the kind "
                                  f"does not have, which the API server drops: {problems[0]}",
                                  *at)
            continue
        yield from _writes(subject, value, steps, kinds, skip=skip, path=here)


def _strings(subject: Subject) -> Iterator[tuple[Steps, str]]:
    action = subject.rule.action
    if isinstance(action, Mutate):
        if action.json_patch is not None:
            yield from templated_strings(action.json_patch, ("mutate", "jsonPatch"))
        else:
            yield from templated_strings(action.template, ("mutate", "template"))
    elif isinstance(action, Generate | Status):
        yield from templated_strings(action.template, (subject.rule.action_kind.value,
                                                       "template"))
    for lookup in subject.rule.context:
        yield from templated_strings(lookup.name, ("context", lookup.alias, "name"))
        if lookup.namespace is not None:
            yield from templated_strings(lookup.namespace,
                                         ("context", lookup.alias, "namespace"))


def _reads(subject: Subject, reads: frozenset[tuple[str, ...]] | None, steps: Steps,
           kinds: list[ApiKind]) -> Iterator[Finding]:
    for path in sorted(reads or ()):
        problems = [kind.problem(path) for kind in kinds]
        if all(problems):
            yield subject.finding("undefined-field", str(problems[0]), *steps)


def _types(subject: Subject, program: Program, steps: Steps, kind: ApiKind, *,
           wants: type) -> Iterator[Finding]:
    rule_set = subject.rule_set
    example = kind.example()
    variables: dict[str, Any] = {
        "object": example, "params": rule_set.params,
        "namespaceObject": {"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "default", "labels": {}}},
        "context": dict.fromkeys(subject.context_aliases),
        "ruleSet": {"kind": rule_set.ref.kind, "name": rule_set.ref.name,
                    "namespace": rule_set.ref.namespace}}
    try:
        value = program.evaluate(variables)
    except CelBug as exc:
        yield subject.finding("type-error", f"fails on an example {kind.kind} (every field "
                              f"holds a value of its type): {exc.message}", *steps)
        return
    except CelError:
        return  # missing data (a lookup, a key of params): not a matter of types
    if not isinstance(value, wants):
        yield subject.finding("type-error", f"gives a {type(value).__name__} on an example "
                              f"{kind.kind}, not a {wants.__name__}", *steps)
