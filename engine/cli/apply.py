"""`edict apply`: evaluate rule sets over manifests, as if the manifests were the cluster.

Prints every input object as it ends up (changed or not), then every generated object,
as YAML (default), JSON, patches or diffs (`--explain` names the rules behind each hunk).
Rule errors, conflicts, oscillations and violations of validate rules go to standard
error with the rule set and rule named (exit code 1); the objects they affect are printed
unchanged by those rules. A last line on
standard error sums up: objects changed, children created, updated and pruned, rules
skipped for missing data or matching nothing, errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.cli import yamlout
from engine.cli.annotate import annotate
from engine.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_limits_argument,
    engine_of,
    error,
    load_rule_sets,
    one_line_errors,
    read_limits,
    read_objects,
)
from engine.cli.summary import summary
from engine.evaluate.children import RULE_LABEL, RULE_SET_LABEL
from engine.evaluate.engine import Engine
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import ObjectKey, labels_of
from engine.patching import make_patch, render_diff
from engine.rules.api import crds_of, defaulted

FORMATS = ("yaml", "json", "patch", "diff")
DESCRIPTION = """\
Evaluate rule sets over manifests as if the manifests were the cluster: they answer
lookups and namespace selectors, and generated objects join them (and may trigger other
rules), until nothing changes.

Prints every input object as it ends up, changed or not, then every generated object:
YAML (default), JSON, patches, or diffs (--explain names the rule behind each hunk).
Rule errors, conflicts, oscillations and violations of validate rules go to standard
error, naming rule set and rule; a last line there sums up what changed and what did
nothing.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "apply", help="evaluate rule sets over manifests (no cluster)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict apply -r rules/default-labels/ -f app.yaml -o diff --explain")
    parser.add_argument("-r", "--rules", nargs="+", action="extend", required=True,
                        metavar="RULES", help="rule-set files or directories")
    parser.add_argument("-f", "--filename", nargs="+", action="extend", required=True,
                        metavar="MANIFESTS", help="manifest files or directories; - for stdin")
    parser.add_argument("-o", "--output", choices=FORMATS, default="yaml")
    parser.add_argument("--explain", action="store_true",
                        help="with -o diff: name the rule set and rule behind each hunk")
    add_limits_argument(parser)


@one_line_errors
def main(args: argparse.Namespace) -> int:
    if args.explain and args.output != "diff":
        raise UsageError("--explain goes with -o diff")
    limits = read_limits(args.limits)
    loaded = load_rule_sets(args.rules)
    objects = read_objects(args.filename)
    problems = len(loaded.errors)
    for exc in loaded.errors:
        error(str(exc))
    engine = engine_of(loaded.rule_sets, limits)
    objects = defaulted(objects, crds_of(loaded.rule_sets))  # spec.api kinds' defaults
    sim = simulate(engine, objects, schemas=loaded.schemas)
    problems += report(sim)
    write(sim, args.output, sys.stdout, engine=engine if args.explain else None)
    sys.stdout.flush()
    error(summary(engine, sim, problems))
    return EXIT_PROBLEMS if problems else EXIT_OK


def report(sim: Simulation) -> int:
    """Print rule errors, conflicts, oscillations and violations to stderr; return how
    many."""
    count = 0
    for key, outcome in sim.problems:
        count += 1
        error(f"{outcome.rule_set}, rule {outcome.rule!r}, {key}: {outcome.status.value}: "
              f"{outcome.message}")
    for key, conflict in sim.conflicts:
        count += 1
        error(f"conflict on {key}: {conflict.describe()}")
    for key, outcome in sim.violations:
        count += 1
        error(f"{outcome.rule_set}, rule {outcome.rule!r}, {key}: violation: {outcome.message}")
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


def write(sim: Simulation, output: str, stream: Any, *, engine: Engine | None = None) -> None:
    """Print the objects; with `engine`, diffs name the rules behind each hunk."""
    docs = _documents(sim)
    if output == "yaml":
        yamlout.dump_all([after for _, _, after in docs if after is not None], stream)
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
        yamlout.dump_all(entries, stream)
    else:
        for key, before, after in docs:
            text = render_diff(before, after, before_name=f"a/{key}", after_name=f"b/{key}")
            if text and engine is not None:
                text = _explained(text, engine, sim, key, before, after)
            if text:
                stream.write(text)


def _explained(text: str, engine: Engine, sim: Simulation, key: ObjectKey, before: Any,
               after: Any) -> str:
    if before is None or after is None:
        labels = labels_of(after if after is not None else before)
        verb = "created" if before is None else "pruned"
        who = (f"{verb} by rule set {labels.get(RULE_SET_LABEL)!r}, rule "
               f"{labels.get(RULE_LABEL)!r}")
        return annotate(text, before=before, after=after, outcomes=(), whole=who)
    outcomes = engine.evaluate(before, world=sim.world).outcomes
    return annotate(text, before=before, after=after, outcomes=outcomes)
