"""`edict lint`: find the mistakes in rule sets before they run, each at file:line:column.

Reads rule-set files, checks each rule set against the CRD schema exactly as the API
server does (unknown fields included), then every rule that loads: its CEL and
templates (variables, `params` keys, `context` names, `item` outside `forEach`, unknown
filters), whether its `match` can select anything at all, and which rules can write the
same path. Each finding is printed as `file:line:column: code: rule set, rule, field:
message`, with a "did you mean" where a known name is close. Exit code 1 on any finding
(0 with --warn-only); a comment `# edict-lint: ignore[code]` on the finding's line, or on
its rule's `name:` line, accepts one on purpose.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_limits_argument,
    one_line_errors,
    read_limits,
)
from engine.cli.lintchecks import celtypes, expressions, kinds, matching, schema, templates
from engine.cli.lintchecks.findings import Finding, Path
from engine.cli.lintchecks.positions import Positions
from engine.cli.lintchecks.subject import Subject, field_steps
from engine.errors import InputError, Where
from engine.evaluate import validation
from engine.evaluate.compile import CompiledRule, compile_rule
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.evaluate.overlaps import overlaps
from engine.evaluate.world import CLUSTER_SCOPED_KINDS
from engine.objects import GVK
from engine.rules.api import crds_of
from engine.rules.documents import Document, read_documents
from engine.rules.load import is_rule_set, load_documents
from engine.rules.model import CLUSTER_RULE_SET, RULE_SET
from engine.rules.schema import crd
from engine.schemas.catalogue import Catalogue, builtin

KUBERNETES = builtin().kubernetes or "(the shipped catalogue)"

DESCRIPTION = """\
Find the mistakes in rule sets before they run. Checks, each reported as
FILE:LINE:COLUMN: CODE: rule set, rule, field: message

  unknown-field, schema       the CRD schema, as the API server enforces it
  cel-compile, template-*     CEL and Jinja2 that do not compile
  undefined-variable          a name no condition or template has (parms.team)
  undefined-param             params.x where the rule set's params have no x
  undefined-context           context.x where the rule looks nothing up as x
  item-outside-foreach        item or index where no forEach sets them
  unknown-filter/-test        a Jinja2 filter or test that does not exist
  never-matches, never-applies  match/exclude that select nothing; a condition
                              that is always false
  overlap                     two rules that can write one path of one kind
  unknown-kind, unknown-api-version  a kind the API does not serve (Deploymnet)
  unknown-path                a field the kind does not have, written by a template
                              or read by CEL or a template (spec.replicaz)
  type-mismatch               CEL that uses a field as another type than the
                              kind's (object.spec.replicas > '1')

Kinds and fields are checked against the built-in kinds of Kubernetes, the CRDs among
the files and --crds, or with --kubeconfig what a cluster serves.

Exit code 1 on any finding (0 with --warn-only). To accept a finding on purpose, put
`# edict-lint: ignore[CODE]` on its line or on its rule's `name:` line.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "lint", help="find mistakes in rule sets, each at file:line:column",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict lint rules/ --crds my-crds/")
    parser.add_argument("rules", nargs="+", metavar="RULES",
                        help="rule-set files or directories (CRDs among them count)")
    parser.add_argument("--warn-only", action="store_true",
                        help="print findings but exit 0")
    parser.add_argument("--crds", nargs="+", action="extend", default=[], metavar="FILE",
                        help="CRD files or directories: their kinds and schemas")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="check kinds and fields against what this cluster serves "
                        "(read-only: discovery and /openapi/v3) instead of the built-in "
                        "kinds of Kubernetes " + KUBERNETES)
    add_limits_argument(parser)


@dataclass
class Report:
    findings: list[Finding]
    silenced: int
    rule_sets: int
    loaded: int
    rules: int


@one_line_errors
def main(args: argparse.Namespace) -> int:
    catalogue = None
    if args.kubeconfig:
        # Read from a cluster only when asked; imported by name, so lint stays offline.
        live = importlib.import_module("engine.cli.lint_live")
        catalogue = live.catalogue(args.kubeconfig)
    report = lint(args.rules, crds=args.crds, catalogue=catalogue,
                  limits=read_limits(args.limits))
    for finding in report.findings:
        print(finding.describe())
    silenced = f" ({report.silenced} accepted by comments)" if report.silenced else ""
    unloaded = report.rule_sets - report.loaded
    print(f"{report.rule_sets} rule sets"
          + (f" ({unloaded} not loaded)" if unloaded else "")
          + f", {report.rules} rules: {len(report.findings)} findings{silenced}")
    return EXIT_PROBLEMS if report.findings and not args.warn_only else EXIT_OK


