"""Why a rule did what it did to one object: the questions `edict explain` answers.

Used by `edict explain`, `edict test --explain`, `edict apply -o diff --explain` and the
summary line of `edict apply`. Nothing here decides anything the engine decides: whether
a rule matches is `engine.matching.matches`' answer (this module only finds the clause
that says no), outcomes and written paths come from the engine's own evaluation, and a
condition is evaluated with the engine's own variables.

- `mismatch`: the `match` clause that leaves an object out, in words;
- `condition_value`: what a rule's condition (and forEach) say about an object now;
- `sources`: for each field that changed, the rule set and rule that set it last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.errors import CelError, CelMissingData, EdictError
from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import Outcome
from engine.evaluate.run import Pass, variables
from engine.evaluate.world import World, namespace_object
from engine.matching import matches, namespace_for, selector_matches
from engine.matching.match import glob_any
from engine.objects import Obj, gvk_of, labels_of, name_of, namespace_of
from engine.patching import changed_paths, make_patch
from engine.patching.pointer import escape
from engine.patching.pointer import parse as parse_pointer
from engine.rules.model import LabelSelector, Match, RuleSetRef


def mismatch(rule: CompiledRule, obj: Obj, world: World) -> str | None:
    """None when the rule matches `obj`, else which part of `match` leaves it out."""
    ns_obj = namespace_object(world, obj)
    confine = rule.rule_set.ref.namespace if rule.rule_set.ref.namespaced else None
    if matches(rule.rule.match, obj, namespace_object=ns_obj, confine_to=confine):
        return None
    return _reason(rule.rule.match, obj, ns_obj, confine) or "match leaves it out"


def _reason(match: Match, obj: Obj, ns_obj: Obj | None, confine: str | None) -> str:
    gvk = gvk_of(obj)
    if gvk not in match.kinds:
        kinds = ", ".join(str(k) for k in match.kinds)
        return f"match.resources names {kinds}, not {gvk}"
    namespace = namespace_of(obj)
    if confine is not None and namespace != confine:
        return f"a RuleSet of namespace {confine!r} sees only that namespace"
    scope = namespace_for(obj)
    if match.namespaces and not (scope and glob_any(match.namespaces, scope)):
        if not scope:
            return f"it has no namespace, and match.namespaces is {list(match.namespaces)}"
        return f"namespace {scope!r} is not in match.namespaces {list(match.namespaces)}"
    if match.names and not glob_any(match.names, name_of(obj)):
        return f"name {name_of(obj)!r} is not in match.names {list(match.names)}"
    failed = unmet(match.selector, labels_of(obj))
    if failed:
        return f"match.selector: {failed}"
    if match.namespace_selector is not None:
        if ns_obj is None:
            return ("match.namespaceSelector is set and its Namespace is not known"
                    if scope else "match.namespaceSelector is set and it has no namespace")
        failed = unmet(match.namespace_selector, labels_of(ns_obj))
        if failed:
            return f"match.namespaceSelector: Namespace {scope}: {failed}"
    exclude = match.exclude
    if exclude is not None:
        held = []
        if exclude.namespaces:
            held.append(f"exclude.namespaces {list(exclude.namespaces)}")
        if exclude.names:
            held.append(f"exclude.names {list(exclude.names)}")
        if exclude.selector is not None:
            held.append("exclude.selector")
        if exclude.namespace_selector is not None:
            held.append("exclude.namespaceSelector")
        return "excluded: " + " and ".join(held) + (" hold" if len(held) > 1 else " holds")
    return ""


def unmet(selector: LabelSelector | None, labels: dict[str, Any]) -> str:
    """The first requirement of `selector` that `labels` do not meet, in words."""
    if selector is None or selector_matches(selector, labels):
        return ""
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            have = f"is {labels[key]!r}" if key in labels else "is missing"
            return f"label {key} {have}, {value!r} wanted"
    for req in selector.match_expressions:
        if selector_matches(LabelSelector(match_expressions=(req,)), labels):
            continue
        have = f"is {labels[req.key]!r}" if req.key in labels else "is missing"
        values = f" {list(req.values)}" if req.values else ""
        return f"label {req.key} {have}: {req.operator}{values} does not hold"
    return "the selector does not hold"


class Verdict(StrEnum):
    TRUE = "true"
    FALSE = "false"
    NONE = "no condition"
    MISSING_DATA = "missing data"
    ERROR = "error"


@dataclass(frozen=True)
class ConditionValue:
    verdict: Verdict
    message: str = ""

    def describe(self) -> str:
        return f"{self.verdict.value}: {self.message}" if self.message else self.verdict.value


def condition_value(rule: CompiledRule, obj: Obj, world: World) -> ConditionValue:
    """The rule's condition (then its forEach) on `obj`, with the engine's variables."""
    p = Pass(world, namespace_object(world, obj), set())
    try:
        values = variables(rule, obj, p)
        verdict = Verdict.NONE
        if rule.condition is not None:
            value = rule.condition.evaluate(values)
            if value is not True:
                what = "" if value is False else f"gives {value!r}, not a bool"
                return ConditionValue(Verdict.FALSE if value is False else Verdict.ERROR, what)
            verdict = Verdict.TRUE
        if rule.for_each is not None:
            rule.for_each.evaluate(values)
    except CelMissingData as exc:
        return ConditionValue(Verdict.MISSING_DATA, exc.message)
    except (CelError, EdictError) as exc:
        return ConditionValue(Verdict.ERROR, exc.message)
    return ConditionValue(verdict)


Writer = tuple[RuleSetRef, str]


def sources(before: Obj | None, after: Obj | None, outcomes: Sequence[Outcome]
            ) -> list[tuple[str, Writer | None]]:
    """Each changed JSON pointer of `before` -> `after`, with the rule that set it last
    (outcomes in the order rules ran; None when no rule's written paths cover it)."""
    if before is None or after is None:
        return []
    changed = changed_leaves(before, after)
    written: list[tuple[Writer, list[tuple[str, ...]]]] = []
    for outcome in outcomes:
        resolved = [resolve(path, after) or resolve(path, before) for path in outcome.paths]
        written.append(((outcome.rule_set, outcome.rule), [t for t in resolved if t]))
    out: list[tuple[str, Writer | None]] = []
    for pointer in changed:
        tokens = _tokens(pointer)
        writer = None
        for who, paths in written:
            if any(_related(tokens, path) for path in paths):
                writer = who
        out.append((pointer, writer))
    return out


def changed_leaves(before: Any, after: Any) -> list[str]:
    """The JSON pointers of every leaf value that differs (what a patch adds or replaces,
    down to its scalars; what it removes, as removed)."""
    out: list[str] = []
    for op in make_patch(before, after, guard_resource_version=False):
        if op["op"] == "remove" or "value" not in op:
            out.extend(changed_paths([op]))
        else:
            out.extend(op["path"] + below for below in _leaves(op["value"]))
    return out


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from ("/" + escape(str(key)) + below for below in _leaves(item))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from (f"/{index}" + below for below in _leaves(item))
    else:
        yield ""


def resolve(pointer: str, obj: Any) -> tuple[str, ...] | None:
    """An outcome's path (whose list steps may be `name=app`, or `k=v,k2=v2`) as the
    JSON pointer tokens of `obj` (list steps become indexes); None if not a pointer."""
    tokens = parse_pointer(pointer)
    if isinstance(tokens, str):
        return None
    out: list[str] = []
    value = obj
    for token in tokens:
        if isinstance(value, list):
            index = _item(value, token)
            if index is None:
                out.append(token)
                value = None
                continue
            out.append(str(index))
            value = value[index]
        else:
            out.append(token)
            value = value.get(token) if isinstance(value, dict) else None
    return tuple(out)


def _item(items: list[Any], token: str) -> int | None:
    if token.isdigit():
        return int(token)
    wanted = dict(part.split("=", 1) for part in token.split(",") if "=" in part)
    if not wanted:
        return None
    for index, item in enumerate(items):
        if isinstance(item, dict) and all(str(item.get(k)) == v for k, v in wanted.items()):
            return index
    return None


def _tokens(pointer: str) -> tuple[str, ...]:
    tokens = parse_pointer(pointer)
    return tuple(tokens) if isinstance(tokens, list) else ()


def _related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return a[:len(b)] == b or b[:len(a)] == a

