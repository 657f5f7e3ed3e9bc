"""Pruning children whose generate rule is gone: the manager calls `prune_orphans` after
every recompilation, for every kind any rule generated before or generates now.

Children are recognised by the labels `engine.evaluate.children` stamps (rule set, its
namespace for a RuleSet, rule). A child of a rule set in Audit or Suspended mode, or of
a generate rule with `synchronize: false`, is left alone. Deletes go out as the rule
set's ServiceAccount when the rule set still exists and names one; the children of a
deleted rule set are pruned by the engine itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from engine.evaluate.children import (
    RULE_LABEL,
    RULE_SET_LABEL,
    RULE_SET_NAMESPACE_LABEL,
    label_value,
)
from engine.kube.client import Cluster
from engine.kube.errors import ApiError, NotFound
from engine.objects import GVK, key_of, labels_of, meta
from engine.rules.model import Generate, Mode, RuleSetRef

from .reconciler import Current, owner_of
from .watches import WatchManager

log = logging.getLogger(__name__)


def prune_orphans(kinds: Iterable[GVK], *, current: Current, watches: WatchManager,
                  api_for: Callable[[RuleSetRef | None, Current], Cluster]) -> int:
    """Delete children of generate rules that no longer exist; return how many."""
    wanted: set[tuple[str, str, str]] = set()
    left_alone: set[tuple[str, str]] = set()
    for ref, rule_set in current.rule_sets.items():
        ident = (label_value(ref.name), ref.namespace if ref.namespaced else "")
        if rule_set.mode is not Mode.ENFORCE:
            left_alone.add(ident)
        for rule in rule_set.rules:
            if isinstance(rule.action, Generate) and rule.action.synchronize:
                wanted.add((*ident, rule.name))
            elif isinstance(rule.action, Generate):
                left_alone.add(ident)
    pruned = 0
    for gvk in kinds:
        for obj in watches.cached(gvk):
            labels = labels_of(obj)
            if RULE_SET_LABEL not in labels:
                continue
            ident = (labels[RULE_SET_LABEL], labels.get(RULE_SET_NAMESPACE_LABEL, ""))
            if ident in left_alone or (*ident, labels.get(RULE_LABEL, "")) in wanted:
                continue
            log.info("pruning %s: its rule is gone", key_of(obj))
            try:
                api_for(owner_of(obj, current), current).delete(
                    gvk, meta(obj).get("namespace"), meta(obj)["name"],
                    uid=meta(obj).get("uid"))
                pruned += 1
            except NotFound:
                pass
            except ApiError as error:
                log.warning("could not prune %s: %s", key_of(obj), error)
    return pruned
