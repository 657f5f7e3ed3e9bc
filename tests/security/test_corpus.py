"""Every hostile input of the corpus, through `edict apply`, `lint` and `test`, contained.

The (case, command) pairs this session selected run once, two at a time, each as a
subprocess with 10 s of CPU and 1 GiB (`corpus.run`); each test then checks one
result. The results table in docs/security.md must be the one this corpus gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import corpus

CASES = corpus.load()
PARAMS = [pytest.param(case, command, id=f"{case.id}:{command}")
          for case in CASES for command in corpus.COMMANDS]


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[tuple[str, str], corpus.Run]:
    """Runs, at once, every corpus pair the session selected (or all, for the table)."""
    selected = set()
    for item in request.session.items:
        spec = getattr(item, "callspec", None)
        if spec is not None and "case" in spec.params and "command" in spec.params:
            selected.add((spec.params["case"].id, spec.params["command"]))
    if any(item.name == "test_the_table_in_docs_is_this_corpus_s"
           for item in request.session.items):
        selected |= {(case.id, command) for case in CASES for command in corpus.COMMANDS}
    return corpus.run_all(CASES, selected, tmp_path_factory.mktemp("corpus"))


def test_the_corpus_is_large_and_covers_every_kind_of_attack() -> None:
    assert len(CASES) >= 150
    assert {case.category for case in CASES} >= {
        "sandbox", "data", "redos", "cel", "bombs", "yaml", "rulesets", "manifests",
        "paths", "identity"}


@pytest.mark.parametrize(("case", "command"), PARAMS)
def test_hostile_input_is_contained(case: corpus.Case, command: str,
                                   results: dict[tuple[str, str], corpus.Run]) -> None:
    result = results[(case.id, command)]
    problems = corpus.check(case, result)
    assert not problems, (f"{case.id} ({case.threat}), edict {command}: "
                          + "; ".join(problems) + f"\n--- stderr ---\n{result.stderr[-2000:]}"
                          f"\n--- stdout ---\n{result.stdout[-2000:]}")


def test_the_table_in_docs_is_this_corpus_s(
        results: dict[tuple[str, str], corpus.Run]) -> None:
    written = corpus.table_in_doc(corpus.DOC.read_text(encoding="utf-8"))
    assert written == corpus.render_table(CASES, results), (
        "docs/security.md is stale: run python -m tests.security.corpus")


def test_a_run_that_hangs_or_explodes_is_caught_by_the_limits(tmp_path: Path) -> None:
    """The harness itself: a command that sleeps or allocates is stopped and reported."""
    case = corpus.Case(name="harness", category="self", threat="the harness", rules="",
                       manifests="", test="", exit={c: (0,) for c in corpus.COMMANDS})
    corpus.materialize(case, tmp_path)
    sleeper = corpus.Run("apply", -9, "", "", True, 0)
    assert "did not finish within 60 s" in corpus.check(case, sleeper)
    spinner = corpus.Run("apply", -24, "", "", False, 0)  # SIGXCPU
    assert "used more than 10 s of CPU" in corpus.check(case, spinner)
    noisy = corpus.Run("apply", 1, "", "Traceback (most recent call last):\n", False, 0)
    assert {"printed a traceback", "exit code 1, expected 0"} <= {
        p.split(":")[0] for p in corpus.check(case, noisy)}
    big = corpus.Run("apply", 0, "", "", False, 900 << 20)
    assert corpus.check(case, big) == ["used 900 MiB"]
