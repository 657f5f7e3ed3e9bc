"""The live rule-set compile uses the engine's limits (`ManagerSettings.limits`, from
``edict run --limits``): `compile_cluster_rule_sets` hands them to every CEL program and
template, the rule-set status reports what they refuse, and evaluation runs under them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from engine.cel.limits import CelLimits
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.evaluate.outcomes import Status
from engine.evaluate.world import ManifestWorld
from engine.kube.client import Cluster
from engine.rules.model import RuleSetRef
from engine.runtime.manager import Manager, ManagerSettings
from engine.runtime.rulesets.compile import compile_cluster_rule_sets
from engine.runtime.rulesets.controller import RuleSetSettings
from engine.runtime.status import StatusBoard
from engine.templating.limits import TemplateLimits

RULE_SET = {
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
    "metadata": {"name": "heavy", "generation": 3},
    "spec": {"rules": [
        {"name": "short-values",
         "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
         "condition": "object.data.all(k, object.data[k].size() < 100)",
         "mutate": {"template": {"metadata": {"labels": {"checked": "yes"}}}}},
        {"name": "looped",
         "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
         "mutate": {"template": {"metadata": {"annotations": {
             "loops": "{% for i in range(300) %}{% endfor %}done"}}}}},
    ]},
}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "settings", "namespace": "shop"},
              "data": {f"key{i}": "v" * 10 for i in range(50)}}
REF = RuleSetRef("ClusterRuleSet", "", "heavy")


def board() -> StatusBoard:
    return StatusBoard(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def test_the_live_compile_hands_the_limits_to_every_program_and_template() -> None:
    limits = Limits(CelLimits(runtime_cost_limit=100), TemplateLimits(max_operations=200))
    compiled = compile_cluster_rule_sets([RULE_SET], board=board(), exists=lambda _: True,
                                         limits=limits)
    assert compiled.engine.settings.limits is limits
    short, looped = compiled.engine.rule_sets[0].rules
    assert short.condition is not None and short.condition.limits is limits.cel
    assert looped.template is not None and looped.template.limits is limits.templates

    result = compiled.engine.evaluate(CONFIG_MAP, world=ManifestWorld([CONFIG_MAP]))
    outcomes = {o.rule: o for o in result.outcomes}
    assert outcomes["short-values"].status is Status.ERROR
    assert "runtime_cost_limit" in outcomes["short-values"].message
    assert outcomes["looped"].status is Status.ERROR
    assert "max_operations" in outcomes["looped"].message

    default = compile_cluster_rule_sets([RULE_SET], board=board(), exists=lambda _: True)
    assert default.engine.settings.limits is DEFAULT_LIMITS
    result = default.engine.evaluate(CONFIG_MAP, world=ManifestWorld([CONFIG_MAP]))
    assert {o.rule: o.status for o in result.outcomes} == {
        "short-values": Status.APPLIED, "looped": Status.APPLIED}


def test_a_rule_the_limits_refuse_to_compile_is_disabled_in_the_rule_set_status() -> None:
    status = board()
    compile_cluster_rule_sets([RULE_SET], board=status, exists=lambda _: True,
                              limits=Limits(cel=CelLimits(static_cost_limit=5)))
    rendered = status.render(REF)
    assert rendered is not None
    rules = {rule["name"]: rule for rule in rendered["rules"]}
    assert rules["short-values"]["enabled"] is False
    assert "static_cost_limit" in rules["short-values"]["lastError"]
    assert "field condition" in rules["short-values"]["lastError"]
    assert rules["looped"]["enabled"] is True


class UnusedCluster:
    """The cluster a Manager is built with: wiring may take its methods, never call one."""

    def observe_requests(self, *_callbacks: Any) -> None:
        return None

    def remember_answers(self, _answers: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"Must not be called: cluster.{name}{args}")
        return called


def test_the_manager_hands_its_limits_to_the_rule_set_controller() -> None:
    assert RuleSetSettings().limits is DEFAULT_LIMITS
    limits = Limits(cel=CelLimits(runtime_cost_limit=7))
    manager = Manager(cast(Cluster, UnusedCluster()), ManagerSettings(limits=limits))
    assert manager.rulesets._settings.limits is limits
    default = Manager(cast(Cluster, UnusedCluster()), ManagerSettings())
    assert default.rulesets._settings.limits is DEFAULT_LIMITS


def test_an_expression_nested_past_the_librarys_32_levels_is_reported_on_the_status(
        ) -> None:
    deep = {**RULE_SET, "spec": {"rules": [
        {**RULE_SET["spec"]["rules"][0],  # type: ignore[index]
         "condition": "+".join(["1"] * 40) + " > 0"}]}}
    status = board()
    compile_cluster_rule_sets([deep], board=status, exists=lambda _: True,
                              limits=Limits(cel=CelLimits(max_length=100_000)))
    rendered = status.render(REF)
    assert rendered is not None
    [rule] = rendered["rules"]
    assert rule["enabled"] is False
    assert "field condition" in rule["lastError"]
    assert "Exceeded max recursion depth of 32 when parsing." in rule["lastError"]
