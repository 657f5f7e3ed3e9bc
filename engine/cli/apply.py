"""`edict apply`: evaluate rule sets over manifests, as if the manifests were the cluster.

Prints every input object as it ends up (changed or not), then every generated object,
as YAML (default), JSON, patches or diffs. Rule errors, conflicts and oscillations go to
standard error with the rule set and rule named; the objects they affect are printed
unchanged by those rules.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from engine.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    error,
    load_rule_sets,
    one_line_errors,
    read_objects,
)
from engine.evaluate.engine import Engine
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import ObjectKey
from engine.patching import make_patch, render_diff

FORMATS = ("yaml", "json", "patch", "diff")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "apply", help="evaluate rule sets over manifests (no cluster)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict apply -r rules/default-labels/ -f app.yaml -o diff")
    parser.add_argument("-r", "--rules", nargs="+", action="extend", required=True,
                        metavar="RULES", help="rule-set files or directories")
    parser.add_argument("-f", "--filename", nargs="+", action="extend", required=True,
                        metavar="MANIFESTS", help="manifest files or directories; - for stdin")
    parser.add_argument("-o", "--output", choices=FORMATS, default="yaml")


@one_line_errors
def main(args: argparse.Namespace) -> int:
    loaded = load_rule_sets(args.rules)
    objects = read_objects(args.filename)
    problems = len(loaded.errors)
    for exc in loaded.errors:
        error(str(exc))
    engine = Engine(loaded.rule_sets)
    sim = simulate(engine, objects)
    problems += report(sim)
    write(sim, args.output, sys.stdout)
    return EXIT_PROBLEMS if problems else EXIT_OK


def report(sim: Simulation) -> int:
    """Print rule errors, conflicts and oscillations to stderr; return how many."""
    count = 0
    for key, outcome in sim.problems:
        count += 1
        error(f"{outcome.rule_set}, rule {outcome.rule!r}, {key}: {outcome.status.value}: "
              f"{outcome.message}")
    for key, conflict in sim.conflicts:
        count += 1
        error(f"conflict on {key}: {conflict.describe()}")
    if not sim.converged:
        count += 1
        error(f"objects still changed after {sim.rounds} rounds: rules keep reacting to each "
              "other's output")
    return count


def _documents(sim: Simulation) -> list[tuple[ObjectKey, Any, Any]]:
    """(key, before, after) for every input, then every generated object."""
    out: list[tuple[ObjectKey, Any, Any]] = []
    for key in sim.inputs:
        out.append((key, sim.originals[key], sim.final(key)))
    for key in sim.generated:
        after = sim.final(key)
        if after is not None:
            out.append((key, None, after))
    return out


def write(sim: Simulation, output: str, stream: Any) -> None:
    docs = _documents(sim)
    if output == "yaml":
        yaml.safe_dump_all([after for _, _, after in docs if after is not None], stream,
                           sort_keys=False, explicit_start=True)
    elif output == "json":
        items = [after for _, _, after in docs if after is not None]
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, stream, indent=2)
        stream.write("\n")
    elif output == "patch":
        entries = []
        for key, before, after in docs:
            ident = {"apiVersion": key.gvk.api_version, "kind": key.gvk.kind,
                     "namespace": key.namespace or None, "name": key.name}
            ident = {k: v for k, v in ident.items() if v is not None}
            if before is None:
                entries.append({"object": ident, "create": after})
            elif after is None:
                entries.append({"object": ident, "delete": True})
            else:
                ops = make_patch(before, after)
                if ops:
                    entries.append({"object": ident, "patch": ops})
        yaml.safe_dump_all(entries, stream, sort_keys=False, explicit_start=True)
    else:
        for key, before, after in docs:
            text = render_diff(before, after, before_name=f"a/{key}", after_name=f"b/{key}")
            if text:
                stream.write(text)