def lint(paths: Sequence[str], *, crds: Sequence[str] = (),
         catalogue: Catalogue | None = None, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Every finding in the rule sets under `paths`; kinds and fields are checked against
    `catalogue` (default: the built-in kinds) plus the CRDs among the files and `crds`;
    rules compile under `limits` (what the engine that runs them has)."""
    try:
        docs = read_documents(paths)
        extra = read_documents(crds) if crds else []
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    found: list[tuple[Finding, Path | None]] = []
    valid: list[Document] = []
    documents = [doc for doc in docs if is_rule_set(doc.value)]
    for doc in documents:
        problems = schema.check(doc)
        found.extend((f, _rule_path(f.path)) for f in problems)
        if not problems:
            valid.append(doc)
    loaded = load_documents(valid, check_rule=validation.check_rule)
    by_source = {doc.source: doc.value for doc in valid}
    for problem in loaded.errors:
        path = _where_path(problem.where, by_source.get(problem.where.file or ""))
        found.append((Finding("rule-set", problem.message, problem.where.file or "", path,
                              rule_set=problem.where.rule_set or "",
                              rule=problem.where.rule), _rule_path(path)))
    raw = {doc.source: doc.value for doc in valid}
    schemas = (catalogue or builtin()).with_crds(
        [crd(RULE_SET), crd(CLUSTER_RULE_SET),
         *(d.value for d in [*docs, *extra] if isinstance(d.value, dict)
           and not is_rule_set(d.value)),
         *crds_of(loaded.rule_sets)])  # the kinds the rule sets declare in spec.api
    compiled: list[CompiledRule] = []
    for rule_set in loaded.rule_sets:
        source = rule_set.source or ""
        for rule in rule_set.rules:
            subject = Subject(rule_set, rule, raw[source]["spec"]["rules"][rule.position],
                              source)
            compiled_rule = compile_rule(rule_set, rule, limits=limits)
            compiled.append(compiled_rule)
            found.extend((f, subject.path) for f in _check_rule(subject, compiled_rule,
                                                                 schemas))
    by_rule = {(c.rule_set.ref, c.rule.name): c for c in compiled}
    for overlap in overlaps([c for c in by_rule.values() if c.enabled]):
        second = overlap.second
        subject_path: Path = ("spec", "rules", second.rule.position)
        found.append((Finding(
            "overlap", overlap.describe(), second.rule_set.source or "",
            (*subject_path, *overlap.second_field), rule_set=str(second.rule_set.ref),
            rule=second.rule.name), subject_path))
    positions = Positions()
    kept: list[Finding] = []
    silenced = 0
    for finding, rule_path in found:
        located = positions.locate(finding)
        if positions.silenced(located, rule_path=rule_path):
            silenced += 1
        else:
            kept.append(located)
    kept.sort(key=lambda f: (f.file, f.line, f.column, f.code))
    return Report(_unique(kept), silenced, len(documents), len(loaded.rule_sets),
                  sum(len(rs.rules) for rs in loaded.rule_sets))


def _check_rule(subject: Subject, compiled: CompiledRule, schemas: Catalogue
                ) -> list[Finding]:
    found = [*expressions.check(subject), *templates.check(subject),
             *matching.check(subject, scoped=_scoped(schemas)),
             *kinds.check(subject, compiled, catalogue=schemas),
             *celtypes.check(subject, compiled, catalogue=schemas)]
    reported = {f.path for f in found}
    for exc in compiled.errors:
        steps = field_steps(exc.where.field)
        path = (*subject.path, *steps)
        if not any(p[:len(path)] == path for p in reported):
            found.append(subject.finding("compile", exc.message, *steps))
    return found


def _rule_path(path: Path) -> Path | None:
    return path[:3] if len(path) >= 3 and path[:2] == ("spec", "rules") else None


def _scoped(schemas: Catalogue) -> matching.Scoped:
    """Whether a kind is namespaced: the catalogue, then the built-in table."""

    def scoped(gvk: GVK) -> bool | None:
        known = schemas.namespaced(gvk)
        if known is not None:
            return known
        return False if gvk.kind in CLUSTER_SCOPED_KINDS else None

    return scoped


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, int, int]] = set()
    out = []
    for finding in findings:
        key = (finding.code, finding.message, finding.file, finding.line, finding.column)
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out


def _where_path(where: Where, value: Any) -> Path:
    """The path of a load error's rule and field inside its document (the rule set's
    name when the error names no rule, or the rule cannot be found)."""
    rules = value.get("spec", {}).get("rules") if isinstance(value, dict) else None
    if where.rule is None or not isinstance(rules, list):
        return ("metadata", "name")
    for index, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        if name == where.rule or f"#{index + 1}" == where.rule:
            field = tuple(where.field.split(".")) if where.field else ()
            return ("spec", "rules", index, *field)
    return ("metadata", "name")
