"""The `request` variable: who asks the API server for what, when a rule runs at admission.

Edict's admission webhooks (`engine.runtime.admission`) build one `Request` from each
AdmissionReview and pass it to `Engine.evaluate`, which then runs only the rules that
take part in admission (`Rule.at_admission`) for the webhook's `Phase`:

- `Phase.MUTATE` (the mutating webhook): the mutate rules of Enforce rule sets, to the
  same fixed point as in the background; the webhook answers with the patch.
- `Phase.VALIDATE` (the validating webhook, after every mutation): validate rules of
  Enforce and Audit rule sets, and the mutate rules of Audit rule sets, whose would-be
  changes become warnings.

Conditions, templates and validations read it as ``request``: ``operation``,
``userInfo`` (``username``, ``uid``, ``groups``), ``dryRun``, ``subResource``,
``oldObject`` (UPDATE; also the ``oldObject`` variable), ``name`` and ``namespace``. In
the background there is no request: ``request`` is null. A rule that reads it without a
guard (``request != null && …``) is then skipped, never an error (`admission_only`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.objects import Obj

ADMISSION_ONLY = "reads `request`, which is null outside admission (admission only)"


class Phase(StrEnum):
    MUTATE = "mutate"
    VALIDATE = "validate"


@dataclass(frozen=True)
class Request:
    phase: Phase
    operation: str  # CREATE | UPDATE
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    dry_run: bool = False
    sub_resource: str = ""
    name: str = ""
    namespace: str = ""
    old_object: Obj | None = None

    @functools.cached_property
    def variable(self) -> dict[str, Any]:
        """What rules see as ``request`` (built once, shared by every rule)."""
        return {
            "operation": self.operation,
            "userInfo": {"username": self.username, "uid": self.uid,
                         "groups": list(self.groups)},
            "dryRun": self.dry_run,
            "subResource": self.sub_resource,
            "name": self.name,
            "namespace": self.namespace,
            "oldObject": self.old_object,
        }
