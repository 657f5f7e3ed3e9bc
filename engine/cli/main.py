"""The `edict` command (also `kubectl edict`): parse arguments, hand over to one
subcommand module.

`apply`, `test`, `lint`, `explain`, `graph`, `rbac` and `crd` run offline and never load the
Kubernetes client; `run` (the live engine) and `plan` (a read-only look at a cluster)
are imported by name only when asked for, so the offline commands stay free of
`engine.kube` and `engine.runtime` (an import-linter contract checks that).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from engine import __version__
from engine.cli import apply, crd, explain, graph, lint, plan_args, rbac, run_args
from engine.cli import test as test_command
from engine.cli.common import EXIT_USAGE, UsageError, error
from engine.errors import EdictError

DESCRIPTION = """\
Edict: Kubernetes operators written as YAML.

A rule set says which objects a rule is about (match), when it applies (a CEL condition)
and what they should look like (a Jinja2-templated desired state).

commands:
  apply    evaluate rule sets over manifests, with no cluster
             edict apply -r rules/default-labels/ -f deployment.yaml -o diff
  test     run rule-set test cases (default: rules/*/tests/)
             edict test rules/
  lint     find mistakes in rule sets, each at file:line:column
             edict lint rules/
  explain  why each object ends up as it does, rule by rule, field by field
             edict explain -r rules/ -f app.yaml --object Deployment/shop/web
  graph    what each rule matches, reads, writes, generates; cascades and cycles
             edict graph -r rules/ -o mermaid
  crd      print the CRDs that rule sets declare in spec.api
             edict crd rules/postgres/
  rbac     print the ClusterRole a set of rule sets needs
             edict rbac rules/namespace-bootstrap/
  plan     what rule sets would change in a live cluster (read-only)
             edict plan --kubeconfig ~/.kube/config -r my-rules/
  run      the live engine: reconcile a cluster from its RuleSets and ClusterRuleSets
             edict run --kubeconfig ~/.kube/config

reference of variables, filters and CEL functions: docs/reference.md

exit codes: 0 ok; 1 problems found (rule errors, conflicts, failed tests, lint
findings); 2 unusable input (missing file, invalid YAML, bad arguments).
"""


LIVE = {"run": "engine.cli.run", "plan": "engine.cli.plan"}


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
    crd.add_parser(commands)
    plan_args.add_parser(commands)
    run_args.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command in LIVE:
            # Only `run` and `plan` talk to a cluster; they are imported by name so the
            # offline commands never import engine.kube or engine.runtime.
            module = importlib.import_module(LIVE[args.command])
            return int(module.main(args))
        handler = {"apply": apply.main, "test": test_command.main, "lint": lint.main,
                   "explain": explain.main, "graph": graph.main, "rbac": rbac.main, "crd": crd.main}
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
