"""`edict explain`: why each object ends up as it does, rule by rule and field by field.

Runs the rule sets over the manifests exactly as `edict apply` does, then, for each object
(or the one `--object Kind/namespace/name` names): every rule about its kind in the order
they run — matched or not and which `match` clause said no, the condition's value, the
outcome with its reason and the paths it wrote — then every field that changed with the
rule set and rule that set it last, and the objects its rules generated or pruned.
`edict test --explain` prints the same report for a test case.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from engine.cli.common import (
    EXIT_OK,
    UsageError,
    add_limits_argument,
    engine_of,
    error,
    load_rule_sets,
    read_limits,
    read_objects,
)
from engine.cli.why import ConditionValue, Verdict, condition_value, mismatch, sources
from engine.evaluate.children import RULE_LABEL, RULE_SET_LABEL, TRIGGER_ANNOTATION, trigger_ref
from engine.evaluate.compile import CompiledRule
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Outcome, Status
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import Obj, ObjectKey, key_of, labels_of, meta
from engine.rules.model import Generate, Mode, RuleSetRef

DESCRIPTION = """\
Explain what the rule sets do to each object, as `edict apply` would run them:

  for every rule about the object's kind, in the order rules run: matched or not (and
  which part of match left it out), the condition's value, the outcome and its reason,
  the paths it wrote; then each changed field with the rule set and rule that set it
  last; then the objects generated or pruned for it.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "explain", help="why each object ends up as it does: rule by rule, field by field",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict explain -r rules/ -f examples/shop.yaml "
               "--object Deployment/shop/web")
    parser.add_argument("-r", "--rules", nargs="+", action="extend", required=True,
                        metavar="RULES", help="rule-set files or directories")
    parser.add_argument("-f", "--filename", nargs="+", action="extend", required=True,
                        metavar="MANIFESTS", help="manifest files or directories; - for stdin")
    parser.add_argument("--object", metavar="KIND/NAMESPACE/NAME",
                        help="only this object (KIND/NAME when it has no namespace)")
    parser.add_argument("--all", action="store_true",
                        help="also list the rules about other kinds")
    add_limits_argument(parser)


def main(args: argparse.Namespace) -> int:
    limits = read_limits(args.limits)
    loaded = load_rule_sets(args.rules)
    objects = read_objects(args.filename)
    for exc in loaded.errors:
        error(str(exc))
    engine = engine_of(loaded.rule_sets, limits)
    sim = simulate(engine, objects, schemas=loaded.schemas)
    keys = select([*sim.inputs, *sim.generated], args.object)
    print("\n\n".join("\n".join(explain(engine, sim, key, every_rule=args.all))
                      for key in keys))
    return EXIT_OK


def select(keys: Iterable[ObjectKey], wanted: str | None) -> list[ObjectKey]:
    keys = list(keys)
    if wanted is None:
        return keys
    parts = wanted.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--object {wanted!r}: expected KIND/NAMESPACE/NAME or KIND/NAME")
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else ""
    found = [k for k in keys if k.gvk.kind.lower() == kind.lower() and k.name == name
             and k.namespace == namespace]
    if not found:
        raise UsageError(f"--object {wanted}: no such object among the manifests or the "
                         "objects the rules generate")
    return found


