"""Error types shared by every layer of Edict.

The pure core reports problems as values (`evaluate.outcomes.Outcome`), but the
building blocks underneath it (loading, CEL, templates, merging) raise these typed
exceptions, and exactly one place per driver turns them into outcomes or exit codes.
Classify with ``isinstance``, never by matching message text.

Every error a user reads carries a `Where`: the file, rule set, rule and field it is
about, so the message can name them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Where:
    """Where in the user's input a problem is: any part may be unknown."""

    file: str | None = None
    rule_set: str | None = None
    rule: str | None = None
    field: str | None = None

    def describe(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.rule_set:
            parts.append(f"rule set {self.rule_set!r}")
        if self.rule:
            parts.append(f"rule {self.rule!r}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def with_field(self, field: str) -> Where:
        return Where(self.file, self.rule_set, self.rule, field)


class EdictError(Exception):
    """Base of every error Edict raises on purpose."""

    def __init__(self, message: str, *, where: Where | None = None) -> None:
        self.message = message
        self.where = where or Where()
        super().__init__(self.__str__())

    def __str__(self) -> str:
        place = self.where.describe()
        return f"{place}: {self.message}" if place else self.message


class InputError(EdictError):
    """A file could not be read or parsed (YAML syntax, not a mapping, missing file)."""


class SchemaError(EdictError):
    """A rule set does not satisfy the CRD's openAPIV3Schema or its validations."""


class CompileError(EdictError):
    """A CEL expression or a template failed to compile; the rule is disabled."""


class CelError(EdictError):
    """A CEL expression failed while evaluating."""


class CelMissingData(CelError):
    """The expression read data that is not there (yet): no such key, null lookup.

    Often a matter of time (a status not written yet): re-evaluating later may work.
    """


class CelBug(CelError):
    """The expression is wrong for this data: a type mismatch, a bad conversion."""


class CelLimitExceeded(CelError):
    """The CEL runtime's fixed limits were hit (iteration budget, nesting, size)."""


class TemplateError(EdictError):
    """A template failed while rendering (undefined variable, sandbox violation...)."""


class MergeError(EdictError):
    """A rendered partial object cannot be merged onto its target."""


class PatchError(EdictError):
    """A rendered JSON patch is malformed or does not apply."""


class ConfinementError(EdictError):
    """A namespaced rule set tried to see or write outside its own namespace."""
