"""Static overlap analysis for `edict lint`: rules that can write the same path.

Two rules overlap when they can match the same kind and their templates (or JSON patch
operations) write the same path; two generate rules overlap when they can generate the
same kind with the same literal name. Templated keys count as wildcards. The later rule
(by priority, rule-set name, position) wins at run time; lint says so up front.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.evaluate.compile import CompiledRule
from engine.objects import GVK
from engine.rules.model import Generate, Mutate, Status

WILDCARD = "*"


@dataclass(frozen=True)
class Overlap:
    kind: GVK
    path: str
    first: CompiledRule
    second: CompiledRule

    def describe(self) -> str:
        def name(r: CompiledRule) -> str:
            return f"rule {r.rule.name!r} of {r.rule_set.ref} (priority {r.rule_set.priority})"

        return (f"{self.kind}: {name(self.first)} and {name(self.second)} can both write "
                f"{self.path}; {self.second.rule.name!r} wins")


def write_paths(rule: CompiledRule) -> list[tuple[GVK, tuple[str, ...]]]:
    """(kind, path) pairs a rule can write, as far as the YAML says."""
    action = rule.rule.action
    out: list[tuple[GVK, tuple[str, ...]]] = []
    if isinstance(action, Mutate):
        if action.json_patch is not None:
            for op in action.json_patch if isinstance(action.json_patch, list) else []:
                if isinstance(op, dict) and isinstance(op.get("path"), str):
                    path = tuple(_wild(p) for p in op["path"].split("/")[1:])
                    out.extend((k, path) for k in rule.rule.match.kinds)
        else:
            out.extend((k, p) for k in rule.rule.match.kinds for p in _leaves(action.template))
    elif isinstance(action, Status):
        out.extend((k, ("status", *p)) for k in rule.rule.match.kinds
                   for p in _leaves(action.template))
    elif isinstance(action, Generate):
        items = action.template if isinstance(action.template, list) else [action.template]
        for item in items:
            if isinstance(item, dict):
                gvk = GVK.of(str(item.get("apiVersion")), str(item.get("kind")))
                meta = item.get("metadata") or {}
                out.append((gvk, ("<generate>", _wild(str(meta.get("namespace", WILDCARD))),
                                  _wild(str(meta.get("name", WILDCARD))))))
    return out


def _wild(part: Any) -> str:
    text = str(part)
    return WILDCARD if "{" in text else text


def _leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*prefix, _wild(key)))
    elif isinstance(value, list) and value and all(
        isinstance(i, dict) and "name" in i for i in value
    ):
        for item in value:
            rest = {k: v for k, v in item.items() if k != "name"}
            yield from _leaves(rest, (*prefix, f"name={_wild(item['name'])}"))
    else:
        yield prefix


def _same(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Equal paths, or one a prefix of the other; wildcards match any segment."""
    return all(x == y or WILDCARD in (x, y) or (
        x.startswith("name=") and y.startswith("name=") and WILDCARD in (x[5:], y[5:]))
        for x, y in zip(a, b, strict=False))


def overlaps(rules: Sequence[CompiledRule]) -> list[Overlap]:
    ordered = sorted(rules, key=lambda r: r.order_key)
    paths = [(r, write_paths(r)) for r in ordered]
    found: list[Overlap] = []
    for i, (first, first_paths) in enumerate(paths):
        for second, second_paths in paths[i + 1:]:
            if first.rule_set.ref == second.rule_set.ref and first.rule.name == second.rule.name:
                continue
            for kind, a in first_paths:
                hit = next((b for k, b in second_paths if k == kind and _same(a, b)), None)
                if hit is not None:
                    longest = a if len(a) >= len(hit) else hit
                    found.append(Overlap(kind, "/" + "/".join(longest), first, second))
                    break
    return found
