"""The kinds the runtime itself watches, whatever the rules say.

Every part names them: the rule-set controller compiles what the first two hold, the
router turns their events into recompilations, the status writer writes their status,
and a Namespace's labels feed namespaceSelector and namespaceObject.
"""

from __future__ import annotations

from engine.objects import GVK
from engine.rules.model import CLUSTER_RULE_SET, GROUP, RULE_SET, VERSION

RULE_SET_GVK = GVK(GROUP, VERSION, RULE_SET)
CLUSTER_RULE_SET_GVK = GVK(GROUP, VERSION, CLUSTER_RULE_SET)
NAMESPACE_GVK = GVK.of("v1", "Namespace")  # the instance every kind map finds by identity
ENGINE_KINDS = frozenset({RULE_SET_GVK, CLUSTER_RULE_SET_GVK, NAMESPACE_GVK})
"""Watched from start to stop, leader or not."""


def rule_set_gvk(kind: str) -> GVK:
    """The GVK of a `RuleSetRef.kind`."""
    return RULE_SET_GVK if kind == RULE_SET else CLUSTER_RULE_SET_GVK
