"""Offline validation of rule sets against the CRDs the API server enforces.

`crds/` is the single source of truth: this module reads the `openAPIV3Schema` of the
RuleSet and ClusterRuleSet CRDs (shipped inside the package) and checks documents with
it, the way the API server would with strict field validation (kubectl's default): the
structural schema (types, enums, lengths, required fields), unknown fields (a misspelt
`condtion:` is refused, never silently dropped; only the free-form parts — templates,
`params`, a patch operation's `value` — take any field), `x-kubernetes-list-type: map`
uniqueness, and `x-kubernetes-validations`. The CEL of those validations is evaluated by a
checker the caller passes in (the CEL adapter sits above this layer), so the rules
themselves are never re-typed here.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from engine.rules.model import CLUSTER_RULE_SET, RULE_SET

CRD_FILES = {RULE_SET: "edict.dev_rulesets.yaml",
             CLUSTER_RULE_SET: "edict.dev_clusterrulesets.yaml"}

# (rule, value at the schema node) -> True when the rule holds.
RuleChecker = Callable[[str, Any], bool]


# The fields of ObjectMeta: the API server refuses any other under `metadata`.
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"})


@dataclass(frozen=True)
class Violation:
    path: tuple[str | int, ...]
    message: str
    code: str = "schema"  # "unknown-field" for a field the schema does not have

    @property
    def field(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "<root>"


def crd_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "crds"


@functools.cache
def crd(kind: str) -> dict[str, Any]:
    text = (crd_dir() / CRD_FILES[kind]).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    versions = crd(kind)["spec"]["versions"]
    found: dict[str, Any] = versions[0]["schema"]["openAPIV3Schema"]
    return found


@functools.cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for({}, default=jsonschema.Draft7Validator)
    validator: jsonschema.protocols.Validator = cls(schema(kind))
    return validator


def validate(doc: Any, *, kind: str, check_rule: RuleChecker | None = None) -> list[Violation]:
    """Every way `doc` breaks the CRD schema of `kind`; empty when it is valid."""
    found = [
        Violation(tuple(err.absolute_path), _message(err))
        for err in sorted(_validator(kind).iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]
    found += unknown_fields(doc, kind=kind)
    if found:  # like the API server: validations run on structurally valid objects only
        return found
    for path, node, value in _walk(schema(kind), doc, ()):
        keys = node.get("x-kubernetes-list-map-keys")
        if node.get("x-kubernetes-list-type") == "map" and keys and isinstance(value, list):
            seen: set[tuple[Any, ...]] = set()
            for index, item in enumerate(value):
                ident = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
                if ident in seen:
                    found.append(Violation((*path, index), f"Duplicate value: {ident[0]!r}"))
                seen.add(ident)
        if check_rule is not None:
            for validation in node.get("x-kubernetes-validations", ()):
                if not check_rule(validation["rule"], value):
                    found.append(Violation(path, validation.get("message") or validation["rule"]))
    return found


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, but an `anyOf` of `required` fields said as the fields."""
    options = error.validator_value if error.validator == "anyOf" else None
    if isinstance(options, list) and all(
            isinstance(o, dict) and set(o) == {"required"} for o in options):
        names = [" and ".join(map(str, o["required"])) for o in options]
        return f"needs {' or '.join(names)}" + (" (or both)" if len(names) == 2 else "")
    return str(error.message)


def unknown_fields(doc: Any, *, kind: str) -> list[Violation]:
    """Fields the schema of `kind` does not have, as strict field validation reports them.

    Each names the closest known field when one is near (`condtion` -> `condition`).
    """
    found: list[Violation] = []
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        for key in doc["metadata"]:
            if key not in OBJECT_META_FIELDS:
                found.append(_unknown(("metadata", key), key, OBJECT_META_FIELDS))
    for path, node, value in _walk(schema(kind), doc, ()):
        properties = node.get("properties")
        if (not isinstance(value, dict) or properties is None
                or node.get("x-kubernetes-preserve-unknown-fields")
                or "additionalProperties" in node):
            continue
        for key in value:
            if key not in properties:
                found.append(_unknown((*path, key), key, properties))
    return found


def _unknown(path: tuple[str | int, ...], key: Any, known: Any) -> Violation:
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return Violation(path, f"unknown field {str(key)!r}{hint}", code="unknown-field")


def _walk(
    node: dict[str, Any], value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any], Any]]:
    """Schema nodes paired with the parts of `value` they describe."""
    yield path, node, value
    if isinstance(value, dict):
        properties = node.get("properties", {})
        additional = node.get("additionalProperties")
        for key, child in value.items():
            sub = properties.get(key) or (additional if isinstance(additional, dict) else None)
            if sub is not None:
                yield from _walk(sub, child, (*path, key))
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, child in enumerate(value):
            yield from _walk(node["items"], child, (*path, index))
