"""Turn rule-set documents into `RuleSet` values.

Called by the offline commands (with documents read from files) and by the live manager
(with objects from the API server). A document is checked against the CRD schema first
(`engine.rules.schema`), its name and namespace against the API server's rules
(`engine.rules.names`); the model is built only from a valid document, with the same
defaults the API server would apply. Errors name the file, rule set, rule and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EdictError, SchemaError, Where
from engine.objects import GVK
from engine.rules import api
from engine.rules import model as m
from engine.rules.documents import Document
from engine.rules.names import name_problem
from engine.rules.schema import RuleChecker, Violation, validate


@dataclass
class Loaded:
    """Rule sets found in some documents, the documents that are not rule sets, and errors."""

    rule_sets: list[m.RuleSet] = field(default_factory=list)
    others: list[Document] = field(default_factory=list)
    errors: list[EdictError] = field(default_factory=list)


def is_rule_set(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("apiVersion") == m.API_VERSION
        and value.get("kind") in m.KINDS
    )


def load_documents(docs: Iterable[Document], *, check_rule: RuleChecker | None = None) -> Loaded:
    loaded = Loaded()
    seen: dict[m.RuleSetRef, str] = {}
    for doc in docs:
        if not is_rule_set(doc.value):
            loaded.others.append(doc)
            continue
        try:
            rule_set = parse_rule_set(doc.value, source=doc.source, check_rule=check_rule)
        except SchemaError as exc:
            loaded.errors.append(exc)
            continue
        if rule_set.ref in seen:
            loaded.errors.append(SchemaError(
                f"{rule_set.ref} is defined twice (first in {seen[rule_set.ref]})",
                where=Where(file=doc.source, rule_set=rule_set.ref.name)))
            continue
        seen[rule_set.ref] = doc.source
        loaded.rule_sets.append(rule_set)
    return loaded


def metadata_problems(doc: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(path, message) of what the API server would refuse in a rule set's metadata: a
    metadata that is no mapping, a missing name, a name or namespace it cannot hold."""
    raw_metadata = doc.get("metadata")
    if raw_metadata is not None and not isinstance(raw_metadata, dict):
        return [(("metadata",), "metadata must be a mapping")]
    metadata: dict[str, Any] = raw_metadata or {}
    raw_name = metadata.get("name")
    problems: list[tuple[tuple[str, ...], str]] = []
    if raw_name is None or raw_name == "":
        problems.append((("metadata", "name"), "metadata.name is required"))
    elif (problem := name_problem(raw_name)) is not None:
        problems.append((("metadata", "name"), f"metadata.name {raw_name!r} {problem}"))
    namespace = metadata.get("namespace")
    if doc.get("kind") == m.RULE_SET and namespace is not None:
        problem = name_problem(namespace, label=True)
        if problem is not None:
            problems.append((("metadata", "namespace"),
                             f"metadata.namespace {namespace!r} {problem}"))
    return problems


def parse_rule_set(
    doc: dict[str, Any],
    *,
    source: str | None = None,
    default_namespace: str = "default",
    check_rule: RuleChecker | None = None,
) -> m.RuleSet:
    """Validate one RuleSet/ClusterRuleSet document and build its model.

    Raises SchemaError listing every violation, each with the rule and field named.
    """
    kind = doc["kind"]
    raw_metadata = doc.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    raw_name = metadata.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    where = Where(file=source, rule_set=name or "<unnamed>")
    problems = metadata_problems(doc)
    if problems:
        raise SchemaError(problems[0][1], where=where)
    violations = validate(doc, kind=kind, check_rule=check_rule)
    if violations:
        raise SchemaError(_describe(violations, doc), where=where)
    namespace = str(metadata.get("namespace") or default_namespace) if kind == m.RULE_SET else ""
    spec = api.with_own_kind(doc["spec"], where=where)  # spec.api checked, kinds filled in
    return m.RuleSet(
        ref=m.RuleSetRef(kind, namespace, name),
        rules=tuple(_rule(raw, i, where) for i, raw in enumerate(spec["rules"])),
        mode=m.Mode(spec.get("mode", m.DEFAULT_MODE)),
        priority=int(spec.get("priority", m.DEFAULT_PRIORITY)),
        params=spec.get("params") or {},
        service_account_name=spec.get("serviceAccountName"),
        generation=int(metadata.get("generation") or 0),
        uid=str(metadata.get("uid") or ""),
        source=source,
        api=spec.get("api"),
        failure_policy=m.FailurePolicy(
            (spec.get("admission") or {}).get("failurePolicy", m.DEFAULT_FAILURE_POLICY)),
    )


