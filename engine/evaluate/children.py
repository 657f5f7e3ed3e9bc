"""Generated objects: how they are marked as Edict's, owned, and planned against the world.

The evaluator renders children; this module stamps them with the labels that name the
rule set, rule and trigger, adds an ownerReference where Kubernetes allows one, and
decides per child whether to create, patch, leave alone or prune, given what exists.
An existing object Edict did not create is never adopted: it is reported as an error.

A synchronized child is owned exactly: it is merged to its rendered state by each
field's own semantics (the kind's schema), and what the rule rendered at its last write
and no longer renders is taken away. What it rendered is recorded on the child, in the
annotation `OWNED_ANNOTATION` (see `engine.patching.owned` for why an annotation and
not the server's `managedFields`), so offline and live runs remove the same fields.

A generate rule whose template is literal keys over scalars has its children built and
stamped by a `engine.evaluate.makers.ChildMaker` (`stamp_with`, with the rule's labels and
the trigger's `TriggerFacts` computed once); `plan` receives them as `Made`, and lays one
that does not exist yet through the maker (`Made.layer`), the others as any child.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import ConfinementError, MergeError, Where
from engine.evaluate.identity import check_child_name
from engine.evaluate.outcomes import ChildAction, ChildPlan
from engine.evaluate.world import TRIGGER_ANNOTATION, TRIGGER_UID_LABEL, World
from engine.matching import namespace_for
from engine.objects import (
    GVK,
    Obj,
    ObjectKey,
    gvk_of,
    key_of,
    labels_of,
    meta,
    name_of,
    namespace_of,
)
from engine.patching import make_patch, merge, owned
from engine.patching.lay import lay
from engine.rules.model import RuleSet
from engine.schemas import Node
from engine.templating import keep

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "edict"
RULE_SET_LABEL = "edict.dev/rule-set"
RULE_SET_NAMESPACE_LABEL = "edict.dev/rule-set-namespace"
RULE_LABEL = "edict.dev/rule"
OWNED_ANNOTATION = "edict.dev/owned-fields"
OWNED_PATH = ("metadata", "annotations", OWNED_ANNOTATION)

__all__ = ["OWNED_ANNOTATION", "TRIGGER_ANNOTATION", "Made", "TriggerFacts", "is_ours",
           "key_ref", "owner_labels", "parse_trigger_ref", "plan", "stale", "stamp",
           "stamp_with", "trigger_ref"]


def label_value(value: str) -> str:
    """A label value of at most 63 characters (long names keep a hash suffix)."""
    if len(value) <= 63:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return f"{value[:52].rstrip('-.')}-{digest}"


def trigger_ref(trigger: Obj) -> str:
    """How a child names its trigger (the annotation `TRIGGER_ANNOTATION`):
    ``apiVersion/Kind/namespace/name``, namespace empty for a cluster-scoped trigger."""
    gvk = gvk_of(trigger)  # key_ref(key_of(trigger)), without the key
    return f"{gvk.api_version}/{gvk.kind}/{namespace_of(trigger)}/{name_of(trigger)}"


def key_ref(key: ObjectKey) -> str:
    """`trigger_ref` of the object `key` names; `parse_trigger_ref` reads it back."""
    return f"{key.gvk.api_version}/{key.gvk.kind}/{key.namespace}/{key.name}"


def parse_trigger_ref(ref: str) -> tuple[GVK, str, str] | None:
    """The kind, namespace and name a `trigger_ref` names; None when it is not one."""
    parts = ref.rsplit("/", 3)
    if len(parts) != 4 or not parts[0] or not parts[1] or not parts[3]:
        return None
    api_version, kind, namespace, name = parts
    return GVK.of(api_version, kind), namespace, name


def owner_labels(rule_set: RuleSet, rule: str) -> dict[str, str]:
    """The labels that identify a rule's children (`managed-by` is only informative:
    other rules may well set it)."""
    labels = {RULE_SET_LABEL: label_value(rule_set.ref.name), RULE_LABEL: rule}
    if rule_set.ref.namespaced:
        labels[RULE_SET_NAMESPACE_LABEL] = rule_set.ref.namespace
    return labels


@dataclass(frozen=True, slots=True)
class TriggerFacts:
    """What stamping reads of a trigger, computed once per trigger and rule."""

    ref: str  # `trigger_ref`
    uid: str
    scope: str  # the namespace its children default to (a Namespace's own name)
    namespace: str  # its metadata.namespace ("" when cluster-scoped)

    @classmethod
    def of(cls, trigger: Obj) -> TriggerFacts:
        # `trigger_ref` and `uid_of` from one read of the metadata
        metadata = meta(trigger)
        gvk = gvk_of(trigger)
        namespace = str(metadata.get("namespace") or "")
        raw = trigger.get("metadata")
        return cls(f"{gvk.api_version}/{gvk.kind}/{namespace}/{metadata.get('name') or ''!s}",
                   str(metadata.get("uid") or ""), namespace_for(trigger),
                   namespace if isinstance(raw, dict) else str((raw or {}).get("namespace")
                                                               or ""))


def stamp(child: Obj, *, rule_set: RuleSet, rule: str, trigger: Obj, world: World,
          where: Where) -> Obj:
    """Give a rendered child its namespace, ownership labels and ownerReference."""
    return stamp_with(child, rule_set=rule_set, labels=owner_labels(rule_set, rule),
                      trigger=trigger, facts=TriggerFacts.of(trigger), world=world,
                      where=where)


def stamp_with(child: Obj, *, rule_set: RuleSet, labels: dict[str, str], trigger: Obj,
               facts: TriggerFacts, world: World, where: Where, gvk: GVK | None = None,
               fresh: bool = False) -> Obj:
    """`stamp`, given the rule's `owner_labels` and the trigger's facts (a generate rule
    with a `makers.ChildMaker` computes them once, not per child; `gvk`: the child's, when
    the caller knows it). `fresh`: the child, its metadata and their maps were made for
    this call and are seen by no one else (a maker's): stamped in place, not copied."""
    if not isinstance(child, dict) or not name_of(child):
        raise MergeError("a generated object needs metadata.name", where=where)
    if fresh:
        out: dict[str, Any] = child
        metadata: dict[str, Any] = child["metadata"]
    else:
        out = dict(child)
        metadata = dict(meta(child))
        out["metadata"] = metadata
    if gvk is None:
        gvk = gvk_of(child)
    namespaced = world.namespaced(gvk)
    if namespaced is not False and not metadata.get("namespace") and facts.scope:
        metadata["namespace"] = facts.scope
    if namespaced is False:
        metadata.pop("namespace", None)
    namespace = str(metadata.get("namespace") or "")
    check_child_name(out, where=where)
    if rule_set.ref.namespaced and namespace != rule_set.ref.namespace:
        raise ConfinementError(
            f"cannot generate {gvk.kind} {namespace + '/' if namespace else ''}"
            f"{metadata['name']}: a RuleSet only writes in its own namespace "
            f"{rule_set.ref.namespace!r}", where=where)
    for field in ("labels", "annotations"):
        given = metadata.get(field)
        if given and not isinstance(given, dict):
            raise MergeError(f"metadata.{field} of a generated {gvk.kind} must be a mapping, "
                             f"not {type(given).__name__}", where=where)
    given = metadata.get("labels")
    stamped = given if fresh and type(given) is dict else dict(given or {})
    stamped.setdefault(MANAGED_BY, MANAGER)
    stamped.update(labels)
    uid = facts.uid
    if uid:
        stamped[TRIGGER_UID_LABEL] = uid
    metadata["labels"] = stamped
    given = metadata.get("annotations")
    annotations = given if fresh and type(given) is dict else dict(given or {})
    annotations[TRIGGER_ANNOTATION] = facts.ref
    metadata["annotations"] = annotations
    if uid and (not facts.namespace or facts.namespace == namespace):
        owner = {"apiVersion": trigger["apiVersion"], "kind": trigger["kind"],
                 "name": name_of(trigger), "uid": uid, "controller": True}
        metadata["ownerReferences"] = [owner]
    return out


def is_ours(obj: Obj, *, rule_set: RuleSet, rule: str, trigger: Obj) -> bool:
    labels = labels_of(obj)
    wanted = owner_labels(rule_set, rule)
    annotations = meta(obj).get("annotations") or {}
    return all(labels.get(k) == v for k, v in wanted.items()) and (
        annotations.get(TRIGGER_ANNOTATION) == trigger_ref(trigger))


class Laying(Protocol):
    def created(self, child: Obj, schema: Node | None, uid: str) -> Obj | None:
        """`child` laid onto nothing with its owned-fields record (what `plan` creates),
        or None: `plan` lays it generically."""


@dataclass(frozen=True, slots=True)
class Made:
    """A stamped child whose key is known and that `layer` may lay without a walk
    (`engine.evaluate.makers`); `uid`: its trigger's."""

    child: Obj
    key: ObjectKey
    uid: str
    layer: Laying


def plan(
    desired: Iterable[Obj | Made],
    *,
    rule_set: RuleSet,
    rule: str,
    trigger: Obj,
    kinds: Iterable[GVK],
    synchronize: bool,
    world: World,
    where: Where,
    facts: TriggerFacts | None = None,
) -> list[ChildPlan]:
    """Create, patch, leave or prune: one plan per desired child and per stale one
    (`facts`: the trigger's, when the caller has them)."""
    plans: list[ChildPlan] = []
    wanted = set()
    for entry in desired:
        if isinstance(entry, Made):
            made, child, key = entry, entry.child, entry.key
        else:
            made, child, key = None, entry, key_of(entry)
        if key in wanted:
            raise MergeError(f"{key} is rendered twice for one trigger", where=where)
        wanted.add(key)
        schema = world.schema(key.gvk)
        existing = world.get(key.gvk, key.namespace, key.name)
        if existing is None and made is not None:
            created = made.layer.created(child, schema, made.uid)
            if created is not None:
                plans.append(ChildPlan(ChildAction.CREATE, key, rule_set.ref, rule, created))
                continue
        fast = lay(child, schema=schema, skip=[OWNED_PATH])
        if fast is not None:  # the plain case (no `| keep` marker): one walk
            laid, record = fast
        else:
            child = keep.resolve(child, existing)  # values kept once made (`| keep`)
            laid, assignments = merge({}, child, where=where, schema=schema)
            record = owned.field_set(assignments, skip=[OWNED_PATH])
        if existing is None:
            created = with_record(laid, record)
            plans.append(ChildPlan(ChildAction.CREATE, key, rule_set.ref, rule, created))
            continue
        if not is_ours(existing, rule_set=rule_set, rule=rule, trigger=trigger):
            raise MergeError(
                f"{key} already exists and was not created by this rule for "
                f"{key_of(trigger)}; Edict does not adopt objects (delete it, or label it "
                "as this rule's child)", where=where)
        if not synchronize:
            plans.append(ChildPlan(ChildAction.NONE, key, rule_set.ref, rule, existing,
                                   existing=existing))
            continue
        base = existing
        before = owned.decode(_annotations(existing).get(OWNED_ANNOTATION))
        if before is not None:
            base = owned.remove_dropped(existing, before, record, schema=schema)
        target, _ = merge(base, child, where=where, schema=schema)
        target = with_record(target, record)
        ops = make_patch(existing, target)
        action = ChildAction.PATCH if ops else ChildAction.NONE
        plans.append(ChildPlan(action, key, rule_set.ref, rule, target, tuple(ops), existing))
    if synchronize:
        plans.extend(stale(rule_set=rule_set, rule=rule, trigger=trigger, kinds=kinds,
                           world=world, keep=wanted,
                           ref=facts.ref if facts is not None else None))
    return plans


def _annotations(obj: Obj) -> dict[str, Any]:
    annotations = meta(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def with_record(obj: Obj, record: owned.FieldSet) -> Obj:
    """`obj` carrying `record` in its annotation (a fresh top and metadata)."""
    text = owned.encode(record)
    if _annotations(obj).get(OWNED_ANNOTATION) == text:
        return obj
    metadata = dict(meta(obj))
    metadata["annotations"] = {**_annotations(obj), OWNED_ANNOTATION: text}
    return {**obj, "metadata": metadata}


def stale(*, rule_set: RuleSet, rule: str, trigger: Obj, kinds: Iterable[GVK], world: World,
          keep: set[Any], ref: str | None = None) -> list[ChildPlan]:
    """Children this rule made for this trigger that are no longer wanted (`ref`: the
    trigger's `trigger_ref`, when the caller has it)."""
    out = []
    ref = trigger_ref(trigger) if ref is None else ref
    for gvk in kinds:
        for obj in world.children(gvk, ref):
            key = key_of(obj)
            if key not in keep and is_ours(obj, rule_set=rule_set, rule=rule, trigger=trigger):
                out.append(ChildPlan(ChildAction.DELETE, key, rule_set.ref, rule, None,
                                     existing=obj))
    return out
