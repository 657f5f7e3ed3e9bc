"""`edict crd`: print the CustomResourceDefinitions that rule sets declare in `spec.api`.

Offline: reads rule sets the way `edict apply` does and prints, as one YAML stream, the
CRD of every ClusterRuleSet with an `api` (`engine.rules.api.crd_of`) — exactly what the
live engine installs, labelled as that rule set's. For GitOps flows that want CRDs
applied before the rule sets, for review (`edict crd rules/x | kubectl diff -f -`), and
to read the schema the short language makes. Called by `engine.cli.main`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from engine.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, error, load_rule_sets
from engine.rules.api import crds_of

DESCRIPTION = """\
Print the CustomResourceDefinition of every ClusterRuleSet that declares the API it
introduces (spec.api), as the live engine installs it. Exit code 1 when a rule set
does not load.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "crd", help="print the CRDs that rule sets declare in spec.api",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict crd rules/postgres/ | kubectl apply -f -")
    parser.add_argument("rules", nargs="+", metavar="RULES",
                        help="rule-set files or directories")


def main(args: argparse.Namespace) -> int:
    loaded = load_rule_sets(args.rules)
    for exc in loaded.errors:
        error(str(exc))
    crds = crds_of(loaded.rule_sets)
    if not crds and not loaded.errors:
        raise UsageError(f"no ClusterRuleSet with spec.api in {' '.join(args.rules)}")
    sys.stdout.write(yaml.safe_dump_all(crds, sort_keys=False, width=100))
    return EXIT_PROBLEMS if loaded.errors else EXIT_OK
