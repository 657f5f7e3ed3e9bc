"""The live engine's World answers scope from discovery's cache: no request while
evaluating, and a kind discovery has not seen is unknown (None), not guessed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.evaluate.children import RULE_SET_LABEL
from engine.evaluate.world import TRIGGER_ANNOTATION, TRIGGER_UID_LABEL, trigger_of
from engine.kube.discovery import Discovery
from engine.objects import GVK, Obj, labels_of
from engine.runtime.source.world import Scopes, child_of_index, rule_set_index, trigger_index

CM = GVK("", "v1", "ConfigMap")
NS = GVK("", "v1", "Namespace")
WIDGET = GVK("example.edict.dev", "v1", "Widget")


class DiscoveryTransport:
    """Answers discovery GETs for the core group; counts every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> Any:
        self.requests.append(f"{method} {path}")
        assert (method, path) == ("GET", "/api/v1"), f"unexpected request {method} {path}"
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "kind": "ConfigMap", "namespaced": True, "verbs": ["get"]},
            {"name": "namespaces", "kind": "Namespace", "namespaced": False,
             "verbs": ["get"]}]}


def test_scope_comes_from_what_discovery_already_knows_without_a_request() -> None:
    transport = DiscoveryTransport()
    discovery = Discovery(transport)  # type: ignore[arg-type]
    scopes = Scopes(discovery.cached)
    assert scopes.namespaced(CM) is None, "not discovered yet: unknown, and no request"
    assert transport.requests == []
    discovery.resource_for(CM)  # outside evaluation: compiling, or an informer's list
    assert transport.requests == ["GET /api/v1"]
    assert scopes.namespaced(CM) is True
    assert scopes.namespaced(NS) is False, "the whole group/version was learned at once"
    assert scopes.namespaced(WIDGET) is None
    assert transport.requests == ["GET /api/v1"], "evaluation never asks the server"


# Metadata as anyone may write it, well-formed or not: the index functions, inlined for
# speed, give what the helpers they stand for give (or raise alike).
ODD_METADATA: list[object] = [
    None, [], "text", {}, {"labels": None}, {"labels": []}, {"labels": "x"},
    {"labels": {TRIGGER_UID_LABEL: "u", RULE_SET_LABEL: "rs"}},
    {"labels": {TRIGGER_UID_LABEL: ""}}, {"labels": {RULE_SET_LABEL: None}},
    {"annotations": None}, {"annotations": {}}, {"annotations": ""}, {"annotations": 0},
    {"annotations": ["a"]}, {"annotations": "abc"},
    {"annotations": {TRIGGER_ANNOTATION: "v1/ConfigMap/n/a"}},
    {"annotations": {TRIGGER_ANNOTATION: ""}}, {"annotations": {TRIGGER_ANNOTATION: 7}},
    {"annotations": {TRIGGER_ANNOTATION: ["x"]}},
]


def _outcome(func: Callable[[], object]) -> object:
    try:
        return func()
    except Exception as error:  # what is raised is compared
        return type(error)


@pytest.mark.parametrize("metadata", ODD_METADATA, ids=repr)
def test_the_index_functions_read_what_the_helpers_read(metadata: object) -> None:
    obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}

    def by_helper() -> list[str]:
        value = trigger_of(obj)
        return [value] if value else []

    assert _outcome(lambda: child_of_index(obj)) == _outcome(by_helper)
    for label, index in ((TRIGGER_UID_LABEL, trigger_index),
                         (RULE_SET_LABEL, rule_set_index)):
        value = labels_of(obj).get(label)
        assert index(obj) == ([value] if value is not None else [])
