"""The Mutating- and ValidatingWebhookConfiguration named `edict`, kept in step by the leader.

The manager calls `WebhookConfigs.sync` after every recompilation of the rule sets and
periodically (drift, a rotated CA bundle), only on the leader and only when the webhook
is served. Each configuration asks the API server for exactly what the loaded rule sets
need (`needed`):

- mutating: the kinds of the mutate rules of Enforce rule sets that run at admission
  (a Pod rule with `podTemplates` adds the workload kinds), CREATE and UPDATE;
- validating: the kinds of validate rules (Enforce and Audit) and of the mutate rules
  of Audit rule sets (their would-be changes are warnings);

grouped into at most two webhooks each: kinds that some rule set with
`spec.admission.failurePolicy: Fail` needs go to `<phase>-fail.edict.dev`
(failurePolicy Fail), the rest to `<phase>.edict.dev` (Ignore). Every webhook has
`sideEffects: None`, a short `timeoutSeconds`, `matchPolicy: Equivalent`, and a
namespaceSelector that leaves out Edict's own namespace and kube-system, so the engine
can never lock itself or the cluster out. With no such rule, a configuration has no
webhooks (it is kept, empty).

A configuration is written (created, or replaced at its resourceVersion) only when the
server's copy does not already hold every field Edict sets (`holds`: the server adds
defaults of its own), so the steady state writes nothing.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.evaluate.engine import Engine
from engine.evaluate.request import Phase
from engine.kube.client import Cluster
from engine.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from engine.objects import GVK, Obj, meta
from engine.rules.model import FailurePolicy, Mode, Mutate, Validate

log = logging.getLogger(__name__)

GROUP = "admissionregistration.k8s.io"
MUTATING = GVK(GROUP, "v1", "MutatingWebhookConfiguration")
VALIDATING = GVK(GROUP, "v1", "ValidatingWebhookConfiguration")
NAME = "edict"
KINDS = {Phase.MUTATE: MUTATING, Phase.VALIDATE: VALIDATING}
OPERATIONS = ["CREATE", "UPDATE"]
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # every Namespace has it


@dataclass(frozen=True)
class Endpoint:
    """How the API server reaches the webhook: a URL (`--webhook-url`), else a Service."""

    url: str | None = None
    service_namespace: str = ""
    service_name: str = "edict-webhook"
    service_port: int = 443

    def client_config(self, phase: Phase, ca_bundle: bytes) -> dict[str, Any]:
        path = f"/{phase.value}"
        config: dict[str, Any] = (
            {"url": self.url.rstrip("/") + path} if self.url else
            {"service": {"namespace": self.service_namespace, "name": self.service_name,
                         "path": path, "port": self.service_port}})
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
        return config


@dataclass(frozen=True)
class WebhookSettings:
    endpoint: Endpoint
    own_namespace: str  # never gated, and where the certificate Secret lives
    timeout_seconds: int = 3


def needed(engine: Engine, phase: Phase) -> dict[GVK, FailurePolicy]:
    """Every kind the webhook of `phase` must see, with its failure policy (Fail when
    any rule set that needs the kind says Fail)."""
    out: dict[GVK, FailurePolicy] = {}
    for compiled in engine.rule_sets:
        rule_set = compiled.rule_set
        if rule_set.mode is Mode.SUSPENDED:
            continue
        for rule in compiled.rules:
            action = rule.rule.action
            if not rule.enabled or not rule.rule.at_admission:
                continue
            if phase is Phase.MUTATE:
                wanted = isinstance(action, Mutate) and rule_set.mode is Mode.ENFORCE
            else:
                wanted = isinstance(action, Validate) or rule_set.mode is Mode.AUDIT
            if not wanted:
                continue
            for gvk in rule.rule.match.trigger_kinds:
                if out.get(gvk) is not FailurePolicy.FAIL:
                    out[gvk] = rule_set.failure_policy
    return out


def configuration(phase: Phase, kinds: Mapping[GVK, FailurePolicy], *,
                  plural: Callable[[GVK], str | None], settings: WebhookSettings,
                  ca_bundle: bytes) -> Obj:
    """The configuration object of `phase` for these kinds."""
    webhooks = []
    for policy in (FailurePolicy.IGNORE, FailurePolicy.FAIL):
        rules = _rules([gvk for gvk, p in kinds.items() if p is policy], plural)
        if not rules:
            continue
        suffix = "-fail" if policy is FailurePolicy.FAIL else ""
        webhook: dict[str, Any] = {
            "name": f"{phase.value}{suffix}.edict.dev",
            "clientConfig": settings.endpoint.client_config(phase, ca_bundle),
            "rules": rules,
            "failurePolicy": policy.value,
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "timeoutSeconds": settings.timeout_seconds,
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchExpressions": [{
                "key": NAMESPACE_LABEL, "operator": "NotIn",
                "values": sorted({settings.own_namespace, "kube-system"})}]},
        }
        if phase is Phase.MUTATE:
            # another webhook changing the object after Edict: run again to converge
            webhook["reinvocationPolicy"] = "IfNeeded"
        webhooks.append(webhook)
    gvk = KINDS[phase]
    return {"apiVersion": gvk.api_version, "kind": gvk.kind,
            "metadata": {"name": NAME, "labels": {"app.kubernetes.io/managed-by": "edict"}},
            "webhooks": webhooks}


def _rules(kinds: list[GVK], plural: Callable[[GVK], str | None]) -> list[dict[str, Any]]:
    by_version: dict[tuple[str, str], set[str]] = {}
    for gvk in kinds:
        resource = plural(gvk)
        if resource is not None:
            by_version.setdefault((gvk.group, gvk.version), set()).add(resource)
    return [{"apiGroups": [group], "apiVersions": [version], "resources": sorted(resources),
             "operations": list(OPERATIONS), "scope": "*"}
            for (group, version), resources in sorted(by_version.items())]


def holds(actual: Any, wanted: Any) -> bool:
    """Whether `actual` has every field of `wanted` with that value (maps may hold more:
    the server's defaults; lists must match item by item)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and holds(actual[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(actual) == len(wanted) and all(
            holds(a, w) for a, w in zip(actual, wanted, strict=True))
    return bool(actual == wanted)


