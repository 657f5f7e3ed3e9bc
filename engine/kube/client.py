"""`Cluster`: the engine's whole view of the Kubernetes API, in plain JSON dicts.

The live runtime (informers, the reconciler, leader election, `edict run`) talks to the
API server only through this class; nothing outside `engine.kube` imports the
official client. Every method takes a `GVK`, finds its REST resource by discovery,
sends one request (or one per page) through `Transport` and returns dicts as the
server sent them; every failure is an `engine.kube.errors.ApiError` subclass.

Writes follow kopf's guarded style: the caller leads a JSON patch with a `test` of
`/metadata/resourceVersion`, status goes to the status subresource in its own request,
deletes propagate in the background. Every write but the Lease's passes the write
fence leader election installs (`fence_writes`); `observe_requests` reports every
request for metrics. A list pages with `limit`; when the continue token of a later
page has expired (410: etcd compacted meanwhile) it lists again in one request, as
client-go's pager does.

A `Cluster` is safe to use from several threads. `impersonating(...)` gives a view that
sends the same requests as another user (sharing connections and discovery), which
is how a namespaced RuleSet's writes run under its own ServiceAccount's RBAC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from engine.objects import GVK, Obj, meta

from .answers import Answers
from .discovery import Discovery, Resource
from .errors import Gone
from .events import EventType, event_for
from .transport import JSON_PATCH, MERGE_PATCH, Query, Transport
from .watch import WatchStream

LEASE = GVK("coordination.k8s.io", "v1", "Lease")
EVENT = GVK("", "v1", "Event")

WATCH_READ_MARGIN = 30.0
"""Seconds a watch read may stay silent beyond the server's own timeoutSeconds."""


