"""The two webhook configurations the leader keeps, and the TLS server every replica runs."""

from __future__ import annotations

import base64
import copy
import datetime
import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.evaluate.engine import Engine
from engine.evaluate.request import Phase
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.kube.discovery import Resource
from engine.kube.errors import Conflict, NotFound, UnknownKind
from engine.objects import GVK
from engine.rules import model as m
from engine.rules.load import parse_rule_set
from engine.runtime.admission.admission import AdmissionHandler
from engine.runtime.admission.webhook_certs import CertPolicy, fresh, ssl_context
from engine.runtime.admission.webhook_config import (
    MUTATING,
    VALIDATING,
    Endpoint,
    WebhookConfigs,
    WebhookSettings,
    configuration,
    holds,
    needed,
)
from engine.runtime.admission.webhook_server import WebhookServer, probe
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics
from tests.support import eventually

POD, CONFIGMAP = GVK("", "v1", "Pod"), GVK("", "v1", "ConfigMap")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
SETTINGS = WebhookSettings(endpoint=Endpoint(url="https://127.0.0.1:9443"),
                           own_namespace="edict-system", timeout_seconds=3)


def rule_set(name: str, rules: list[dict[str, Any]], **spec: Any) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


def mutate(name: str, kind: str = "ConfigMap", **extra: Any) -> dict[str, Any]:
    match = extra.pop("match", {"resources": [{"apiVersion": "v1", "kinds": [kind]}]})
    return {"name": name, "match": match,
            "mutate": {"template": {"metadata": {"labels": {"a": "b"}}}}, **extra}


def validate(name: str, kind: str = "ConfigMap") -> dict[str, Any]:
    return {"name": name, "match": {"resources": [{"apiVersion": "v1", "kinds": [kind]}]},
            "validate": {"expression": "true"}}


def generate(name: str) -> dict[str, Any]:
    return {"name": name, "match": {"resources": [{"apiVersion": "v1", "kinds": ["Secret"]}]},
            "generate": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "x"}}}}


PLURALS = {POD: "pods", CONFIGMAP: "configmaps", DEPLOYMENT: "deployments",
           GVK("", "v1", "Service"): "services"}


def plural(gvk: GVK) -> str | None:
    return PLURALS.get(gvk, gvk.kind.lower() + "s")


def test_each_webhook_asks_only_for_what_the_rules_need() -> None:
    engine = Engine([
        rule_set("enforced", [mutate("cm"), mutate("off", "Service", admission=False),
                              validate("pods", "Pod"), generate("children")]),
        rule_set("strict", [mutate("pods", match={
            "resources": [{"apiVersion": "v1", "kinds": ["Pod"]}], "podTemplates": True})],
            admission={"failurePolicy": "Fail"}),
        rule_set("audited", [mutate("svc", "Service")], mode="Audit"),
        rule_set("asleep", [mutate("ns", "Namespace")], mode="Suspended"),
        rule_set("broken", [validate("x", "Secret") | {"condition": "object.("}]),
    ])
    mutating = needed(engine, Phase.MUTATE)
    assert mutating == {CONFIGMAP: m.FailurePolicy.IGNORE, POD: m.FailurePolicy.FAIL,
                        **dict.fromkeys(m.POD_TEMPLATES, m.FailurePolicy.FAIL)}
    assert needed(engine, Phase.VALIDATE) == {POD: m.FailurePolicy.IGNORE,
                                              GVK("", "v1", "Service"): m.FailurePolicy.IGNORE}


