"""Writing rule-set status back: what `StatusBoard` renders, only when it changed.

The manager's status thread calls `flush()` every `status_interval` while it leads (and
once more on shutdown). One merge patch of the status subresource per rule set whose
rendered status differs from the last one written; nothing at steady state.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.kube.client import Cluster
from engine.kube.errors import ApiError, NotFound
from engine.rules.model import RULE_SET, RuleSetRef

from .rulesets import CLUSTER_RULE_SET_GVK, RULE_SET_GVK
from .status import StatusBoard

log = logging.getLogger(__name__)


class StatusWriter:
    def __init__(self, cluster: Cluster, board: StatusBoard) -> None:
        self._cluster = cluster
        self._board = board
        self._written: dict[RuleSetRef, Any] = {}

    def forget(self, present: set[RuleSetRef]) -> None:
        """Drop what we know of rule sets that are gone."""
        for ref in set(self._written) - present:
            self._board.removed(ref)
            self._written.pop(ref, None)

    def flush(self) -> None:
        for ref in self._board.dirty():
            body = self._board.render(ref)
            if body is None or self._written.get(ref) == body:
                continue
            gvk = RULE_SET_GVK if ref.kind == RULE_SET else CLUSTER_RULE_SET_GVK
            try:
                self._cluster.patch_merge_status(gvk, ref.namespace or None, ref.name,
                                                 {"status": body})
                self._written[ref] = body
            except NotFound:
                self._board.removed(ref)
            except ApiError as error:
                log.warning("could not write the status of %s: %s", ref, error)
                self._board.mark_dirty(ref)
