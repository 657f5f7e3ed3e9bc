"""Match a rule's `match` block against one object (see the package docstring)."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.objects import GVK, Obj, gvk_of, labels_of, name_of, namespace_of
from engine.rules.model import Exclude, LabelSelector, Match


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def glob_any(patterns: Sequence[str], value: str) -> bool:
    """Whether `value` matches one of the shell-style `patterns` (`fnmatch`, case
    and all: `*`, `?` and `[...]`; any other pattern is the name itself)."""
    if type(patterns) is tuple:  # the rules' own (immutable): one matcher each
        return _matcher(patterns)(value)
    return any(_glob(p).match(value) is not None for p in patterns)


@functools.lru_cache(maxsize=4096)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """`glob_any` of these patterns: the plain names as a set, the globs as regexes
    (asked of every trigger for every rule that names namespaces or names)."""
    names = frozenset(p for p in patterns if not _WILDCARDS & set(p))
    globs = tuple(_glob(p) for p in patterns if _WILDCARDS & set(p))
    if not globs:
        return names.__contains__
    return lambda value: value in names or any(g.match(value) is not None for g in globs)


_WILDCARDS = frozenset("*?[")


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, Any]) -> bool:
    """Kubernetes label-selector semantics; an absent or empty selector matches everything."""
    if selector is None:
        return True
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = key_present = req.key in labels
        if req.operator == "In":
            ok = key_present and labels[req.key] in req.values
        elif req.operator == "NotIn":
            ok = not key_present or labels[req.key] not in req.values
        elif req.operator == "Exists":
            ok = present
        else:  # DoesNotExist
            ok = not present
        if not ok:
            return False
    return True


def namespace_for(obj: Obj) -> str:
    """The namespace an object belongs to; a Namespace belongs to itself."""
    if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
        return name_of(obj)
    return namespace_of(obj)


def matches(
    match: Match,
    obj: Obj,
    *,
    namespace_object: Obj | None,
    confine_to: str | None = None,
    gvk: GVK | None = None,
) -> bool:
    """True when `obj` is a trigger of a rule with this `match`.

    `namespace_object` is the object's Namespace (None when unknown or cluster-scoped);
    `confine_to` is the namespace of a namespaced RuleSet, which sees nothing outside it.
    `gvk`: the object's kind, when the caller has it already.
    """
    if (gvk_of(obj) if gvk is None else gvk) not in match.kinds:
        return False
    namespace = namespace_of(obj)
    if confine_to is not None and namespace != confine_to:
        return False
    scope = namespace_for(obj)
    if match.namespaces and not (scope and glob_any(match.namespaces, scope)):
        return False
    if match.names and not glob_any(match.names, name_of(obj)):
        return False
    if not selector_matches(match.selector, labels_of(obj)):
        return False
    if match.namespace_selector is not None and (
        namespace_object is None
        or not selector_matches(match.namespace_selector, labels_of(namespace_object))
    ):
        return False
    return match.exclude is None or not _excluded(match.exclude, obj, scope, namespace_object)


def _excluded(exclude: Exclude, obj: Obj, scope: str, namespace_object: Obj | None) -> bool:
    """An exclude block leaves an object alone when every filter it sets holds."""
    checks: list[bool] = []
    if exclude.namespaces:
        checks.append(bool(scope) and glob_any(exclude.namespaces, scope))
    if exclude.names:
        checks.append(glob_any(exclude.names, name_of(obj)))
    if exclude.selector is not None:
        checks.append(selector_matches(exclude.selector, labels_of(obj)))
    if exclude.namespace_selector is not None:
        checks.append(namespace_object is not None and selector_matches(
            exclude.namespace_selector, labels_of(namespace_object)))
    return bool(checks) and all(checks)
