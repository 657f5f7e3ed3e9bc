"""Lint of CEL against the kinds' field types: `object.spec.replicas > '1'`.

Every variable is `dyn` to the CEL type checker, so such a condition compiles and only
fails on the first real object. Lint runs it on a sample instead: for each kind the rule
matches, an object holding, at every scalar path the expression reads, a value of the
type the schema gives (`integer` 1, `number` 1.5, `boolean` true, `string` "1"; then a
second sample with other values, for guards the first makes false). If the
expression fails with a type error (`CelBug`: no matching overload, a bad conversion)
and giving one of those paths a value of another type makes it run, that path is the
mistake: `type-mismatch`, naming the path, its type in the schema and the type the
expression wanted. Anything that fails for other reasons (missing data, limits), or that
no single retyping repairs, is no finding: lint only reports what it can explain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from engine.cel import Program
from engine.cli.lintchecks.findings import Finding
from engine.cli.lintchecks.subject import Subject
from engine.errors import CelBug, CelError
from engine.evaluate.compile import CompiledRule
from engine.rules.model import Generate, Mutate
from engine.schemas.catalogue import Catalogue
from engine.schemas.model import Node

SAMPLES: dict[str, Any] = {"integer": 1, "number": 1.5, "boolean": True, "string": "1"}
# A second sample: a guard that is false on the first (`size(name) > 3 && ...`) lets
# the rest of the expression run on this one.
OTHER_SAMPLES: dict[str, Any] = {"integer": 100, "number": 100.5, "boolean": False,
                                 "string": "sample-string-100"}
NAMES = {int: "an integer", float: "a number", bool: "a boolean", str: "a string"}
Path = tuple[str, ...]


def check(subject: Subject, compiled: CompiledRule, *, catalogue: Catalogue
          ) -> Iterator[Finding]:
    programs: list[tuple[tuple[str | int, ...], Program | None]] = [
        (("condition",), compiled.condition)]
    if isinstance(subject.rule.action, Mutate | Generate):
        programs.append(((subject.rule.action_kind.value, "forEach"), compiled.for_each))
    programs += [(("variables", index, "expression"), variable.program)
                 for index, variable in enumerate(compiled.variables)]
    kinds = [k for k in dict.fromkeys(subject.rule.match.kinds)
             if catalogue.for_kind(k) is not None]
    for steps, program in programs:
        if program is None or not program.reads:
            continue
        for gvk in kinds:
            root = catalogue.for_kind(gvk)
            assert root is not None
            found = _mismatch(subject, program, root, sorted(program.reads))
            if found is not None:
                path, scalar, wanted = found
                yield subject.finding(
                    "type-mismatch", f"object.{'.'.join(path)} is {_article(scalar)} in "
                    f"{gvk}, but the expression uses it as {NAMES[type(wanted)]}: it fails "
                    f"on every {gvk.kind} that has the field", *steps)
                break


def _article(scalar: str) -> str:
    return {"integer": "an integer", "number": "a number", "boolean": "a boolean",
            "string": "a string"}[scalar]


def _mismatch(subject: Subject, program: Program, root: Node, paths: Sequence[Path]
              ) -> tuple[Path, str, Any] | None:
    for samples in (SAMPLES, OTHER_SAMPLES):
        leaves: dict[Path, str] = {}
        sample: dict[str, Any] = {}
        for path in paths:
            _fill(sample, root, path, leaves, samples)
        if not leaves:
            return None
        variables = {"object": sample, "params": subject.rule_set.params,
                     "ruleSet": {"kind": subject.rule_set.ref.kind,
                                 "name": subject.rule_set.ref.name,
                                 "namespace": subject.rule_set.ref.namespace},
                     "context": dict.fromkeys(subject.context_aliases)}
        if not _type_error(program, variables):
            continue
        for path, scalar in leaves.items():
            for other, value in samples.items():
                if other == scalar:
                    continue
                retyped = {**variables, "object": _with(sample, path, value)}
                if _runs(program, retyped):
                    return path, scalar, value
        return None
    return None


def _fill(sample: dict[str, Any], node: Node, path: Path, leaves: dict[Path, str],
          samples: dict[str, Any]) -> None:
    """Put a value of the schema's type at `path` (dicts on the way; stop where the
    schema stops knowing, or at a list)."""
    current: Node | None = node
    target = sample
    for depth, step in enumerate(path):
        if current is None or not (current.is_struct or current.is_map):
            return
        if current.is_struct and step not in current.field_names():
            return
        child = current.field(step)
        last = depth == len(path) - 1
        if child is not None and child.scalar in samples:
            if last:
                target[step] = samples[child.scalar]
                leaves[path] = child.scalar
            return
        if child is not None and child.list_type:
            target.setdefault(step, [])
            return
        if child is None or not (child.is_struct or child.is_map):
            return
        below = target.setdefault(step, {})
        if not isinstance(below, dict):
            return
        target, current = below, child


def _with(sample: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    if len(path) == 1:
        return {**sample, path[0]: value}
    return {**sample, path[0]: _with(sample[path[0]], path[1:], value)}


def _type_error(program: Program, variables: dict[str, Any]) -> bool:
    try:
        program.evaluate(variables)
    except CelBug:
        return True
    except CelError:
        return False
    return False



def _runs(program: Program, variables: dict[str, Any]) -> bool:
    try:
        program.evaluate(variables)
    except CelError:
        return False
    return True

