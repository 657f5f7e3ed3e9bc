"""`spec.api` of a ClusterRuleSet: the API an operator introduces, in a short schema
language, turned into a real CustomResourceDefinition.

An operator written with Edict is one file: the rule set says what the new kind is and
what the world should look like for each object of it. This module is the one
definition of the short language; `crd_for` turns it into the CRD the API server
validates (live, the engine installs it; offline, `edict crd` prints it and `edict apply`
uses its schema). The language covers the common 90% of CRD schemas:

```yaml
api:
  group: example.edict.dev      # required
  kind: Database                # required
  version: v1alpha1             # default
  scope: Namespaced             # or Cluster
  plural: databases             # default: lower-case kind + "s"
  shortNames: [db]
  spec:                         # field: "type | markers", or a map for a nested object
    engine: string | enum=postgres,mysql default=postgres
    storageGB: integer | minimum=1 maximum=1000 default=10
    users: "[]string | maxItems=20"
    labels: map[string]string
    backup:
      schedule: string | required
  status:
    endpoint: string
  printerColumns:
  - {name: Engine, type: string, jsonPath: .spec.engine}
  onDelete: WhenEmpty           # or Keep, or Delete (see below)
```

Types: ``string``, ``integer``, ``number``, ``boolean``, ``object`` (free-form: unknown
fields kept), ``[]T`` (a list), ``map[string]T``. Markers after ``|``, space-separated:
``required``, ``default=V``, ``enum=a,b``, ``minimum=N``, ``maximum=N``, ``minLength=N``,
``maxLength=N``, ``pattern=RE``, ``minItems=N``, ``maxItems=N``, ``description="…"``.
The status always gets ``observedGeneration`` and a standard ``conditions`` list
(keyed by ``type``), a status subresource, and a ``Ready`` printer column.

Rules of the rule set may name the kind without its apiVersion
(``match: {resources: [{kinds: [Database]}]}``), or leave ``match`` out altogether to be
about the rule set's own kind: `with_own_kind` fills them in when the rule set loads,
and refuses a kind without apiVersion that is not the rule set's own.
``onDelete`` says what the live engine does with the CRD when the rule set (or its
``api``) goes: ``WhenEmpty`` (default) deletes it once no object of the kind is left,
``Keep`` never deletes it, ``Delete`` deletes it at once, objects and all.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from engine.errors import SchemaError, Where
from engine.rules.model import RuleSet

DEFAULT_VERSION = "v1alpha1"
API_OF_LABEL = "edict.dev/api-of"  # on a CRD Edict installs: the ClusterRuleSet's name
ON_DELETE_ANNOTATION = "edict.dev/on-delete"  # on that CRD: the rule set's onDelete
ON_DELETE = ("WhenEmpty", "Keep", "Delete")
FIELDS = ("group", "kind", "version", "scope", "plural", "shortNames", "categories", "spec",
          "status", "printerColumns", "onDelete")
SCALARS = {"string", "integer", "number", "boolean"}
NUMBER_MARKERS = {"minimum", "maximum"}
COUNT_MARKERS = {"minLength", "maxLength", "minItems", "maxItems"}
MARKERS = {"required", "default", "enum", "pattern", "description",
           *NUMBER_MARKERS, *COUNT_MARKERS}
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")

CONDITIONS = {
    "type": "array",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64"},
        },
    },
}


def crd_for(api: Mapping[str, Any], *, where: Where) -> dict[str, Any]:
    """The CustomResourceDefinition `api` describes; `SchemaError` naming the field."""
    return _Builder(where).crd(api)


def kind_of(api: Mapping[str, Any]) -> tuple[str, str]:
    """(apiVersion, kind) of the API, for rules that name the kind without apiVersion."""
    return f"{api['group']}/{api.get('version') or DEFAULT_VERSION}", str(api["kind"])


def defaulted(objects: Iterable[dict[str, Any]], crds: Iterable[Mapping[str, Any]]
              ) -> list[dict[str, Any]]:
    """`objects`, those of the CRDs' kinds with the schema's defaults filled in, as the API
    server fills them when an object is stored (offline commands call this, so a
    manifest that leaves a defaulted field out is seen as the cluster would keep it)."""
    schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or ():
            root = (version.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(root, Mapping):
                api_version = f"{spec.get('group')}/{version.get('name')}"
                schemas[(api_version, str((spec.get("names") or {}).get("kind")))] = root
    out = []
    for obj in objects:
        root = schemas.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        out.append(obj if root is None else _with_defaults(obj, root))
    return out


def _with_defaults(value: Any, node: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        additional = node.get("additionalProperties")
        out = dict(value)
        for name, child in properties.items():
            if name not in out and isinstance(child, Mapping) and "default" in child:
                out[name] = copy.deepcopy(child["default"])
        for name, item in out.items():
            child = properties.get(name) or (additional if isinstance(additional, Mapping)
                                             else None)
            if child is not None:
                out[name] = _with_defaults(item, child)
        return out
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [_with_defaults(item, node["items"]) for item in value]
    return value


def crd_of(rule_set: RuleSet) -> dict[str, Any] | None:
    """The CRD of a loaded rule set's `api` (None without one), marked as the rule set's:
    what `edict crd` prints and the live engine installs."""
    if rule_set.api is None:
        return None
    crd = crd_for(rule_set.api, where=Where(file=rule_set.source, rule_set=rule_set.ref.name))
    crd["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "edict",
                                 API_OF_LABEL: rule_set.ref.name}
    crd["metadata"]["annotations"] = {
        ON_DELETE_ANNOTATION: str(rule_set.api.get("onDelete") or ON_DELETE[0])}
    return crd


def crds_of(rule_sets: Iterable[RuleSet]) -> list[dict[str, Any]]:
    """The CRDs of every rule set that has an `api`, in the order given."""
    return [crd for crd in map(crd_of, rule_sets) if crd is not None]


def with_own_kind(spec: Mapping[str, Any], *, where: Where) -> Mapping[str, Any]:
    """A rule set's `spec` with the apiVersion of its own `api` kind filled in where a
    rule's `match.resources` leaves it out; `spec.api` is checked on the way.

    Raises `SchemaError` for a bad `api`, or a resource without apiVersion that names
    another kind (or in a rule set without `api`)."""
    own = spec.get("api")
    if own is not None:
        crd_for(own, where=where)
    api_version, own_kind = kind_of(own) if own is not None else ("", "")
    rules = spec.get("rules")
    if not isinstance(rules, list):
        return spec
    filled: list[Any] = []
    for index, rule in enumerate(rules):
        if isinstance(rule, Mapping) and "match" not in rule:
            if own is None:
                raise SchemaError("match is required (only the rules of a rule set with "
                                  "spec.api may leave it out, for its own kind)",
                                  where=Where(where.file, where.rule_set,
                                              str(rule.get("name") or f"#{index + 1}"),
                                              "match"))
            filled.append({**rule, "match": {"resources": [{"apiVersion": api_version,
                                                            "kinds": [own_kind]}]}})
            continue
        match: Mapping[str, Any] = (rule.get("match") if isinstance(rule, Mapping) else None
                                    ) or {}
        resources = match.get("resources") if isinstance(match, Mapping) else None
        if not isinstance(resources, list) or all(
                isinstance(r, Mapping) and "apiVersion" in r for r in resources):
            filled.append(rule)
            continue
        name = rule.get("name") or f"#{index + 1}"
        here = Where(where.file, where.rule_set, str(name), "match.resources")
        out = []
        for resource in resources:
            if isinstance(resource, Mapping) and "apiVersion" not in resource:
                others = [k for k in resource.get("kinds") or () if k != own_kind]
                if own is None or others:
                    raise SchemaError(
                        f"kind {(others or list(resource.get('kinds') or ['?']))[0]!r} needs "
                        "an apiVersion: only the rule set's own kind (spec.api) can be "
                        "named without one" + (f" (here {own_kind})" if own else ""),
                        where=here)
                resource = {**resource, "apiVersion": api_version}
            out.append(resource)
        filled.append({**rule, "match": {**match, "resources": out}})
    return {**spec, "rules": filled}


class _Builder:
    def __init__(self, where: Where) -> None:
        self.where = where

    def fail(self, field: str, message: str) -> SchemaError:
        return SchemaError(message, where=self.where.with_field(field))

    def crd(self, api: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(api, Mapping):
            raise self.fail("spec.api", "must be a map")
        unknown = set(api) - set(FIELDS)
        if unknown:
            raise self.fail(f"spec.api.{sorted(unknown)[0]}",
                            f"unknown field (known: {', '.join(FIELDS)})")
        if api.get("onDelete", ON_DELETE[0]) not in ON_DELETE:
            raise self.fail("spec.api.onDelete", f"must be one of {', '.join(ON_DELETE)}")
        group, kind = api.get("group"), api.get("kind")
        if not isinstance(group, str) or not _GROUP.match(group):
            raise self.fail("spec.api.group", f"{group!r} is not an API group (a DNS "
                            "subdomain with at least one dot, e.g. example.com)")
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise self.fail("spec.api.kind", f"{kind!r} is not a kind (CamelCase, starting "
                            "with a capital letter)")
        version = api.get("version") or DEFAULT_VERSION
        if not isinstance(version, str) or not _VERSION.match(version):
            raise self.fail("spec.api.version", f"{version!r} is not a version (v1, "
                            "v1alpha1, v2beta3…)")
        scope = api.get("scope") or "Namespaced"
        if scope not in ("Namespaced", "Cluster"):
            raise self.fail("spec.api.scope", "must be Namespaced or Cluster")
        plural = api.get("plural") or kind.lower() + "s"
        if not isinstance(plural, str) or not re.match(r"^[a-z][a-z0-9]{0,62}$", plural):
            raise self.fail("spec.api.plural", f"{plural!r} is not a plural (lower case)")
        names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                                 "singular": kind.lower()}
        for field in ("shortNames", "categories"):
            words = api.get(field)
            if words is not None:
                if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                    raise self.fail(f"spec.api.{field}", "must be a list of strings")
                names[field] = list(words)
        spec = self.object(api.get("spec") or {}, "spec.api.spec")
        if "required" not in spec:
            spec["default"] = {}  # so an object without spec still gets the defaults
        status = self.object(api.get("status") or {}, "spec.api.status")
        status["properties"]["observedGeneration"] = {"type": "integer", "format": "int64"}
        status["properties"]["conditions"] = CONDITIONS
        columns = [{"name": "Ready", "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                   *self.columns(api.get("printerColumns") or []),
                   {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group, "scope": scope, "names": names,
                "versions": [{
                    "name": version, "served": True, "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": spec, "status": status},
                    }},
                }],
            },
        }

    def columns(self, columns: Any) -> list[dict[str, Any]]:
        if not isinstance(columns, list):
            raise self.fail("spec.api.printerColumns", "must be a list")
        out = []
        for index, column in enumerate(columns):
            field = f"spec.api.printerColumns[{index}]"
            if not isinstance(column, Mapping) or not {"name", "jsonPath"} <= set(column):
                raise self.fail(field, "needs name and jsonPath")
            out.append({"type": "string", **dict(column)})
        return out

    def object(self, fields: Any, path: str) -> dict[str, Any]:
        if not isinstance(fields, Mapping):
            raise self.fail(path, "must be a map of field: type")
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, spec in fields.items():
            here = f"{path}.{name}"
            if not isinstance(name, str) or not _FIELD.match(name):
                raise self.fail(here, f"{name!r} is not a field name")
            if isinstance(spec, Mapping):
                properties[name] = self.object(spec, here)
                continue
            if not isinstance(spec, str):
                raise self.fail(here, "must be a type (\"integer | default=1\") or a map "
                                "of fields")
            schema, is_required = self.field(spec, here)
            properties[name] = schema
            if is_required:
                required.append(name)
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        return out

    def field(self, text: str, path: str) -> tuple[dict[str, Any], bool]:
        type_text, _, marker_text = text.partition("|")
        schema = self.type(type_text.strip(), path)
        try:
            words = shlex.split(marker_text)
        except ValueError as error:
            raise self.fail(path, f"cannot read the markers {marker_text.strip()!r}: "
                            f"{error}") from None
        required = False
        for word in words:
            name, has_value, value = word.partition("=")
            if name not in MARKERS:
                raise self.fail(path, f"unknown marker {name!r} (known: "
                                f"{', '.join(sorted(MARKERS))})")
            if name == "required":
                required = True
            elif not has_value:
                raise self.fail(path, f"{name} needs a value ({name}=…)")
            elif name == "enum":
                schema["enum"] = [self.value(v, schema, path) for v in value.split(",")]
            elif name == "default":
                schema["default"] = self.value(value, schema, path)
            elif name in NUMBER_MARKERS | COUNT_MARKERS:
                number = self.number(value, name, path)
                schema[name] = number
            else:
                schema[name] = value
        if "default" in schema and "enum" in schema and schema["default"] not in schema["enum"]:
            raise self.fail(path, f"default {schema['default']!r} is not one of enum "
                            f"{schema['enum']}")
        return schema, required

    def type(self, text: str, path: str) -> dict[str, Any]:
        if text in SCALARS:
            return {"type": text}
        if text == "object":
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if text.startswith("[]"):
            return {"type": "array", "items": self.type(text[2:], path)}
        if text.startswith("map[string]"):
            return {"type": "object",
                    "additionalProperties": self.type(text[len("map[string]"):], path)}
        raise self.fail(path, f"unknown type {text!r} (string, integer, number, boolean, "
                        "object, []T, map[string]T)")

    def value(self, text: str, schema: dict[str, Any], path: str) -> Any:
        kind = schema.get("type")
        if kind == "string":
            return text
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        checks = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
                  "boolean": lambda v: isinstance(v, bool)}
        check = checks.get(str(kind))
        if check is not None and not check(value):
            raise self.fail(path, f"{text!r} is not a value of type {kind}")
        if check is None:
            raise self.fail(path, f"a {kind} field takes no enum or default here")
        return value

    def number(self, text: str, name: str, path: str) -> int | float:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(path, f"{name} needs a number, not {text!r}")
        if name in COUNT_MARKERS and (not isinstance(value, int) or value < 0):
            raise self.fail(path, f"{name} needs a whole number ≥ 0, not {text!r}")
        return value
