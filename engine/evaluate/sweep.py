"""Which generated objects no rule produces any more, whatever happened while no engine
looked: the one answer the offline commands and the live engine's sweep share.

A trigger's own evaluation prunes the children a rule stops producing for it (the
condition turned false, `match` no longer holds, a `forEach` item went). What no
evaluation can see is a child whose rule or rule set is gone, or whose trigger no longer
exists — deleted while no engine ran, or in another namespace than its children, where
no ownerReference lets the garbage collector reach them. `why_orphaned` answers for one
child; `edict apply`/`edict test` ask it for every child among their inputs and the live
engine for every cached child, at start, on leader takeover and at every resync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from engine.evaluate.children import (
    RULE_LABEL,
    RULE_SET_LABEL,
    RULE_SET_NAMESPACE_LABEL,
    label_value,
    parse_trigger_ref,
)
from engine.evaluate.world import trigger_of
from engine.objects import GVK, Obj, labels_of
from engine.rules.model import Generate, Mode, RuleSet, RuleSetRef

# Whether a trigger exists: True/False, or None when the answer is not known (a cache
# that has not listed): then nothing is pruned.
TriggerExists = Callable[[GVK, str, str], bool | None]


def rule_set_of(child: Obj, rule_sets: Iterable[RuleSetRef]) -> RuleSetRef | None:
    """The loaded rule set a child's labels name, if any."""
    labels = labels_of(child)
    name = labels.get(RULE_SET_LABEL)
    if name is None:
        return None
    namespace = labels.get(RULE_SET_NAMESPACE_LABEL, "")
    for ref in rule_sets:
        if label_value(ref.name) == name and (ref.namespace if ref.namespaced else "") == (
                namespace):
            return ref
    return None


def why_orphaned(child: Obj, *, rule_sets: Mapping[RuleSetRef, RuleSet],
                 trigger_exists: TriggerExists, all_loaded: bool) -> str | None:
    """Why `child` should be pruned, or None to keep it.

    `all_loaded`: the rule sets given are all there are (live), so a child of any other
    rule set lost its rule set; offline, a rule set not given is simply not known. A
    child of a Suspended or Audit rule set, or of a generate rule without
    `synchronize`, is left alone: nothing is written for those.
    """
    labels = labels_of(child)
    if RULE_SET_LABEL not in labels:
        return None
    ref = rule_set_of(child, rule_sets)
    if ref is None:
        return "its rule set is gone" if all_loaded else None
    rule_set = rule_sets[ref]
    if rule_set.mode is not Mode.ENFORCE:
        return None
    rule = next((r for r in rule_set.rules if r.name == labels.get(RULE_LABEL)), None)
    if rule is None or not isinstance(rule.action, Generate):
        return f"rule {labels.get(RULE_LABEL)!r} of {ref} is gone"
    if not rule.action.synchronize:
        return None
    trigger = parse_trigger_ref(trigger_of(child) or "")
    if trigger is None:
        return None
    gvk, namespace, name = trigger
    if trigger_exists(gvk, namespace, name) is False:
        return f"its trigger {gvk.kind} {namespace + '/' if namespace else ''}{name} is gone"
    return None