class WebhookConfigs:
    """Writes the two configurations when they differ from what the rule sets need."""

    def __init__(self, cluster: Cluster, settings: WebhookSettings,
                 ca_bundle: Callable[[], bytes]) -> None:
        self._cluster = cluster
        self._settings = settings
        self._ca_bundle = ca_bundle
        self.writes = 0  # configurations written since start

    def desired(self, engine: Engine) -> dict[Phase, Obj]:
        bundle = self._ca_bundle()
        return {phase: configuration(phase, needed(engine, phase), plural=self._plural,
                                     settings=self._settings, ca_bundle=bundle)
                for phase in (Phase.MUTATE, Phase.VALIDATE)}

    def sync(self, engine: Engine) -> bool:
        """Write each configuration that differs from what `engine` needs; True when
        both now hold it, False when a write failed (and is left for the next sync)."""
        settled = True
        for phase, wanted in self.desired(engine).items():
            gvk = KINDS[phase]
            try:
                try:
                    actual: Obj | None = self._cluster.get(gvk, None, NAME)
                except NotFound:
                    actual = None
                if actual is not None and holds(actual.get("webhooks") or [],
                                                wanted["webhooks"]) and holds(
                        meta(actual), wanted["metadata"]):
                    continue
                if actual is None:
                    self._cluster.create(wanted)
                else:
                    self._cluster.replace({**wanted, "metadata": {
                        **wanted["metadata"],
                        "resourceVersion": meta(actual).get("resourceVersion")}})
                self.writes += 1
                log.info("%s %s: %d webhooks for the loaded rule sets", gvk.kind, NAME,
                         len(wanted["webhooks"]))
            except (AlreadyExists, Conflict):
                log.info("%s %s changed meanwhile: synced again shortly", gvk.kind, NAME)
                settled = False
            except ApiError as error:
                log.warning("could not write %s %s: %s", gvk.kind, NAME, error)
                settled = False
        return settled

    def _plural(self, gvk: GVK) -> str | None:
        try:
            return self._cluster.resource_for(gvk).plural
        except ApiError as error:
            log.warning("no webhook rule for %s: %s", gvk, error)
            return None
