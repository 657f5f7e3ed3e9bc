"""Edict's `mutate.template` merge against the API server's server-side apply.

DESIGN.md promises that a template merges onto its target "by the field's own semantics,
as server-side apply defines them". This test holds Edict to that, pair by pair, on the
corpus in ``merge_corpus/`` (see its README): for each (live object, template) pair

1. the live object is created; what the server stored is the merge's target;
2. Edict merges the template onto it, with the schema the catalogue gives for the kind
   (the built-in catalogue, plus ``merge_corpus/crd.yaml``), and the server defaults the
   result (a dry-run update: server-side apply's answer is defaulted too);
3. the template, with apiVersion/kind/name/namespace added, is server-side applied by a
   field manager of its own, with ``force``;
4. both results must be equal, but for what the server alone writes (resourceVersion,
   managedFields, generation, uid, creationTimestamp).

Every pair that differs is reported, with its diff, in one assertion message. A pair
the server rejects is a broken corpus entry and is reported as such.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.errors import Where
from engine.kube import Cluster
from engine.kube.errors import ApiError, NotFound
from engine.kube.transport import Transport
from engine.objects import GVK, Obj, gvk_of
from engine.patching import merge
from engine.schemas.catalogue import Catalogue, builtin
from tests.support import eventually

pytestmark = pytest.mark.cluster

CORPUS = Path(__file__).parent / "merge_corpus"
NAMESPACE = GVK("", "v1", "Namespace")
CRD_GVK = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
APPLY_PATCH = "application/apply-patch+yaml"
SERVER_WRITTEN = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")


@dataclass(frozen=True)
class Pair:
    name: str
    source: str
    live: Obj
    template: Obj


def load_pairs() -> list[Pair]:
    pairs = []
    for path in sorted(CORPUS.glob("*.yaml")):
        if path.name == "crd.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            pairs.append(Pair(document["name"], path.name, document["live"],
                              document["template"]))
    return pairs


def substitute(value: Any, placeholders: dict[str, str]) -> Any:
    """`value` with every string equal to a placeholder (``$NAMESPACE_UID``…) replaced."""
    if isinstance(value, dict):
        return {key: substitute(item, placeholders) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, placeholders) for item in value]
    return placeholders.get(value, value) if isinstance(value, str) else value


def crd() -> Obj:
    loaded: Obj = yaml.safe_load((CORPUS / "crd.yaml").read_text())
    return loaded


def test_the_corpus_is_well_formed() -> None:
    pairs = load_pairs()
    names = [pair.name for pair in pairs]
    assert len(pairs) >= 40
    assert len(set(names)) == len(names), "pair names must be unique (they name objects)"
    for pair in pairs:
        assert set(pair.template) <= {"metadata", "spec", "data", "subjects", "rules",
                                      "imagePullSecrets"}, pair.name
        assert "name" not in pair.live.get("metadata", {}), pair.name


@pytest.fixture(scope="module")
def gadgets(admin: Cluster) -> Iterator[Obj]:
    definition = crd()
    try:
        admin.create(definition)
    except ApiError as error:
        if error.status != 409:
            raise

    def established() -> bool:
        got = admin.get(CRD_GVK, None, definition["metadata"]["name"])
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in (got.get("status") or {}).get("conditions") or ())

    eventually(established, what="the Gadget CRD to be established")
    yield definition
    with contextlib.suppress(NotFound):
        admin.delete(CRD_GVK, None, definition["metadata"]["name"])


def without_server_fields(obj: Obj) -> Obj:
    clean = copy.deepcopy(obj)
    metadata = clean.get("metadata", {})
    for key in SERVER_WRITTEN:
        metadata.pop(key, None)
    return clean


def as_yaml(obj: Obj) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines()


class Differential:
    """Runs pairs against one cluster and one namespace; collects what differs."""

    def __init__(self, cluster: Cluster, transport: Transport, namespace: str,
                 catalogue: Catalogue) -> None:
        self.cluster = cluster
        self.transport = transport
        self.namespace = namespace
        self.catalogue = catalogue
        self.placeholders = {
            "$NAMESPACE": namespace,
            "$NAMESPACE_UID": cluster.get(NAMESPACE, None, namespace)["metadata"]["uid"],
            "$DEFAULT_UID": cluster.get(NAMESPACE, None, "default")["metadata"]["uid"],
        }

    def check(self, pair: Pair) -> str | None:
        """None when Edict and the server agree; otherwise what differs."""
        gvk = gvk_of(pair.live)
        live = substitute(pair.live, self.placeholders)
        template = substitute(pair.template, self.placeholders)
        live["metadata"] = {**live.get("metadata", {}), "name": pair.name,
                            "namespace": self.namespace}
        try:
            stored = self.cluster.create(live)
        except ApiError as error:
            return f"the server rejected the live object (a corpus error): {error}"
        path = self.cluster.resource_for(gvk).path(namespace=self.namespace, name=pair.name)
        edict = self.edict(stored, template, gvk, path)
        applied = {**copy.deepcopy(template), "apiVersion": gvk.api_version,
                   "kind": gvk.kind}
        applied["metadata"] = {**applied.get("metadata", {}), "name": pair.name,
                               "namespace": self.namespace}
        try:
            server = self.transport.request(
                "PATCH", path, body=applied, content_type=APPLY_PATCH,
                query=[("fieldManager", f"pair-{uuid.uuid4().hex[:8]}"), ("force", "true")])
        except ApiError as error:
            return f"server-side apply rejected the template (a corpus error): {error}"
        if isinstance(edict, str):
            return edict
        expected, got = without_server_fields(server), without_server_fields(edict)
        if expected == got:
            return None
        diff = difflib.unified_diff(as_yaml(expected), as_yaml(got), "server-side apply",
                                    "edict merge", lineterm="", n=4)
        return "results differ:\n" + "\n".join(diff)

    def edict(self, stored: Obj, template: Obj, gvk: GVK, path: str) -> Obj | str:
        """Edict's result, defaulted by the server (or what went wrong)."""
        try:
            merged, _ = merge(stored, copy.deepcopy(template), where=Where(),
                              schema=self.catalogue.for_kind(gvk))
        except Exception as error:  # every pair is reported, whatever breaks
            return f"merge raised {type(error).__name__}: {error}"
        try:
            defaulted: Obj = self.transport.request("PUT", path, body=merged,
                                                    query=[("dryRun", "All")])
        except ApiError as error:
            return f"the server rejects Edict's result: {error}\n" + "\n".join(as_yaml(merged))
        return defaulted


def test_merge_matches_server_side_apply(admin: Cluster, kubeconfig: str, namespace: str,
                                         gadgets: Obj) -> None:
    pairs = load_pairs()
    transport = Transport.connect(kubeconfig)
    try:
        differential = Differential(admin, transport, namespace,
                                    builtin().with_crds([gadgets]))
        failures = [(pair, problem) for pair in pairs
                    if (problem := differential.check(pair)) is not None]
    finally:
        transport.close()
    report = "\n\n".join(f"--- {pair.name} ({pair.source}): {problem}"
                         for pair, problem in failures)
    assert not failures, (
        f"{len(failures)} of {len(pairs)} pairs differ from server-side apply "
        f"({', '.join(pair.name for pair, _ in failures)}):\n\n{report}")
