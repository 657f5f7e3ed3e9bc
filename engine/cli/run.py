"""`edict run`: the live engine (the only command that loads engine.runtime and engine.kube).

Connects with --kubeconfig, else the in-cluster service account, else $KUBECONFIG, sets
up logging, and runs a `Manager` until SIGTERM or SIGINT, which stop it gracefully
(in-flight keys finish, the Lease is released). Exit code 1 when the lease was lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from engine.cli.common import UsageError, read_limits
from engine.kube.client import Cluster
from engine.kube.errors import ApiError
from engine.runtime.manager import Manager, ManagerSettings


def parse_address(value: str, flag: str) -> tuple[str, int] | None:
    """`:8080`, `127.0.0.1:8080` or `0` (disabled)."""
    if value in ("0", ""):
        return None
    host, _, port = value.rpartition(":")
    try:
        return host or "0.0.0.0", int(port)
    except ValueError:
        raise UsageError(f"{flag} {value!r}: expected HOST:PORT, :PORT or 0") from None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def main(args: argparse.Namespace) -> int:
    setup_logging(args.log_format, args.log_level)
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    webhook_addr = parse_address(args.webhook_addr, "--webhook-addr")
    if args.webhook_url and not args.webhook_url.startswith("https://"):
        raise UsageError(f"--webhook-url {args.webhook_url!r}: the API server calls "
                         "webhooks over https only")
    if not 1 <= args.webhook_timeout <= 30:
        raise UsageError("--webhook-timeout must be between 1 and 30 seconds")
    settings = ManagerSettings(
        namespace=args.namespace, workers=args.workers, resync=args.resync,
        leader_elect=args.leader_elect, lease_name=args.lease_name,
        lease_namespace=args.lease_namespace,
        identity=f"{socket.gethostname()}-{os.getpid()}",
        health_addr=parse_address(args.health_addr, "--health-addr"),
        metrics_addr=parse_address(args.metrics_addr, "--metrics-addr"),
        own_namespace=args.engine_namespace, webhook_addr=webhook_addr,
        webhook_url=args.webhook_url, webhook_cert_dir=args.webhook_cert_dir,
        webhook_timeout=args.webhook_timeout, limits=read_limits(args.limits))
    try:
        cluster = Cluster.connect(args.kubeconfig)
    except (ApiError, OSError, ValueError) as error:
        raise UsageError(f"cannot connect to the cluster: {error}") from error
    except Exception as error:  # the client's config loader raises its own types
        raise UsageError(f"cannot load a kubeconfig: {error}") from error
    try:
        manager = Manager(cluster, settings)
    except OSError as error:  # the webhook's address or certificate files
        raise UsageError(f"cannot serve the admission webhooks: {error}") from error

    def stop(signum: int, _frame: Any) -> None:
        logging.getLogger("edict").info("signal %d: shutting down", signum)
        manager.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("edict").info("edict engine starting (identity %s)", settings.identity)
    return manager.run()
