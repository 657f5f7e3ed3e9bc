"""Sustained 429s: API Priority and Fairness gives the engine's writes one seat and
rejects the rest, with Retry-After, for as long as it converges 1,000 objects.

The engine runs as its own user (not in system:masters, which APF exempts), bound to
cluster-admin; a FlowSchema sends that user's ConfigMap writes to a
PriorityLevelConfiguration with the smallest share of a small server (`Reject` when
busy). Asserted from the audit log and the server's metrics: the rejections were many,
every object converged with exactly one successful write, and no object was patched
again sooner than one second (the least Retry-After APF gives) after a 429. (A create
that APF refuses is logged without its name: the server never read the body.)
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from typing import Any

import pytest

from engine.objects import GVK
from tests.support import eventually

from .conftest import Scenario
from .harness import OBJECTS

pytestmark = pytest.mark.faults

USER = "edict-limited"
RECOVERY = 300.0
"""Seconds to converge from the engine's start, with most writes refused at first."""
FLOW = "flowcontrol.apiserver.k8s.io/v1"


def apf_objects(namespace: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": USER},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "cluster-admin"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                       "name": USER}]},
        {"apiVersion": FLOW, "kind": "PriorityLevelConfiguration",
         "metadata": {"name": "edict-faults"},
         "spec": {"type": "Limited", "limited": {
             "nominalConcurrencyShares": 1, "lendablePercent": 0,
             "borrowingLimitPercent": 0, "limitResponse": {"type": "Reject"}}}},
        {"apiVersion": FLOW, "kind": "FlowSchema", "metadata": {"name": "edict-faults"},
         "spec": {"priorityLevelConfiguration": {"name": "edict-faults"},
                  "matchingPrecedence": 500, "distinguisherMethod": {"type": "ByUser"},
                  "rules": [{"subjects": [{"kind": "User", "user": {"name": USER}}],
                             "resourceRules": [{
                                 "verbs": ["create", "patch", "update", "delete"],
                                 "apiGroups": [""], "resources": ["configmaps"],
                                 "namespaces": [namespace]}]}]}},
    ]


def rejected(scene: Scenario) -> float:
    """APF's count of rejected requests at the engine's priority level (/metrics)."""
    text = subprocess.run(["kubectl", "--kubeconfig", scene.kubeconfig(), "get", "--raw",
                           "/metrics"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    found = re.findall(r'^apiserver_flowcontrol_rejected_requests_total\{[^}]*'
                       r'priority_level="edict-faults"[^}]*\} (\S+)$', text, re.M)
    return sum(float(value) for value in found)


def test_sustained_429s_with_retry_after(scenario: type[Scenario]) -> None:
    # 30 seats in all: the smallest share (1 of ~250) gets exactly one
    scene = scenario(apiserver_args=("--max-requests-inflight=20",
                                     "--max-mutating-requests-inflight=10"))
    scene.prepare()
    for obj in apf_objects(scene.namespace):
        scene.admin.create(obj)
    eventually(lambda: any(c.get("type") == "Dangling" and c.get("status") == "False"
                           for c in (scene.admin.get(GVK.of(FLOW, "FlowSchema"), None,
                                                     "edict-faults").get("status") or {})
                           .get("conditions") or ()),
               timeout=60, what="the FlowSchema to be in force")
    scene.load()
    started = time.monotonic()
    engine = scene.start_edict(kubeconfig=scene.kubeconfig(USER, groups=()), workers=8)
    recovery = scene.recover(started, within=RECOVERY)
    writes = scene.writes(USER)
    codes = writes.codes()
    assert codes[429] >= 100, f"the 429s were not sustained: {codes}"
    assert rejected(scene) >= codes[429]
    assert writes.applied_twice() == {}
    assert writes.deletes() == []
    assert writes.decided_thrice() == {}
    too_soon = []
    for name, attempts in writes.by_object.items():
        if not name:  # a create APF refused: the server never read whose it was
            continue
        attempts = sorted(attempts, key=lambda w: w.received)
        for refused, following in itertools.pairwise(attempts):
            if refused.code == 429 and following.received - refused.answered < 0.99:
                too_soon.append((name, round(following.received - refused.answered, 3)))
    assert too_soon == [], "tried again sooner than Retry-After"
    seen = engine.sample("edict_api_requests_total", method="PATCH", code="429")
    scene.measured("sustained 429s (APF, one seat, Retry-After)", recovery, writes,
                   note=f"{codes[429]} rejected; {seen:.0f} PATCH 429s seen by the engine",
                   needed=2 * OBJECTS)
