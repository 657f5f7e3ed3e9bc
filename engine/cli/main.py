"""The `edict` command: parse arguments and hand over to one subcommand module.

`apply`, `test` and `lint` run offline and never load the Kubernetes client; `run` (the
live engine) is imported by name only when asked for, so the offline commands stay free
of `engine.kube` and `engine.runtime` (an import-linter contract checks that).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from engine import __version__
from engine.cli import apply, explain, graph, lint, rbac, run_args
from engine.cli import test as test_command
from engine.cli.common import EXIT_USAGE, UsageError, error
from engine.errors import EdictError

DESCRIPTION = """\
Edict: Kubernetes operators written as YAML.

A rule set says which objects a rule is about (match), when it applies (a CEL condition)
and what they should look like (a Jinja2-templated desired state).

commands:
  apply   evaluate rule sets over manifests, with no cluster
            edict apply -r rules/default-labels/ -f deployment.yaml -o diff
  test    run rule-set test cases (default: rules/*/tests/)
            edict test rules/
  lint    check rule sets: schema, CEL and templates, overlapping rules
            edict lint rules/
  rbac    print the ClusterRole a set of rule sets needs
            edict rbac rules/namespace-bootstrap/
  run     the live engine: reconcile a cluster from its RuleSets and ClusterRuleSets
            edict run --kubeconfig ~/.kube/config

exit codes: 0 ok; 1 problems found (rule errors, conflicts, failed tests, lint
findings); 2 unusable input (missing file, invalid YAML, bad arguments).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edict", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edict {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    apply.add_parser(commands)
    test_command.add_parser(commands)
    lint.add_parser(commands)
    explain.add_parser(commands)
    graph.add_parser(commands)
    rbac.add_parser(commands)
    run_args.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "run":
            # Only `run` loads the live engine; it is imported by name so the offline
            # commands never import engine.kube or engine.runtime.
            module = importlib.import_module("engine.cli.run")
            return int(module.main(args))
        handler = {"apply": apply.main, "test": test_command.main, "lint": lint.main,
                   "explain": explain.main, "graph": graph.main, "rbac": rbac.main}
        return handler[args.command](args)
    except (UsageError, EdictError) as exc:  # unusable input: one line, no traceback
        error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
