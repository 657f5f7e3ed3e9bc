"""Static overlap analysis for `edict lint`: rules that can write the same path.

Two rules overlap when they can match the same kind and their templates (or JSON patch
operations) write the same path; two generate rules overlap when they can generate the
same kind with the same literal name. Templated keys count as wildcards. The later rule
(by priority, rule-set name, position) wins at run time; lint says so up front, once per
pair of rules and path, with the field of each rule's template that writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.evaluate.compile import CompiledRule
from engine.objects import GVK
from engine.rules.model import POD, Generate, Mutate, StatusAction

WILDCARD = "*"
Field = tuple[str | int, ...]


@dataclass(frozen=True)
class Write:
    """A path a rule can write on a kind, and the field of the rule that writes it."""

    kind: GVK
    path: tuple[str, ...]
    field: Field  # inside the rule: ("mutate", "template", "metadata", "labels", "a")


@dataclass(frozen=True)
class Overlap:
    kinds: tuple[GVK, ...]
    path: str
    first: CompiledRule
    second: CompiledRule
    first_field: Field = ()
    second_field: Field = ()

    def describe(self) -> str:
        def name(r: CompiledRule) -> str:
            return f"rule {r.rule.name!r} of {r.rule_set.ref} (priority {r.rule_set.priority})"

        kinds = ", ".join(str(k) for k in self.kinds)
        return (f"{name(self.first)} and {name(self.second)} can both write {self.path} of "
                f"{kinds}; {self.second.rule.name!r} runs later and wins")


def writes(rule: CompiledRule) -> list[Write]:
    """What a rule can write, as far as its YAML says."""
    action = rule.rule.action
    kinds = rule.rule.match.kinds
    out: list[Write] = []
    if isinstance(action, Mutate):
        if action.json_patch is not None:
            ops = action.json_patch if isinstance(action.json_patch, list) else []
            for index, op in enumerate(ops):
                if isinstance(op, dict) and isinstance(op.get("path"), str):
                    path = tuple(_wild(p) for p in op["path"].split("/")[1:])
                    field: Field = ("mutate", "jsonPatch", index, "path")
                    out.extend(Write(k, path, field) for k in kinds)
        else:
            out.extend(Write(k, p, ("mutate", "template", *f)) for k in kinds
                       for p, f in _leaves(action.template))
    elif isinstance(action, StatusAction):
        out.extend(Write(k, ("status", *p), ("status", "template", *f)) for k in kinds
                   for p, f in _leaves(action.template))
    elif isinstance(action, Generate):
        listed = isinstance(action.template, list)
        items = action.template if listed else [action.template]
        for index, item in enumerate(items):
            if isinstance(item, dict):
                gvk = GVK.of(str(item.get("apiVersion")), str(item.get("kind")))
                meta = item.get("metadata") or {}
                where: Field = ("generate", "template", *((index,) if listed else ()))
                out.append(Write(gvk, ("<generate>", _wild(str(meta.get("namespace", WILDCARD))),
                                       _wild(str(meta.get("name", WILDCARD)))),
                                 (*where, "metadata", "name")))
    # a Pod rule on pod templates writes the same paths beneath each workload's template
    for gvk in rule.rule.match.trigger_kinds:
        template = rule.rule.match.on_template(gvk)
        if template is not None:
            out.extend(Write(gvk, (*template, *w.path), w.field) for w in list(out)
                       if w.kind == POD)
    return out


def write_paths(rule: CompiledRule) -> list[tuple[GVK, tuple[str, ...]]]:
    """(kind, path) pairs a rule can write."""
    return [(w.kind, w.path) for w in writes(rule)]


def _wild(part: Any) -> str:
    text = str(part)
    return WILDCARD if "{" in text else text


def _leaves(value: Any, prefix: tuple[str, ...] = (), field: Field = ()
            ) -> Iterator[tuple[tuple[str, ...], Field]]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*prefix, _wild(key)), (*field, key))
    elif isinstance(value, list) and value and all(
        isinstance(i, dict) and "name" in i for i in value
    ):
        for index, item in enumerate(value):
            rest = {k: v for k, v in item.items() if k != "name"}
            yield from _leaves(rest, (*prefix, f"name={_wild(item['name'])}"), (*field, index))
    else:
        yield prefix, field


def _same(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Equal paths, or one a prefix of the other; wildcards match any segment."""
    return all(x == y or WILDCARD in (x, y) or (
        x.startswith("name=") and y.startswith("name=") and WILDCARD in (x[5:], y[5:]))
        for x, y in zip(a, b, strict=False))


def overlaps(rules: Sequence[CompiledRule]) -> list[Overlap]:
    """Every pair of rules and every path both can write (the longer of two nested
    paths), with the kinds they share it on, in rule order."""
    ordered = sorted(rules, key=lambda r: r.order_key)
    found: list[Overlap] = []
    written = [(r, writes(r)) for r in ordered]
    for i, (first, first_writes) in enumerate(written):
        for second, second_writes in written[i + 1:]:
            if first.rule_set.ref == second.rule_set.ref and first.rule.name == second.rule.name:
                continue
            paths: dict[tuple[str, ...], tuple[list[GVK], Field, Field]] = {}
            for a in first_writes:
                for b in second_writes:
                    if a.kind != b.kind or not _same(a.path, b.path):
                        continue
                    longest = a.path if len(a.path) >= len(b.path) else b.path
                    kinds, _, _ = paths.setdefault(longest, ([], a.field, b.field))
                    if a.kind not in kinds:
                        kinds.append(a.kind)
            found.extend(Overlap(tuple(kinds), "/" + "/".join(path), first, second, a_field,
                                 b_field)
                         for path, (kinds, a_field, b_field) in paths.items())
    return found
