"""What the runtime relies on from `engine.kube`, on a seam ApiClient (the official
client's two calls `Transport` uses): the write fence, the request observer, Retry-After,
and a paged list whose continue token expires.

The seam answers from a script of (status, body, headers) per request and fails loudly
on any request it was not given an answer for.
"""

from __future__ import annotations

import json
import time
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


def pages(*names: list[str], version: str = "40") -> list[Answer]:
    """A list answered in pages of the given names, chained by continue tokens."""
    answers = []
    for number, page in enumerate(names, start=1):
        last = number == len(names)
        answers.append(Answer(200, {
            "metadata": {"resourceVersion": version, **({} if last else
                                                         {"continue": f"t{number}"})},
            "items": [{"metadata": {"name": name}} for name in page]}))
    return answers


def test_a_transformed_list_fetches_the_next_page_while_it_transforms_one() -> None:
    """Each page's items are transformed only once the next page has been asked for:
    without the fetch ahead, the first item's wait would time out."""
    api = ScriptedApiClient(*pages(["a", "b"], ["c", "d"], ["e"]))
    asked_before: dict[str, int] = {}

    def transform(item: dict[str, Any]) -> dict[str, Any]:
        name = item["metadata"]["name"]
        if name in ("a", "c"):  # the first item of a page that has a next one
            deadline = time.monotonic() + 5
            while len(api.sent) < {"a": 2, "c": 3}[name] and time.monotonic() < deadline:
                time.sleep(0.001)
        asked_before[name] = len(api.sent)
        return {"name": name, "kind": item["kind"]}

    items, version = cluster(api).list(CM, namespace="n", limit=2, transform=transform)
    assert items == [{"name": n, "kind": "ConfigMap"} for n in "abcde"]
    assert version == "40"
    assert asked_before == {"a": 2, "b": 2, "c": 3, "d": 3, "e": 3}
    assert api.sent == ["GET /api/v1/namespaces/n/configmaps?limit=2",
                        "GET /api/v1/namespaces/n/configmaps?limit=2&continue=t1",
                        "GET /api/v1/namespaces/n/configmaps?limit=2&continue=t2"]


def test_a_transformed_list_whose_token_expired_ahead_lists_again_whole() -> None:
    page, *_ = pages(["a"], ["b"])
    expired = Answer(410, {"kind": "Status", "code": 410, "reason": "Expired",
                           "message": "the continue token is too old"})
    whole = Answer(200, {"metadata": {"resourceVersion": "30"},
                         "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]})
    api = ScriptedApiClient(page, expired, whole)
    transformed: list[str] = []

    def transform(item: dict[str, Any]) -> dict[str, Any]:
        transformed.append(item["metadata"]["name"])
        return item

    items, version = cluster(api).list(CM, namespace="n", limit=1, transform=transform)
    assert [i["metadata"]["name"] for i in items] == ["a", "b"], "no page twice, none lost"
    assert version == "30"
    assert transformed == ["a", "a", "b"]  # as the pages came: the first, then the whole
    assert api.sent == ["GET /api/v1/namespaces/n/configmaps?limit=1",
                        "GET /api/v1/namespaces/n/configmaps?limit=1&continue=t1",
                        "GET /api/v1/namespaces/n/configmaps"]


def test_a_transform_that_fails_ends_the_list_and_its_fetch_ahead() -> None:
    api = ScriptedApiClient(*pages(["a"], ["b"], ["c"]))

    def transform(item: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("cannot keep " + item["metadata"]["name"])

    with pytest.raises(ValueError, match="cannot keep a"):
        cluster(api).list(CM, namespace="n", limit=1, transform=transform)
    deadline = time.monotonic() + 5
    while len(api.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)
    assert len(api.sent) == 2  # the page asked for ahead, and no further
