"""The one-line summary `edict apply` ends with, so that nothing happens without a word.

    1 object changed; children: 5 created, 0 updated, 0 pruned; 1 rule skipped for
    missing data; 1 rule matched nothing (RuleSet team-a/team-config
    'cost-centre-from-configmap'); 0 errors

(on one line). "Skipped for missing data" counts the objects on which a rule's
condition or forEach read data that is not there, at the end; "matched nothing" names
the enabled rules no object ever matched — a misspelt kind or an exclude that leaves
nothing shows up here even when lint was not run.
"""

from __future__ import annotations

from engine.cli.why import Verdict, condition_value
from engine.evaluate.children import RULE_SET_LABEL, TRIGGER_ANNOTATION
from engine.evaluate.compile import CompiledRule
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Status
from engine.evaluate.simulate import Simulation
from engine.objects import Obj, labels_of, meta
from engine.rules.model import Mode, RuleSetRef

NAMED = 3  # rules named in the summary before "..."


def summary(engine: Engine, sim: Simulation, errors: int) -> str:
    changed = updated = 0
    for key in sim.inputs:
        final = sim.final(key)
        if final is None or final == sim.originals[key]:
            continue
        if is_child(final):
            updated += 1
        else:
            changed += 1
    created = sum(1 for key in sim.generated if sim.final(key) is not None)
    rules = {(r.rule_set.ref, r.rule.name): r for c in engine.rule_sets for r in c.rules}
    missing = skipped_for_missing_data(sim, rules)
    seen = {(o.rule_set, o.rule) for outcomes in sim.outcomes.values() for o in outcomes}
    seen |= {(o.rule_set, o.rule) for r in sim.results.values() for o in r.outcomes}
    idle = [r for ref, r in rules.items() if ref not in seen and r.enabled
            and r.rule_set.mode is not Mode.SUSPENDED]
    parts = [count(changed, "object") + " changed",
             f"children: {created} created, {updated} updated, {len(sim.deleted)} pruned",
             count(missing, "rule") + " skipped for missing data",
             count(len(idle), "rule") + " matched nothing" + _named(idle),
             count(errors - len(sim.violations), "error")]
    if sim.violations:
        parts.append(count(len(sim.violations), "violation"))
    return "; ".join(parts)


def skipped_for_missing_data(sim: Simulation,
                             rules: dict[tuple[RuleSetRef, str], CompiledRule]) -> int:
    """(object, rule) pairs skipped at the end because a condition or forEach read data
    that is not there (not because the condition is false)."""
    found = 0
    for key, result in sim.results.items():
        final = sim.final(key) or result.current  # the last evaluation may predate it
        for outcome in result.outcomes:
            rule = rules.get((outcome.rule_set, outcome.rule))
            if outcome.status is Status.SKIPPED and rule is not None and (
                    condition_value(rule, final, sim.world).verdict
                    is Verdict.MISSING_DATA):
                found += 1
    return found


def is_child(obj: Obj) -> bool:
    annotations = meta(obj).get("annotations") or {}
    return bool(labels_of(obj).get(RULE_SET_LABEL)) and TRIGGER_ANNOTATION in annotations


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _named(rules: list[CompiledRule]) -> str:
    if not rules:
        return ""
    names = [f"{r.rule_set.ref} {r.rule.name!r}" for r in rules[:NAMED]]
    return f" ({', '.join(names)}{', ...' if len(rules) > NAMED else ''})"
