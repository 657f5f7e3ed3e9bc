"""Reconcile one key: read the trigger from the cache, evaluate, write what must change.

The object controller's workers (objects.py) call `Reconciler.reconcile(key)` and act
on the `Decision` it returns; this is the only place where an API error becomes a retry decision:
409/422 on a guarded patch → requeue (someone changed the object), 404 → done,
429/5xx/no answer → back off, 403 and other refusals → reported on the rule set,
retried after a long delay. At most one patch per object, one status patch and one
write per child; nothing at all when the result is converged. Every write goes
through the shared `Writer` (writer.py), which picks the identity and holds a slot of
the write gate. An object the mutating webhook just answered for is evaluated without
the mutate rules the webhook settled on it, when it is stored exactly as answered
(`AdmittedRules`, the admission memo).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, Protocol

from engine.evaluate.children import (
    RULE_SET_LABEL,
    RULE_SET_NAMESPACE_LABEL,
    key_ref,
    label_value,
)
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction, ChildPlan, Result, Status
from engine.evaluate.settled import Settled
from engine.kube.errors import AlreadyExists, ApiError, Conflict, Invalid, NotFound
from engine.objects import GVK, Obj, ObjectKey, meta
from engine.patching import json_equal
from engine.patching.values import MISSING
from engine.rules.model import RuleSetRef

from ..current import Current
from ..metrics import EngineMetrics
from ..source.watches import NotWatched, WatchManager
from ..source.world import CHILD_OF_INDEX, CacheWorld
from ..status import StatusBoard
from ..writer import Writer
from .dependencies import Dependencies
from .echoes import OwnWrites
from .events import Recorder

_REPLACEMENTS = 8  # engines remembered back: findings of older ones are evaluated again

log = logging.getLogger(__name__)

REFUSED_RETRY = 60.0  # seconds before retrying a write the API server refused


class AdmittedRules(Protocol):
    """What the mutating webhook settled on an object (`admission.memo.AdmissionMemo`)."""

    def take(self, key: ObjectKey, obj: Obj, *, engine: Engine) -> Settled | None:
        """The settled rules if `obj` is what was answered under `engine` (used up);
        None if nothing was remembered; a falsy `Settled` if it does not apply."""


class Decision(StrEnum):
    DONE = "done"
    REQUEUE = "requeue"  # rate limited: someone else changed it, or a transient error
    RETRY_LATER = "retry-later"  # after REFUSED_RETRY


class Reconciler:
    def __init__(self, *, writer: Writer, watches: WatchManager, world: CacheWorld,
                 current: Callable[[], Current], board: StatusBoard,
                 dependencies: Dependencies, metrics: EngineMetrics,
                 recorder: Recorder, requeue: Callable[[ObjectKey], None],
                 hold: Callable[[ObjectKey, float], None] = lambda key, seconds: None,
                 admitted: AdmittedRules | None = None) -> None:
        self._writer = writer
        self._watches = watches
        self._world = world
        self._current = current
        self._board = board
        self._dependencies = dependencies
        self._metrics = metrics
        self._recorder = recorder
        self._requeue = requeue
        self._hold = hold  # the queue's: no retry of a key before the server's Retry-After
        self._admitted = admitted  # the admission memo, when Edict serves webhooks
        self.own_writes = OwnWrites()
        # key -> (resourceVersion, engine) its last reconcile found converged without
        # rule errors (a resync of that state has nothing to do while those rules hold);
        # written by the workers, read by the informer threads (the router): one lock
        self._converged_lock = threading.Lock()
        self._converged: dict[ObjectKey, tuple[str, Engine]] = {}
        # engine -> (the engine it replaced, trigger kinds whose rules changed then)
        self._replaced: dict[Engine, tuple[Engine, frozenset[GVK]]] = {}

    # -- entry point -------------------------------------------------------------------

    def reconcile(self, key: ObjectKey) -> Decision:
        current = self._current()
        obj = self._world.get(key.gvk, key.namespace, key.name)
        if obj is None:
            if self._listing(key.gvk):
                # absent from a cache still listing is unknown, not deleted: if it
                # exists, its page queues it again; if not, the sweep finds its children
                return Decision.DONE
            with self._converged_lock:
                self._converged.pop(key, None)
            self._board.forget(key)
            self._dependencies.forget(key)
            return self._cleanup_deleted(key, current)
        if key.gvk not in current.engine.trigger_kinds() or meta(obj).get(
                "deletionTimestamp"):
            return Decision.DONE
        result = self._evaluate(key, obj, current)
        self._dependencies.record(key, result.lookups)
        for outcome in result.outcomes:
            self._metrics.outcome(outcome)
        decision = self._write(result, current)
        self._board.observe(key, result, written=decision is Decision.DONE)
        self._recorder.outcomes(obj, result, written=decision is Decision.DONE)
        converged = decision is Decision.DONE and result.converged and not any(
            o.status in (Status.ERROR, Status.OSCILLATING) for o in result.outcomes)
        with self._converged_lock:
            if converged:
                self._converged[key] = (str(meta(obj).get("resourceVersion") or ""),
                                        current.engine)
            else:
                self._converged.pop(key, None)
        return decision

    def _evaluate(self, key: ObjectKey, obj: Obj, current: Current) -> Result:
        """Every rule for `obj` but those the mutating webhook settled on exactly this
        content with these rules (`AdmittedRules`), if the rest then have nothing to
        write on the object itself and no error; else every rule."""
        settled = (self._admitted.take(key, obj, engine=current.engine)
                   if self._admitted is not None else None)
        if settled:
            result = current.engine.evaluate(obj, world=self._world, settled=settled)
            if not (result.patch or result.oscillating or result.conflicts or any(
                    o.status is Status.ERROR for o in result.outcomes)):
                self._metrics.memo_used(hit=True)
                return result
        if settled is not None:
            self._metrics.memo_used(hit=False)
        return current.engine.evaluate(obj, world=self._world)

    def known_converged(self, key: ObjectKey, resource_version: str) -> bool:
        """Whether `key` at `resource_version` was found converged by the engine now
        loaded, or by one it replaced without changing the rules of `key`'s kind (the
        router then skips its resync: evaluating it again changes nothing unless
        something it reads changed, and that arrives as an event of its own)."""
        engine = self._current().engine
        with self._converged_lock:
            found = self._converged.get(key)
            if found is None or found[0] != resource_version:
                return False
            for _ in range(_REPLACEMENTS):
                if found[1] is engine:
                    return True
                replaced = self._replaced.get(engine)
                if replaced is None or key.gvk in replaced[1]:
                    return False
                engine = replaced[0]
            return False

    def rules_replaced(self, old: Engine, new: Engine, *, changed: Iterable[GVK]) -> None:
        """`new` replaces `old`, with other rules for the trigger kinds `changed` only:
        what `old` found converged of the other kinds still holds under `new`. Called
        before `new` is published (a recompile gives a new engine even when no rule
        changed: at start and when leading begins, the rule sets compile again)."""
        with self._converged_lock:
            self._replaced[new] = (old, frozenset(changed))
            while len(self._replaced) > _REPLACEMENTS:  # the oldest first (insertion order)
                del self._replaced[next(iter(self._replaced))]

    def forget_converged(self) -> None:
        """Evaluate everything again at the next resync (a periodic full pass)."""
        with self._converged_lock:
            self._converged = {}

    # -- writes ------------------------------------------------------------------------

    def _write(self, result: Result, current: Current) -> Decision:
        key = result.key
        writer_ref = self._writer_ref(result, current)
        decision = Decision.DONE
        stored: str | None = None
        if result.patch or result.status_patch:
            self.own_writes.begin(key)
        try:
            rv = None
            if result.patch:
                written = self._writer.patch(key.gvk, key.namespace or None, key.name,
                                             result.patch, rule_set=writer_ref,
                                             current=current)
                rv = meta(written).get("resourceVersion")
            if result.status_patch:
                ops = list(result.status_patch)
                if rv and ops and ops[0].get("op") == "test":
                    ops[0] = {**ops[0], "value": rv}
                written = self._writer.patch_status(key.gvk, key.namespace or None,
                                                    key.name, ops, rule_set=writer_ref,
                                                    current=current)
                rv = meta(written).get("resourceVersion")
            if rv and same_content(written, result.desired):
                # Only when the server stored exactly what we asked for (no defaulting
                # or admission changes the rules might want to react to).
                stored = str(rv)
            if writer_ref is not None and (result.patch or result.status_patch):
                self._board.write_succeeded(key, writer_ref)
        except ApiError as error:
            decision = self._classify(error, key, writer_ref, guarded=True)
        finally:
            if (result.patch or result.status_patch) and self.own_writes.end(key, stored):
                self._requeue(key)  # someone else's change arrived while we wrote
        if decision is not Decision.DONE:
            return decision
        for plan in result.children:
            decision = worst(decision, self._child(plan, key, current))
        return decision

    def _child(self, plan: ChildPlan, trigger: ObjectKey, current: Current) -> Decision:
        if plan.action is ChildAction.NONE:
            return Decision.DONE
        if not self._synced(plan.key.gvk):
            # The cache of this kind has not listed yet (or cannot: RBAC), so "absent"
            # means "unknown": write nothing, look again later.
            return Decision.RETRY_LATER
        gvk, namespace = plan.key.gvk, plan.key.namespace or None
        try:
            if plan.action is ChildAction.CREATE:
                assert plan.desired is not None
                self._writer.create(plan.desired, rule_set=plan.rule_set, current=current)
            elif plan.action is ChildAction.PATCH:
                try:
                    self._writer.patch(gvk, namespace, plan.key.name, plan.patch,
                                       rule_set=plan.rule_set, current=current)
                except (Conflict, Invalid) as error:
                    if isinstance(error, Invalid) and error.refused:
                        raise
                    return Decision.REQUEUE  # the child changed under us: look again
            else:
                existing = plan.existing or {}
                self._writer.delete(gvk, namespace, plan.key.name,
                                    uid=str(meta(existing).get("uid") or "") or None,
                                    rule_set=plan.rule_set, current=current)
        except NotFound:
            return Decision.DONE if plan.action is ChildAction.DELETE else Decision.REQUEUE
        except AlreadyExists:
            return Decision.REQUEUE  # the cache has not seen it yet
        except ApiError as error:
            return self._classify(error, trigger, plan.rule_set, what=f"{plan.action.value} "
                                  f"{plan.key}")
        self._board.write_succeeded(trigger, plan.rule_set)
        return Decision.DONE

    def _classify(self, error: ApiError, key: ObjectKey, ref: RuleSetRef | None, *,
                  what: str = "patch", guarded: bool = False) -> Decision:
        """The one place an API error becomes a decision."""
        if guarded and (isinstance(error, Conflict) or (
                isinstance(error, Invalid) and not error.refused)):
            return Decision.REQUEUE  # our guard failed: someone changed it, look again
        if isinstance(error, NotFound):
            return Decision.DONE
        if error.retryable:
            log.info("%s of %s failed, will retry: %s", what, key, error)
            if error.retry_after:
                self._hold(key, error.retry_after)
            return Decision.REQUEUE
        message = f"{what} of {key} refused: {error}"
        if isinstance(error, Invalid) and error.causes:
            # e.g. an immutable field: name the fields and the server's words, retry
            # only after the refused-write delay (never hot)
            message = f"{what} of {key} refused by the API server: " + "; ".join(
                f"{field}: {text}" if field else text for field, text in error.causes)
        log.warning("%s", message)
        if ref is not None:
            self._board.write_failed(key, ref, message)
        return Decision.RETRY_LATER

    def _listing(self, gvk: GVK) -> bool:
        """Whether `gvk` is watched and its cache has not listed yet."""
        try:
            return not self._watches.informer(gvk).has_synced()
        except NotWatched:
            return False

    def _synced(self, gvk: GVK) -> bool:
        try:
            return self._watches.informer(gvk).has_synced()
        except NotWatched:
            return False

    # -- identities --------------------------------------------------------------------

    def _writer_ref(self, result: Result, current: Current) -> RuleSetRef | None:
        """The rule set whose identity writes the trigger's patch: the first one that
        changed it and names a serviceAccountName, else the first one that changed it."""
        applied = [o.rule_set for o in result.outcomes if o.status is Status.APPLIED]
        for ref in applied:
            rule_set = current.rule_sets.get(ref)
            if rule_set is not None and rule_set.service_account_name:
                return ref
        return applied[0] if applied else None

    # -- a trigger that is gone --------------------------------------------------------

    def _cleanup_deleted(self, key: ObjectKey, current: Current) -> Decision:
        """Delete the children of a deleted trigger that ownerReferences cannot reach."""
        ref = key_ref(key)
        decision = Decision.DONE
        for gvk in current.engine.generated_kinds():
            try:
                store = self._watches.informer(gvk).store
            except NotWatched:
                continue
            for child in store.by_index(CHILD_OF_INDEX, ref):
                labels = meta(child).get("labels") or {}
                if RULE_SET_LABEL not in labels:
                    continue
                try:
                    self._writer.delete(gvk, meta(child).get("namespace"),
                                        meta(child)["name"], uid=meta(child).get("uid"),
                                        rule_set=owner_of(child, current), current=current)
                except NotFound:
                    pass
                except ApiError as error:
                    decision = worst(decision, self._classify(error, key, None,
                                                              what="delete child"))
        return decision


SERVER_FIELDS = ("resourceVersion", "generation", "managedFields")


_METADATA = frozenset({"metadata"})
_SERVER_FIELDS = frozenset(SERVER_FIELDS)


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for the metadata the server changes on every write (as if both lost
    those fields, a missing metadata counting as an empty one); field by field, without
    copying either object."""
    if a.keys() - _METADATA != b.keys() - _METADATA:
        return False
    ma, mb = meta(a), meta(b)
    if ma.keys() - _SERVER_FIELDS != mb.keys() - _SERVER_FIELDS:
        return False
    return _fields_equal(a, b, _METADATA) and _fields_equal(ma, mb, _SERVER_FIELDS)


