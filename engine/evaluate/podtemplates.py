"""Pod rules on the pod templates of workloads (`match.podTemplates: true`).

A rule that matches v1 Pods and sets `podTemplates: true` also runs on Deployments,
StatefulSets, DaemonSets, ReplicaSets, Jobs (``spec.template``) and CronJobs
(``spec.jobTemplate.spec.template``), offline, live and at admission, so one policy is
written once and workloads are right before their Pods exist. On a workload the rule
sees the template as the Pod it will become (`view`):

    apiVersion: v1
    kind: Pod
    metadata: <the template's metadata>, with the workload's name and namespace
    spec: <the template's spec>

`match` is checked against that Pod (its labels are the template's, `names` globs see
the workload's name), and `oldObject` at admission is the old template seen the same
way. Writes go back to the template (`put_back`): the Pod's metadata (less the name and
namespace, which are the workload's) and spec, at the template's own paths, so a
conflict with a rule written for the workload itself is found on the real path. A rule
that changes the Pod's apiVersion, kind, name or namespace, or writes beside metadata
and spec (a status), fails on that workload. `Engine` calls these through
`engine.evaluate.run`; the kinds and paths are `engine.rules.model.POD_TEMPLATES`.
"""

from __future__ import annotations

from typing import Any

from engine.errors import MergeError, Where
from engine.objects import Obj, name_of, namespace_of

IDENTITY = ("name", "namespace")
POD_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec"})


def _get(obj: Obj, path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def view(obj: Obj, path: tuple[str, ...]) -> Obj:
    """The template at `path` of workload `obj`, as a Pod (shares its values: read-only)."""
    template = _get(obj, path)
    template = template if isinstance(template, dict) else {}
    metadata = {k: v for k, v in (template.get("metadata") or {}).items()
                if k not in IDENTITY}
    metadata["name"] = name_of(obj)
    if namespace_of(obj):
        metadata["namespace"] = namespace_of(obj)
    pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata}
    if "spec" in template:
        pod["spec"] = template["spec"]
    return pod


def put_back(obj: Obj, path: tuple[str, ...], before: Obj, after: Obj, *, where: Where) -> Obj:
    """`obj` with the template at `path` changed as the Pod `before` became `after`."""
    moved = [f for f in ("apiVersion", "kind") if after.get(f) != before.get(f)]
    found = after.get("metadata")
    after_meta: dict[str, Any] = found if isinstance(found, dict) else {}
    moved += [f"metadata.{f}" for f in IDENTITY
              if after_meta.get(f) != before["metadata"].get(f)]
    moved += sorted(set(after) - POD_FIELDS)
    if moved:
        raise MergeError(f"on the pod template of {obj.get('kind')} {name_of(obj)} the rule "
                         f"changes {', '.join(moved)}: a template holds only the Pod's "
                         "metadata (without name and namespace, which are the workload's) "
                         "and spec", where=where)
    template = _get(obj, path)
    template = dict(template) if isinstance(template, dict) else {}
    metadata = {k: v for k, v in after_meta.items() if k not in IDENTITY}
    mine = template.get("metadata")
    own: dict[str, Any] = mine if isinstance(mine, dict) else {}
    metadata.update({k: own[k] for k in IDENTITY if k in own})
    if metadata or "metadata" in template:
        template["metadata"] = metadata
    if "spec" in after:
        template["spec"] = after["spec"]
    else:
        template.pop("spec", None)
    return _set(obj, path, template)


def _set(obj: Obj, path: tuple[str, ...], value: Any) -> Obj:
    """A copy of `obj` with `value` at `path`, copying only the maps along the way."""
    if not path:
        return value if isinstance(value, dict) else obj
    head, rest = path[0], path[1:]
    child = obj.get(head)
    return {**obj, head: _set(child if isinstance(child, dict) else {}, rest, value)
            if rest else value}
