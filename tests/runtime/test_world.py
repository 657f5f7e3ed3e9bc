"""The live engine's World answers scope from discovery's cache: no request while
evaluating, and a kind discovery has not seen is unknown (None), not guessed."""

from __future__ import annotations

from typing import Any

from engine.kube.discovery import Discovery
from engine.objects import GVK
from engine.runtime.source.world import Scopes

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
