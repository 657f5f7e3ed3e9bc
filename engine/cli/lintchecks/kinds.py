"""Lint against the kinds' schemas: kinds that do not exist, fields a kind does not have.

The schemas are a `engine.schemas` catalogue: the shipped built-in kinds, the CRDs among
the linted files and `--crds`, Edict's own CRDs, or, with `--kubeconfig`, what the
cluster serves. Findings:

- `unknown-api-version`: no kind at all is served at that apiVersion (`apps/v2`),
  naming the apiVersions that have the kind; `unknown-kind`: the apiVersion exists, the
  kind not (`Deploymnet`), with the closest kind there. In `match.resources`,
  `context` lookups and generated objects;
- `unknown-path`: a template writes a field the kind does not have (`spec.replicaz` in
  a Deployment), or a condition, forEach or template reads one (`object.spec.replicaz`).
  A read counts when none of the kinds the rule matches has the field (a rule about
  Deployments and DaemonSets may test `has(object.spec.replicas)`). Fields under a map
  (labels), a preserved-unknown part or anything the schema does not describe are never
  findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError

from engine.cli.lintchecks.findings import Finding, near
from engine.cli.lintchecks.subject import Subject, lookup_steps
from engine.cli.lintchecks.templates import chains, templated_strings
from engine.evaluate.compile import CompiledRule
from engine.objects import GVK
from engine.rules.model import Generate, Mutate, StatusAction
from engine.schemas.catalogue import Catalogue
from engine.schemas.model import Node
from engine.templating.environment import ENV

Steps = tuple[str | int, ...]
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
CUSTOM = (" (a custom resource? give lint its CRD: beside the rule sets, with --crds, or "
          "with --kubeconfig from a cluster)")


@dataclass(frozen=True)
class Miss:
    """Where a path leaves the schema: the step the node has no field for."""

    depth: int
    node: Node


def check(subject: Subject, compiled: CompiledRule, *, catalogue: Catalogue
          ) -> Iterator[Finding]:
    raw_match = subject.raw.get("match") or {}
    for i, resource in enumerate(raw_match.get("resources") or []):
        if "apiVersion" not in resource:
            continue  # the rule set's own spec.api kind: the loader checked it
        for j, kind in enumerate(resource.get("kinds") or []):
            yield from _kind(subject, catalogue, str(resource.get("apiVersion")), str(kind),
                             ("match", "resources", i), ("kinds", j))
    for lookup in subject.rule.lookups:  # context, and the source of generate.clone
        yield from _kind(subject, catalogue, lookup.gvk.api_version, lookup.gvk.kind,
                         lookup_steps(lookup), ("kind",))
    yield from _writes(subject, catalogue)
    yield from _reads(subject, compiled, catalogue)


def _kind(subject: Subject, catalogue: Catalogue, api_version: str, kind: str,
          where: Steps, kind_field: Steps) -> Iterator[Finding]:
    if "{" in api_version or "{" in kind:
        return
    gvk = GVK.of(api_version, kind)
    known = catalogue.kinds()
    if gvk in known:
        return
    served = {k.api_version for k in known}
    if api_version not in served:
        elsewhere = sorted({k.api_version for k in known if k.kind == kind})
        hint = (f"; {kind} is served at {', '.join(elsewhere)}" if elsewhere
                else near(api_version, served) + CUSTOM)
        yield subject.finding("unknown-api-version", f"no kind is served at apiVersion "
                              f"{api_version!r}{hint}", *where, "apiVersion")
        return
    there = sorted(k.kind for k in known if k.api_version == api_version)
    yield subject.finding(
        "unknown-kind", f"apiVersion {api_version} has no kind {kind!r}{near(kind, there)}"
        + CUSTOM, *where, *kind_field)


def _writes(subject: Subject, catalogue: Catalogue) -> Iterator[Finding]:
    action = subject.rule.action
    kinds = [k for k in subject.rule.match.kinds if catalogue.for_kind(k) is not None]
    if isinstance(action, Mutate) and action.template is not None:
        yield from _template(subject, catalogue, kinds, action.template,
                             ("mutate", "template"), ())
    elif isinstance(action, StatusAction):
        yield from _template(subject, catalogue, kinds, action.template,
                             ("status", "template"), ("status",))
    elif isinstance(action, Generate) and action.clone is not None:
        if isinstance(action.template, dict):  # merged over a copy of the source
            yield from _template(subject, catalogue, [action.clone.gvk], action.template,
                                 ("generate", "template"), ())
    elif isinstance(action, Generate):
        listed = isinstance(action.template, list)
        for index, item in enumerate(action.template if listed else [action.template]):
            if not isinstance(item, dict):
                continue
            api_version, kind = str(item.get("apiVersion")), str(item.get("kind"))
            where: Steps = ("generate", "template", *((index,) if listed else ()))
            found = list(_kind(subject, catalogue, api_version, kind, where, ("kind",)))
            yield from found
            if not found and "{" not in api_version + kind:
                yield from _template(subject, catalogue, [GVK.of(api_version, kind)], item,
                                     where, ())


def _template(subject: Subject, catalogue: Catalogue, kinds: Sequence[GVK], value: Any,
              where: Steps, below: tuple[str, ...]) -> Iterator[Finding]:
    """Keys of a template that none of `kinds` has (reported at the key)."""
    if not kinds:
        return
    misses: dict[Steps, list[tuple[GVK, str]]] = {}
    for gvk in kinds:
        node = catalogue.for_kind(gvk)
        for name in below:
            node = node.field(name) if node is not None else None
        for steps, key, known in _template_misses(value, node, ()):
            misses.setdefault(steps, []).append((gvk, f"{key!r}{near(str(key), known)}"))
    for steps, found in misses.items():
        if len(found) < len(kinds):
            continue  # one of the kinds has it
        field = ".".join(str(s) for s in (*below, *steps[:-1]) if not isinstance(s, int))
        what = f"{', '.join(g.kind for g, _ in found)} {'has' if len(found) == 1 else 'have'}"
        inside = f" under {field}" if field else ""
        yield subject.finding("unknown-path", f"{what} no field {found[0][1]}{inside}",
                              *where, *steps, key=True)


def _template_misses(value: Any, node: Node | None, steps: Steps
                     ) -> Iterator[tuple[Steps, str, tuple[str, ...]]]:
    if node is None or not isinstance(value, dict | list):
        return
    if isinstance(value, list):
        items = node.items() if node.list_type else None
        for index, item in enumerate(value):
            yield from _template_misses(item, items, (*steps, index))
        return
    for key, item in value.items():
        if not isinstance(key, str) or any(m in key for m in ("{{", "{%")):
            continue
        if node.is_struct and key not in node.field_names():
            if not node.preserves_unknown:
                yield (*steps, key), key, node.field_names()
            continue
        if node.is_struct or node.is_map:
            yield from _template_misses(item, node.field(key), (*steps, key))


def _reads(subject: Subject, compiled: CompiledRule, catalogue: Catalogue
           ) -> Iterator[Finding]:
    """Paths of `object` read by the condition, forEach and each templated string."""
    kinds = [k for k in subject.rule.match.kinds if catalogue.for_kind(k) is not None]
    if not kinds:
        return
    action = subject.rule.action
    programs: list[tuple[Steps, Any]] = [(("condition",), compiled.condition)]
    if isinstance(action, Mutate | Generate):
        programs.append(((subject.rule.action_kind.value, "forEach"), compiled.for_each))
    for steps, program in programs:
        for path in sorted(getattr(program, "reads", None) or ()):
            message = _missing(catalogue, kinds, path, templated=False)
            if message:
                yield subject.finding("unknown-path", message, *steps)
    for steps, value in _templates(subject):
        for where, text, key in templated_strings(value, steps):
            try:
                tree = ENV.parse(text)
            except TemplateSyntaxError:
                continue  # reported by the template checks
            for chain in chains(tree, roots=frozenset({"object"})):
                if chain.guarded or not chain.steps:
                    continue
                message = _missing(catalogue, kinds, chain.steps, templated=True)
                if message:
                    yield subject.finding("unknown-path", message, *where, key=key)


def _templates(subject: Subject) -> list[tuple[Steps, Any]]:
    action = subject.rule.action
    out: list[tuple[Steps, Any]] = []
    if isinstance(action, Mutate):
        out.append((("mutate", "jsonPatch" if action.json_patch is not None else "template"),
                    action.json_patch if action.json_patch is not None else action.template))
    elif isinstance(action, Generate | StatusAction):
        out.append(((subject.rule.action_kind.value, "template"), action.template))
    for lookup in subject.rule.lookups:
        out.append(((*lookup_steps(lookup), "name"), lookup.name))
        if lookup.namespace is not None:
            out.append(((*lookup_steps(lookup), "namespace"), lookup.namespace))
    return out


def _missing(catalogue: Catalogue, kinds: Sequence[GVK], path: tuple[str, ...], *,
             templated: bool) -> str:
    """Why `object.<path>` is in none of `kinds`, or ``""``."""
    misses = []
    for gvk in kinds:
        node = catalogue.for_kind(gvk)
        miss = walk(node, path) if node is not None else None
        if miss is None:
            return ""
        if templated and miss.depth == len(path) - 1 and path[-1] in _DICT_METHODS:
            return ""  # `object.metadata.labels.items` may be the method
        misses.append((gvk, miss))
    gvk, miss = misses[0]
    above = ".".join(path[:miss.depth])
    step = path[miss.depth]
    names = ", ".join(g.kind for g, _ in misses)
    return (f"object.{'.'.join(path)}: {names} {'has' if len(misses) == 1 else 'have'} no "
            f"field {step!r}{near(step, miss.node.field_names())}"
            + (f" under {above}" if above else ""))


def walk(node: Node, path: Sequence[str]) -> Miss | None:
    """Where `path` leaves the schema below `node`; None when it stays in it (or leaves
    for somewhere the schema does not describe)."""
    current: Node | None = node
    for depth, step in enumerate(path):
        if current is None or current.list_type or current.scalar:
            return None
        if current.is_struct:
            if step not in current.field_names():
                return None if current.preserves_unknown else Miss(depth, current)
            current = current.field(step)
        elif current.is_map:
            current = current.field(step)
        else:
            return None
    return None

