"""What the runtime relies on from `engine.kube`, on a seam ApiClient (the official
client's two calls `Transport` uses): the write fence, the request observer, Retry-After,
and a paged list whose continue token expires.

The seam answers from a script of (status, body, headers) per request and fails loudly
on any request it was not given an answer for.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3

from engine.kube.client import Cluster
from engine.kube.discovery import Discovery, Resource
from engine.kube.errors import NotLeader, TooManyRequests
from engine.kube.transport import Transport
from engine.objects import GVK

CM = GVK("", "v1", "ConfigMap")
LEASE_GVK = GVK("coordination.k8s.io", "v1", "Lease")


class Answer:
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.response = self
        self.data = json.dumps(body).encode()
        self.headers = headers or {}

    def release_conn(self) -> None:
        pass


class _Configuration:
    host = ""

    def auth_settings(self) -> dict[str, Any]:
        return {}


class _RestClient:
    # Behind a proxy, the transport sends through `call_api` (the path scripted here).
    pool_manager = urllib3.ProxyManager("http://proxy.invalid:3128")


class ScriptedApiClient:
    """`param_serialize` + `call_api`, answering from `answers` in order."""

    default_headers: dict[str, str] = {}
    configuration = _Configuration()
    rest_client = _RestClient()

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    def param_serialize(self, method: str, resource_path: str, *,
                        query_params: list[tuple[str, str]] | None = None,
                        header_params: dict[str, str] | None = None, body: Any = None,
                        auth_settings: Any = None) -> tuple[str, str, dict[str, str], Any,
                                                            list[str]]:
        query = "&".join(f"{k}={v}" for k, v in query_params or [])
        return method, resource_path + (f"?{query}" if query else ""), dict(
            header_params or {}), body, []

    def call_api(self, method: str, url: str, **_: Any) -> Answer:
        self.sent.append(f"{method} {url}")
        assert self.answers, f"unexpected request {method} {url}: must not be called"
        return self.answers.pop(0)


class KnownKinds(Discovery):
    """Discovery that knows ConfigMaps and Leases without asking."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]

    def resource_for(self, gvk: GVK) -> Resource:
        assert gvk in (CM, LEASE_GVK)
        return Resource(gvk=gvk, plural=gvk.kind.lower() + "s", namespaced=True,
                        verbs=frozenset(), has_status=False)


def cluster(api: ScriptedApiClient) -> Cluster:
    return Cluster(Transport(api), discovery=KnownKinds())  # type: ignore[arg-type]


OK = Answer(200, {"metadata": {"resourceVersion": "5"}})
LEASE = {"metadata": {"namespace": "n", "name": "l"}, "spec": {}}


def test_the_fence_stops_writes_but_never_reads_or_the_lease() -> None:
    api = ScriptedApiClient(OK, OK, OK)
    c = cluster(api)
    leading = [True]
    c.fence_writes(lambda: leading[0])
    c.patch_json(CM, "n", "a", [{"op": "test", "path": "/x", "value": 1}])
    leading[0] = False
    with pytest.raises(NotLeader) as refused:
        c.patch_json(CM, "n", "a", [])
    assert refused.value.retryable
    for write in (lambda: c.create({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "b", "namespace": "n"}}),
                  lambda: c.delete(CM, "n", "a"),
                  lambda: c.impersonating("bob").patch_merge(CM, "n", "a", {})):
        with pytest.raises(NotLeader):
            write()
    c.get(CM, "n", "a")  # reads go on: a standby keeps its caches warm
    c.update_lease(LEASE)  # and the Lease is how an instance may lead again
    assert api.sent == ["PATCH /api/v1/namespaces/n/configmaps/a?fieldManager=edict",
                        "GET /api/v1/namespaces/n/configmaps/a",
                        "PUT /apis/coordination.k8s.io/v1/namespaces/n/leases/l"
                        "?fieldManager=edict"]


def test_every_request_is_observed_with_its_answer() -> None:
    api = ScriptedApiClient(OK, Answer(429, {"reason": "TooManyRequests"},
                                       {"Retry-After": "3"}))
    c = cluster(api)
    seen: list[tuple[str, str]] = []
    c.observe_requests(lambda method, code: seen.append((method, code)))
    c.get(CM, "n", "a")
    with pytest.raises(TooManyRequests) as refused:
        c.patch_json(CM, "n", "a", [])
    assert refused.value.retry_after == 3.0
    assert seen == [("GET", "200"), ("PATCH", "429")]


def test_a_list_whose_continue_token_expired_lists_again_in_one_request() -> None:
    page = Answer(200, {"metadata": {"continue": "t1", "resourceVersion": "10"},
                        "items": [{"metadata": {"name": "a"}}]})
    expired = Answer(410, {"kind": "Status", "code": 410, "reason": "Expired",
                           "message": "the continue token is too old"})
    whole = Answer(200, {"metadata": {"resourceVersion": "30"},
                         "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]})
    api = ScriptedApiClient(page, expired, whole)
    items, version = cluster(api).list(CM, namespace="n", limit=1)
    assert [i["metadata"]["name"] for i in items] == ["a", "b"], "no page twice, none lost"
    assert version == "30"
    assert api.sent == ["GET /api/v1/namespaces/n/configmaps?limit=1",
                        "GET /api/v1/namespaces/n/configmaps?limit=1&continue=t1",
                        "GET /api/v1/namespaces/n/configmaps"]
