"""Rule sets from the cluster: parse, compile, and say which kinds they need.

The rule-set controller (controller.py) calls `compile_cluster_rule_sets` whenever a
RuleSet or ClusterRuleSet changes. Each object is validated against the CRD schema
(the API server did so too, but an older CRD version may have let something through),
compiled with the engine's limits (`ManagerSettings.limits`, from ``edict run
--limits``), and checked for kinds that do not exist in the cluster: a rule naming one is
disabled and reported, the rest of its rule set runs. The status board learns about every rule set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace

from engine.errors import CompileError, SchemaError, Where
from engine.evaluate import clone, validation
from engine.evaluate.compile import generated_kinds
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.kube.errors import ApiError
from engine.objects import GVK, Obj
from engine.rules.load import parse_rule_set
from engine.rules.model import Generate, RuleSet, RuleSetRef

from ..status import StatusBoard


@dataclass(frozen=True)
class Compiled:
    engine: Engine
    rule_sets: dict[RuleSetRef, RuleSet]
    unknown_kinds: frozenset[GVK]


def rule_kinds(rule_set: RuleSet) -> dict[str, set[GVK]]:
    """Every kind each rule names: matched, looked up, generated (literal)."""
    out: dict[str, set[GVK]] = {}
    for rule in rule_set.rules:
        kinds = set(rule.match.trigger_kinds) | {lookup.gvk for lookup in rule.lookups}
        if isinstance(rule.action, Generate):
            with suppress(CompileError):  # compiling the rule reports it
                kinds.update(generated_kinds(rule.action.template, where=Where())
                             if rule.action.clone is None
                             else clone.generated_kinds(rule.action, where=Where()))
        out[rule.name] = kinds
    return out


def compile_cluster_rule_sets(objects: Iterable[Obj], *, board: StatusBoard,
                              exists: Callable[[GVK], bool],
                              limits: Limits = DEFAULT_LIMITS) -> Compiled:
    """The engine of the rule sets among `objects`, its rules bounded by `limits`; what
    is wrong with each rule set goes to `board`."""
    rule_sets: list[RuleSet] = []
    unknown: set[GVK] = set()
    missing_by_rule: dict[RuleSetRef, dict[str, str]] = {}
    for obj in objects:
        metadata = obj.get("metadata") or {}
        ref = RuleSetRef(str(obj.get("kind")), str(metadata.get("namespace") or ""),
                         str(metadata.get("name")))
        generation = int(metadata.get("generation") or 0)
        try:
            rule_set = parse_rule_set(obj, check_rule=validation.check_rule)
        except SchemaError as error:
            board.refused(ref, generation=generation, message=str(error))
            continue
        missing: dict[str, str] = {}
        for rule, kinds in rule_kinds(rule_set).items():
            absent = sorted(str(k) for k in kinds if not exists(k))
            if absent:
                unknown.update(k for k in kinds if not exists(k))
                missing[rule] = (f"kind {', '.join(absent)} does not exist in this cluster "
                                 "(is its CRD installed?)")
        if missing:
            rule_set = replace(rule_set, rules=tuple(r for r in rule_set.rules
                                                     if r.name not in missing))
        missing_by_rule[rule_set.ref] = missing
        rule_sets.append(rule_set)
    engine = Engine(rule_sets, settings=Settings(limits=limits))
    for compiled in engine.rule_sets:
        ref = compiled.rule_set.ref
        problems = {r.rule.name: "; ".join(str(e) for e in r.errors) for r in compiled.rules}
        problems.update(missing_by_rule.get(ref, {}))
        board.loaded(ref, generation=compiled.rule_set.generation, rules=problems)
    return Compiled(engine, {c.rule_set.ref: c.rule_set for c in engine.rule_sets},
                    frozenset(unknown))


def kind_exists(resource_for: Callable[[GVK], object]) -> Callable[[GVK], bool]:
    def exists(gvk: GVK) -> bool:
        try:
            resource_for(gvk)
        except ApiError:
            return False
        return True

    return exists


def changed_kinds(before: dict[RuleSetRef, RuleSet], after: dict[RuleSetRef, RuleSet]
                  ) -> set[GVK]:
    """Trigger kinds of the rule sets that were added, changed or removed."""
    kinds: set[GVK] = set()
    for ref in before.keys() | after.keys():
        old, new = before.get(ref), after.get(ref)
        if old != new:
            for rule_set in (old, new):
                if rule_set is not None:
                    kinds.update(k for rule in rule_set.rules for k in rule.match.trigger_kinds)
    return kinds
