"""`edict test`: run rule-set test cases and print a table and `N passed, M failed`.

Discovers `RuleTest` documents under the paths given (default: every `rules/*/tests/`),
runs each with `engine.cli.testcases.run_case`, and exits 1 when any case fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, one_line_errors
from engine.cli.testcases import discover, run_case


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "test", help="run rule-set test cases",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict test rules/          (see docs/testing.md for the format)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="test files or directories (default: rules/*/tests/)")


@one_line_errors
def main(args: argparse.Namespace) -> int:
    paths = args.paths or [str(p) for p in sorted(Path("rules").glob("*/tests"))]
    if not paths:
        raise UsageError("no test paths given and no rules/*/tests/ here")
    cases = discover(paths)
    if not cases:
        raise UsageError(f"no RuleTest cases found under {' '.join(paths)}")
    width = max(len(c.name) for c in cases)
    passed = failed = 0
    print(f"{'CASE':<{width}}  RESULT  SOURCE")
    for case in cases:
        verdict = run_case(case)
        if verdict.passed:
            passed += 1
        else:
            failed += 1
        print(f"{case.name:<{width}}  {'PASS' if verdict.passed else 'FAIL':<6}  {case.source}")
        for failure in verdict.failures:
            print(f"{'':<{width}}    - {failure}")
    print(f"{passed} passed, {failed} failed")
    return EXIT_PROBLEMS if failed else EXIT_OK