def test_a_configuration_is_safe_by_construction() -> None:
    kinds = {CONFIGMAP: m.FailurePolicy.IGNORE, POD: m.FailurePolicy.FAIL,
             DEPLOYMENT: m.FailurePolicy.FAIL}
    config = configuration(Phase.MUTATE, kinds, plural=plural, settings=SETTINGS,
                           ca_bundle=b"CA")
    assert (config["apiVersion"], config["kind"], config["metadata"]["name"]) == (
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "edict")
    ignore, fail = config["webhooks"]
    assert (ignore["name"], ignore["failurePolicy"]) == ("mutate.edict.dev", "Ignore")
    assert (fail["name"], fail["failurePolicy"]) == ("mutate-fail.edict.dev", "Fail")
    assert fail["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
         "operations": ["CREATE", "UPDATE"], "scope": "*"},
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"],
         "operations": ["CREATE", "UPDATE"], "scope": "*"}]
    for webhook in config["webhooks"]:
        assert webhook["sideEffects"] == "None"
        assert webhook["matchPolicy"] == "Equivalent"
        assert webhook["timeoutSeconds"] == 3
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["reinvocationPolicy"] == "IfNeeded"
        assert webhook["namespaceSelector"] == {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["edict-system", "kube-system"]}]}
        assert webhook["clientConfig"] == {"url": "https://127.0.0.1:9443/mutate",
                                           "caBundle": base64.b64encode(b"CA").decode()}
    validating = configuration(Phase.VALIDATE, {}, plural=plural, settings=SETTINGS,
                               ca_bundle=b"CA")
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    assert validating["webhooks"] == [], "kept, empty, when no rule needs it"


def test_in_a_cluster_the_webhook_is_reached_through_its_service() -> None:
    endpoint = Endpoint(service_namespace="edict-system")
    assert endpoint.client_config(Phase.VALIDATE, b"CA") == {
        "service": {"namespace": "edict-system", "name": "edict-webhook",
                    "path": "/validate", "port": 443},
        "caBundle": base64.b64encode(b"CA").decode()}


def test_holds_ignores_the_servers_defaults_but_not_changes() -> None:
    wanted = {"a": 1, "list": [{"x": 1}], "map": {"k": "v"}}
    assert holds({"a": 1, "list": [{"x": 1, "default": 0}], "map": {"k": "v"}, "more": 2},
                 wanted)
    assert not holds({"a": 2, "list": [{"x": 1}], "map": {"k": "v"}}, wanted)
    assert not holds({"a": 1, "list": [{"x": 1}, {"x": 2}], "map": {"k": "v"}}, wanted)
    assert not holds({"a": 1, "list": [{"x": 1}]}, wanted)


class ConfigApi:
    """The two configurations on an API server that adds defaults; anything else fails."""

    def __init__(self) -> None:
        self.stored: dict[GVK, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.conflict_once = False

    def resource_for(self, gvk: GVK) -> Resource:
        if gvk.kind == "Unknown":
            raise UnknownKind("no such kind")
        return Resource(gvk, PLURALS.get(gvk, gvk.kind.lower() + "s"), True,
                        frozenset(), False)

    def get(self, gvk: GVK, namespace: str | None, name: str) -> dict[str, Any]:
        assert gvk in (MUTATING, VALIDATING) and namespace is None and name == "edict"
        if gvk not in self.stored:
            raise NotFound("not found")
        return copy.deepcopy(self.stored[gvk])

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._store(obj, "create")

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.conflict_once:
            self.conflict_once = False
            raise Conflict("changed")
        return self._store(obj, "replace")

    def _store(self, obj: dict[str, Any], verb: str) -> dict[str, Any]:
        gvk = GVK.of(obj["apiVersion"], obj["kind"])
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(len(self.writes) + 1)
        for webhook in stored["webhooks"]:  # what the API server defaults
            webhook.setdefault("objectSelector", {})
            if "service" in webhook["clientConfig"]:
                webhook["clientConfig"]["service"].setdefault("port", 443)
        self.stored[gvk] = stored
        self.writes.append(f"{verb} {gvk.kind}")
        return stored

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


def test_sync_writes_only_when_the_rule_sets_need_something_else() -> None:
    api = ConfigApi()
    configs = WebhookConfigs(api, SETTINGS, ca_bundle=lambda: b"CA")  # type: ignore[arg-type]
    engine = Engine([rule_set("a", [mutate("cm"), validate("pods", "Pod")])])
    assert configs.sync(engine)
    assert api.writes == ["create MutatingWebhookConfiguration",
                          "create ValidatingWebhookConfiguration"]
    assert configs.sync(engine)
    assert len(api.writes) == 2, "steady state: the server's defaults are no difference"
    api.stored[MUTATING]["webhooks"][0]["failurePolicy"] = "Fail"  # someone edits it
    configs.sync(engine)
    assert api.writes[2:] == ["replace MutatingWebhookConfiguration"]
    assert api.stored[MUTATING]["webhooks"][0]["failurePolicy"] == "Ignore"
    api.conflict_once = True
    assert not configs.sync(Engine([rule_set("a", [mutate("svc", "Service")])])), (
        "a sync that left a configuration behind says so")
    assert api.writes[3:] == ["replace ValidatingWebhookConfiguration"], (
        "a conflict leaves that one for the next sync, the other is written")
    assert configs.sync(Engine([rule_set("a", [mutate("svc", "Service")])]))
    assert api.writes[4:] == ["replace MutatingWebhookConfiguration"]
    assert api.stored[MUTATING]["webhooks"][0]["rules"][0]["resources"] == ["services"]
    assert api.stored[VALIDATING]["webhooks"] == []


# -- the server ------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[WebhookServer, ssl.SSLContext, list[ssl.SSLContext]]]:
    """A webhook server on a free port with a certificate for 127.0.0.1, and a client
    context that trusts only that certificate's CA."""
    material = fresh(["127.0.0.1"], datetime.datetime.now(datetime.UTC), CertPolicy())
    contexts = [ssl_context(material.cert, material.key)]
    rule = rule_set("a", [mutate("cm")])
    current = Current(Engine([rule]), {rule.ref: rule})
    handler = AdmissionHandler(current=lambda: current, world=ManifestWorld([]),
                               metrics=EngineMetrics(CollectorRegistry()))
    server = WebhookServer(host="127.0.0.1", port=0, handler=handler, tls=lambda: contexts[-1])
    server.start()
    client = ssl.create_default_context(cadata=material.bundle.decode())
    try:
        yield server, client, contexts
    finally:
        server.stop()


REVIEW = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "request": {"uid": "u", "operation": "CREATE", "namespace": "n",
                                 "object": {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "c"}}}})


