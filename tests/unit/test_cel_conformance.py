"""The CEL conformance corpus (tests/unit/cel_conformance/*.yaml), table-driven.

Every case of the corpus runs through `engine.cel.compile_expression` and must give its
expected value or error; a case marked ``known`` (a documented difference from
Kubernetes) must still fail, so that fixing it means updating the corpus and the docs.
The table in docs/cel.md must be the one the corpus gives today.
"""

from __future__ import annotations

import pytest

from tests.unit.cel_conformance.conformance import (
    Case,
    libraries,
    render_table,
    run,
    table_in_docs,
)

CASES = [case for library in libraries() for case in library.cases]


def test_the_corpus_is_large_enough_and_ids_are_unique() -> None:
    assert len(CASES) >= 200
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case) -> None:
    problem = run(case)
    if case.known:
        assert problem is not None, f"fixed? remove 'known: {case.known}' from the corpus"
    else:
        assert problem is None, problem


def test_the_table_in_the_docs_is_current() -> None:
    assert table_in_docs() == render_table(), (
        "docs/cel.md is stale: run python -m tests.unit.cel_conformance.conformance")
