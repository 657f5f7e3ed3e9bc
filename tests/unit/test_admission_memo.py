"""The admission memo: what the mutating webhook settled, and every case where the
background must evaluate an admitted object in full anyway."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.errors import Where
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Status
from engine.evaluate.request import Phase
from engine.evaluate.settled import Settled, settled_at_admission
from engine.evaluate.validation import check_rule
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK, ObjectKey
from engine.patching import apply_patch
from engine.rules import model as m
from engine.rules.load import parse_rule_set
from engine.runtime.admission.admission import AdmissionHandler
from engine.runtime.admission.memo import MISSED, AdmissionMemo, digest
from engine.runtime.current import Current
from engine.runtime.metrics import EngineMetrics

CM = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
TEAM = {"name": "team", "match": CM,
        "mutate": {"template": {"metadata": {"labels": {"team": "shop"}}}}}
TIER = {"name": "tier", "match": CM, "condition": "object.metadata.name == 'other'",
        "mutate": {"template": {"metadata": {"labels": {"tier": "web"}}}}}
KEY = ObjectKey(GVK("", "v1", "ConfigMap"), "shop", "web")
ASSIGNED = {"uid": "0b5e", "resourceVersion": "17", "creationTimestamp": "2026-12-01T00:00:00Z",
            "generation": 1, "managedFields": [{"manager": "kubectl"}]}


def rule_set(rules: list[dict[str, Any]], name: str = "cm", **spec: Any) -> m.RuleSet:
    doc = {"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
           "metadata": {"name": name}, "spec": {"rules": rules, **spec}}
    return parse_rule_set(doc, source=f"{name}.yaml", check_rule=check_rule)


class Setup:
    """A handler answering with one engine, and the memo it fills."""

    def __init__(self, *sets: m.RuleSet) -> None:
        self.current = Current(Engine(sets), {s.ref: s for s in sets})
        self.memo = AdmissionMemo()
        self.world = ManifestWorld([{"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "shop", "labels": {"t": "x"}}}])
        self.handler = AdmissionHandler(current=lambda: self.current, world=self.world,
                                        metrics=EngineMetrics(CollectorRegistry()),
                                        memo=self.memo)

    def admit(self, obj: dict[str, Any], *, phase: Phase = Phase.MUTATE,
              **request: Any) -> dict[str, Any]:
        """The object as the API server would store it after this review."""
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-1", "namespace": "shop", "operation": "CREATE", "object": obj,
            "userInfo": {"username": "alice"}, **request}}
        response = json.loads(self.handler.review(json.dumps(body).encode(), phase))
        stored = copy.deepcopy(obj)
        if "patch" in response["response"]:
            stored = apply_patch(stored, json.loads(base64.b64decode(
                response["response"]["patch"])), where=Where())
        stored["metadata"] = {**stored["metadata"], "namespace": "shop", **ASSIGNED}
        return stored

    def take(self, stored: dict[str, Any]) -> Settled | None:
        return self.memo.take(KEY, stored, engine=self.current.engine)


def configmap(**labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "creationTimestamp": None}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {"k": "v"}}


def test_an_object_stored_as_answered_skips_the_settled_rules_with_the_same_outcomes(
        ) -> None:
    setup = Setup(rule_set([TEAM, TIER]))
    stored = setup.admit(configmap())
    assert stored["metadata"]["labels"] == {"team": "shop"}
    settled = setup.take(stored)
    assert settled and dict(settled.outcomes) == {
        (setup.current.engine.rule_sets[0].rule_set.ref, "team"): Status.UNCHANGED,
        (setup.current.engine.rule_sets[0].rule_set.ref, "tier"): Status.SKIPPED}
    full = setup.current.engine.evaluate(stored, world=setup.world)
    reduced = setup.current.engine.evaluate(stored, world=setup.world, settled=settled)
    assert full.patch == reduced.patch == ()
    assert [(o.rule, o.status) for o in reduced.outcomes] == [
        (o.rule, o.status) for o in full.outcomes] == [
        ("team", Status.UNCHANGED), ("tier", Status.SKIPPED)]
    assert setup.take(stored) is None, "an entry serves once"


def other_webhook_adds_a_label(setup: Setup, stored: dict[str, Any]) -> Settled | None:
    changed = copy.deepcopy(stored)
    changed["metadata"]["labels"]["injected"] = "by-another-webhook"
    return setup.take(changed)


def server_defaults_a_field(setup: Setup, stored: dict[str, Any]) -> Settled | None:
    return setup.take({**stored, "immutable": False})


def rules_recompiled(setup: Setup, stored: dict[str, Any]) -> Settled | None:
    sets = list(setup.current.rule_sets.values())
    return setup.memo.take(KEY, stored, engine=Engine(sets))


def another_object(setup: Setup, stored: dict[str, Any]) -> Settled | None:
    return setup.memo.take(ObjectKey(KEY.gvk, "shop", "other"), stored,
                           engine=setup.current.engine)


@pytest.mark.parametrize("case", [other_webhook_adds_a_label, server_defaults_a_field,
                                  rules_recompiled])
def test_anything_that_differs_is_a_miss(case: Callable[[Setup, dict[str, Any]],
                                                        Settled | None]) -> None:
    setup = Setup(rule_set([TEAM]))
    stored = setup.admit(configmap())
    found = case(setup, stored)
    assert found is MISSED and not found
    assert setup.take(stored) is None, "a miss uses the entry up"


def test_nothing_is_remembered_for_another_key() -> None:
    setup = Setup(rule_set([TEAM]))
    stored = setup.admit(configmap())
    assert another_object(setup, stored) is None
    assert setup.take(stored), "the object's own entry is still there"


def test_a_recompilation_forgets_every_entry() -> None:
    setup = Setup(rule_set([TEAM]))
    stored = setup.admit(configmap())
    setup.current = Current(Engine([rule_set([TEAM])]), setup.current.rule_sets)
    second = setup.admit({**configmap(), "metadata": {"name": "second"}})
    assert len(setup.memo) == 1
    assert setup.take(stored) is None
    assert setup.memo.take(ObjectKey(KEY.gvk, "shop", "second"), second,
                           engine=setup.current.engine)


@pytest.mark.parametrize(("request_fields", "obj"), [
    ({"dryRun": True}, configmap()),
    ({"subResource": "status"}, configmap()),
    ({}, {**configmap(), "metadata": {"generateName": "web-"}}),
], ids=["dry-run", "subresource", "no-name-yet"])
def test_reviews_that_must_not_be_remembered(request_fields: dict[str, Any],
                                             obj: dict[str, Any]) -> None:
    setup = Setup(rule_set([TEAM]))
    stored = setup.admit(obj, **request_fields)
    assert stored["metadata"]["labels"] == {"team": "shop"}, "answered all the same"
    assert len(setup.memo) == 0


def test_the_validating_webhook_remembers_nothing() -> None:
    setup = Setup(rule_set([TEAM]))
    setup.admit(configmap(), phase=Phase.VALIDATE)
    assert len(setup.memo) == 0


BROKEN = {"name": "broken", "match": CM, "mutate": {"template": {"metadata": {"labels": {
    "x": "{{ object.metadata.nothing.here }}"}}}}}
STATUS = {"name": "phase", "match": CM,
          "mutate": {"template": {"status": {"phase": "Ready"}}}}
FIRST = {"name": "first", "match": CM,
         "mutate": {"template": {"metadata": {"labels": {"tier": "a"}}}}}
SECOND = {"name": "second", "match": CM,
          "mutate": {"template": {"metadata": {"labels": {"tier": "b"}}}}}


@pytest.mark.parametrize(("rules", "spec"), [
    ([TEAM, BROKEN], {}),  # a rule error, ignored at admission
    ([TEAM, BROKEN], {"admission": {"failurePolicy": "Fail"}}),  # denied
    ([TEAM, STATUS], {}),  # status, which the webhook does not send
    ([FIRST, SECOND], {}),  # two rules set one path: the conflict is reported
], ids=["rule-error", "denied", "status-change", "conflict"])
def test_answers_that_settle_nothing(rules: list[dict[str, Any]],
                                     spec: dict[str, Any]) -> None:
    setup = Setup(rule_set(rules, **spec))
    setup.admit(configmap())
    assert len(setup.memo) == 0


@pytest.mark.parametrize("rule", [
    {"name": "who", "match": CM, "condition": "request != null", "mutate": {"template": {
        "metadata": {"annotations": {"creator": "{{ request.userInfo.username }}"}}}}},
    {"name": "ns", "match": CM, "mutate": {"template": {"metadata": {"labels": {
        "t": "{{ namespaceObject.metadata.labels.t }}"}}}}},
    {"name": "old", "match": CM, "condition": "oldObject == null",
     "mutate": {"template": {"metadata": {"labels": {"new": "yes"}}}}},
    {"name": "looked-up", "match": CM,
     "context": {"ns": {"apiVersion": "v1", "kind": "Namespace", "name": "shop"}},
     "mutate": {"template": {"metadata": {"labels": {"seen": "yes"}}}}},
], ids=["request", "namespaceObject", "oldObject", "context"])
def test_rules_reading_more_than_the_object_are_never_settled(rule: dict[str, Any]) -> None:
    setup = Setup(rule_set([TEAM, rule]))
    stored = setup.admit(configmap())
    settled = setup.take(stored)
    assert settled and {name for _, name in settled.outcomes} == {"team"}
    # the background runs that rule itself, and reports it as a full evaluation does
    reduced = setup.current.engine.evaluate(stored, world=setup.world, settled=settled)
    full = setup.current.engine.evaluate(stored, world=setup.world)
    assert [(o.rule, o.status) for o in reduced.outcomes] == [
        (o.rule, o.status) for o in full.outcomes]


def test_settled_at_admission_refuses_an_oscillation() -> None:
    flip = {"name": "flip", "match": CM, "mutate": {"template": {"data": {
        "k": "{{ 'a' if object.data.k != 'a' else 'b' }}"}}}}
    engine = Engine([rule_set([flip])])
    result = engine.evaluate(configmap(), world=ManifestWorld([]))
    assert result.oscillating
    assert settled_at_admission(engine.rules_by_id, result) is None


def test_the_memo_is_bounded_and_drops_the_oldest_first() -> None:
    setup = Setup(rule_set([TEAM]))
    setup.memo = AdmissionMemo(capacity=2)
    setup.handler.memo = setup.memo
    stored = [setup.admit({**configmap(), "metadata": {"name": f"cm-{i}"}}) for i in range(3)]
    assert len(setup.memo) == 2
    engine = setup.current.engine
    assert setup.memo.take(ObjectKey(KEY.gvk, "shop", "cm-0"), stored[0], engine=engine) is None
    assert setup.memo.take(ObjectKey(KEY.gvk, "shop", "cm-2"), stored[2], engine=engine)


def test_the_digest_ignores_only_what_the_server_assigns() -> None:
    answered = {**configmap(team="shop"), "metadata": {"name": "web", "labels": {"a": "1"}}}
    stored = {**answered, "metadata": {**answered["metadata"], **ASSIGNED}}
    assert digest(stored) == digest(answered)
    for changed in ({**stored, "data": {"k": "w"}},
                    {**stored, "metadata": {**stored["metadata"], "labels": {"a": "2"}}},
                    {**stored, "metadata": {**stored["metadata"], "name": "other"}}):
        assert digest(changed) != digest(answered)
