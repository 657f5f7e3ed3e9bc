"""HTTP requests to the API server, answered with plain JSON, failures as typed errors.

`Cluster` (and through it discovery, watches, events, leases) sends every request
through a `Transport`. It borrows only the official client's plumbing: kubeconfig and
in-cluster loading, TLS, token refresh, the urllib3 connection pool. Ordinary requests
to the API server go through `engine.kube.wire` (HTTP/1.1 written and read on kept-alive
connections that pool opens: 0.4x the client CPU of urllib3 per request), and so do
watches, each on a connection of its own; everything behind a proxy through
`ApiClient.call_api`. JSON bodies are encoded with `json.dumps`, the bearer token is
read from the client's configuration (which refreshes it), and answers are bytes we
decode with `jsontext.loads` (`json.loads`' result, quicker): objects stay the plain
dicts the rest of Edict works on, and no generated model class ever drops a field it
does not know.

Two hooks serve the live engine, shared by a transport and its impersonating views:
* a write fence (`fence_writes`): a request sent with `fenced=True` first asks it,
  immediately before the bytes go out, and raises `NotLeader` instead of sending when
  it says no. Leader election installs it so an instance that lost (or may have lost)
  its Lease writes nothing, not even a request its workers had already prepared;
* request observers (`observe_requests`), told the method ("WATCH" for a watch) and
  the answer's status code ("error" when none came) of every request: metrics, and
  the runtime's breaker that pauses work while the API server fails.

Thread-safety: one `Transport` may be used from many threads at once; the urllib3
pool and the wire are thread-safe and nothing here mutates shared state after
construction but the hooks (set once, at start). Impersonating transports share the
parent's connections and hooks.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config, kube_config
from urllib3.connection import HTTPConnection

import engine

from . import jsontext
from .answers import Answers
from .errors import NotLeader, TransportError, api_error, transport_error
from .watch import Body, Urllib3Body
from .wire import BadAnswer, Wire

Query = Sequence[tuple[str, str]]

JSON_CONTENT = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"

DEFAULT_TIMEOUT = 30.0
"""Seconds for an ordinary (non-watch) request, connect plus read."""

POOL_SIZE = 32
"""Connections kept per host: watches hold one each, workers share the rest."""

RETRIES_AFTER = 3
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_AFTER_STATUS = frozenset({413, 429, 503})
"""An idempotent request answered one of these with a Retry-After (of at most the
request's timeout) is sent again after that wait, up to `RETRIES_AFTER` times: what
urllib3's default `Retry` does on the path the wire replaced. Callers, the runtime
among them, count on it (e.g. the 429 "storage is (re)initializing" right after a
CRD is created). Only the last answer reaches the request observers."""

_TRANSPORT_FAILURES = (urllib3.exceptions.HTTPError, ApiException, OSError)

_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""`json.dumps(value, separators=(",", ":"))` without making an encoder per request."""


def encode_body(body: Any) -> bytes:
    """A request body's bytes: compact JSON, as the official client sends it."""
    return _COMPACT.encode(body).encode()


def query_text(query: Query) -> str:
    """`urlencode(list(query), quote_via=quote)`. A tuple of text pairs (a constant such
    as the field manager of every write) is encoded once and remembered."""
    if type(query) is tuple:
        try:
            if all(type(k) is str and type(v) is str for k, v in query):
                return _text_query(query)
        except (TypeError, ValueError):  # not pairs: urlencode says what is wrong
            pass
    return urlencode(list(query), quote_via=quote)


@functools.lru_cache(maxsize=256)
def _text_query(query: tuple[tuple[str, str], ...]) -> str:
    return urlencode(list(query), quote_via=quote)


def load_configuration(kubeconfig: str | None = None, *,
                       context: str | None = None) -> Configuration:
    """Client configuration from `kubeconfig`, else $KUBECONFIG / ~/.kube/config, else
    the pod's service account (in-cluster)."""
    configuration = Configuration()
    # $KUBECONFIG may hold several paths; the client's loader merges them.
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if kubeconfig or os.environ.get("KUBECONFIG") or os.path.exists(path):
        kube_config.load_kube_config(config_file=path, context=context,
                                     client_configuration=configuration,
                                     persist_config=False)  # type: ignore[no-untyped-call]
    else:
        incluster_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    configuration.connection_pool_maxsize = POOL_SIZE
    return configuration


def _always() -> bool:
    return True


class Hooks:
    """The write fence, request observers and remembered answers one transport shares
    with its views."""

    def __init__(self) -> None:
        self.may_write: Callable[[], bool] = _always
        self.observers: tuple[Callable[[str, str], None], ...] = ()
        self.answers: Answers | None = None  # PATCH answers, see answers.py

    def observe(self, method: str, code: str) -> None:
        for observer in self.observers:
            observer(method, code)


class Transport:
    """Sends requests for one identity (ours, or an impersonated user)."""

    def __init__(self, api: ApiClient, *, user: str | None = None,
                 groups: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT,
                 hooks: Hooks | None = None, lean: bool = True,
                 wire: Wire | None = None) -> None:
        self._api = api
        self.user = user
        self.groups = tuple(groups)
        self._timeout = timeout
        self._connections: urllib3.HTTPConnectionPool | None = None
        self._hooks = hooks or Hooks()
        self._lean = lean  # ordinary requests through a `Wire` (else all through urllib3)
        self._wire = wire

    def fence_writes(self, may_write: Callable[[], bool]) -> None:
        """Ask `may_write` before every fenced request (see the module docstring)."""
        self._hooks.may_write = may_write

    def observe_requests(self, *observers: Callable[[str, str], None]) -> None:
        """Call each `observer(method, code)` after every request."""
        self._hooks.observers = observers

    def remember_answers(self, answers: Answers | None) -> None:
        """Keep every PATCH answer decoded in `answers` (see answers.py)."""
        self._hooks.answers = answers

    @property
    def answers(self) -> Answers | None:
        return self._hooks.answers

    @classmethod
    def connect(cls, kubeconfig: str | None = None, *, context: str | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> Transport:
        api = ApiClient(load_configuration(kubeconfig, context=context))
        api.user_agent = f"edict/{engine.__version__}"
        return cls(api, timeout=timeout)

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    def impersonating(self, user: str, groups: Sequence[str] = ()) -> Transport:
        """The same connection pool, sending Impersonate-User/-Group headers."""
        self._pool()  # resolves the wire the views share
        return Transport(self._api, user=user, groups=groups, timeout=self._timeout,
                         hooks=self._hooks, lean=self._lean, wire=self._wire)

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
        self._api.close()  # type: ignore[no-untyped-call]

    def request(self, method: str, path: str, *, query: Query = (), body: Any = None,
                content_type: str = JSON_CONTENT, fenced: bool = False) -> Any:
        """Send one request; return the parsed JSON body (None when empty).

        With `fenced`, raise `NotLeader` instead of sending when the fence says no."""
        if self._pool() is not None and self._wire is not None:
            return self._exchange(self._wire, method, path, query=query, body=body,
                                  content_type=content_type, fenced=fenced)
        response = self._send(method, path, query=query, body=body,
                              content_type=content_type, timeout=self._timeout,
                              fenced=fenced)
        try:
            data = response.data
        except _TRANSPORT_FAILURES as error:
            raise _as_transport_error(error) from error
        finally:
            response.release_conn()
        return jsontext.loads(data) if data else None

    def stream(self, path: str, *, query: Query, read_timeout: float,
               linger: float = 0.0) -> Body:
        """Open a long-running GET (a watch); the caller reads it and must close it.

        Straight to the API server, on a connection of its own through the wire
        (`Wire.stream`, lingering `linger` seconds between reads while busy); behind a
        proxy through urllib3 (read as it comes)."""
        if self._pool() is not None and self._wire is not None:
            return self._open_stream(self._wire, path, query=query,
                                     read_timeout=read_timeout, linger=linger)
        return Urllib3Body(self._send("GET", path, query=query, body=None,
                                      content_type=JSON_CONTENT,
                                      timeout=(self._timeout, read_timeout), watch=True))

    def _open_stream(self, wire: Wire, path: str, *, query: Query,
                     read_timeout: float, linger: float) -> Body:
        """`stream` on the lean path: same headers, hooks and errors as through urllib3."""
        target = path + ("?" + query_text(query) if query else "")
        try:
            opened = wire.stream(target, self._wire_headers(JSON_CONTENT),
                                 connect_timeout=self._timeout, timeout=read_timeout,
                                 linger=linger)
        except (BadAnswer, *_TRANSPORT_FAILURES) as failure:
            self._hooks.observe("WATCH", "error")
            raise transport_error(failure) from failure
        self._hooks.observe("WATCH", str(opened.status))
        if 200 <= opened.status <= 299:
            return opened
        raise api_error(opened.status, opened.body, retry_after=opened.retry_after)

    def _wire_headers(self, content_type: str) -> list[tuple[str, str]]:
        headers = list(self._request_headers(content_type).items())
        if self.user is not None:
            headers.append(("Impersonate-User", self.user))
            headers.extend(("Impersonate-Group", group) for group in self.groups)
        return headers

    def _exchange(self, wire: Wire, method: str, path: str, *, query: Query, body: Any,
                  content_type: str, fenced: bool) -> Any:
        """`request` on the lean path (engine.kube.wire): same headers, same body bytes,
        same hooks and errors as through urllib3."""
        headers = self._wire_headers(content_type)
        target = path + ("?" + query_text(query) if query else "")
        data = None if body is None else encode_body(body)
        if fenced and not self._hooks.may_write():  # as late as can be: see the docstring
            raise NotLeader(f"{method} {path} not sent: this instance does not hold the "
                            "leader lease (any more)", reason="NotLeader")
        for attempt in range(RETRIES_AFTER + 1):
            try:
                answer = wire.exchange(method, target, headers, data, timeout=self._timeout)
            except (BadAnswer, *_TRANSPORT_FAILURES) as failure:
                self._hooks.observe(method, "error")
                raise transport_error(failure) from failure
            if 200 <= answer.status <= 299:
                self._hooks.observe(method, str(answer.status))
                if not answer.body:
                    return None
                decoded = jsontext.loads(answer.body)
                answers = self._hooks.answers
                if answers is not None and method == "PATCH" and isinstance(decoded, dict):
                    answers.remember(answer.body, decoded)
                return decoded
            error = api_error(answer.status, answer.body, retry_after=answer.retry_after)
            if (method not in IDEMPOTENT or answer.status not in RETRY_AFTER_STATUS
                    or error.retry_after is None or error.retry_after > self._timeout
                    or attempt == RETRIES_AFTER):
                break
            time.sleep(max(0.0, error.retry_after))
        self._hooks.observe(method, str(answer.status))
        raise error

    def _headers(self, content_type: str) -> dict[str, str]:
        return {"Accept": JSON_CONTENT, "Content-Type": content_type}

    def _send(self, method: str, path: str, *, query: Query, body: Any, content_type: str,
              timeout: float | tuple[float, float], fenced: bool = False,
              watch: bool = False) -> urllib3.BaseHTTPResponse:
        pool = self._pool()
        if pool is not None:
            headers = self._request_headers(content_type)
            url = path + ("?" + query_text(query) if query else "")
        else:  # behind a proxy (or a seam client): the generated client's own path
            method, url, headers, body, _ = self._api.param_serialize(
                method, path, query_params=list(query) or None,
                header_params=self._headers(content_type), body=body,
                auth_settings=["BearerToken"])
        # Impersonate-Group repeats once per group, which a plain dict cannot say.
        merged = urllib3.HTTPHeaderDict(headers)
        if self.user is not None:
            merged.add("Impersonate-User", self.user)
            for group in self.groups:
                merged.add("Impersonate-Group", group)
        verb = "WATCH" if watch else method
        if fenced and not self._hooks.may_write():  # as late as can be: see the docstring
            raise NotLeader(f"{method} {path} not sent: this instance does not hold the "
                            "leader lease (any more)", reason="NotLeader")
        try:
            if pool is not None:
                response = self._urlopen(pool, method, url, body, merged, timeout)
            else:
                answer = self._api.call_api(method, url, header_params=merged, body=body,
                                            _request_timeout=timeout)
                response = answer.response
        except _TRANSPORT_FAILURES as error:
            self._hooks.observe(verb, "error")
            raise _as_transport_error(error) from error
        self._hooks.observe(verb, str(response.status))
        if 200 <= response.status <= 299:
            return response
        try:
            data = response.data
        except _TRANSPORT_FAILURES:
            data = b""
        finally:
            response.release_conn()
        raise api_error(response.status, data, retry_after=response.headers.get("Retry-After"))

    def _request_headers(self, content_type: str) -> dict[str, str]:
        headers = {**self._api.default_headers, **self._headers(content_type)}
        token = self._api.configuration.auth_settings().get("BearerToken")
        if token and token.get("value"):  # refreshed by the client when it expires
            headers[token["key"]] = token["value"]
        return headers

    @staticmethod
    def _urlopen(pool: urllib3.HTTPConnectionPool, method: str, url: str, body: Any,
                 headers: urllib3.HTTPHeaderDict, timeout: float | tuple[float, float]
                 ) -> urllib3.BaseHTTPResponse:
        """One request on the client's connection pool for the API server, without the
        generated client's per-request work (serialising the body by walking it, matching
        content types by regex, looking the pool up by URL): a quarter of the CPU a
        write costs this process."""
        data = None if body is None else encode_body(body)
        limits = (urllib3.Timeout(connect=timeout[0], read=timeout[1])
                  if isinstance(timeout, tuple) else urllib3.Timeout(total=timeout))
        return pool.urlopen(method, url, body=data, headers=headers, timeout=limits,
                            preload_content=False, redirect=False)

    def _pool(self) -> urllib3.HTTPConnectionPool | None:
        """The pool of connections to the API server; None behind a proxy, or when the
        client is not the official one (a test's seam speaks its two calls only)."""
        if self._connections is None:
            manager = getattr(getattr(self._api, "rest_client", None), "pool_manager", None)
            # exactly the plain manager: ProxyManager and SOCKSProxyManager (a PoolManager
            # subclass, not a ProxyManager) both reach the server through a proxy
            if type(manager) is not urllib3.PoolManager:
                return None
            self._connections = pool = manager.connection_from_url(self.host)
            if self._lean and self._wire is None:
                self._wire = Wire(lambda timeout: new_connection(pool, timeout),
                                  authority=_authority(pool), keep=POOL_SIZE)
        return self._connections


def new_connection(pool: urllib3.HTTPConnectionPool, timeout: float) -> socket.socket:
    """A socket connected (TLS and all) the way `pool` connects, for the wire to own."""
    connection = pool._new_conn()  # the pool's own settings: CA, client cert, server name
    if not isinstance(connection, HTTPConnection):
        raise TypeError(f"urllib3 made a {type(connection).__name__}")
    connection.timeout = timeout
    connection.connect()
    sock: socket.socket | None = connection.sock
    connection.sock = None  # ours now: the urllib3 object is dropped unclosed
    if sock is None:
        raise ConnectionError(f"no connection to {pool.host}:{pool.port}")
    return sock


def _authority(pool: urllib3.HTTPConnectionPool) -> str:
    """The Host header urllib3 sends: the port only when it is not the scheme's own."""
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    default = 443 if pool.scheme == "https" else 80
    return host if pool.port in (None, default) else f"{host}:{pool.port}"


def _as_transport_error(error: Exception) -> TransportError:
    if isinstance(error, ApiException):  # the client wraps TLS failures as status 0
        return transport_error(ConnectionError(str(error.reason)))
    return transport_error(error)
