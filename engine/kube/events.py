"""Kubernetes Events about triggers: what a rule changed, or why it could not.

`Cluster.create_event` posts the body `event_for` builds. We write **core/v1 Events**
(not events.k8s.io/v1): both APIs store the same objects, `kubectl describe` and
`kubectl get events` show them either way, and core/v1 accepts the plain
`involvedObject` + `reason` + `message` shape with no series bookkeeping. Fields of the
newer API that tools read are still filled: `reportingComponent` (`edict.dev/engine`,
events.k8s.io's `reportingController`), `reportingInstance`, `action`, `eventTime`.

Events are not aggregated here (no count increments): callers emit one when something
happened (a patch written, a rule failing anew), never at steady state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from engine.objects import Obj, meta

REPORTING_CONTROLLER = "edict.dev/engine"
SOURCE_COMPONENT = "edict"

_MESSAGE_LIMIT = 1024  # the API server rejects longer event messages


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


def micro_time(when: datetime) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with microseconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(when: datetime) -> str:
    """metav1.Time: RFC 3339 in UTC, whole seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_for(involved: Obj, *, reason: str, message: str, type: EventType,
              when: datetime, action: str = "", instance: str = "") -> Obj:
    """A core/v1 Event about `involved` (a trigger), in its namespace.

    Events about cluster-scoped objects go to the `default` namespace, as client-go's
    recorder puts them.
    """
    m = meta(involved)
    namespace = str(m.get("namespace") or "default")
    name = str(m.get("name") or "unknown")
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 3] + "..."
    reference = {
        "apiVersion": involved.get("apiVersion", ""),
        "kind": involved.get("kind", ""),
        "name": name,
        "uid": m.get("uid", ""),
        "resourceVersion": m.get("resourceVersion", ""),
    }
    if m.get("namespace"):
        reference["namespace"] = m["namespace"]
    stamp = int(when.timestamp() * 1e9)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{stamp:x}", "namespace": namespace},
        "involvedObject": reference,
        "reason": reason,
        "message": message,
        "type": type.value,
        "action": action or reason,
        "source": {"component": SOURCE_COMPONENT},
        "reportingComponent": REPORTING_CONTROLLER,
        "reportingInstance": instance or SOURCE_COMPONENT,
        "firstTimestamp": rfc3339(when),
        "lastTimestamp": rfc3339(when),
        "eventTime": micro_time(when),
        "count": 1,
    }
