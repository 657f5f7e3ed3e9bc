"""One rule as the lint checks see it: the model, its YAML value and where it came from.

`engine.cli.lint` makes a `Subject` for every rule of every rule set that passed the
schema; each check reads it and reports with `Subject.finding`, which fills in the rule
set, the rule and the document path (`spec.rules[i]...`) of the field it is about.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from engine.cel import VARIABLES
from engine.cli.lintchecks.findings import Finding, Path
from engine.evaluate.compile import compile_rule
from engine.evaluate.run import Pass, variables
from engine.evaluate.variables import NAME as NAMED
from engine.evaluate.world import ManifestWorld
from engine.rules.model import (
    CLUSTER_RULE_SET,
    Generate,
    Lookup,
    Match,
    Mutate,
    Rule,
    RuleSet,
    RuleSetRef,
)

FOR_EACH_VARIABLES = ("item", "index")
"""Set only while a `forEach` renders its template, once per item."""


@functools.cache
def template_variables() -> tuple[str, ...]:
    """The variables templates see: what the evaluator binds for a rule (CEL sees
    `engine.cel.VARIABLES`), asked of the evaluator itself."""
    rule_set = RuleSet(RuleSetRef(CLUSTER_RULE_SET, "", "probe"), rules=())
    rule = Rule(name="probe", position=0, match=Match(kinds=()), action=Mutate(template={}))
    bound = variables(compile_rule(rule_set, rule), {}, Pass(ManifestWorld(), None, set()))
    return tuple(bound)


@dataclass(frozen=True)
class Subject:
    rule_set: RuleSet
    rule: Rule
    raw: dict[str, Any]  # the rule's own YAML value
    source: str  # its document: "file#index"

    @property
    def path(self) -> Path:
        return ("spec", "rules", self.rule.position)

    @property
    def variables(self) -> frozenset[str]:
        """What conditions of this rule may read (forEach ones aside)."""
        return frozenset(VARIABLES) - set(FOR_EACH_VARIABLES)

    @property
    def template_variables(self) -> frozenset[str]:
        """What templates of this rule may read (forEach ones aside): `variables` only
        in a rule that has some."""
        names = frozenset(template_variables()) - set(FOR_EACH_VARIABLES)
        return names | {NAMED} if self.rule.variables else names

    @property
    def variable_names(self) -> tuple[str, ...]:
        """The names of the rule's `variables`, in order."""
        return tuple(variable.name for variable in self.rule.variables)

    @property
    def for_each_field(self) -> str | None:
        """`mutate` or `generate` when the rule's action has a forEach."""
        action = self.rule.action
        if isinstance(action, Mutate | Generate) and action.for_each is not None:
            return self.rule.action_kind.value
        return None

    @property
    def context_aliases(self) -> tuple[str, ...]:
        return tuple(lookup.alias for lookup in self.rule.context)

    def finding(self, code: str, message: str, *steps: str | int, key: bool = False
                ) -> Finding:
        """A finding at `steps` below the rule (at the key itself with `key`)."""
        return Finding(code, message, self.source, (*self.path, *steps),
                       rule_set=str(self.rule_set.ref), rule=self.rule.name, key=key)


def field_steps(field: str | None) -> tuple[str | int, ...]:
    """The document steps below a rule of a `Where.field`: `mutate.template` or
    `variables[1] 'ports'` (a variable, named: its expression)."""
    text = field or ""
    head, bracket, rest = text.partition("[")
    if bracket and head == NAMED and rest.partition("]")[0].isdigit():
        return (NAMED, int(rest.partition("]")[0]), "expression")
    return tuple(text.split("."))


def lookup_steps(lookup: Lookup) -> tuple[str, ...]:
    """Where a lookup is written in its rule: `context.<alias>` or `generate.clone`."""
    return tuple(lookup.field.split(".", 1))
