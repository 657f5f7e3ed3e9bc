"""Answer one AdmissionReview with the engine: a patch, warnings, or a denial.

The webhook server (`webhook_server.py`) hands every AdmissionReview v1 it receives on
``/mutate`` or ``/validate`` to `AdmissionHandler.review`, on every replica. The answer
comes from the same `Engine.evaluate` the background reconciler calls, with a `Request`
(`engine.evaluate.request`) that selects the rules of the webhook's phase:

- **mutate**: the mutate rules of Enforce rule sets run to their fixed point; the answer
  is the JSON patch from the request's object to the result (status aside), so what is
  stored is already converged and the background has nothing left to write.
- **validate**: a validate rule of an Enforce rule set that does not hold denies the
  request with the rule's message; one of an Audit rule set, and what an Audit rule
  set's mutate rules would change, become admission warnings.

A rule that fails (error, oscillation) never blocks a request of an `Ignore` rule set:
the request is admitted without that rule's changes, with a warning. Under `Fail` it is
denied, naming the rule set and the rule. Dry-run requests get the same answer (the
webhooks have no side effects outside Edict). A mutating answer that settled rules on an
object is remembered in the `AdmissionMemo` (memo.py), so the background evaluation of
the stored object need not run them again; dry runs never are. A review the handler
cannot read is a `BadReview`; anything unexpected propagates so the server answers 500
and the API server applies the webhook's `failurePolicy` — never a silent "allowed".
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.evaluate.outcomes import Outcome, Result, Status
from engine.evaluate.request import Phase, Request
from engine.evaluate.settled import settled_at_admission
from engine.evaluate.world import World
from engine.objects import Obj, ObjectKey, gvk_of, meta
from engine.patching import GUARD_PATH
from engine.rules.model import FailurePolicy, Mode, RuleSet, RuleSetRef

from ..current import Current
from ..metrics import AdmissionResult, EngineMetrics
from .memo import AdmissionMemo

API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE")
MAX_WARNING = 240  # characters per warning (the API server passes them to the client)
FAILED = (Status.ERROR, Status.OSCILLATING)


class BadReview(Exception):
    """The body is not an AdmissionReview v1 request Edict can answer (HTTP 400)."""


class NotReady(Exception):
    """The engine cannot answer yet (HTTP 503: the API server applies failurePolicy)."""


@dataclass(frozen=True)
class Answer:
    """What one review concluded, before it is put in an AdmissionReview."""

    allowed: bool = True
    patch: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    message: str = ""  # why it was denied
    result: AdmissionResult = AdmissionResult.ALLOWED

    def response(self, uid: str) -> dict[str, Any]:
        response: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if self.patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(list(self.patch)).encode()
                                                 ).decode()
        if self.warnings:
            response["warnings"] = list(self.warnings)
        if not self.allowed:
            response["status"] = {"code": 403, "reason": "Forbidden",
                                  "message": self.message}
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


@dataclass
class AdmissionHandler:
    """Stateless between reviews but for the memo: the engine and world are read anew
    for each one."""

    current: Callable[[], Current]
    world: World
    metrics: EngineMetrics
    ready: Callable[[], bool] = field(default=lambda: True)
    memo: AdmissionMemo | None = None  # what the mutating webhook settled, for the background

    def review(self, raw: bytes, phase: Phase) -> bytes:
        """The AdmissionReview (JSON) answering the one in `raw`; raises `BadReview` or
        `NotReady`. Timed from the bytes in to the bytes out: the webhook's own share
        of a request's latency (`edict_admission_duration_seconds`)."""
        started = time.perf_counter()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        request = body.get("request") if isinstance(body, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
            self.metrics.admitted(phase.value, AdmissionResult.INVALID,
                                  time.perf_counter() - started)
            raise BadReview("expected an AdmissionReview (admission.k8s.io/v1) with a request")
        if not self.ready():
            raise NotReady("the rule sets are not loaded yet")
        answer = self.answer(request, phase)
        out = json.dumps(answer.response(request["uid"])).encode()
        self.metrics.admitted(phase.value, answer.result, time.perf_counter() - started)
        return out

    def answer(self, request: Mapping[str, Any], phase: Phase) -> Answer:
        operation = str(request.get("operation") or "")
        obj = request.get("object")
        if operation not in OPERATIONS or not isinstance(obj, dict):
            return Answer()  # DELETE, CONNECT: nothing Edict registers for
        obj = _with_namespace(obj, str(request.get("namespace") or ""))
        found = request.get("userInfo")
        user: Mapping[str, Any] = found if isinstance(found, dict) else {}
        old = request.get("oldObject")
        current = self.current()
        asked = Request(
            phase=phase, operation=operation,
            username=str(user.get("username") or ""), uid=str(user.get("uid") or ""),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            dry_run=bool(request.get("dryRun")),
            sub_resource=str(request.get("subResource") or ""),
            name=str(request.get("name") or meta(obj).get("name") or ""),
            namespace=str(request.get("namespace") or ""),
            old_object=old if isinstance(old, dict) else None)
        result = current.engine.evaluate(obj, world=self.world, request=asked)
        answer = _judge(result, phase, current.rule_sets)
        if self.memo is not None and phase is Phase.MUTATE and answer.allowed:
            self._remember(asked, result, current)
        return answer

    def _remember(self, asked: Request, result: Result, current: Current) -> None:
        """Tell the background what this answer settled (memo.py): never for a dry run
        or a subresource, nor for an object that has no name yet."""
        assert self.memo is not None
        name = meta(result.desired).get("name")
        if asked.dry_run or asked.sub_resource or not name:
            return
        settled = settled_at_admission(current.engine.rules_by_id, result)
        if settled is not None:
            self.memo.remember(ObjectKey(gvk_of(result.desired), asked.namespace, str(name)),
                               result.desired, settled, engine=current.engine)


def _with_namespace(obj: Obj, namespace: str) -> Obj:
    """The API server sets metadata.namespace from the request path; make sure of it."""
    if not namespace or meta(obj).get("namespace"):
        return obj
    return {**obj, "metadata": {**meta(obj), "namespace": namespace}}


def _judge(result: Result, phase: Phase, rule_sets: Mapping[RuleSetRef, RuleSet]) -> Answer:
    warnings: list[str] = []
    denials: list[str] = []

    def policy(ref: RuleSetRef) -> FailurePolicy:
        rule_set = rule_sets.get(ref)
        return rule_set.failure_policy if rule_set is not None else FailurePolicy.IGNORE

    def audit(ref: RuleSetRef) -> bool:
        rule_set = rule_sets.get(ref)
        return rule_set is not None and rule_set.mode is Mode.AUDIT

    for outcome in result.outcomes:
        who = _who(outcome, audit(outcome.rule_set))
        if outcome.status in FAILED:
            if policy(outcome.rule_set) is FailurePolicy.FAIL:
                denials.append(f"{who} failed (failurePolicy Fail): {outcome.message}")
            else:
                warnings.append(f"{who} failed and was ignored: {outcome.message}")
        elif outcome.status is Status.VIOLATION:
            if audit(outcome.rule_set):
                warnings.append(f"{who}: {outcome.message}")
            else:
                denials.append(f"{who}: {outcome.message}")
        elif outcome.status is Status.WOULD_APPLY:
            warnings.append(f"{who} would change {', '.join(outcome.paths)}")
    if denials:
        return Answer(allowed=False, message="; ".join(denials),
                      warnings=tuple(_short(w) for w in warnings),
                      result=AdmissionResult.DENIED)
    patch: tuple[dict[str, Any], ...] = ()
    if phase is Phase.MUTATE:
        # the engine's own patch (status aside), less its resourceVersion guard: the API
        # server applies it to the very object it sent
        patch = tuple(op for op in result.patch
                      if not (op["op"] == "test" and op["path"] == GUARD_PATH))
    outcome_kind = (AdmissionResult.PATCHED if patch else
                    AdmissionResult.WARNED if warnings else AdmissionResult.ALLOWED)
    return Answer(patch=patch, warnings=tuple(_short(w) for w in warnings),
                  result=outcome_kind)


def _who(outcome: Outcome, audit: bool) -> str:
    return f"{outcome.rule_set}{' (Audit)' if audit else ''}, rule {outcome.rule!r}"


def _short(text: str) -> str:
    return text if len(text) <= MAX_WARNING else text[:MAX_WARNING - 3] + "..."
