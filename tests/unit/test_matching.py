"""Table-driven tests of engine.matching."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from engine.matching import matches, selector_matches
from engine.matching.match import glob_any
from engine.objects import GVK
from engine.rules.model import Exclude, LabelSelector, Match, Requirement

DEPLOYMENT = GVK("apps", "v1", "Deployment")
NAMESPACE = GVK("", "v1", "Namespace")


def deployment(name: str = "web", namespace: str = "team-a", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def sel(labels: dict[str, str] | None = None, *exprs: Requirement) -> LabelSelector:
    return LabelSelector(tuple(sorted((labels or {}).items())), exprs)


SELECTOR_CASES = [
    (None, {}, True),
    (sel(), {"a": "1"}, True),
    (sel({"a": "1"}), {"a": "1", "b": "2"}, True),
    (sel({"a": "1"}), {"a": "2"}, False),
    (sel(None, Requirement("a", "In", ("1", "2"))), {"a": "2"}, True),
    (sel(None, Requirement("a", "In", ("1", "2"))), {}, False),
    (sel(None, Requirement("a", "NotIn", ("1",))), {}, True),
    (sel(None, Requirement("a", "NotIn", ("1",))), {"a": "1"}, False),
    (sel(None, Requirement("a", "Exists")), {"a": ""}, True),
    (sel(None, Requirement("a", "Exists")), {"b": "1"}, False),
    (sel(None, Requirement("a", "DoesNotExist")), {"b": "1"}, True),
    (sel(None, Requirement("a", "DoesNotExist")), {"a": "1"}, False),
    (sel({"tier": "web"}, Requirement("env", "In", ("prod",))), {"tier": "web", "env": "dev"},
     False),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SELECTOR_CASES)
def test_selector(selector: LabelSelector | None, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


MATCH_CASES: list[tuple[str, Match, dict[str, Any], dict[str, Any] | None, str | None, bool]] = [
    ("kind matches", Match((DEPLOYMENT,)), deployment(), None, None, True),
    ("other kind", Match((GVK("apps", "v1", "StatefulSet"),)), deployment(), None, None, False),
    ("other version", Match((GVK("apps", "v1beta1", "Deployment"),)), deployment(), None, None,
     False),
    ("namespace glob", Match((DEPLOYMENT,), namespaces=("team-*",)), deployment(), None, None,
     True),
    ("namespace glob misses", Match((DEPLOYMENT,), namespaces=("prod-*",)), deployment(), None,
     None, False),
    ("name glob", Match((DEPLOYMENT,), names=("w?b",)), deployment(), None, None, True),
    ("name glob misses", Match((DEPLOYMENT,), names=("api-*",)), deployment(), None, None, False),
    ("selector", Match((DEPLOYMENT,), selector=sel({"tier": "web"})),
     deployment(tier="web"), None, None, True),
    ("selector misses", Match((DEPLOYMENT,), selector=sel({"tier": "web"})),
     deployment(tier="db"), None, None, False),
    ("namespace selector", Match((DEPLOYMENT,), namespace_selector=sel({"env": "prod"})),
     deployment(), ns("team-a", env="prod"), None, True),
    ("namespace selector misses", Match((DEPLOYMENT,), namespace_selector=sel({"env": "prod"})),
     deployment(), ns("team-a", env="dev"), None, False),
    ("namespace selector without a namespace object",
     Match((DEPLOYMENT,), namespace_selector=sel({"env": "prod"})), deployment(), None, None,
     False),
    ("exclude namespaces", Match((DEPLOYMENT,), exclude=Exclude(namespaces=("team-*",))),
     deployment(), None, None, False),
    ("exclude needs all its filters",
     Match((DEPLOYMENT,), exclude=Exclude(namespaces=("team-*",), names=("api",))),
     deployment(), None, None, True),
    ("exclude by labels", Match((DEPLOYMENT,), exclude=Exclude(selector=sel({"skip": "yes"}))),
     deployment(skip="yes"), None, None, False),
    ("confined to its namespace", Match((DEPLOYMENT,)), deployment(), None, "team-a", True),
    ("confined elsewhere", Match((DEPLOYMENT,)), deployment(), None, "team-b", False),
    ("a Namespace is in itself", Match((NAMESPACE,), namespaces=("team-*",)), ns("team-a"),
     None, None, True),
    ("a namespaced RuleSet never matches a Namespace", Match((NAMESPACE,)), ns("team-a"), None,
     "team-a", False),
]


@pytest.mark.parametrize(("case", "match", "obj", "namespace_object", "confine", "expected"),
                         MATCH_CASES, ids=[c[0] for c in MATCH_CASES])
def test_matches(case: str, match: Match, obj: dict[str, Any],
                 namespace_object: dict[str, Any] | None, confine: str | None,
                 expected: bool) -> None:
    assert matches(match, obj, namespace_object=namespace_object, confine_to=confine) is expected


GLOB_PATTERNS = [("team-a",), ("team-*",), ("w?b", "api"), ("[ab]*",), ("[!t]*",), ("a]b",),
                 ("x.y", "x+y"), ("Team-A",), ("", "*"), ("team-a", "prod-*"), ()]
GLOB_VALUES = ["team-a", "team-b", "Team-A", "web", "api", "a]b", "x.y", "xzy", "x+y", "",
               "prod-1", "b", "team-a\n"]


@pytest.mark.parametrize("patterns", GLOB_PATTERNS)
def test_glob_any_on_the_rules_tuples_answers_as_fnmatch_does(patterns: tuple[str, ...]
                                                               ) -> None:
    # the rules' patterns (tuples) take a matcher made once per tuple: plain names as a
    # set; a list takes the regexes one by one; both must be fnmatch's case-sensitive answer
    for value in GLOB_VALUES:
        expected = any(fnmatch.fnmatchcase(value, p) for p in patterns)
        assert glob_any(patterns, value) is expected, (patterns, value)
        assert glob_any(list(patterns), value) is expected, (patterns, value)
