"""Arguments of `edict run`, kept apart from the live engine so `edict --help` stays offline."""

from __future__ import annotations

import argparse
import os
from typing import Any

from engine.cli.common import add_limits_argument

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
        epilog="example: edict run --kubeconfig ~/.kube/config --workers 16")
    parser.add_argument("--kubeconfig", help="path to a kubeconfig file")
    parser.add_argument("--namespace", help="only watch and change this namespace")
    parser.add_argument("--workers", type=int, default=16,
                        help="reconcile workers, the most writes in flight (16); how many "
                        "write at once follows the API server's answers")
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
    webhook = parser.add_argument_group(
        "admission webhooks", "Serve AdmissionReview v1 over TLS on every replica; the "
        "leader keeps the Mutating/ValidatingWebhookConfiguration `edict` in step with the "
        "rule sets (docs/admission.md).")
    webhook.add_argument("--webhook-addr", default="0",
                         help="HOST:PORT to serve the webhooks on (0, the default: none)")
    webhook.add_argument("--webhook-url",
                         help="how the API server reaches the webhooks, e.g. "
                         "https://127.0.0.1:9443 (default: the edict-webhook Service of "
                         "--engine-namespace)")
    webhook.add_argument("--webhook-cert-dir",
                         help="serve tls.crt/tls.key from here (ca.crt: the CA bundle); "
                         "default: Edict makes a CA and certificate, keeps them in the "
                         "Secret edict-webhook-certs of --engine-namespace and rotates them")
    webhook.add_argument("--webhook-timeout", type=int, default=3,
                         help="timeoutSeconds of the webhooks (3)")
    parser.add_argument("--engine-namespace", default=os.environ.get("POD_NAMESPACE")
                        or "edict-system",
                        help="Edict's own namespace: never gated by its webhooks, holds "
                        "their certificate Secret ($POD_NAMESPACE, else edict-system)")
    add_limits_argument(parser)
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info")