def explain(engine: Engine, sim: Simulation, key: ObjectKey, *,
            every_rule: bool = False) -> list[str]:
    """The report for one object, as lines."""
    original = sim.originals.get(key)
    final = sim.final(key)
    subject = original if original is not None else final
    if subject is None:
        return [f"{key}: not there"]
    state = ("generated" if original is None else "changed" if final != original
             else "unchanged")
    if key in sim.deleted:
        state = "pruned"
    lines = [f"{key}: {state}"]
    result = engine.evaluate(subject, world=sim.world)
    now = {(o.rule_set, o.rule): o for o in result.outcomes}
    first = {(o.rule_set, o.rule): o for o in sim.outcomes.get(key, ())}
    lines.append("  rules, in the order they run:")
    number = others = 0
    for compiled in engine.rule_sets:
        for rule in compiled.rules:
            if key.gvk not in rule.rule.match.kinds:
                others += 1
                if not every_rule:
                    continue
            number += 1
            outcome = (first if isinstance(rule.rule.action, Generate) else now).get(
                (rule.rule_set.ref, rule.rule.name))
            lines += _rule_lines(number, rule, subject, sim, outcome)
    if not number:
        lines.append(f"    (no rule is about {key.gvk})")
    if others and not every_rule:
        lines.append(f"    ({others} rules about other kinds: --all lists them)")
    if original is not None and final is not None:
        changed = sources(original, final, result.outcomes)
        lines.append("  fields changed:" + ("" if changed else " none"))
        width = max((len(p) for p, _ in changed), default=0)
        for path, writer in changed:
            who = _who(*writer) if writer else "(no rule: set by the engine)"
            lines.append(f"    {path:<{width}}  {who}")
    children = _children(sim, subject)
    lines.append("  generated for it:" + ("" if children else " none"))
    lines += [f"    {line}" for line in children]
    owner = labels_of(subject)
    if original is None and owner.get(RULE_SET_LABEL):
        lines.append(f"  generated by rule set {owner[RULE_SET_LABEL]!r}, rule "
                     f"{owner.get(RULE_LABEL)!r}")
    return lines


def _rule_lines(number: int, rule: CompiledRule, obj: Obj, sim: Simulation,
                outcome: Outcome | None) -> list[str]:
    head = f"    {number}. {_who(rule.rule_set.ref, rule.rule.name)} " \
           f"({rule.rule.action_kind.value})"
    if rule.rule_set.mode is Mode.SUSPENDED:
        return [f"{head}: not run: the rule set is Suspended"]
    if not rule.enabled:
        return [f"{head}: disabled: " + "; ".join(e.message for e in rule.errors)]
    reason = mismatch(rule, obj, sim.world)
    if reason is not None:
        return [f"{head}: not matched: {reason}"]
    audit = " (Audit: reported, never written)" if rule.rule_set.mode is Mode.AUDIT else ""
    lines = [f"{head}: matched{audit}",
             f"         condition: {_condition(rule, obj, sim, outcome)}"]
    if outcome is None:
        lines.append("         outcome: none (the object was not evaluated)")
        return lines
    message = outcome.message.replace("\n", " ")
    if outcome.status in (Status.APPLIED, Status.WOULD_APPLY) and outcome.paths:
        message = ""
    lines.append(f"         outcome: {outcome.status.value}" + (f": {message}" if message
                                                                 else ""))
    if outcome.paths:
        lines.append(f"         wrote: {', '.join(outcome.paths)}")
    return lines


def _condition(rule: CompiledRule, obj: Obj, sim: Simulation, outcome: Outcome | None
               ) -> str:
    """The condition as the rule saw it: true when it ran; else its value on the object
    as it ends up; and its value on the input when that differs (an earlier rule, or a
    pass, changed what it reads)."""
    on_input = condition_value(rule, obj, sim.world)
    if rule.condition is None:
        return on_input.describe()
    if outcome is not None and outcome.status in (Status.APPLIED, Status.UNCHANGED,
                                                  Status.WOULD_APPLY):
        shown = ConditionValue(Verdict.TRUE)
    else:
        final = sim.final(key_of(obj)) or obj
        shown = condition_value(rule, final, sim.world)
    text = shown.describe()
    if on_input.verdict is not shown.verdict:
        text += f" ({on_input.describe()} on the input: earlier rules changed what it reads)"
    return text


def _children(sim: Simulation, trigger: Obj) -> list[str]:
    ref = trigger_ref(trigger)
    out = []
    for key in dict.fromkeys([*sim.generated, *sim.inputs, *sim.deleted]):
        obj = sim.final(key) or sim.originals.get(key)
        if obj is None or (meta(obj).get("annotations") or {}).get(TRIGGER_ANNOTATION) != ref:
            continue
        if key in sim.deleted:
            fate = "pruned"
        elif key not in sim.originals:
            fate = "created"
        else:
            fate = "updated" if sim.final(key) != sim.originals[key] else "unchanged"
        labels = labels_of(obj)
        out.append(f"{key}: {fate} by rule set {labels.get(RULE_SET_LABEL)!r}, rule "
                   f"{labels.get(RULE_LABEL)!r}")
    return out


def _who(rule_set: RuleSetRef, rule: str) -> str:
    return f"{rule_set}, rule {rule!r}"