MAX_LISTED = 5
MAX_VIOLATION = 160
_LONG_QUOTE = re.compile(r"'(?:[^'\\]|\\.){60,}'")


def _describe(violations: list[Violation], doc: dict[str, Any]) -> str:
    """Every violation in one line: the rule and field named, long values cut short."""
    spec = doc.get("spec")
    rules = spec.get("rules") if isinstance(spec, dict) else None
    parts = []
    for v in violations[:MAX_LISTED]:
        prefix = ""
        if len(v.path) >= 3 and v.path[:2] == ("spec", "rules") and isinstance(v.path[2], int):
            index = v.path[2]
            rule = rules[index] if isinstance(rules, list) and index < len(rules) else None
            rule_name = rule.get("name") if isinstance(rule, dict) else None
            prefix = f"rule {rule_name!r}: " if isinstance(rule_name, str) else (
                f"rule #{index + 1}: ")
        message = _LONG_QUOTE.sub(lambda q: q.group(0)[:40] + "...'", " ".join(v.message.split()))
        if len(message) > MAX_VIOLATION:
            message = message[:MAX_VIOLATION - 5] + " ..."
        parts.append(f"{prefix}{v.field}: {message}")
    more = len(violations) - MAX_LISTED
    listed = "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return "schema violation" + ("s" if len(violations) > 1 else "") + ": " + listed


def _selector(raw: Any) -> m.LabelSelector | None:
    if raw is None:
        return None
    return m.LabelSelector(
        match_labels=tuple(sorted((raw.get("matchLabels") or {}).items())),
        match_expressions=tuple(
            m.Requirement(e["key"], e["operator"], tuple(e.get("values") or ()))
            for e in raw.get("matchExpressions") or ()
        ),
    )


def _match(raw: dict[str, Any]) -> m.Match:
    kinds = tuple(
        GVK.of(res["apiVersion"], kind) for res in raw["resources"] for kind in res["kinds"]
    )
    exclude = raw.get("exclude")
    return m.Match(
        kinds=kinds,
        namespaces=tuple(raw.get("namespaces") or ()),
        names=tuple(raw.get("names") or ()),
        selector=_selector(raw.get("selector")),
        namespace_selector=_selector(raw.get("namespaceSelector")),
        exclude=None if exclude is None else m.Exclude(
            namespaces=tuple(exclude.get("namespaces") or ()),
            names=tuple(exclude.get("names") or ()),
            selector=_selector(exclude.get("selector")),
            namespace_selector=_selector(exclude.get("namespaceSelector")),
        ),
        pod_templates=bool(raw.get("podTemplates", False)),
    )


def _action(raw: dict[str, Any]) -> m.Action:
    if "mutate" in raw:
        mut = raw["mutate"]
        return m.Mutate(mut.get("template"), mut.get("jsonPatch"), mut.get("forEach"))
    if "generate" in raw:
        gen = raw["generate"]
        clone = gen.get("clone")
        return m.Generate(
            gen.get("template"), gen.get("forEach"), bool(gen.get("synchronize", True)),
            gen.get("readyWhen"), tuple(gen.get("after") or ()),
            None if clone is None else m.Lookup(
                m.CLONE_ALIAS, GVK.of(clone["apiVersion"], clone["kind"]),
                clone.get("namespace"), clone["name"]),
        )
    if "validate" in raw:
        val = raw["validate"]
        return m.Validate(val["expression"], val.get("message"), val.get("messageExpression"))
    return m.StatusAction(raw["status"]["template"])


def _rule(raw: dict[str, Any], position: int, where: Where) -> m.Rule:
    if m.CLONE_ALIAS in (raw.get("context") or {}):
        raise SchemaError(f"context name {m.CLONE_ALIAS!r} is reserved (the source of "
                          "generate.clone)", where=Where(where.file, where.rule_set,
                                                         raw["name"], "context"))
    context = tuple(
        m.Lookup(alias, GVK.of(spec["apiVersion"], spec["kind"]), spec.get("namespace"),
                 spec["name"])
        for alias, spec in (raw.get("context") or {}).items()
    )
    return m.Rule(
        name=raw["name"],
        position=position,
        match=_match(raw["match"]),
        action=_action(raw),
        condition=raw.get("condition"),
        context=context,
        admission=bool(raw.get("admission", m.DEFAULT_ADMISSION)),
        variables=tuple(m.Variable(v["name"], v["expression"])
                        for v in raw.get("variables") or ()),
    )
