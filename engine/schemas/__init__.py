"""Schemas of kinds, reduced to what merging and linting need: field names and the
list/map markers of server-side apply.

`model` holds the lazily-built `Node` tree; `openapi` converts OpenAPI v3 documents
(the cluster's ``/openapi/v3``) and CRD ``openAPIV3Schema``s to it; `catalogue` serves
the shipped catalogue of the built-in kinds (``builtin.json``, written by `generate`)
plus CRDs. The evaluator merges by these
nodes, offline and live alike, so both give one result.
"""

from engine.schemas.model import ANY, NO_DEFAULT, SCALARS, Node, SchemaSource, Table

__all__ = ["ANY", "NO_DEFAULT", "SCALARS", "Node", "SchemaSource", "Table"]
