"""Converting OpenAPI v3 schemas into the compact table that `engine.schemas.model` reads.

Two sources, one converter:

- a document as kube-apiserver serves it at ``/openapi/v3/<group-version>``: named types
  in ``components.schemas`` that refer to each other by ``$ref`` (mostly wrapped in a
  one-item ``allOf``), the kinds among them named by ``x-kubernetes-group-version-kind``
  (`convert_document`);
- a CRD's ``spec.versions[].schema.openAPIV3Schema``: one inline tree per version
  (`convert_crd`).

Only what server-side apply and lint read is kept: field names, scalar types, list and
map markers, and the defaults of list-map key fields. The rules are the API server's own
(its field manager converts the same documents with kube-openapi's ``schemaconv``), so a
merge by these nodes treats every field as the server does:

- ``x-kubernetes-list-type`` says how a list merges; a list without it but with
  ``x-kubernetes-patch-strategy: merge`` is a map list keyed by
  ``x-kubernetes-patch-merge-key`` (a set when there is no key); any other list is atomic;
- ``x-kubernetes-map-type`` on a type — or on the property that refers to it, which
  overrides the type's own — makes a map or struct atomic (or granular again);
- ``Quantity`` is the scalar ``quantity`` (a string or a number), an int-or-string is
  ``int-or-string``, ``RawExtension`` is replaced whole, and an object with neither
  properties nor additionalProperties is free-form (``any``: SSA's defaults hold in it);
- ``x-kubernetes-embedded-resource`` adds ``apiVersion``, ``kind`` and ``metadata``, as
  the API server does for CRDs; a CRD's root always gets them.

Named types keep their names, shortened (`compact_name`); a named type that is only a
scalar is written in place of every reference to it. Used by `engine.schemas.catalogue`
(CRDs), `engine.schemas.generate` (the shipped catalogue) and `engine.kube.openapi` (the
live cluster's ``/openapi/v3``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.objects import GVK
from engine.schemas.model import ANY, SCALARS

REF_PREFIX = "#/components/schemas/"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
OBJECT_META = "meta.v1.ObjectMeta"
"""The compact name of ObjectMeta: CRD roots and embedded resources refer to it."""

_PREFIXES = (
    "io.k8s.api.",
    "io.k8s.apimachinery.pkg.apis.",
    "io.k8s.apimachinery.pkg.",
    "io.k8s.apiextensions-apiserver.pkg.apis.",
    "io.k8s.kube-aggregator.pkg.apis.",
)
_JSON_SCALARS = ("string", "integer", "number", "boolean")


class ConversionError(ValueError):
    """Two different types were given the same compact name."""


def compact_name(name: str) -> str:
    """``io.k8s.api.core.v1.PodSpec`` → ``core.v1.PodSpec``,
    ``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`` → ``meta.v1.ObjectMeta``."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


@dataclass
class Converted:
    """Named types in compact form, and the type of each kind (``any`` when unknown)."""

    types: dict[str, Any] = field(default_factory=dict)
    kinds: dict[GVK, str] = field(default_factory=dict)


def convert_document(document: Mapping[str, Any], *,
                     group_version: tuple[str, str] | None = None) -> Converted:
    """Convert an ``/openapi/v3`` document: the kinds it names (only those of
    `group_version`, when given) and every type they reach."""
    components = document.get("components")
    schemas = components.get("schemas") if isinstance(components, Mapping) else None
    converter = _Converter(schemas if isinstance(schemas, Mapping) else {})
    kinds: dict[GVK, str] = {}
    for full in sorted(converter.schemas):
        raw = converter.schemas[full]
        for entry in (raw.get("x-kubernetes-group-version-kind") or ()
                      if isinstance(raw, Mapping) else ()):
            gvk = GVK(str(entry.get("group", "")), str(entry.get("version", "")),
                      str(entry.get("kind", "")))
            if group_version is None or (gvk.group, gvk.version) == group_version:
                kinds[gvk] = converter.named(full)
    converter.finish()
    return Converted(converter.types, kinds)


def crd_root_name(group: str, version: str, kind: str) -> str:
    """The name the API server gives a CRD's type: the group reversed, then version
    and kind (``example.edict.dev`` v1 WebApp → ``dev.edict.example.v1.WebApp``)."""
    return ".".join([*reversed(group.split(".")), version, kind])


