"""What a lint check finds, and how `edict lint` words it.

A `Finding` names the mistake (its `code`: `unknown-field`, `undefined-variable`, ...),
the rule set, the rule and the field, and carries the path of the offending node inside
its YAML document; `engine.cli.lintchecks.positions` turns that path into a line and a
column. Printed as compilers print diagnostics:

    rules/team.yaml:14:5: unknown-field: ClusterRuleSet team, rule 'owner',
        spec.rules[0].condtion: unknown field 'condtion' (did you mean 'condition'?)

(on one line). `near` words a "did you mean" for a name that is close to a known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    code: str  # the name of the mistake, stable: tests and suppressions use it
    message: str
    source: str  # the document: "file#index"
    path: Path  # of the offending node inside the document
    rule_set: str = ""  # "ClusterRuleSet team"
    rule: str | None = None
    line: int = 0  # 1-based; 0 when unknown
    column: int = 0
    key: bool = False  # about a mapping key (an unknown field), not its value

    @property
    def file(self) -> str:
        return self.source.rpartition("#")[0] or self.source

    @property
    def field(self) -> str:
        return dotted(self.path)

    def located(self, line: int, column: int) -> Finding:
        return Finding(self.code, self.message, self.source, self.path, self.rule_set,
                       self.rule, line, column, self.key)

    def describe(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.source
        names = [part for part in (self.rule_set,
                                   f"rule {self.rule!r}" if self.rule else "",
                                   self.field) if part]
        return f"{where}: {self.code}: {', '.join(names)}: {self.message}"


def dotted(path: Iterable[str | int]) -> str:
    """`spec.rules[0].condition`: a document path as messages write it."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}" if _plain(part) else f"[{part!r}]"
        else:
            out = part
    return out or "<document>"


def _plain(part: str) -> bool:
    return part.replace("-", "_").replace("/", "_").replace(".", "_").isidentifier() and (
        "." not in part and "/" not in part)


def near(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a known name is close to `name`, else ``""``."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def listing(names: Iterable[str], *, limit: int = 12) -> str:
    """`a, b, c` (at most `limit`, then `...`); `none` when empty."""
    items = sorted(set(names))
    if not items:
        return "none"
    text = ", ".join(items[:limit])
    return text + (", ..." if len(items) > limit else "")
