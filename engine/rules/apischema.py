"""What lint knows of a `spec.api` kind: which field paths exist, and an example object.

`engine.cli.lintchecks.apifields` asks `ApiKind.problem(path)` for every path a rule's
CEL and templates read of `object` (a misspelt `object.spec.storageGb` is a finding,
with the closest real field), and evaluates conditions on `ApiKind.example()`, an object
whose every field holds a value of its schema's type (defaults and enums first), so an
expression that compares an integer field with a string fails there, as it would on
every real object. Built from the CRD `engine.rules.api.crd_for` makes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The fields of ObjectMeta; anything below labels and annotations is free.
OBJECT_META = {
    "name": "string", "generateName": "string", "namespace": "string", "uid": "string",
    "resourceVersion": "string", "generation": "integer", "creationTimestamp": "string",
    "deletionTimestamp": "string", "deletionGracePeriodSeconds": "integer",
    "labels": "map", "annotations": "map", "ownerReferences": "array",
    "finalizers": "array", "managedFields": "array", "selfLink": "string",
}
_EXAMPLES = {"string": "x", "integer": 1, "number": 1.5, "boolean": True}


@dataclass(frozen=True)
class ApiKind:
    """One kind's schema (`openAPIV3Schema` of its CRD)."""

    kind: str
    schema: Mapping[str, Any]

    @classmethod
    def of(cls, crd: Mapping[str, Any]) -> ApiKind:
        version = crd["spec"]["versions"][0]
        return cls(str(crd["spec"]["names"]["kind"]), version["schema"]["openAPIV3Schema"])

    def problem(self, path: tuple[str, ...]) -> str | None:
        """Why `object.<path>` can never hold a value, or None when it may."""
        if not path:
            return None
        top, rest = path[0], path[1:]
        if top in ("apiVersion", "kind"):
            return _beneath_scalar(f"object.{top}", "string", rest)
        if top == "metadata":
            if not rest:
                return None
            kind = OBJECT_META.get(rest[0])
            if kind is None:
                return (f"object.metadata has no field {rest[0]!r}"
                        f"{_near(rest[0], OBJECT_META)}")
            if kind in ("map", "array"):
                return None
            return _beneath_scalar(f"object.metadata.{rest[0]}", kind, rest[1:])
        properties = self.schema.get("properties") or {}
        if top not in properties:
            return (f"a {self.kind} has no field {top!r}{_near(top, properties)} (its fields: "
                    f"apiVersion, kind, metadata, {', '.join(properties)})")
        return _walk(properties[top], f"object.{top}", rest, self.kind)

    def example(self) -> dict[str, Any]:
        """An object of the kind, every field set (defaults, enums, else a typical value)."""
        properties = self.schema.get("properties") or {}
        return {"apiVersion": "example/v1", "kind": self.kind,
                "metadata": {"name": "example", "namespace": "default", "uid": "1",
                             "generation": 1, "labels": {}, "annotations": {}},
                **{name: _example(node) for name, node in properties.items()}}


def _walk(node: Mapping[str, Any], here: str, path: tuple[str, ...], kind: str) -> str | None:
    for step in path:
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return None
        node_type = node.get("type")
        if node_type == "array":
            return None  # reads stop at an index: nothing to say about what follows
        if node_type != "object":
            return _beneath_scalar(here, str(node_type), (step,))
        additional = node.get("additionalProperties")
        if isinstance(additional, Mapping):
            node, here = additional, f"{here}[{step!r}]"
            continue
        properties = node.get("properties") or {}
        if step not in properties:
            return (f"{here} of a {kind} has no field {step!r}{_near(step, properties)} "
                    f"(its fields: {', '.join(properties) or 'none'})")
        node, here = properties[step], f"{here}.{step}"
    return None


def _beneath_scalar(here: str, kind: str, rest: tuple[str, ...]) -> str | None:
    if not rest:
        return None
    return f"{here} is a {kind}: it has no field {rest[0]!r}"


def _near(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, sorted(map(str, known)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _example(node: Mapping[str, Any]) -> Any:
    if "default" in node:
        return node["default"]
    if node.get("enum"):
        return node["enum"][0]
    kind = node.get("type")
    if kind == "array":
        items = node.get("items")
        return [_example(items)] if isinstance(items, Mapping) else []
    if kind == "object" or "properties" in node:
        additional = node.get("additionalProperties")
        if isinstance(additional, Mapping):
            return {"key": _example(additional)}
        return {name: _example(child) for name, child in (node.get("properties") or {}).items()}
    if kind in ("integer", "number") and "minimum" in node:
        return node["minimum"]
    if kind == "string" and node.get("format") == "date-time":
        return "2000-01-01T00:00:00Z"
    return _EXAMPLES.get(str(kind))
