"""`edict test`: run rule-set test cases and print a table and `N passed, M failed`.

Discovers `RuleTest` documents under the paths given (default: every `rules/*/tests/`),
runs each with `engine.cli.testcases.run_case`, and exits 1 when any case fails. Under a
failing case it prints, for each object the failure is about, the patch the rules made
and every rule's outcome (`engine.cli.testruns.details`); `--explain CASE` prints the
`edict explain` report of every object of one case instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_limits_argument,
    engine_of,
    load_rule_sets,
    one_line_errors,
    read_limits,
)
from engine.cli.observed import simulate_observed
from engine.cli.testcases import Case, Verdict, discover, run_case
from engine.cli.testruns import details, explain_case, involved
from engine.evaluate.engine import Engine
from engine.evaluate.limits import Limits

DESCRIPTION = """\
Run rule-set test cases (RuleTest documents: objects in, objects, generated objects,
outcomes and writes expected) and print a table and a closing `N passed, M failed`.
Each case must also converge: evaluating its result again must change nothing.

Under a failing case: for each object it is about, the patch the rules made and every
rule's outcome. --explain CASE prints, for every object of that case, every rule with
why it matched or not, its condition and outcome, and which rule set each field.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "test", help="run rule-set test cases",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict test rules/          (see docs/testing.md for the format)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="test files or directories (default: rules/*/tests/)")
    parser.add_argument("--explain", metavar="CASE",
                        help="explain every object of the case named CASE")
    add_limits_argument(parser)


@one_line_errors
def main(args: argparse.Namespace) -> int:
    limits = read_limits(args.limits)
    paths = args.paths or [str(p) for p in sorted(Path("rules").glob("*/tests"))]
    if not paths:
        raise UsageError("no test paths given and no rules/*/tests/ here")
    cases = discover(paths)
    if not cases:
        raise UsageError(f"no RuleTest cases found under {' '.join(paths)}")
    if args.explain is not None:
        return explain(cases, args.explain, limits=limits)
    width = max(len(c.name) for c in cases)
    passed = failed = 0
    print(f"{'CASE':<{width}}  RESULT  SOURCE")
    for case in cases:
        verdict = run_case(case, limits=limits)
        if verdict.passed:
            passed += 1
        else:
            failed += 1
        print(f"{case.name:<{width}}  {'PASS' if verdict.passed else 'FAIL':<6}  {case.source}")
        for failure in verdict.failures:
            print(f"{'':<{width}}    - {failure}")
        if not verdict.passed:
            for line in _details(case, verdict, limits):
                print(f"{'':<{width}}      {line}")
    print(f"{passed} passed, {failed} failed")
    return EXIT_PROBLEMS if failed else EXIT_OK


def _engine_and_run(case: Case, limits: Limits) -> tuple[Engine, Any]:
    loaded = load_rule_sets(list(case.rule_paths))
    engine = engine_of(loaded.rule_sets, limits)
    return engine, simulate_observed(engine, case.objects, case.run_twice, case.observed,
                                     schemas=loaded.schemas)


def _details(case: Case, verdict: Verdict, limits: Limits) -> list[str]:
    """The same run once more (it is deterministic), told object by object."""
    engine, sim = _engine_and_run(case, limits)
    return details(engine, sim, involved(sim, verdict.failures))


def explain(cases: list[Case], name: str, *, limits: Limits) -> int:
    chosen = [case for case in cases if case.name == name]
    if not chosen:
        known = ", ".join(sorted(case.name for case in cases))
        raise UsageError(f"--explain {name}: no such case (cases: {known})")
    for case in chosen:
        print(f"case {case.name} ({case.source})\n")
        engine, sim = _engine_and_run(case, limits)
        print("\n".join(explain_case(engine, sim)).rstrip())
    return EXIT_OK