def convert_crd(crd: Mapping[str, Any]) -> Converted:
    """Convert each served version of a CustomResourceDefinition (as a dict).

    A version without a schema maps to ``any``. The roots refer to ``meta.v1.ObjectMeta``,
    which the caller's table must hold (the built-in catalogue does).
    """
    spec = crd.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    names = spec.get("names")
    group = str(spec.get("group") or "")
    kind = str(names.get("kind") or "") if isinstance(names, Mapping) else ""
    converter = _Converter({})
    kinds: dict[GVK, str] = {}
    for version in spec.get("versions") or ():
        if not isinstance(version, Mapping) or version.get("served") is False:
            continue
        gvk = GVK(group, str(version.get("name") or ""), kind)
        schema = version.get("schema")
        root = schema.get("openAPIV3Schema") if isinstance(schema, Mapping) else None
        if not isinstance(root, Mapping):
            kinds[gvk] = ANY
            continue
        node = converter.node(root)
        base: dict[str, Any] = node if isinstance(node, dict) else {}
        out = {**base, "f": {**(base.get("f") or {}), "apiVersion": "string",
                             "kind": "string", "metadata": OBJECT_META}}
        if root.get("x-kubernetes-preserve-unknown-fields") is True:
            out["u"] = True  # kept beside the fields the API server adds
        name = crd_root_name(gvk.group, gvk.version, gvk.kind)
        converter.types[name] = out
        kinds[gvk] = name
    converter.finish()
    return Converted(converter.types, kinds)


