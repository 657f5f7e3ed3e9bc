"""`generate.clone`: a child that is a copy of a source object, the template merged over it.

`engine.evaluate.compile` asks `generated_kinds` for the kind a clone rule generates;
`engine.evaluate.run.run_generate` calls `child` for each rendering. The source itself is
looked up like a `context` entry (`Rule.lookups`, under `CLONE_ALIAS`): the same templated
namespace and name, the same confinement of a namespaced RuleSet to its own namespace,
and the same dependency record, so the live engine watches the source's kind and
re-evaluates the triggers that clone an object whenever that object changes.

What is copied (the decision, written down):

- every top-level field but `metadata` and `status` (`data`, `stringData`, `type`,
  `binaryData`, `spec`, `immutable`, ...): the child is owned exactly, so a key removed
  from the source is removed from the copies (`edict.dev/owned-fields`);
- of `metadata`, only `labels` and `annotations`, without Edict's own bookkeeping (the
  labels and annotations that name a rule set, rule and trigger, the owned-fields
  record), without `app.kubernetes.io/managed-by` (the copy is Edict's) and without
  `kubectl.kubernetes.io/last-applied-configuration` (it describes the source);
- never the source's identity or lifecycle: name, namespace, uid, resourceVersion,
  generation, creationTimestamp, ownerReferences, finalizers, managedFields.

The copy keeps the source's name unless the template names the child; its namespace is
the template's, else the trigger's (as for any generated object). The template is merged
over the copy by each field's own semantics (`engine.patching.merge`, list markers
included), then the child is stamped with the usual ownership. A source that does not
exist is missing data: the rule is skipped, and with `synchronize: true` the copies it
made are pruned, as for any rule that stops producing its children.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.errors import CelMissingData, CompileError, MergeError, Where
from engine.objects import GVK, Obj, meta
from engine.patching import merge
from engine.rules.model import CLONE_ALIAS, Generate
from engine.schemas import Node

NOT_COPIED_LABELS = frozenset({
    "app.kubernetes.io/managed-by", "edict.dev/rule-set", "edict.dev/rule-set-namespace",
    "edict.dev/rule", "edict.dev/trigger-uid"})
NOT_COPIED_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", "edict.dev/trigger",
    "edict.dev/owned-fields"})
NOT_COPIED_FIELDS = frozenset({"metadata", "status"})


def generated_kinds(action: Generate, *, where: Where) -> tuple[GVK, ...]:
    """The one kind a clone rule generates: its source's. A template merged over the copy
    renders one object (not a list) and may not name another kind."""
    assert action.clone is not None
    gvk = action.clone.gvk
    template = action.template
    if template is None:
        return (gvk,)
    if not isinstance(template, dict):
        raise CompileError("with clone, the template is one partial object merged over "
                           "the copy (a mapping), not a list", where=where)
    for field, wanted in (("apiVersion", gvk.api_version), ("kind", gvk.kind)):
        if field in template and template[field] != wanted:
            raise CompileError(f"the template's {field} {template[field]!r} is not the clone "
                               f"source's {wanted!r}: a copy keeps its kind", where=where)
    return (gvk,)


def copy_of(source: Obj) -> dict[str, Any]:
    """What of `source` a child copies (see the module docstring), with its name."""
    out: dict[str, Any] = {key: copy.deepcopy(value) for key, value in source.items()
                           if key not in NOT_COPIED_FIELDS}
    metadata: dict[str, Any] = {"name": meta(source).get("name")}
    for field, dropped in (("labels", NOT_COPIED_LABELS),
                           ("annotations", NOT_COPIED_ANNOTATIONS)):
        values = meta(source).get(field)
        kept = {k: v for k, v in values.items() if k not in dropped} if isinstance(
            values, dict) else {}
        if kept:
            metadata[field] = kept
    out["metadata"] = metadata
    return out


def child(rendered: Any, *, values: dict[str, Any], schema: Node | None, where: Where
          ) -> Obj:
    """The copy of the clone source (looked up into `values`), `rendered` merged over it.

    Raises `CelMissingData` when the source does not exist (the rule is skipped) and
    `MergeError` when the rendering cannot be merged over the copy."""
    source = values["context"].get(CLONE_ALIAS)
    if source is None:
        raise CelMissingData("the object generate.clone names does not exist (yet)",
                             where=where)
    if not isinstance(rendered, dict):
        raise MergeError(f"with clone, the template must render to a mapping, not "
                         f"{type(rendered).__name__}", where=where)
    merged: Obj = merge(copy_of(source), rendered, where=where, schema=schema)[0]
    return merged
