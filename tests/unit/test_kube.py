"""Table-driven tests of engine.kube's pure parts: error mapping, discovery parsing,
watch line splitting and Event bodies. (The requests themselves are tested against a
real API server in tests/e2e/test_kube_client.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import urllib3.exceptions as u3
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kube.answers import Answers
from engine.kube.discovery import parse_resource_list, path_segment
from engine.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    Timeout,
    TooManyRequests,
    Unauthorized,
    api_error,
    transport_error,
)
from engine.kube.events import EventType, event_for
from engine.kube.watch import iter_lines, parse_event
from engine.objects import GVK


def status(code: int, reason: str, message: str = "m") -> bytes:
    return json.dumps({"kind": "Status", "code": code, "reason": reason,
                       "message": message}).encode()


@pytest.mark.parametrize(("code", "reason", "kind", "retryable"), [
    (400, "BadRequest", BadRequest, False),
    (401, "Unauthorized", Unauthorized, False),
    (403, "Forbidden", Forbidden, False),
    (404, "NotFound", NotFound, False),
    (409, "Conflict", Conflict, False),
    (409, "AlreadyExists", AlreadyExists, False),
    (410, "Expired", Gone, False),
    (422, "Invalid", Invalid, False),
    (429, "TooManyRequests", TooManyRequests, True),
    (500, "InternalError", ServerError, True),
    (503, "ServiceUnavailable", ServerError, True),
    (504, "Timeout", ServerError, True),
    (418, "", ApiError, False),
])
def test_status_codes_map_to_types(code: int, reason: str, kind: type[ApiError],
                                   retryable: bool) -> None:
    error = api_error(code, status(code, reason, "what happened"))
    assert type(error) is kind
    assert (error.status, error.reason, error.message) == (code, reason, "what happened")
    assert error.retryable is retryable


def test_retry_after_and_bodies_that_are_not_status_objects() -> None:
    assert api_error(429, b"{}", retry_after="3").retry_after == 3.0
    assert api_error(429, b"{}", retry_after="soon").retry_after is None
    html = api_error(502, b"<html>bad gateway</html>")
    assert isinstance(html, ServerError) and "bad gateway" in html.message
    assert api_error(404, None).message == "HTTP 404"
    assert str(api_error(403, status(403, "Forbidden", "no"))) == "403 Forbidden: no"


@pytest.mark.parametrize(("error", "kind"), [
    (u3.ReadTimeoutError(None, "/", "read timed out"), Timeout),  # type: ignore[arg-type]
    (u3.ConnectTimeoutError("connect timed out"), Timeout),
    (u3.MaxRetryError(None, "/", u3.NewConnectionError(None, "refused")),  # type: ignore[arg-type]
     ConnectionFailed),
    (u3.ProtocolError("connection reset"), ConnectionFailed),
    (ConnectionResetError("reset"), ConnectionFailed),
])
def test_transport_failures_are_retryable(error: Exception, kind: type[ApiError]) -> None:
    mapped = transport_error(error)
    assert type(mapped) is kind and mapped.retryable and mapped.status == 0


def test_discovery_folds_subresources_into_their_resource() -> None:
    body = {"resources": [
        {"name": "deployments", "kind": "Deployment", "namespaced": True,
         "verbs": ["get", "list", "watch"]},
        {"name": "deployments/status", "kind": "Deployment", "namespaced": True,
         "verbs": ["get", "patch"]},
        {"name": "deployments/scale", "kind": "Scale", "namespaced": True, "verbs": ["get"]},
    ]}
    found = parse_resource_list(GVK("apps", "v1", "Deployment"), body)
    assert set(found) == {"Deployment"}
    deployments = found["Deployment"]
    assert deployments.has_status and deployments.verbs == {"get", "list", "watch"}
    assert deployments.path(namespace="a") == "/apis/apps/v1/namespaces/a/deployments"
    assert parse_resource_list(GVK("x", "v1", "Y"), None) == {}


def test_watch_lines_survive_any_chunking() -> None:
    lines = [json.dumps({"type": "ADDED", "object": {"n": i}}).encode() for i in range(3)]
    stream = b"\n".join(lines) + b"\n"
    for size in (1, 2, 7, 1000):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        assert list(iter_lines(iter(chunks))) == lines
    assert list(iter_lines(iter([b"a\n\n", b"b"]))) == [b"a", b"b"]


def test_watch_error_events_raise_their_type() -> None:
    assert parse_event(b'{"type":"BOOKMARK","object":{"metadata":{}}}')[0] == "BOOKMARK"
    with pytest.raises(Gone):
        parse_event(b'{"type":"ERROR","object":' + status(410, "Expired") + b"}")
    with pytest.raises(ServerError):
        parse_event(b'{"type":"ERROR","object":{"message":"no code"}}')


OURS = (b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","namespace":"n",'
        b'"resourceVersion":"5","labels":{"app":"x","edict.dev/bench":"converged"}},'
        b'"data":{"k":"\\u003c\xc3\xa9"}}')


def modified(obj: bytes) -> bytes:
    return b'{"type":"MODIFIED","object":' + obj + b"}"


@pytest.mark.parametrize("line", [
    modified(OURS),  # our echo itself
    modified(OURS.replace(b'"5"', b'"6"')),  # the same state, written again by others
    modified(OURS.replace(b"converged", b"converged ")),  # one byte more
    modified(OURS + b" "),  # the same value, other bytes
    b'{"type":"MODIFIED", "object":' + OURS + b"}",
    b'{"type":"ADDED","object":' + OURS + b"}",
    b'{"type":"MODIFIED","object":' + OURS + b',"type":"DELETED"}',  # the last key wins
    modified(OURS[:-1] + b',"x":' + OURS + b"}"),  # our bytes inside theirs
    modified(b'{"data":{"k":' + json.dumps(OURS.decode()).encode() + b"}}"),
])
def test_a_remembered_answer_gives_what_decoding_gives(line: bytes) -> None:
    """Only an event whose object is exactly a remembered answer's bytes is taken from
    it; every other line, however close, is decoded: the result is what decoding the
    line gives, either way."""
    answers = Answers()
    answers.remember(OURS + b"\n", json.loads(OURS))
    decoded = json.loads(line)
    assert parse_event(line, answers) == (decoded["type"], decoded["object"])
    assert answers.taken == (1 if line == modified(OURS) else 0)
    assert parse_event(line, answers) == (decoded["type"], decoded["object"])  # once
    assert answers.taken == (1 if line == modified(OURS) else 0)


def test_answers_are_bounded_oldest_first() -> None:
    answers = Answers(kept=2)
    for n in range(3):
        answers.remember(b'{"n":%d}' % n, {"n": n})
    assert len(answers) == 2
    assert answers.take(b'{"n":0}') is None
    assert answers.take(b'{"n":2}') == {"n": 2}


def test_event_bodies() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    trigger = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "team-a", "uid": "u1",
                            "resourceVersion": "42"}}
    event = event_for(trigger, reason="RuleApplied", message="set a label",
                      type=EventType.NORMAL, when=when, instance="pod-0")
    assert event["metadata"]["namespace"] == "team-a"
    assert event["metadata"]["name"].startswith("web.")
    assert event["involvedObject"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": "web", "namespace": "team-a", "uid": "u1",
                                       "resourceVersion": "42"}
    assert (event["type"], event["action"], event["reportingComponent"]) == (
        "Normal", "RuleApplied", "edict.dev/engine")
    assert event["eventTime"] == "2025-03-04T05:06:07.890123Z"
    assert event["firstTimestamp"] == "2025-03-04T05:06:07Z"
    cluster_scoped = event_for({"kind": "Namespace", "metadata": {"name": "n"}},
                               reason="R", message="x" * 2000, type=EventType.WARNING,
                               when=when)
    assert cluster_scoped["metadata"]["namespace"] == "default"
    assert "namespace" not in cluster_scoped["involvedObject"]
    assert len(cluster_scoped["message"]) == 1024


@pytest.mark.parametrize("text", ["cm-00001", "", "system:nodes", "a/b", "ä", "100%",
                                  "a b", "x~y_z.0", "line\n", "-", "~"])
def test_a_path_segment_is_quoted_as_quote_does(text: str) -> None:
    assert path_segment(text) == quote(text, safe="")


@settings(max_examples=500)
@given(st.text(max_size=12))
def test_any_path_segment_is_quoted_as_quote_does(text: str) -> None:
    assert path_segment(text) == quote(text, safe="")
