"""One rule as the lint checks see it: the model, its YAML value and where it came from.

`engine.cli.lint` makes a `Subject` for every rule of every rule set that passed the
schema; each check reads it and reports with `Subject.finding`, which fills in the rule
set, the rule and the document path (`spec.rules[i]...`) of the field it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.cel import VARIABLES
from engine.cli.lintchecks.findings import Finding, Path
from engine.rules.model import Generate, Mutate, Rule, RuleSet

FOR_EACH_VARIABLES = ("item", "index")
"""Set only while a `forEach` renders its template, once per item."""


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
        """What conditions and templates of this rule may read (forEach ones aside)."""
        return frozenset(VARIABLES) - set(FOR_EACH_VARIABLES)

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

    def finding(self, code: str, message: str, *steps: str | int) -> Finding:
        return Finding(code, message, self.source, (*self.path, *steps),
                       rule_set=str(self.rule_set.ref), rule=self.rule.name)
