"""What a rule may not change about its trigger, and what a generated object must be named.

Pure checks, called from the evaluator at two points (each one call):

- `check_trigger_identity` after a mutate or status rule computed its version of the
  trigger and before its assignments are recorded (`evaluate.run.run_rule`): a rule may
  not change ``apiVersion``, ``kind``, ``metadata.name``, ``metadata.namespace`` or
  ``metadata.uid`` of its trigger, nor remove ``metadata``. Such a change would make the
  patch address another object (or none): instead of an endless "still changed after
  five rounds", it is an error of that rule, naming the field, and the trigger is left
  as the rule found it;
- `check_child_name` when a generated object is stamped (`evaluate.children.stamp`):
  its name and namespace must be what the API server would accept, checked before
  anything is written (so ``UPPER_and spaces/..`` or ``42`` never reach a URL path).

Names follow Kubernetes' validation (`engine.rules.names`): a DNS-1123 subdomain for
most kinds (at most 253 characters of ``a-z0-9.-``, starting and ending alphanumeric),
a DNS-1123 label for Namespaces and Services and for every namespace (63 characters of
``a-z0-9-``), and for the RBAC kinds only the path-segment rules, which every name must
pass anyway (not ``.`` or ``..``, no ``/`` or ``%``). Errors are `MergeError` with the
rule's `Where`.
"""

from __future__ import annotations

from typing import Any, Final

from engine.errors import MergeError, Where
from engine.objects import Obj
from engine.rules.model import Action, Mutate, StatusAction
from engine.rules.names import name_problem, object_name_problem

IDENTITY_FIELDS: Final = ("apiVersion", "kind", "metadata.name", "metadata.namespace",
                          "metadata.uid")


def field_of(action: Action) -> str:
    """The field of a rule whose result the identity check is about."""
    if isinstance(action, Mutate):
        return "mutate.jsonPatch" if action.json_patch is not None else "mutate.template"
    return "status.template" if isinstance(action, StatusAction) else "generate.template"


def check_trigger_identity(before: Obj, after: Obj, *, action: Action, where: Where) -> None:
    """Raise `MergeError` (naming `where` and the rule's field) when `after`, what the
    rule's `action` made of its trigger, is not the same object as `before`."""
    if after is before:
        return
    where = where.with_field(field_of(action))
    if not isinstance(after.get("metadata"), dict):
        raise MergeError("the rule removes metadata from its trigger; a rule may not "
                         "change which object it acts on", where=where)
    for field in IDENTITY_FIELDS:
        old, new = _read(before, field), _read(after, field)
        if old != new:
            raise MergeError(f"the rule changes {field} of its trigger from {_show(old)} to "
                             f"{_show(new)}; a rule may not change apiVersion, kind, "
                             "metadata.name, metadata.namespace or metadata.uid (generate "
                             "another object instead)", where=where)


def check_child_name(child: Obj, *, where: Where) -> None:
    """Raise `MergeError` unless the generated `child`'s name and namespace (already
    defaulted) are what the API server accepts for its kind."""
    metadata = child.get("metadata")
    if not isinstance(metadata, dict):
        raise MergeError("a generated object needs metadata with a name", where=where)
    kind = child.get("kind")
    what = f"generated {kind}" if isinstance(kind, str) else "generated object"
    name = metadata.get("name")
    problem = object_name_problem(child.get("apiVersion"), kind, name)
    if problem:
        raise MergeError(f"the {what}'s metadata.name {_show(name)} {problem}", where=where)
    if "namespace" in metadata:
        namespace = metadata["namespace"]
        problem = name_problem(namespace, label=True)
        if problem:
            raise MergeError(f"the {what}'s metadata.namespace {_show(namespace)} {problem}",
                             where=where)


def _read(obj: Obj, field: str) -> Any:
    value: Any = obj
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"
