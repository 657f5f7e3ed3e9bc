"""The CustomResourceDefinitions of `spec.api`: installed, kept up to date, and deleted
only as the rule set says.

The manager calls `ApiInstaller.sync` after every recompile (leader only) with the rule
sets it compiled and every rule set present, and `retry` every second or so (cheap:
it only looks again, every `retry_every` seconds, while a CRD waits for its last
object to go):

- **install and update.** The CRD of each ClusterRuleSet with an `api`
  (`engine.rules.api.crd_of`: labelled `edict.dev/api-of: <rule set>`) is created, or
  replaced (`/spec`, guarded by resourceVersion) when the hash of what the rule set
  says (annotation `edict.dev/api-hash`) changed — the server's defaults never cause a
  write. Then the installer waits (bounded) until the API server says Established, so
  the recompile that follows finds the kind. A CRD of that name that is not the rule
  set's is never adopted; a second rule set declaring the same CRD is refused. Failures
  (RBAC, a change the server refuses) are reported on the rule set (Degraded), as a
  refused write is.
- **delete.** A CRD labelled as Edict's whose rule set is gone, or no longer declares
  it, goes as its `edict.dev/on-delete` annotation says: `WhenEmpty` (default) once no
  object of the kind is left (checked at each sync, and by `retry`), `Delete` at once (its
  objects with it), `Keep` never. A rule set that is present but does not load (a bad
  edit) keeps its CRD: only absence counts. The CRD carries no ownerReference, so
  deleting a rule set never cascades to its users' objects through the garbage
  collector.

`sync` returns True when it created or changed a CRD: the manager compiles again, so
rules naming the new kind start at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from engine.kube.client import Cluster
from engine.kube.errors import AlreadyExists, ApiError, NotFound
from engine.objects import GVK, ObjectKey, meta
from engine.rules.api import API_OF_LABEL, ON_DELETE_ANNOTATION, crd_of
from engine.rules.model import CLUSTER_RULE_SET, RuleSet, RuleSetRef

from ..status import StatusBoard

log = logging.getLogger(__name__)

CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
HASH_ANNOTATION = "edict.dev/api-hash"
ESTABLISH_TIMEOUT = 15.0  # seconds to wait for the API server to serve a new kind
RETRY_EVERY = 5.0  # seconds between looks at CRDs waiting for their last object to go


class ApiInstaller:
    """Owns the CRDs Edict installs for rule sets (one per manager, leader only)."""

    def __init__(self, cluster: Cluster, *, board: StatusBoard,
                 wait: Callable[[float], bool], clock: Callable[[], float],
                 establish_timeout: float = ESTABLISH_TIMEOUT,
                 retry_every: float = RETRY_EVERY) -> None:
        self._cluster = cluster
        self._board = board
        self._wait = wait  # sleeps up to N seconds; True when the engine is stopping
        self._clock = clock
        self._establish_timeout = establish_timeout
        self._retry_every = retry_every
        self._waiting: set[str] = set()  # CRDs kept until their last object goes
        self._last_sweep = 0.0
        self._present: frozenset[str] = frozenset()  # ClusterRuleSets that exist
        self._loaded: frozenset[str] = frozenset()  # ...and loaded (compiled)
        self._declared: dict[str, str] = {}  # CRD name -> rule set declaring it

    def sync(self, rule_sets: Mapping[RuleSetRef, RuleSet], *,
             present: Collection[RuleSetRef]) -> bool:
        """Install or update the rule sets' CRDs, delete those no rule set wants; whether
        a CRD was created or changed."""
        self._present = frozenset(r.name for r in present if r.kind == CLUSTER_RULE_SET)
        self._loaded = frozenset(r.name for r in rule_sets if r.kind == CLUSTER_RULE_SET)
        changed = False
        declared: dict[str, str] = {}
        for ref in sorted(rule_sets):
            rule_set = rule_sets[ref]
            crd = crd_of(rule_set)
            if crd is None or ref.kind != CLUSTER_RULE_SET:
                continue
            name = str(crd["metadata"]["name"])
            key = ObjectKey(CRD, "", name)
            if name in declared:
                self._board.write_failed(key, ref, f"CustomResourceDefinition {name} is "
                                         f"already the api of ClusterRuleSet "
                                         f"{declared[name]}; one rule set per API")
                continue
            declared[name] = ref.name
            try:
                changed = self._install(crd, ref) or changed
            except ApiError as error:
                log.warning("installing the api of %s: %s", ref, error)
                self._board.write_failed(key, ref, f"install {name}: {error}")
            else:
                self._board.write_succeeded(key, ref)
        self._declared = declared
        self.sweep()
        return changed

    def retry(self) -> None:
        """Sweep again if a CRD waits for its last object and it is time to look."""
        if self._waiting and self._clock() - self._last_sweep >= self._retry_every:
            self.sweep()

    def sweep(self) -> None:
        """Delete the CRDs of rule sets that are gone, as their `onDelete` says."""
        self._last_sweep = self._clock()
        waited, self._waiting = self._waiting, set()
        try:
            ours, _ = self._cluster.list(CRD, label_selector=API_OF_LABEL)
        except ApiError as error:
            log.warning("listing Edict's CustomResourceDefinitions: %s", error)
            return
        for crd in ours:
            name = str(meta(crd).get("name"))
            owner = str((meta(crd).get("labels") or {}).get(API_OF_LABEL) or "")
            if self._declared.get(name) == owner or (
                    owner in self._present and owner not in self._loaded):
                continue  # still wanted, or its rule set does not load: nothing is known
            try:
                self._retire(crd, name, owner, said=name in waited)
            except ApiError as error:
                log.warning("deleting CustomResourceDefinition %s: %s", name, error)

    def _install(self, crd: dict[str, Any], ref: RuleSetRef) -> bool:
        name = str(crd["metadata"]["name"])
        digest = hashlib.sha256(json.dumps(crd, sort_keys=True).encode()).hexdigest()[:16]
        crd["metadata"]["annotations"][HASH_ANNOTATION] = digest
        try:
            existing = self._cluster.get(CRD, None, name)
        except NotFound:
            existing = None
        if existing is None:
            try:
                self._cluster.create(crd)
            except AlreadyExists:
                return True  # made meanwhile: the next sync looks at it
            log.info("installed CustomResourceDefinition %s for %s", name, ref)
        else:
            labels = meta(existing).get("labels") or {}
            if labels.get(API_OF_LABEL) != ref.name:
                raise ApiError(f"CustomResourceDefinition {name} exists and is not "
                               f"{ref}'s (label {API_OF_LABEL}); Edict does not adopt it: "
                               "delete it, or label it as this rule set's")
            annotations = meta(existing).get("annotations") or {}
            if annotations.get(HASH_ANNOTATION) == digest:
                return False
            self._cluster.patch_json(CRD, None, name, [
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": meta(existing).get("resourceVersion")},
                {"op": "replace", "path": "/spec", "value": crd["spec"]},
                {"op": "replace", "path": "/metadata/labels",
                 "value": {**labels, **crd["metadata"]["labels"]}},
                {"op": "replace", "path": "/metadata/annotations",
                 "value": {**annotations, **crd["metadata"]["annotations"]}},
            ])
            log.info("updated CustomResourceDefinition %s for %s", name, ref)
        self._await_established(name)
        return True

    def _await_established(self, name: str) -> None:
        deadline = self._clock() + self._establish_timeout
        while self._clock() < deadline:
            crd = self._cluster.get(CRD, None, name)
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in (crd.get("status") or {}).get("conditions") or ()):
                return
            if self._wait(0.1):
                return
        log.warning("CustomResourceDefinition %s not Established after %gs; rules naming "
                    "its kind wait for it", name, self._establish_timeout)

    def _retire(self, crd: dict[str, Any], name: str, owner: str, *, said: bool) -> None:
        policy = str((meta(crd).get("annotations") or {}).get(ON_DELETE_ANNOTATION)
                     or "WhenEmpty")
        if policy == "Keep":
            return
        if policy != "Delete" and self._has_objects(crd):
            if not said:
                log.info("keeping CustomResourceDefinition %s (api of the gone rule set "
                         "%s) until no object of it is left", name, owner)
            self._waiting.add(name)
            return
        self._cluster.delete(CRD, None, name, uid=str(meta(crd).get("uid") or "") or None)
        log.info("deleted CustomResourceDefinition %s (api of the gone rule set %s)", name,
                 owner)

    def _has_objects(self, crd: dict[str, Any]) -> bool:
        spec = crd.get("spec") or {}
        versions = [v for v in spec.get("versions") or () if v.get("served")]
        if not versions:
            return False
        gvk = GVK(str(spec.get("group")), str(versions[0]["name"]),
                  str((spec.get("names") or {}).get("kind")))
        items, _ = self._cluster.list(gvk, limit=1)
        return bool(items)
