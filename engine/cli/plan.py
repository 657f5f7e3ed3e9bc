"""`edict plan`: what rule sets would change in a live cluster, read-only.

Lists (never writes) the objects of every kind the rule sets touch, plus Namespaces,
through `engine.kube.Cluster`; simulates the rule sets over them exactly as `edict apply`
does over files (`engine.evaluate.simulate`); prints the per-rule counts of
`engine.cli.planning` and the changes. Imported by name from `engine.cli.main` like
`run`, so the offline commands never load the Kubernetes client.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from engine.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    engine_of,
    error,
    load_rule_sets,
    read_limits,
)
from engine.cli.planning import Plan, plan, table
from engine.cli.served import catalogue, connect
from engine.evaluate.simulate import simulate
from engine.evaluate.world import NAMESPACE
from engine.kube.client import Cluster
from engine.kube.errors import ApiError, UnknownKind
from engine.objects import GVK, Obj
from engine.patching import make_patch, render_diff


def main(args: argparse.Namespace) -> int:
    limits = read_limits(args.limits)
    loaded = load_rule_sets(args.rules)
    for exc in loaded.errors:
        error(str(exc))
    engine = engine_of(loaded.rule_sets, limits)
    cluster = connect(args.kubeconfig)
    kinds = {NAMESPACE, *engine.watched_kinds()}
    try:
        objects, missing = read(cluster, kinds)
        schemas = catalogue(cluster, kinds)  # merge by the cluster's schemas, as `run` does
    finally:
        cluster.close()
    for gvk in missing:
        error(f"the cluster has no kind {gvk}: rules naming it would be disabled")
    sim = simulate(engine, objects, schemas=schemas)
    result = plan(engine, sim)
    counts = sys.stdout if args.output == "diff" else sys.stderr
    print(f"read {len(objects)} objects of {len(kinds) - len(missing)} kinds; nothing was "
          "written", file=counts)
    for line in table(result):
        print(line, file=counts)
    counts.flush()
    write(result, args.output, sys.stdout)
    problems = len(loaded.errors) + len(sim.problems) + len(sim.conflicts)
    for key, outcome in sim.problems:
        error(f"{outcome.rule_set}, rule {outcome.rule!r}, {key}: {outcome.status.value}: "
              f"{outcome.message}")
    for key, conflict in sim.conflicts:
        error(f"conflict on {key}: {conflict.describe()}")
    return EXIT_PROBLEMS if problems else EXIT_OK


def read(cluster: Cluster, kinds: set[GVK]) -> tuple[list[Obj], list[GVK]]:
    """Every object of `kinds` (all namespaces), and the kinds the cluster does not serve."""
    objects: list[Obj] = []
    missing: list[GVK] = []
    for gvk in sorted(kinds):
        try:
            items, _ = cluster.list(gvk, limit=500)
        except UnknownKind:
            missing.append(gvk)
            continue
        except ApiError as exc:
            raise UsageError(f"cannot list {gvk}: {exc} (edict plan needs list on every kind "
                             "the rule sets touch; see edict plan --help)") from exc
        objects.extend(items)
    return objects, missing


def write(result: Plan, output: str, stream: Any) -> None:
    if output == "yaml":
        yaml.safe_dump_all([after for _, _, after in result.changes if after is not None],
                           stream, sort_keys=False, explicit_start=True)
    elif output == "patch":
        entries: list[dict[str, Any]] = []
        for key, before, after in result.changes:
            ident = {"apiVersion": key.gvk.api_version, "kind": key.gvk.kind,
                     **({"namespace": key.namespace} if key.namespace else {}),
                     "name": key.name}
            if before is None:
                entries.append({"object": ident, "create": after})
            elif after is None:
                entries.append({"object": ident, "delete": True})
            else:
                entries.append({"object": ident, "patch": make_patch(before, after)})
        yaml.safe_dump_all(entries, stream, sort_keys=False, explicit_start=True)
    else:
        for key, before, after in result.changes:
            stream.write(render_diff(before, after, before_name=f"a/{key}",
                                     after_name=f"b/{key}"))
