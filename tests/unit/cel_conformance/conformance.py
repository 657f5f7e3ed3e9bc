"""The CEL conformance corpus: load the cases, run one, and render the table in docs/cel.md.

Each ``*.yaml`` file beside this module is one library: ``library``, ``title``,
``source`` (where the cases come from) and ``cases``, each an ``expr`` with the
``variables`` it is evaluated with (``object``… and ``self``) and either the expected
``value`` or the expected ``error`` (``compile`` or ``runtime``, with an optional
``message`` fragment). A case may carry ``known: <why>`` for a documented difference
from Kubernetes: it is expected to fail, and counts as not passing.

``tests/unit/test_cel_conformance.py`` runs every case and checks that docs/cel.md holds
the table `render_table` makes; after changing the corpus, rewrite the table with

    python -m tests.unit.cel_conformance.conformance
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.cel import VARIABLES, compile_expression
from engine.errors import CelError, CompileError, Where

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[2] / "docs" / "cel.md"
BEGIN = "<!-- conformance table: begin (generated, do not edit) -->"
END = "<!-- conformance table: end -->"
NAMES = (*VARIABLES, "self")
WHERE = Where(rule_set="conformance", rule="case", field="expr")


@dataclass(frozen=True)
class Case:
    library: str
    number: int
    expr: str
    variables: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    error: str | None = None
    message: str | None = None
    known: str | None = None

    @property
    def id(self) -> str:
        return f"{self.library} {self.number}: {self.expr}"


@dataclass(frozen=True)
class Library:
    name: str
    title: str
    source: str
    cases: tuple[Case, ...]


def libraries() -> list[Library]:
    found = []
    for path in sorted(HERE.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        name = data["library"]
        cases = tuple(Case(library=name, number=number, expr=case["expr"],
                           variables=case.get("variables") or {}, value=case.get("value"),
                           error=case.get("error"), message=case.get("message"),
                           known=case.get("known"))
                      for number, case in enumerate(data["cases"], 1))
        found.append(Library(name, data["title"], " ".join(data["source"].split()), cases))
    return found


def run(case: Case) -> str | None:
    """None when `case` behaves as expected, else what went differently."""
    try:
        program = compile_expression(case.expr, where=WHERE, variables=NAMES)
    except CompileError as error:
        return _expected_error(case, "compile", str(error))
    if case.error == "compile":
        return "compiled, expected a compile error"
    try:
        result = program.evaluate(case.variables)
    except CelError as error:
        return _expected_error(case, "runtime", str(error))
    if case.error is not None:
        return f"gave {result!r}, expected a {case.error} error"
    if not same(result, case.value):
        return f"gave {result!r}, expected {case.value!r}"
    return None


def _expected_error(case: Case, kind: str, message: str) -> str | None:
    if case.error != kind:
        return f"{kind} error: {message}"
    if case.message and case.message not in message:
        return f"{kind} error without {case.message!r}: {message}"
    return None


def same(actual: Any, expected: Any) -> bool:
    """Equal values of the same types (1 is not 1.0, true is not 1)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, float) or isinstance(actual, float):
        return (type(actual) is type(expected)
                and (actual == expected or math.isclose(actual, expected, rel_tol=1e-12)))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(map(same, actual, expected)))
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and actual.keys() == expected.keys()
                and all(same(actual[key], value) for key, value in expected.items()))
    return type(actual) is type(expected) and bool(actual == expected)


def render_table() -> str:
    """The Markdown table of cases and passing cases per library, between the markers."""
    rows = ["| library | source | cases | passing |", "|---|---|---|---|"]
    total = passing = 0
    for library in libraries():
        passed = sum(1 for case in library.cases if run(case) is None and not case.known)
        total += len(library.cases)
        passing += passed
        rows.append(f"| {library.title} | {library.source} | {len(library.cases)} | {passed} |")
    rows.append(f"| **all** | | **{total}** | **{passing}** |")
    return "\n".join([BEGIN, *rows, END])


def table_in_docs() -> str:
    text = DOCS.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def main() -> None:
    text = DOCS.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOCS.write_text(text[:start] + render_table() + text[end:])
    print(f"wrote the conformance table into {DOCS}")


if __name__ == "__main__":
    main()
