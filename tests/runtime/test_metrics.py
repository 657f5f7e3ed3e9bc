"""EngineMetrics: an outcome counted from its value is the same sample as by its names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from engine.evaluate.outcomes import Outcome, Status
from engine.rules.model import RuleSetRef
from engine.runtime.metrics import EngineMetrics


def test_outcomes_counted_from_values_and_from_names_are_one_sample() -> None:
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    cluster, namespaced = RuleSetRef("ClusterRuleSet", "", "t"), RuleSetRef("RuleSet", "n", "t")
    for ref, status in ((cluster, Status.APPLIED), (cluster, Status.APPLIED),
                        (namespaced, Status.APPLIED), (cluster, Status.ERROR)):
        metrics.outcome(Outcome(ref, "r", status, "why"))
    metrics.rule_outcome("ClusterRuleSet t", "r", "applied")

    def sample(rule_set: str, outcome: str) -> float | None:
        return registry.get_sample_value("edict_rule_outcomes_total", {
            "rule_set": rule_set, "rule": "r", "outcome": outcome})

    assert sample("ClusterRuleSet t", "applied") == 3
    assert sample("RuleSet n/t", "applied") == 1
    assert sample("ClusterRuleSet t", "error") == 1
    assert sample("RuleSet n/t", "error") is None
