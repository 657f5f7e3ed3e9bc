"""Lint of a rule-set document against its CRD schema, as the API server checks it.

`engine.rules.schema.validate` does the checking (types, enums, required fields,
unknown fields, the CRD's CEL validations); this module turns each violation into a
finding that names the rule set and, under `spec.rules[i]`, the rule.
"""

from __future__ import annotations

from typing import Any

from engine.cli.lintchecks.findings import Finding
from engine.evaluate import validation
from engine.rules.documents import Document
from engine.rules.load import metadata_problems
from engine.rules.schema import validate


def check(doc: Document) -> list[Finding]:
    value: dict[str, Any] = doc.value
    kind = str(value["kind"])
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    name = str((metadata or {}).get("name") or "<unnamed>")
    spec = value.get("spec") if isinstance(value.get("spec"), dict) else {}
    rules = (spec or {}).get("rules")
    findings = [Finding("schema", message, doc.source, path, rule_set=f"{kind} {name}")
                for path, message in metadata_problems(value)]
    if findings and findings[0].path == ("metadata",):
        return findings  # the schema would say it again
    for violation in validate(value, kind=kind, check_rule=validation.check_rule):
        rule = None
        path = violation.path
        if len(path) >= 3 and path[:2] == ("spec", "rules") and isinstance(path[2], int) and (
                isinstance(rules, list) and path[2] < len(rules)):
            raw = rules[path[2]]
            rule = str(raw.get("name")) if isinstance(raw, dict) and raw.get("name") else (
                f"#{path[2] + 1}")
        findings.append(Finding(violation.code, violation.message, doc.source, path,
                                rule_set=f"{kind} {name}", rule=rule,
                                key=violation.code == "unknown-field"))
    return findings