def test_the_server_answers_reviews_over_verified_tls_on_one_connection(
        served: tuple[WebhookServer, ssl.SSLContext, list[ssl.SSLContext]]) -> None:
    server, client, _ = served
    host, port = server.address
    connection = http.client.HTTPSConnection(host, port, context=client, timeout=5)
    try:
        for _ in range(2):  # kept alive, as the API server keeps its connections
            connection.request("POST", "/mutate", body=REVIEW,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == 200
            assert body["response"]["uid"] == "u" and body["response"]["patchType"] == (
                "JSONPatch")
        connection.request("POST", "/validate", body="not json")
        response = connection.getresponse()
        assert (response.status, response.read()[:9]) == (400, b'{"error":')
        connection.request("POST", "/elsewhere", body=REVIEW)
        response = connection.getresponse()
        assert response.status == 404
        response.read()
    finally:
        connection.close()
    assert probe(host, port)
    assert server.serving


def test_a_new_certificate_is_served_from_the_next_connection(
        served: tuple[WebhookServer, ssl.SSLContext, list[ssl.SSLContext]]) -> None:
    server, client, contexts = served
    rotated = fresh(["127.0.0.1"], datetime.datetime.now(datetime.UTC), CertPolicy())
    contexts.append(ssl_context(rotated.cert, rotated.key))
    host, port = server.address
    connection = http.client.HTTPSConnection(host, port, context=client, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("GET", "/healthz")
    trusting = ssl.create_default_context(cadata=rotated.bundle.decode())
    connection = http.client.HTTPSConnection(host, port, context=trusting, timeout=5)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    connection.close()


def test_webhooks_serve_on_every_replica_and_only_the_leader_writes_configurations(
        tmp_path: Path) -> None:
    from engine.runtime.admission.webhooks import WebhookOptions, Webhooks

    material = fresh(["127.0.0.1"], datetime.datetime.now(datetime.UTC), CertPolicy())
    (tmp_path / "tls.crt").write_bytes(material.cert)
    (tmp_path / "tls.key").write_bytes(material.key)
    rule = rule_set("a", [mutate("cm")])
    current = Current(Engine([rule]), {rule.ref: rule})
    api, leading = ConfigApi(), [False]
    webhooks = Webhooks(api, WebhookOptions(  # type: ignore[arg-type]
        address=("127.0.0.1", 0), endpoint=Endpoint(url="https://127.0.0.1:1"),
        own_namespace="edict-system", cert_dir=str(tmp_path), resync=0.05),
        current=lambda: current, world=ManifestWorld([]),
        metrics=EngineMetrics(CollectorRegistry()), loaded=lambda: True,
        leading=lambda: leading[0])
    assert webhooks.ready() == (False, "the admission webhook is not serving yet "
                                       "(its certificate?)")
    webhooks.start()
    try:
        eventually(lambda: webhooks.serving, what="serving")
        assert webhooks.ready() == (True, "ok") and webhooks.alive() == (True, "ok")
        assert probe(*webhooks.server.address)
        assert api.writes == [], "a standby serves but writes nothing"
        leading[0] = True
        eventually(lambda: len(api.writes) == 2, what="the leader's configurations")
        bundle = api.stored[MUTATING]["webhooks"][0]["clientConfig"]["caBundle"]
        assert base64.b64decode(bundle) == material.cert
    finally:
        webhooks.stop()
    assert not webhooks.server.serving


def test_a_configuration_write_that_failed_is_tried_again_within_seconds(
        tmp_path: Path) -> None:
    """Not at the next resync (an hour here): a conflict or an API server away for a
    moment must not leave the webhooks asking for the old kinds that long."""
    from engine.runtime.admission.webhooks import WebhookOptions, Webhooks

    material = fresh(["127.0.0.1"], datetime.datetime.now(datetime.UTC), CertPolicy())
    (tmp_path / "tls.crt").write_bytes(material.cert)
    (tmp_path / "tls.key").write_bytes(material.key)
    rule = rule_set("a", [mutate("cm")])
    current = [Current(Engine([rule]), {rule.ref: rule})]
    api = ConfigApi()
    webhooks = Webhooks(api, WebhookOptions(  # type: ignore[arg-type]
        address=("127.0.0.1", 0), endpoint=Endpoint(url="https://127.0.0.1:1"),
        own_namespace="edict-system", cert_dir=str(tmp_path), resync=3600.0),
        current=lambda: current[-1], world=ManifestWorld([]),
        metrics=EngineMetrics(CollectorRegistry()), loaded=lambda: True,
        leading=lambda: True)
    webhooks.start()
    try:
        eventually(lambda: len(api.writes) == 2, what="the first configurations")
        changed = rule_set("a", [mutate("svc", "Service")])
        current.append(Current(Engine([changed]), {changed.ref: changed}))
        api.conflict_once = True
        webhooks.sync()  # as after a rebuild: the mutating write meets a conflict
        assert api.writes[2:] == [] and not api.conflict_once, "the write refused"
        eventually(lambda: api.writes[2:] == ["replace MutatingWebhookConfiguration"],
                   timeout=5, what="the configuration left behind, written again")
        assert api.stored[MUTATING]["webhooks"][0]["rules"][0]["resources"] == [
            "services"]
    finally:
        webhooks.stop()


def test_stopping_during_a_configuration_write_does_not_wait_for_the_resync(
        tmp_path: Path) -> None:
    from engine.runtime.admission.webhooks import WebhookOptions, Webhooks

    material = fresh(["127.0.0.1"], datetime.datetime.now(datetime.UTC), CertPolicy())
    (tmp_path / "tls.crt").write_bytes(material.cert)
    (tmp_path / "tls.key").write_bytes(material.key)
    rule = rule_set("a", [mutate("cm")])
    current = Current(Engine([rule]), {rule.ref: rule})
    inside, release = threading.Event(), threading.Event()

    class SlowApi(ConfigApi):
        def get(self, gvk: GVK, namespace: str | None, name: str) -> dict[str, Any]:
            inside.set()
            release.wait(10)
            return super().get(gvk, namespace, name)

    webhooks = Webhooks(SlowApi(), WebhookOptions(  # type: ignore[arg-type]
        address=("127.0.0.1", 0), endpoint=Endpoint(url="https://127.0.0.1:1"),
        own_namespace="edict-system", cert_dir=str(tmp_path), resync=3600.0),
        current=lambda: current, world=ManifestWorld([]),
        metrics=EngineMetrics(CollectorRegistry()), loaded=lambda: True,
        leading=lambda: True)
    webhooks.start()
    assert inside.wait(5), "the loop's first write"
    stopper = threading.Thread(target=webhooks.stop)
    stopper.start()
    time.sleep(0.2)  # stop() has asked, and waits for the loop
    release.set()  # the write ends; the loop must see the stop, not sleep an hour
    stopper.join(timeout=5)
    assert not stopper.is_alive(), "stop() waited for the next resync"
