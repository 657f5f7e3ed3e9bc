"""Lint of `match`: rules that can never match anything (`never-matches`).

Decided from the rule alone, so only what holds for every possible object:

- a label selector that contradicts itself (`matchLabels: {tier: web}` with
  `tier NotIn [web]`, `Exists` and `DoesNotExist` on one key, `In` lists that share
  nothing);
- `namespaces` or `namespaceSelector` on kinds that have no namespace (a Namespace is
  in itself, so it is the exception);
- an `exclude` block that holds for everything `match` selects: every filter it sets is
  implied by `match` (`exclude.namespaces: ['*']`, an empty `exclude.selector: {}`, or
  the very namespaces `match` names).

`scoped(kind)` says whether a kind lives in namespaces (None when unknown): the built-in
table of the offline world, CRDs among the inputs, and the kinds catalogue when present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from engine.cli.lintchecks.findings import Finding
from engine.cli.lintchecks.subject import Subject
from engine.matching.match import glob_any
from engine.objects import GVK
from engine.rules.model import Exclude, LabelSelector, Match

_GLOB = frozenset("*?[")
Scoped = Callable[[GVK], "bool | None"]


def check(subject: Subject, *, scoped: Scoped) -> Iterator[Finding]:
    match = subject.rule.match
    for steps, selector in (("selector",), match.selector), (("namespaceSelector",),
                                                             match.namespace_selector):
        reason = contradiction(selector)
        if reason:
            yield subject.finding("never-matches", f"the selector never holds: {reason}",
                                  "match", *steps)
    cluster = [k for k in match.kinds if scoped(k) is False and k.kind != "Namespace"]
    if cluster and len(cluster) == len(match.kinds):
        names = ", ".join(k.kind for k in cluster)
        for steps, used in (("namespaces",), bool(match.namespaces)), (
                ("namespaceSelector",), match.namespace_selector is not None):
            if used:
                yield subject.finding(
                    "never-matches", f"{names} {'has' if len(cluster) == 1 else 'have'} no "
                    f"namespace: match.{steps[0]} never holds for {names}", "match", *steps)
    if match.exclude is not None:
        reason = _excludes_everything(match, match.exclude, scoped)
        if reason:
            yield subject.finding("never-matches", f"exclude leaves out every object match "
                                  f"selects: {reason}", "match", "exclude")


@dataclass
class _Key:
    """What one selector says about one label key."""

    equals: set[str] = field(default_factory=set)
    within: list[set[str]] = field(default_factory=list)  # In lists
    outside: set[str] = field(default_factory=set)  # NotIn values
    exists: bool = False
    absent: bool = False


def _keys(selector: LabelSelector) -> dict[str, _Key]:
    keys: dict[str, _Key] = {}
    for key, value in selector.match_labels:
        keys.setdefault(key, _Key()).equals.add(value)
    for req in selector.match_expressions:
        entry = keys.setdefault(req.key, _Key())
        if req.operator == "In":
            entry.within.append(set(req.values))
        elif req.operator == "NotIn":
            entry.outside.update(req.values)
        elif req.operator == "Exists":
            entry.exists = True
        else:
            entry.absent = True
    return keys


def contradiction(selector: LabelSelector | None) -> str:
    """Why no set of labels satisfies `selector`, or ``""``."""
    if selector is None:
        return ""
    for key, entry in sorted(_keys(selector).items()):
        if len(entry.equals) > 1:
            return f"{key} cannot equal {' and '.join(sorted(entry.equals))} at once"
        possible: set[str] | None = None  # None: any value
        for values in ([entry.equals] if entry.equals else []) + entry.within:
            possible = set(values) if possible is None else possible & values
        if entry.absent and (entry.exists or possible is not None):
            return f"{key} must both exist and not exist"
        if possible is not None and not possible - entry.outside:
            return f"no value of {key} is allowed by both its In/matchLabels and NotIn"
    return ""


def _excludes_everything(match: Match, exclude: Exclude, scoped: Scoped) -> str:
    reasons: list[str] = []
    if exclude.namespaces:
        reason = _covers(exclude.namespaces, match.namespaces, "namespaces")
        every_namespaced = all(scoped(k) is True or k.kind == "Namespace" for k in match.kinds)
        if not reason and "*" in exclude.namespaces and every_namespaced:
            reason = "exclude.namespaces ['*'] holds for every namespace"
        if not reason:
            return ""
        reasons.append(reason)
    if exclude.names:
        reason = _covers(exclude.names, match.names, "names")
        if not reason and "*" in exclude.names:
            reason = "exclude.names ['*'] holds for every name"
        if not reason:
            return ""
        reasons.append(reason)
    if exclude.selector is not None:
        if not _implies(match.selector, exclude.selector):
            return ""
        reasons.append("exclude.selector holds for every object match.selector selects"
                       if exclude.selector.match_labels or exclude.selector.match_expressions
                       else "exclude.selector is empty, which every object satisfies")
    if exclude.namespace_selector is not None:
        if match.namespace_selector is None or not _implies(match.namespace_selector,
                                                            exclude.namespace_selector):
            return ""
        reasons.append("exclude.namespaceSelector holds wherever match.namespaceSelector does")
    return "; ".join(reasons)


def _covers(excluded: Sequence[str], matched: Sequence[str], what: str) -> str:
    """When every pattern `match` names is inside one `exclude` names."""
    if not matched:
        return ""
    for pattern in matched:
        if pattern in excluded:
            continue
        if _GLOB & set(pattern) or not glob_any(excluded, pattern):
            return ""
    return f"exclude.{what} covers match.{what} {list(matched)}"


def _implies(given: LabelSelector | None, wanted: LabelSelector) -> bool:
    """Whether every label set `given` selects also satisfies `wanted`."""
    have = _keys(given) if given is not None else {}
    for key, need in _keys(wanted).items():
        entry = have.get(key, _Key())
        values = set(entry.equals)
        for within in entry.within:
            values = within if not values else values & within
        known = bool(values)  # the label has one of these values
        present = known or entry.exists
        if need.absent and not entry.absent:
            return False
        if need.exists and not present:
            return False
        if need.equals and not (known and values <= need.equals and len(need.equals) == 1):
            return False
        for within in need.within:
            if not (known and values <= within):
                return False
        if need.outside and not (entry.absent or (known and not values & need.outside)):
            return False
    return True
