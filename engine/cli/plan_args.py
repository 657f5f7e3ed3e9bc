"""Arguments of `edict plan`, kept apart from the command so `edict --help` stays offline
(the command itself reads the cluster, through `engine.kube`)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import add_limits_argument

DESCRIPTION = """\
Show what rule sets (files, not yet applied) would change in a live cluster, without
changing anything: read the objects of every kind the rule sets match, look up or
generate (and the Namespaces), evaluate the rule sets over them as `edict run` would,
and print, per rule set and rule, how many objects would be patched and how many
children created, updated or pruned; then what would change (-o diff, patch or yaml;
with patch and yaml the counts go to standard error).

Read-only: it sends only GET requests. Its identity needs `list` on every kind the
rule sets match, look up or generate, and on namespaces (cluster-wide), plus API
discovery and /openapi/v3 (the schemas it merges by, as the engine does), which every
authenticated user may read. `kubectl auth can-i list deployments -A` tells whether
you may; `edict rbac RULES` prints the (larger) role the engine itself needs.
"""
FORMATS = ("diff", "patch", "yaml")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "plan", help="what rule sets would change in a live cluster (read-only)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict plan --kubeconfig ~/.kube/config -r my-rules/")
    parser.add_argument("-r", "--rules", nargs="+", action="extend", required=True,
                        metavar="RULES", help="rule-set files or directories")
    parser.add_argument("--kubeconfig",
                        help="path to a kubeconfig file (default: $KUBECONFIG, "
                        "~/.kube/config, then in-cluster)")
    parser.add_argument("-o", "--output", choices=FORMATS, default="diff")
    add_limits_argument(parser)
