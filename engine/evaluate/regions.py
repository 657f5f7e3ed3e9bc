"""Where a rule's writes can land, so that conflicts are looked for only where they can be.

`run.Pass.record` remembers every assignment of every rule that runs in a pass and
compares it with the earlier ones: two rules setting one path differently, or one
setting beneath a scalar another set, conflict. That is a dict walk per assignment per
rule per pass, paid again for the rules a later pass skips. Yet two rules whose writes
can never be at, above or beneath each other's can never conflict, whatever they render.

`region` reads, from a mutate or status rule's source, paths such that every assignment
the rule can make — by a writer, by rendering and merging, by a JSON patch — is at or
beneath one of them: the template's literal keys down to the first value that is not a
map of literal keys (a templated string may render to any map or list below it), a JSON
patch's literal paths, under the pod template's path for a rule on pod templates.
`alone` gives, once per rule list (`engine.evaluate.engine._plan`), the rules whose
region meets no other rule's; the engine then records nothing for them. A rule whose
region cannot be told makes every rule of the list record, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.evaluate.batch import nested
from engine.evaluate.compile import CompiledRule
from engine.objects import GVK
from engine.patching.pointer import parse as parse_pointer
from engine.rules.model import Mutate, StatusAction

Path = tuple[str | int, ...]

# what a template key or value must hold to be Jinja2 (engine.templating.structured); any
# brace at all is counted, so that a key is taken as literal only when it surely is
_BRACE = "{"


def region(rule: CompiledRule, gvk: GVK) -> frozenset[Path] | None:
    """Paths at or beneath one of which every assignment of `rule` lands on an object of
    `gvk`; None when the source cannot tell."""
    action = rule.rule.action
    found: set[Path] | None
    if isinstance(action, Mutate) and action.json_patch is not None:
        found = _patch_region(action.json_patch)
    elif isinstance(action, Mutate):
        found = set()
        _template_region(action.template, (), found)
    elif isinstance(action, StatusAction):
        found = set()
        _template_region(action.template, ("status",), found)
    else:
        return None
    if found is None:
        return None
    on = rule.rule.match.on_template(gvk)
    if on is not None:
        return frozenset((*on, *path) for path in found)
    return frozenset(found)


def _template_region(value: Any, path: Path, out: set[Path]) -> None:
    """The rendered value of `value` is merged at `path`: a map of literal keys merges
    key by key, anything else assigns at `path` or beneath it."""
    if isinstance(value, dict) and value and all(
            isinstance(key, str) and _BRACE not in key for key in value):
        for key, child in value.items():
            _template_region(child, (*path, key), out)
    else:
        out.add(path)


def _patch_region(ops: Any) -> set[Path] | None:
    """The paths of a JSON patch's operations when every one that may assign has a
    literal path (`run._patch_assignments` records add, replace and remove)."""
    if not isinstance(ops, list):
        return None
    out: set[Path] = set()
    for op in ops:
        if not isinstance(op, dict):
            return None
        kind = op.get("op")
        if isinstance(kind, str) and _BRACE not in kind and kind not in (
                "add", "replace", "remove"):
            continue  # test, move, copy or unknown: nothing assigned
        pointer = op.get("path")
        if not isinstance(pointer, str) or _BRACE in pointer:
            return None
        tokens = parse_pointer(pointer)
        if isinstance(tokens, list):  # else no assignment (and the patch fails)
            out.add(tuple(tokens))
    return out


def alone(rules: Sequence[CompiledRule], gvk: GVK) -> frozenset[int]:
    """Ids of the rules of `rules` (mutate and status rules run together) none of whose
    assignments can be at, above or beneath another rule's: all of them or none when
    a region is unknown."""
    regions = [region(rule, gvk) for rule in rules]
    known = [r for r in regions if r is not None]
    if len(known) < len(regions):
        return frozenset()
    out = set()
    for index, (rule, mine) in enumerate(zip(rules, known, strict=True)):
        if not any(nested(mine, other) for at, other in enumerate(known) if at != index):
            out.add(id(rule))
    return frozenset(out)
