"""Every write the engine makes to a watched object or a rule set goes through `Writer`.

Both controllers share one: the object controller's reconciler patches triggers and
their status and creates, patches and deletes children; the rule-set controller prunes
orphaned children and writes rule-set status. The writer owns what all those writes
have in common:

* the identity: a rule set naming a `serviceAccountName` writes as that ServiceAccount
  (impersonation clients are made once per identity, under a lock, and kept);
* the `WriteGate` (concurrency.py) every object write holds a slot of, so the number
  of writes in flight follows the server's answers;
* the count of writes by kind (`edict_writes_total`).

It makes no decision: errors propagate to the caller, and only the reconciler turns
them into a retry decision. Rule-set status writes take no slot and are not counted
(they are few, one per changed rule set, and must not wait behind a burst of object
writes). Leases, Events, webhook configurations and `spec.api` CRDs are written by the
parts that own them (leader.py, events.py, admission/, rulesets/apis.py).
"""

from __future__ import annotations

import threading
from typing import Any

from engine.kube.client import Cluster
from engine.objects import GVK, Obj
from engine.rules.model import RuleSetRef

from .concurrency import WriteGate
from .current import Current
from .kinds import rule_set_gvk
from .metrics import EngineMetrics, WriteKind

UNLIMITED = 1 << 30


class Writer:
    def __init__(self, cluster: Cluster, *, metrics: EngineMetrics,
                 gate: WriteGate | None = None) -> None:
        self._cluster = cluster
        self._metrics = metrics
        self.gate = gate or WriteGate(initial=UNLIMITED, maximum=UNLIMITED)
        self._identities: dict[tuple[str, str], Cluster] = {}
        self._identities_lock = threading.Lock()

    def api_for(self, ref: RuleSetRef | None, current: Current) -> Cluster:
        """The client that writes for rule set `ref` (its ServiceAccount, if it names
        one and is still loaded; else the engine's own)."""
        rule_set = current.rule_sets.get(ref) if ref is not None else None
        if rule_set is None or not rule_set.service_account_name:
            return self._cluster
        ident = (rule_set.ref.namespace, rule_set.service_account_name)
        with self._identities_lock:
            if ident not in self._identities:
                self._identities[ident] = self._cluster.impersonating_service_account(*ident)
            return self._identities[ident]

    # -- objects -----------------------------------------------------------------------

    def patch(self, gvk: GVK, namespace: str | None, name: str, ops: Any, *,
              rule_set: RuleSetRef | None, current: Current) -> Obj:
        """A JSON patch (guarded by its leading `test` ops); the object as stored."""
        api = self.api_for(rule_set, current)
        gate = self.gate  # the slot by hand: this is every changed object's write
        gate.acquire()
        try:
            written = api.patch_json(gvk, namespace, name, ops)
        except BaseException as error:
            gate.release(error)
            raise
        gate.release(None)
        self._metrics.wrote(WriteKind.PATCH)
        return written

    def patch_status(self, gvk: GVK, namespace: str | None, name: str, ops: Any, *,
                     rule_set: RuleSetRef | None, current: Current) -> Obj:
        """A JSON patch of the status subresource; the object as stored."""
        with self.gate.slot():
            written = self.api_for(rule_set, current).patch_status_json(gvk, namespace,
                                                                        name, ops)
        self._metrics.wrote(WriteKind.STATUS)
        return written

    def create(self, obj: Obj, *, rule_set: RuleSetRef | None, current: Current) -> None:
        with self.gate.slot():
            self.api_for(rule_set, current).create(obj)
        self._metrics.wrote(WriteKind.CREATE)

    def delete(self, gvk: GVK, namespace: str | None, name: str, *, uid: str | None,
               rule_set: RuleSetRef | None, current: Current) -> None:
        """Delete (with a uid precondition when given: never a namesake)."""
        with self.gate.slot():
            self.api_for(rule_set, current).delete(gvk, namespace, name, uid=uid)
        self._metrics.wrote(WriteKind.DELETE)

    # -- rule sets ---------------------------------------------------------------------

    def rule_set_status(self, ref: RuleSetRef, body: Any) -> None:
        """Merge-patch a rule set's status subresource with `body`."""
        self._cluster.patch_merge_status(rule_set_gvk(ref.kind), ref.namespace or None,
                                         ref.name, {"status": body})