def _fields_equal(a: dict[str, Any], b: dict[str, Any], but: frozenset[str]) -> bool:
    """`_json_equal` of each field of `a` but those in `but` with the same field of `b`
    (which has every field `a` has); a text decided here (most fields are one)."""
    for key, value in a.items():
        if key in but:
            continue
        other = b[key]
        if type(value) is str and type(other) is str:
            if value != other:
                return False
        elif not _json_equal(value, other):
            return False
    return True


_PLAIN = frozenset({str, int, float, type(None)})
"""Values whose Python equality is JSON's: no bool (True == 1 in Python), no container."""


def _json_equal(a: Any, b: Any) -> bool:
    """`json_equal`, with the commonest values of an object decided at once: a string
    (equal to a JSON value only if that is the same string) and a map of strings
    (labels, annotations, a ConfigMap's data)."""
    if type(a) is str:
        return bool(a == b)
    if type(a) is dict and type(b) is dict:
        if len(a) != len(b):
            return False
        # Two maps of plain values that Python finds equal are equal JSON: decided in C
        # (the map, then the types of both sides' values), without a step per entry.
        if _PLAIN.issuperset(map(type, a.values())) and _PLAIN.issuperset(
                map(type, b.values())):
            return bool(a == b)
        for key, value in a.items():
            other = b.get(key, MISSING)
            if type(value) is str:
                if value != other:  # MISSING is no string
                    return False
            elif other is MISSING or not json_equal(value, other):
                return False
        return True
    return json_equal(a, b)


def owner_of(child: dict[str, Any], current: Current) -> RuleSetRef | None:
    """The rule set a child's labels name, if it is still loaded."""
    labels = meta(child).get("labels") or {}
    for ref in current.rule_sets:
        namespace = labels.get(RULE_SET_NAMESPACE_LABEL, "")
        if label_value(ref.name) == labels.get(RULE_SET_LABEL) and (
                ref.namespace if ref.namespaced else "") == namespace:
            return ref
    return None


def worst(a: Decision, b: Decision) -> Decision:
    order = [Decision.DONE, Decision.RETRY_LATER, Decision.REQUEUE]
    return a if order.index(a) >= order.index(b) else b
