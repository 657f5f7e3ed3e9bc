"""Arguments of `edict run`, kept apart from the live engine so `edict --help` stays offline."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = """\
Run the live engine: watch RuleSets and ClusterRuleSets, watch every kind their rules
name, and move the cluster to the desired state with guarded JSON patches.

The kubeconfig is --kubeconfig, else the in-cluster service account, else $KUBECONFIG
(or ~/.kube/config).
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "run", help="reconcile a cluster from its rule sets (the live engine)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict run --kubeconfig ~/.kube/config --workers 4")
    parser.add_argument("--kubeconfig", help="path to a kubeconfig file")
    parser.add_argument("--namespace", help="only watch and change this namespace")
    parser.add_argument("--workers", type=int, default=4, help="reconcile workers (4)")
    parser.add_argument("--resync", type=float, default=300.0,
                        help="seconds between full resyncs of every cache (300)")
    parser.add_argument("--leader-elect", action="store_true",
                        help="run only while holding a coordination.k8s.io Lease")
    parser.add_argument("--lease-name", default="edict-engine")
    parser.add_argument("--lease-namespace", default="edict-system")
    parser.add_argument("--metrics-addr", default=":8080",
                        help="Prometheus /metrics address (:8080; 0 disables)")
    parser.add_argument("--health-addr", default=":8081",
                        help="/healthz and /readyz address (:8081; 0 disables)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info")
