"""`engine.kube.Cluster` and the runtime's informer and leader election on a real API server.

What a fake would hide is checked here: discovery of built-in kinds and CRDs, how the
server answers a failed guard (`test` op on resourceVersion), status subresources,
RBAC under impersonation, Events, watches, and Lease races between two electors.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from engine.kube import Cluster, EventType
from engine.kube.answers import Answers
from engine.kube.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Invalid,
    NotFound,
    UnknownKind,
)
from engine.kube.transport import Transport, load_configuration
from engine.objects import GVK, Obj, name_of
from engine.runtime.clock import RealClock
from engine.runtime.leader import LeaderElector, LeaderSettings
from engine.runtime.source.informer import EventHandler, Informer, InformerSettings
from tests.support import eventually

pytestmark = pytest.mark.cluster

CM = GVK("", "v1", "ConfigMap")
NAMESPACE = GVK("", "v1", "Namespace")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
EVENT = GVK("", "v1", "Event")
CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
WIDGET = GVK("test.edict.dev", "v1", "Widget")


@pytest.fixture(scope="module")
def cluster(kubeconfig: str) -> Iterator[Cluster]:
    api = Cluster.connect(kubeconfig)
    yield api
    api.close()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"kube-{uuid.uuid4().hex[:8]}"
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster.delete(NAMESPACE, None, name)


def configmap(namespace: str, name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {"test": "kube"}},
            "data": data}


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> Iterator[None]:
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    name = "widgets.test.edict.dev"
    cluster.create({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": "test.edict.dev", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                           "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": schema}}]}})

    def served() -> bool:
        try:
            cluster.resource_for(WIDGET)  # a miss re-reads discovery
        except UnknownKind:
            return False
        return True

    eventually(served, what="the Widget CRD to be served")
    yield
    cluster.delete(CRD, None, name)


# -- discovery -------------------------------------------------------------------------


def test_discovery_of_built_in_kinds(cluster: Cluster) -> None:
    configmaps = cluster.resource_for(CM)
    assert (configmaps.plural, configmaps.namespaced, configmaps.has_status) == (
        "configmaps", True, False)
    assert {"get", "list", "watch", "patch", "create", "delete"} <= configmaps.verbs
    deployments = cluster.resource_for(DEPLOYMENT)
    assert (deployments.plural, deployments.namespaced, deployments.has_status) == (
        "deployments", True, True)
    assert deployments.path(namespace="a", name="b", subresource="status") == (
        "/apis/apps/v1/namespaces/a/deployments/b/status")
    namespaces = cluster.resource_for(NAMESPACE)
    assert not namespaces.namespaced
    assert namespaces.path(namespace="ignored", name="x") == "/api/v1/namespaces/x"


def test_discovery_of_a_crd(cluster: Cluster, widget_crd: None) -> None:
    widgets = cluster.resource_for(WIDGET)
    assert (widgets.plural, widgets.namespaced, widgets.has_status) == ("widgets", True, True)


@pytest.mark.parametrize("gvk", [GVK("apps", "v1", "Bogus"), GVK("nope.edict.dev", "v9", "X")])
def test_unknown_kinds_are_named(cluster: Cluster, gvk: GVK) -> None:
    with pytest.raises(UnknownKind) as error:
        cluster.resource_for(gvk)
    assert isinstance(error.value, NotFound)
    assert repr(gvk.kind) in str(error.value) and repr(gvk.api_version) in str(error.value)


# -- reads and watches -----------------------------------------------------------------


def test_list_pages_and_watch_streams_a_real_event(cluster: Cluster, namespace: str) -> None:
    for i in range(5):
        cluster.create(configmap(namespace, f"cm-{i}", i=str(i)))
    items, version = cluster.list(CM, namespace=namespace, label_selector="test=kube", limit=2)
    assert sorted(name_of(o) for o in items) == [f"cm-{i}" for i in range(5)]
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in items)
    assert version

    stream = cluster.watch(CM, namespace=namespace, resource_version=version,
                           timeout_seconds=30)
    cluster.patch_merge(CM, namespace, "cm-3", {"data": {"i": "changed"}})
    with stream:
        event_type, obj = next(iter(stream))
    assert (event_type, name_of(obj), obj["data"]) == ("MODIFIED", "cm-3", {"i": "changed"})


def test_the_echo_of_a_patch_is_its_answer_byte_for_byte(kubeconfig: str,
                                                         namespace: str) -> None:
    """What `engine.kube.answers` relies on, on the real server: the watch event of our
    own PATCH carries exactly the answer's bytes, so the event is taken decoded; and
    what it gives equals what a watch that decodes every line gives."""
    writer = Cluster.connect(kubeconfig)
    plain = Cluster.connect(kubeconfig)
    answers = Answers()
    writer.remember_answers(answers)
    try:
        for i in range(4):
            writer.create(configmap(namespace, f"cm-{i}", text="é\u2028<&>"))
        items, version = writer.list(CM, namespace=namespace)
        written = []
        for obj in items:
            written.append(writer.patch_json(CM, namespace, name_of(obj), [
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": obj["metadata"]["resourceVersion"]},
                {"op": "add", "path": "/metadata/labels/edict.dev~1x", "value": "y"}]))
        # a write by the same client that is no PATCH, and a merge patch by another
        writer.replace({**written[0], "data": {"text": "replaced"}})
        plain.patch_merge(CM, namespace, "cm-1", {"data": {"text": "other"}})
        assert len(answers) == 4

        def events(cluster: Cluster) -> list[tuple[str, Obj]]:
            with cluster.watch(CM, namespace=namespace, resource_version=version,
                               timeout_seconds=30) as stream:
                seen: list[tuple[str, Obj]] = []
                for event in stream:
                    seen.append(event)
                    if len(seen) == 6:
                        return seen
            raise AssertionError(f"the watch ended after {seen}")

        taken = events(writer)
        assert answers.taken == 4 and len(answers) == 0
        assert [obj for _, obj in taken[:4]] == written  # the answers themselves...
        assert all(a is b for (_, a), b in zip(taken, written, strict=False))
        assert taken == events(plain)  # ... equal to the events decoded
        assert events(writer) == taken  # an answer is taken once: decoded again now
        assert answers.taken == 4
    finally:
        writer.close()
        plain.close()


def test_closing_a_watch_from_another_thread_ends_it_promptly(
        cluster: Cluster, namespace: str) -> None:
    _, version = cluster.list(CM, namespace=namespace)
    stream = cluster.watch(CM, namespace=namespace, resource_version=version,
                           timeout_seconds=60)
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 5


def test_missing_objects_are_not_found(cluster: Cluster, namespace: str) -> None:
    for call in (lambda: cluster.get(CM, namespace, "missing"),
                 lambda: cluster.patch_merge(CM, namespace, "missing", {"data": {}}),
                 lambda: cluster.delete(CM, namespace, "missing")):
        with pytest.raises(NotFound) as error:
            call()
        assert error.value.status == 404 and not error.value.retryable


# -- writes ----------------------------------------------------------------------------


def test_guarded_json_patch_fails_with_invalid_422_on_a_stale_version(
        cluster: Cluster, namespace: str) -> None:
    created = cluster.create(configmap(namespace, "guarded", a="1"))
    read_version = created["metadata"]["resourceVersion"]
    cluster.patch_merge(CM, namespace, "guarded", {"data": {"a": "someone else"}})

    def guarded(version: str) -> list[Obj]:
        return [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
                {"op": "replace", "path": "/data/a", "value": "ours"}]

    # A failed `test` op is 422 Invalid (not 409 Conflict), and the Status carries only
    # the generic message: a patch that is broken in itself (a path that does not
    # exist) is answered exactly the same way.
    with pytest.raises(Invalid) as error:
        cluster.patch_json(CM, namespace, "guarded", guarded(read_version))
    assert (error.value.status, error.value.reason) == (422, "Invalid")
    with pytest.raises(Invalid):
        cluster.patch_json(CM, namespace, "guarded",
                           [{"op": "replace", "path": "/no/such/path", "value": 1}])
    assert cluster.get(CM, namespace, "guarded")["data"] == {"a": "someone else"}

    current = cluster.get(CM, namespace, "guarded")["metadata"]["resourceVersion"]
    patched = cluster.patch_json(CM, namespace, "guarded", guarded(current))
    assert patched["data"] == {"a": "ours"}


def test_create_conflicts_and_stale_updates(cluster: Cluster, namespace: str) -> None:
    created = cluster.create(configmap(namespace, "taken"))
    with pytest.raises(AlreadyExists) as error:
        cluster.create(configmap(namespace, "taken"))
    assert isinstance(error.value, Conflict) and error.value.status == 409
    cluster.replace({**created, "data": {"b": "2"}})
    with pytest.raises(Conflict) as stale:
        cluster.replace({**created, "data": {"b": "3"}})  # created's resourceVersion
    assert stale.value.status == 409 and not isinstance(stale.value, AlreadyExists)
    # an object read back (with a resourceVersion) can be created again elsewhere
    copy = {**created, "metadata": {**created["metadata"], "name": "copy"}}
    copy["metadata"].pop("uid")
    assert name_of(cluster.create(copy)) == "copy"


def test_status_subresource_patch(cluster: Cluster, widget_crd: None, namespace: str) -> None:
    cluster.create({"apiVersion": "test.edict.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w", "namespace": namespace}, "spec": {"size": 1}})
    # the main resource ignores status when the status subresource is on
    ignored = cluster.patch_merge(WIDGET, namespace, "w", {"status": {"ready": True}})
    assert "status" not in ignored
    patched = cluster.patch_status_json(WIDGET, namespace, "w",
                                        [{"op": "add", "path": "/status", "value": {
                                            "ready": True}}])
    assert patched["status"] == {"ready": True}
    merged = cluster.patch_merge_status(WIDGET, namespace, "w", {"status": {"phase": "Up"}})
    assert merged["status"] == {"ready": True, "phase": "Up"}
    assert merged["spec"] == {"size": 1}


def test_an_event_about_a_trigger(cluster: Cluster, namespace: str) -> None:
    trigger = cluster.create(configmap(namespace, "trigger"))
    event = cluster.create_event(trigger, reason="RuleApplied",
                                 message="rule owner-label set metadata.labels.owner",
                                 type=EventType.NORMAL, instance="edict-0")
    stored = cluster.get(EVENT, namespace, name_of(event))
    assert stored["involvedObject"]["uid"] == trigger["metadata"]["uid"]
    assert stored["involvedObject"]["kind"] == "ConfigMap"
    assert (stored["reason"], stored["type"]) == ("RuleApplied", "Normal")
    assert stored["reportingComponent"] == "edict.dev/engine"
    warning = cluster.create_event(cluster.get(NAMESPACE, None, namespace), reason="Failed",
                                   message="x" * 5000, type=EventType.WARNING)
    assert warning["metadata"]["namespace"] == "default"  # cluster-scoped trigger
    assert len(warning["message"]) == 1024
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)  # held, posted later
    held = cluster.get(EVENT, namespace, name_of(cluster.create_event(
        trigger, reason="RuleApplied", message="m", when=when)))
    assert (held["firstTimestamp"], held["lastTimestamp"], held["eventTime"]) == (
        "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.678901Z")


def test_impersonated_service_account_without_rbac_is_forbidden(
        cluster: Cluster, namespace: str) -> None:
    account = cluster.impersonating_service_account(namespace, "nobody")
    assert account.user == f"system:serviceaccount:{namespace}:nobody"
    with pytest.raises(Forbidden) as error:
        account.list(CM, namespace=namespace)
    assert "system:serviceaccount:" in str(error.value) and not error.value.retryable
    with pytest.raises(Forbidden):
        account.create(configmap(namespace, "not-allowed"))
    assert cluster.list(CM, namespace=namespace, label_selector="test=kube")[0] == []


def test_an_unreachable_server_is_a_retryable_connection_failure(
        kubeconfig: str, tmp_path: Path) -> None:
    config: dict[str, Any] = json.loads(Path(kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    broken = tmp_path / "kubeconfig"
    broken.write_text(json.dumps(config))
    with pytest.raises(ConnectionFailed) as error:
        Cluster.connect(str(broken)).get(CM, "default", "x")
    assert error.value.retryable and error.value.status == 0


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("value", call())
    except ApiError as error:
        return (type(error), error.status, error.reason, error.message)


def test_the_lean_path_answers_as_urllib3_does(kubeconfig: str, namespace: str) -> None:
    """Every request but a watch goes through `engine.kube.wire`; urllib3 (`lean=False`,
    the path of watches and proxies) must give the same values and the same errors."""
    clients = [Cluster(Transport(ApiClient(load_configuration(kubeconfig)), lean=lean))
               for lean in (True, False)]
    created = clients[0].create(configmap(namespace, "both", a="1"))
    stale = created["metadata"]["resourceVersion"]
    clients[0].patch_merge(CM, namespace, "both", {"data": {"a": "2"}})
    guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": stale},
               {"op": "replace", "path": "/data/a", "value": "3"}]
    calls: list[Callable[[Cluster], Any]] = [
        lambda c: c.get(CM, namespace, "both"),
        lambda c: c.list(CM, namespace=namespace, limit=1)[0],
        lambda c: c.get(CM, namespace, "missing"),
        lambda c: c.create(configmap(namespace, "both")),
        lambda c: c.replace(created),
        lambda c: c.patch_json(CM, namespace, "both", guarded),
        lambda c: c.impersonating_service_account(namespace, "nobody").list(
            CM, namespace=namespace),
        lambda c: c.get_path("/version"),
    ]
    for call in calls:
        lean, generic = (outcome(lambda c=client, f=call: f(c)) for client in clients)
        assert lean == generic
    assert outcome(lambda: calls[3](clients[0]))[0] is AlreadyExists
    assert outcome(lambda: calls[5](clients[0]))[:3] == (Invalid, 422, "Invalid")
    # a write answered alike: each path patches and reads back the other's change
    for number, client in enumerate(clients):
        patched = client.patch_merge(CM, namespace, "both", {"data": {"by": str(number)}})
        assert clients[1 - number].get(CM, namespace, "both") == patched
    for client in clients:
        client.close()


# -- runtime on the real server --------------------------------------------------------


def test_informer_syncs_and_follows_changes(cluster: Cluster, namespace: str) -> None:
    cluster.create(configmap(namespace, "before", v="1"))
    seen: list[str] = []
    lock = threading.Lock()

    def record(text: str) -> None:
        with lock:
            seen.append(text)

    informer = Informer(CM, source=cluster, clock=RealClock(), namespace=namespace,
                        settings=InformerSettings(resync_period=0, watch_timeout=30))
    informer.add_handler(EventHandler(
        on_add=lambda o: record(f"add {name_of(o)}"),
        on_update=lambda old, new: record(f"update {name_of(new)} {new['data']}"),
        on_delete=lambda o: record(f"delete {name_of(o)}")))
    informer.start()
    try:
        assert informer.wait_synced(timeout=30)
        assert informer.store.get(namespace, "before") is not None
        cluster.patch_merge(CM, namespace, "before", {"data": {"v": "2"}})
        cluster.create(configmap(namespace, "after"))
        cluster.delete(CM, namespace, "after")
        eventually(lambda: "delete after" in seen, what="the delete event")
        assert "update before {'v': '2'}" in seen and "add after" in seen
        assert informer.store.get(namespace, "before")["data"] == {"v": "2"}  # type: ignore[index]
        assert informer.store.get(namespace, "after") is None
    finally:
        informer.stop()


def test_two_electors_one_leader_and_release_hands_over(
        cluster: Cluster, namespace: str) -> None:
    leading: dict[str, bool] = {}

    def elector(identity: str) -> LeaderElector:
        settings = LeaderSettings(namespace=namespace, name="edict-leader", identity=identity,
                                  lease_duration=4, renew_deadline=3, retry_period=0.25)
        return LeaderElector(api=cluster, settings=settings, clock=RealClock(),
                             on_started_leading=lambda: leading.__setitem__(identity, True),
                             on_stopped_leading=lambda: leading.__setitem__(identity, False))

    a, b = elector("a"), elector("b")
    a.start()
    b.start()
    try:
        eventually(lambda: a.is_leader or b.is_leader, what="a leader")
        first, second = (a, b) if a.is_leader else (b, a)
        renewals: set[str] = set()
        two_leaders: list[str] = []

        def renewed_by_one_leader() -> bool:
            if not first.is_leader or second.is_leader:
                two_leaders.append(f"first {first.is_leader}, second {second.is_leader}")
            lease = cluster.get_lease(namespace, "edict-leader")
            renewals.add(str(lease["spec"].get("renewTime")))
            return len(renewals) >= 4

        # several renewals observed on the server (not a sleep): still one leader
        eventually(renewed_by_one_leader, timeout=10, what="three renewals of the lease")
        assert two_leaders == []
        lease = cluster.get_lease(namespace, "edict-leader")
        assert lease["spec"]["holderIdentity"] == ("a" if first is a else "b")

        released = time.monotonic()
        first.stop()
        eventually(lambda: second.is_leader, timeout=10, what="the other elector to take over")
        assert time.monotonic() - released < 4, "release must beat the lease's expiry"
        spec = cluster.get_lease(namespace, "edict-leader")["spec"]
        assert spec["leaseTransitions"] >= 1
        assert not first.is_leader
    finally:
        a.stop()
        b.stop()
