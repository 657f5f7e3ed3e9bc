"""The live sweep: prune generated objects that no rule produces any more.

A trigger's own reconcile prunes what its rules stop producing for it. The rule-set
controller calls `prune_orphans` for what no reconcile can see — at start, on leader takeover,
after every recompilation and at every resync — for every kind any rule generated
before or generates now. Each cached child carrying Edict's labels is judged by
`engine.evaluate.sweep.why_orphaned` (its rule set or rule gone, its trigger gone: also
one deleted while no engine ran, or in another namespace where no ownerReference lets
the garbage collector reach the child). A trigger is only taken as gone when its kind's
cache has listed. Deletes go out as the rule set's ServiceAccount when the rule set
still exists and names one; the children of a deleted rule set are pruned by the
engine itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from engine.evaluate.sweep import rule_set_of, why_orphaned
from engine.kube.errors import ApiError, NotFound
from engine.objects import GVK, key_of, meta

from ..current import Current
from ..source.watches import NotWatched, WatchManager
from ..source.world import RULE_SET_INDEX
from ..writer import Writer

log = logging.getLogger(__name__)


def prune_orphans(kinds: Iterable[GVK], *, current: Current, watches: WatchManager,
                  writer: Writer) -> int:
    """Delete the children of rules, rule sets and triggers that are gone; how many."""
    def trigger_exists(gvk: GVK, namespace: str, name: str) -> bool | None:
        try:
            informer = watches.informer(gvk)
        except NotWatched:
            return None
        if not informer.has_synced():
            return None
        return informer.store.get(namespace or None, name) is not None

    pruned = 0
    for gvk in kinds:
        for obj in watches.cached_indexed(gvk, RULE_SET_INDEX):  # Edict's, not all
            why = why_orphaned(obj, rule_sets=current.rule_sets, trigger_exists=trigger_exists,
                               all_loaded=True)
            if why is None:
                continue
            log.info("pruning %s: %s", key_of(obj), why)
            try:
                writer.delete(gvk, meta(obj).get("namespace"), meta(obj)["name"],
                              uid=meta(obj).get("uid"),
                              rule_set=rule_set_of(obj, current.rule_sets), current=current)
                pruned += 1
            except NotFound:
                pass
            except ApiError as error:
                log.warning("could not prune %s: %s", key_of(obj), error)
    return pruned