# Every write names Edict, so `kubectl get -o yaml --show-managed-fields` shows what it
# owns (DESIGN.md, "The live engine").
FIELD_MANAGER = (("fieldManager", "edict"),)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Cluster:
    """One API server, as one identity."""

    def __init__(self, transport: Transport, *, discovery: Discovery | None = None,
                 wall_clock: Callable[[], datetime] = _utc_now) -> None:
        self._transport = transport
        self._discovery = discovery or Discovery(transport)
        self._wall_clock = wall_clock

    @classmethod
    def connect(cls, kubeconfig: str | None = None, *, context: str | None = None,
                as_user: str | None = None, as_groups: Sequence[str] = ()) -> Cluster:
        """From a kubeconfig path, else $KUBECONFIG / ~/.kube/config, else in-cluster."""
        cluster = cls(Transport.connect(kubeconfig, context=context))
        return cluster.impersonating(as_user, as_groups) if as_user else cluster

    # -- identity -----------------------------------------------------------------

    @property
    def user(self) -> str | None:
        """The impersonated user, or None when requests go out as ourselves."""
        return self._transport.user

    def impersonating(self, user: str, groups: Sequence[str] = ()) -> Cluster:
        """The same cluster, every request sent as `user` (in `groups`)."""
        return Cluster(self._transport.impersonating(user, groups),
                       discovery=self._discovery, wall_clock=self._wall_clock)

    def impersonating_service_account(self, namespace: str, name: str) -> Cluster:
        """Requests as ServiceAccount `namespace/name`; the server adds its groups."""
        return self.impersonating(f"system:serviceaccount:{namespace}:{name}")

    def close(self) -> None:
        self._transport.close()

    def fence_writes(self, may_write: Callable[[], bool]) -> None:
        """Every write but the Lease's first asks `may_write`, and raises `NotLeader`
        instead of being sent when it says no (shared with impersonating views)."""
        self._transport.fence_writes(may_write)

    def remember_answers(self, answers: Answers | None) -> None:
        """Keep the decoded answer of every PATCH in `answers`, for this cluster's
        watches to take instead of decoding the echo of that write (answers.py);
        shared with impersonating views. The objects PATCH methods return are then
        shared with those watches' readers: do not mutate them."""
        self._transport.remember_answers(answers)

    def forget_answers(self, answers: Answers) -> None:
        """Stop remembering in `answers`, if those are still the ones remembered in."""
        if self._transport.answers is answers:
            self._transport.remember_answers(None)

    def observe_requests(self, *observers: Callable[[str, str], None]) -> None:
        """Call each `observer(method, code)` after every request ("WATCH" for watches,
        code "error" when no answer came)."""
        self._transport.observe_requests(*observers)

    # -- discovery ----------------------------------------------------------------

    def resource_for(self, gvk: GVK) -> Resource:
        """Plural, scope, verbs and status subresource of `gvk`; raises `UnknownKind`."""
        return self._discovery.resource_for(gvk)

    def known_resource(self, gvk: GVK) -> Resource | None:
        """What `resource_for` answered for `gvk` before, if anything; never a request."""
        return self._discovery.cached(gvk)

    # -- reads --------------------------------------------------------------------

    def get(self, gvk: GVK, namespace: str | None, name: str) -> Obj:
        path = self.resource_for(gvk).path(namespace=namespace, name=name)
        return self._object(self._transport.request("GET", path))

    def list(self, gvk: GVK, *, namespace: str | None = None,
             label_selector: str | None = None, resource_version: str | None = None,
             limit: int | None = None, transform: Callable[[Obj], Obj] | None = None
             ) -> tuple[list[Obj], str]:
        """Every object (all pages of `limit`) and the list's resourceVersion.

        Items get `apiVersion`/`kind` filled in (the server leaves them out of lists).
        `transform` is applied to each item as its page arrives, so what is kept of a
        long list is never all pages decoded in full at once; meanwhile the next page is
        already being fetched (one page ahead, on a thread of its own), so the server
        prepares it while this process works on the last one.
        """
        path = self.resource_for(gvk).path(namespace=namespace)

        def fetch(token: str, limit: int | None) -> Obj:
            query: list[tuple[str, str]] = []
            if label_selector:
                query.append(("labelSelector", label_selector))
            if limit:
                query.append(("limit", str(limit)))
            if token:
                query.append(("continue", token))
            elif resource_version is not None:
                query.append(("resourceVersion", resource_version))
            return self._object(self._transport.request("GET", path, query=query))

        items: list[Obj] = []
        token = ""
        ahead: ThreadPoolExecutor | None = None
        pending: Future[Obj] | None = None
        try:
            while True:
                try:
                    body = pending.result() if pending is not None else fetch(token, limit)
                except Gone:
                    if not token:
                        raise
                    # the continue token expired between two pages: everything, at once
                    items, token, limit, pending = [], "", None, None
                    continue
                list_meta = meta(body)
                token = str(list_meta.get("continue") or "")
                pending = None
                if token and transform is not None:
                    if ahead is None:
                        ahead = ThreadPoolExecutor(1, thread_name_prefix=f"list-{gvk.kind}")
                    pending = ahead.submit(fetch, token, limit)
                for item in body.get("items") or ():
                    item.setdefault("apiVersion", gvk.api_version)
                    item.setdefault("kind", gvk.kind)
                    items.append(item if transform is None else transform(item))
                if not token:
                    return items, str(list_meta.get("resourceVersion") or "")
        finally:
            if ahead is not None:  # a page fetched for nothing (transform failed) is dropped
                ahead.shutdown(wait=False, cancel_futures=True)

    def watch(self, gvk: GVK, *, resource_version: str, timeout_seconds: int,
              namespace: str | None = None, label_selector: str | None = None,
              allow_bookmarks: bool = True, linger: float = 0.0) -> WatchStream:
        """Changes after `resource_version`, streamed; ends after `timeout_seconds`.

        Iterating raises `Gone` when the version is too old (list again). While events
        come faster than one per `linger` seconds, they are read `linger` apart, all
        that arrived at once (see `engine.kube.wire`).
        """
        path = self.resource_for(gvk).path(namespace=namespace)
        query: Query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
            ("allowWatchBookmarks", "true" if allow_bookmarks else "false"),
            *([("labelSelector", label_selector)] if label_selector else []),
        ]
        body = self._transport.stream(path, query=query,
                                      read_timeout=timeout_seconds + WATCH_READ_MARGIN,
                                      linger=linger)
        return WatchStream(body, answers=self._transport.answers)

    def get_path(self, path: str, *, query: Query = ()) -> Any:
        """GET a path that is no resource (``/openapi/v3``, ``/version``): parsed JSON."""
        return self._transport.request("GET", path, query=query)

    # -- writes -------------------------------------------------------------------

    def create(self, obj: Obj, *, fenced: bool = True) -> Obj:
        """Create `obj` (its apiVersion/kind/namespace say where); `AlreadyExists` if taken.

        A `metadata.resourceVersion` in `obj` is left out of the request: the API server
        answers it with a 500 (not retryable in any useful sense), never with a 4xx.
        """
        gvk = GVK.of(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        m = meta(obj)
        if "resourceVersion" in m:
            m = {key: value for key, value in m.items() if key != "resourceVersion"}
            obj = {**obj, "metadata": m}
        path = self.resource_for(gvk).path(namespace=m.get("namespace"))
        return self._object(self._transport.request("POST", path, body=obj,
                                                    query=FIELD_MANAGER, fenced=fenced))

    def replace(self, obj: Obj, *, fenced: bool = True) -> Obj:
        """PUT `obj`; with metadata.resourceVersion set, `Conflict` if it changed."""
        gvk = GVK.of(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        m = meta(obj)
        path = self.resource_for(gvk).path(namespace=m.get("namespace"), name=m.get("name"))
        return self._object(self._transport.request("PUT", path, body=obj,
                                                    query=FIELD_MANAGER, fenced=fenced))

    def delete(self, gvk: GVK, namespace: str | None, name: str, *,
               uid: str | None = None, resource_version: str | None = None) -> Obj:
        """Delete with background propagation, optionally only if uid/version still match."""
        path = self.resource_for(gvk).path(namespace=namespace, name=name)
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                   "propagationPolicy": "Background"}
        preconditions = {key: value for key, value in
                         (("uid", uid), ("resourceVersion", resource_version)) if value}
        if preconditions:
            options["preconditions"] = preconditions
        return self._object(self._transport.request("DELETE", path, body=options,
                                                    fenced=True))

    def patch_json(self, gvk: GVK, namespace: str | None, name: str,
                   ops: Sequence[Obj]) -> Obj:
        """Apply RFC 6902 `ops`. A failed `test` op is answered `Invalid` (422)."""
        return self._patch(gvk, namespace, name, list(ops), JSON_PATCH, None)

    def patch_status_json(self, gvk: GVK, namespace: str | None, name: str,
                          ops: Sequence[Obj]) -> Obj:
        """RFC 6902 `ops` on the status subresource."""
        return self._patch(gvk, namespace, name, list(ops), JSON_PATCH, "status")

    def patch_merge(self, gvk: GVK, namespace: str | None, name: str, patch: Obj) -> Obj:
        """RFC 7386 merge patch (null deletes a key)."""
        return self._patch(gvk, namespace, name, patch, MERGE_PATCH, None)

    def patch_merge_status(self, gvk: GVK, namespace: str | None, name: str,
                           patch: Obj) -> Obj:
        """RFC 7386 merge patch of the status subresource."""
        return self._patch(gvk, namespace, name, patch, MERGE_PATCH, "status")

    def create_event(self, involved: Obj, *, reason: str, message: str,
                     type: EventType = EventType.NORMAL, action: str = "",
                     instance: str = "", when: datetime | None = None) -> Obj:
        """A core/v1 Event about `involved` (see `engine.kube.events`), stamped `when`
        it happened (now, if not given)."""
        return self.create(event_for(involved, reason=reason, message=message, type=type,
                                     when=when or self._wall_clock(), action=action,
                                     instance=instance))

    # -- leases (leader election) -------------------------------------------------

    def get_lease(self, namespace: str, name: str) -> Obj:
        return self.get(LEASE, namespace, name)

    # Lease writes are never fenced: they are how an instance gets to write at all.

    def create_lease(self, lease: Obj) -> Obj:
        return self.create({"apiVersion": LEASE.api_version, "kind": LEASE.kind, **lease},
                           fenced=False)

    def update_lease(self, lease: Obj) -> Obj:
        return self.replace({"apiVersion": LEASE.api_version, "kind": LEASE.kind, **lease},
                            fenced=False)

    # -- helpers ------------------------------------------------------------------

    def _patch(self, gvk: GVK, namespace: str | None, name: str, body: Any,
               content_type: str, subresource: str | None) -> Obj:
        resource = self.resource_for(gvk)
        path = resource.path(namespace=namespace, name=name, subresource=subresource)
        return self._object(self._transport.request("PATCH", path, body=body,
                                                    content_type=content_type,
                                                    query=FIELD_MANAGER, fenced=True))

    @staticmethod
    def _object(body: Any) -> Obj:
        return body if isinstance(body, dict) else {}
