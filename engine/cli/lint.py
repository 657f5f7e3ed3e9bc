"""`edict lint`: check rule sets without running them.

Validates every rule set against the CRD schema (the same file the API server uses),
compiles every CEL expression and template, and reports rules that can write the same
path on the same kind, with their priorities. Exit code 1 for schema and compile errors;
overlaps are a report (the later rule wins by design), unless --fail-on-overlap.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import EXIT_OK, EXIT_PROBLEMS, error, load_rule_sets, one_line_errors
from engine.evaluate.engine import Engine
from engine.evaluate.overlaps import overlaps


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "lint", help="check rule sets: schema, CEL, templates, overlapping rules",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict lint rules/")
    parser.add_argument("rules", nargs="+", metavar="RULES",
                        help="rule-set files or directories")
    parser.add_argument("--fail-on-overlap", action="store_true",
                        help="exit 1 when two rules can write the same path")


@one_line_errors
def main(args: argparse.Namespace) -> int:
    loaded = load_rule_sets(args.rules)
    problems = 0
    for exc in loaded.errors:
        problems += 1
        error(str(exc))
    engine = Engine(loaded.rule_sets)
    for compiled in engine.rule_sets:
        for exc in compiled.errors:
            problems += 1
            error(str(exc))
    every_rule = [r for compiled in engine.rule_sets for r in compiled.rules]
    found = overlaps(every_rule)
    for overlap in found:
        print(f"overlap: {overlap.describe()}")
    count = sum(len(c.rules) for c in engine.rule_sets)
    print(f"{len(engine.rule_sets)} rule sets, {count} rules, {problems} problems, "
          f"{len(found)} overlaps")
    failed = problems or (found and args.fail_on_overlap)
    return EXIT_PROBLEMS if failed else EXIT_OK
