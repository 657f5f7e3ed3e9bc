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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError
from engine.cli.lintchecks import apifields, expressions, matching, schema, templates
from engine.cli.lintchecks.findings import Finding, Path
from engine.cli.lintchecks.positions import Positions
from engine.cli.lintchecks.subject import Subject
from engine.errors import InputError
from engine.evaluate import validation
from engine.evaluate.compile import CompiledRule, compile_rule
from engine.evaluate.overlaps import overlaps
from engine.evaluate.world import CLUSTER_SCOPED_KINDS
from engine.objects import GVK
from engine.rules.documents import Document, read_documents
from engine.rules.load import is_rule_set, load_documents

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
  undefined-field, type-error a field a spec.api kind does not have; CEL that fails
                              on that kind's types

Exit code 1 on any finding (0 with --warn-only). To accept a finding on purpose, put
`# edict-lint: ignore[CODE]` on its line or on its rule's `name:` line.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "lint", help="check rule sets: schema, CEL, templates, matching, overlaps",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict lint rules/")
    parser.add_argument("rules", nargs="+", metavar="RULES",
                        help="rule-set files or directories")
    parser.add_argument("--warn-only", action="store_true",
                        help="print findings but exit 0")


@dataclass
class Report:
    findings: list[Finding]
    silenced: int
    rule_sets: int
    loaded: int
    rules: int


def main(args: argparse.Namespace) -> int:
    report = lint(args.rules)
    for finding in report.findings:
        print(finding.describe())
    silenced = f" ({report.silenced} accepted by comments)" if report.silenced else ""
    unloaded = report.rule_sets - report.loaded
    print(f"{report.rule_sets} rule sets"
          + (f" ({unloaded} not loaded)" if unloaded else "")
          + f", {report.rules} rules: {len(report.findings)} findings{silenced}")
    return EXIT_PROBLEMS if report.findings and not args.warn_only else EXIT_OK


def lint(paths: Sequence[str]) -> Report:
    try:
        docs = read_documents(paths)
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
    for problem in loaded.errors:
        found.append((Finding("rule-set", problem.message, problem.where.file or "",
                              ("metadata", "name"), rule_set=problem.where.rule_set or ""),
                      None))
    raw = {doc.source: doc.value for doc in valid}
    scoped = _scopes(loaded.others)
    kinds = apifields.api_kinds(loaded.rule_sets)  # spec.api: the kinds' own schemas
    compiled: list[CompiledRule] = []
    for rule_set in loaded.rule_sets:
        source = rule_set.source or ""
        for rule in rule_set.rules:
            subject = Subject(rule_set, rule, raw[source]["spec"]["rules"][rule.position],
                              source)
            compiled_rule = compile_rule(rule_set, rule)
            compiled.append(compiled_rule)
            found.extend((f, subject.path) for f in _check_rule(subject, compiled_rule,
                                                                 scoped))
            found.extend((f, subject.path) for f in apifields.check(subject, compiled_rule,
                                                                    kinds))
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


def _check_rule(subject: Subject, compiled: CompiledRule,
                scoped: matching.Scoped) -> list[Finding]:
    found = [*expressions.check(subject), *templates.check(subject),
             *matching.check(subject, scoped=scoped)]
    reported = {f.path for f in found}
    for exc in compiled.errors:
        steps = tuple((exc.where.field or "").split("."))
        path = (*subject.path, *steps)
        if not any(p[:len(path)] == path for p in reported):
            found.append(subject.finding("compile", exc.message, *steps))
    return found


def _rule_path(path: Path) -> Path | None:
    return path[:3] if len(path) >= 3 and path[:2] == ("spec", "rules") else None


def _scopes(others: Iterable[Document]) -> matching.Scoped:
    """Whether a kind is namespaced: CRDs among the inputs, then the built-in table."""
    crds: dict[tuple[str, str], bool] = {}
    for doc in others:
        value = doc.value
        if isinstance(value, dict) and value.get("kind") == "CustomResourceDefinition":
            spec = value["spec"] if isinstance(value.get("spec"), dict) else {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                crds[(str(spec.get("group", "")), str(kind))] = spec.get("scope") != "Cluster"

    def scoped(gvk: GVK) -> bool | None:
        known = crds.get((gvk.group, gvk.kind))
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