class _Converter:
    """One conversion: named types converted once, on first reference."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = schemas
        self.types: dict[str, Any] = {}
        self._refs: dict[str, Any] = {}  # full name → how references to it are written
        self._owners: dict[str, str] = {}  # compact name → full name
        self._busy: set[str] = set()
        self._keyed: list[tuple[dict[str, Any], Mapping[str, Any]]] = []

    # -- named types --------------------------------------------------------------------

    def named(self, full: str) -> Any:
        """How a reference to type `full` is written: its compact name, or the scalar
        (or ``any``) it amounts to."""
        known = self._refs.get(full)
        if known is not None:
            return known
        short = compact_name(full)
        owner = self._owners.setdefault(short, full)
        if owner != full:
            raise ConversionError(f"types {owner} and {full} both shorten to {short}")
        if full in self._busy:  # a type that contains itself: a struct, by name
            return short
        raw = self.schemas.get(full)
        if not isinstance(raw, Mapping):
            return ANY
        self._busy.add(full)
        try:
            if full == QUANTITY:
                node: Any = "quantity"
            elif full == RAW_EXTENSION:
                node = {"m": "atomic"}  # kube-openapi: untyped and atomic
            else:
                node = self.node(raw)
        finally:
            self._busy.discard(full)
        if isinstance(node, str):
            ref = node
        else:
            self.types[short] = node
            ref = short
        self._refs[full] = ref
        return ref

    def ref(self, schema: Any) -> Any:
        """A property, items or additionalProperties schema: a reference or inline."""
        if not isinstance(schema, Mapping):
            return ANY
        target = _ref_target(schema)
        if target is None:
            return self.node(schema)
        ref = self.named(target)
        map_type = schema.get("x-kubernetes-map-type")
        if map_type in ("atomic", "granular"):
            ref = self._with_map_type(ref, map_type == "atomic")
        return ref

    def _with_map_type(self, ref: Any, atomic: bool) -> Any:
        """`ref` as a property marked ``x-kubernetes-map-type`` sees it."""
        if ref == ANY:
            return {"m": "atomic"} if atomic else ANY
        base = self.types.get(ref) if isinstance(ref, str) else ref
        if not isinstance(base, dict) or (base.get("m") == "atomic") == atomic:
            return ref  # a scalar, a type still being converted, or already so
        if atomic:
            return {**base, "m": "atomic"}
        rest = {key: value for key, value in base.items() if key != "m"}
        return rest or ANY

    # -- inline schemas -----------------------------------------------------------------

    def node(self, schema: Mapping[str, Any]) -> Any:
        if _ref_target(schema) is not None:
            return self.ref(schema)
        if schema.get("x-kubernetes-int-or-string") or schema.get("format") == "int-or-string":
            return "int-or-string"
        kind = schema.get("type")
        if kind == "array":
            return self._list(schema)
        if kind in _JSON_SCALARS:
            return kind
        if (kind == "object" or "properties" in schema or "additionalProperties" in schema
                or schema.get("x-kubernetes-embedded-resource")):
            return self._object(schema)
        return _alternatives(schema)

    def _object(self, schema: Mapping[str, Any]) -> Any:
        properties = schema.get("properties")
        fields = {str(name): self.ref(prop) for name, prop in properties.items()} \
            if isinstance(properties, Mapping) else {}
        if schema.get("x-kubernetes-embedded-resource"):
            fields.setdefault("apiVersion", "string")
            fields.setdefault("kind", "string")
            fields.setdefault("metadata", OBJECT_META)
        out: dict[str, Any] = {}
        if fields:
            out["f"] = fields
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            out["v"] = self.ref(extra)
        elif extra is True:
            out["v"] = ANY
        atomic = schema.get("x-kubernetes-map-type") == "atomic"
        if not out:  # free-form: no properties, no additionalProperties
            return {"m": "atomic"} if atomic else ANY
        if schema.get("x-kubernetes-preserve-unknown-fields") is True:
            out["u"] = True
        if atomic:
            out["m"] = "atomic"
        return out

    def _list(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        items = schema.get("items")
        out: dict[str, Any] = {"i": self.ref(items)}
        list_type, keys = _list_type(schema)
        if list_type != "atomic":
            out["l"] = list_type
        if keys:
            out["k"] = keys
            if isinstance(items, Mapping):
                self._keyed.append((out, items))
        return out

    # -- defaults of list-map keys ------------------------------------------------------

    def finish(self) -> None:
        """Record the defaults of list-map key fields (ContainerPort.protocol: TCP): the
        server fills them in before it matches items, so a merge must too."""
        for node, items in self._keyed:
            defaults = self._key_defaults(items, node["k"])
            if not defaults:
                continue
            item = node["i"]
            if isinstance(item, dict):
                node["i"] = _with_defaults(item, defaults)
            elif isinstance(self.types.get(item), dict):
                self.types[item] = _with_defaults(self.types[item], defaults)

    def _key_defaults(self, items: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
        seen: set[str] = set()
        while (target := _ref_target(items)) is not None and target not in seen:
            seen.add(target)
            resolved = self.schemas.get(target)
            if not isinstance(resolved, Mapping):
                return {}
            items = resolved
        properties = items.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {key: properties[key]["default"] for key in keys
                if isinstance(properties.get(key), Mapping) and "default" in properties[key]}


def _ref_target(schema: Mapping[str, Any]) -> str | None:
    """The full type name a ``$ref`` (bare, or the only item of ``allOf``) points at."""
    ref = schema.get("$ref")
    if ref is None:
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            ref = all_of[0].get("$ref")
    if not isinstance(ref, str):
        return None
    return ref[len(REF_PREFIX):] if ref.startswith(REF_PREFIX) else ref.rpartition("/")[2]


def _alternatives(schema: Mapping[str, Any]) -> str:
    """A schema without a type: ``oneOf``/``anyOf`` of scalars, or anything at all."""
    options = [*(schema.get("oneOf") or ()), *(schema.get("anyOf") or ())]
    kinds = {option.get("type") for option in options if isinstance(option, Mapping)}
    if kinds == {"integer", "string"}:
        return "int-or-string"
    if kinds == {"number", "string"}:
        return "quantity"
    return ANY


def _list_type(schema: Mapping[str, Any]) -> tuple[str, list[str]]:
    marker = schema.get("x-kubernetes-list-type")
    if marker is not None:
        if marker == "map":
            keys = schema.get("x-kubernetes-list-map-keys")
            return "map", [str(key) for key in keys] if isinstance(keys, list) else []
        return (marker if marker in ("atomic", "set") else "atomic"), []
    strategy = schema.get("x-kubernetes-patch-strategy")
    if strategy in ("merge", "merge,retainKeys"):
        key = schema.get("x-kubernetes-patch-merge-key")
        return ("map", [key]) if isinstance(key, str) else ("set", [])
    return "atomic", []


def _with_defaults(struct: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(struct.get("f") or {})
    for key, default in defaults.items():
        ref = fields.get(key, ANY)
        if isinstance(ref, str):
            ref = {"s": ref} if ref in SCALARS else {}
        fields[key] = {**ref, "d": default}
    return {**struct, "f": fields}
