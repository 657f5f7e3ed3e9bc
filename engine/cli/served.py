"""What a cluster serves: its kinds, their scopes and schemas, as one `Catalogue`.

`edict plan` merges by it (as the live engine merges by the cluster's own schemas) and
`edict lint --kubeconfig` checks kinds and fields against it. Read with discovery-level
access only, which every authenticated user has: the `/openapi/v3` index and the
documents of the group-versions wanted (CRDs' included), and each group-version's
resource list for the scopes. Only the live commands import this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from engine.cli.common import UsageError
from engine.kube.client import Cluster
from engine.kube.discovery import group_version_path, parse_resource_list
from engine.kube.errors import ApiError
from engine.kube.openapi import INDEX_PATH, parse_index
from engine.objects import GVK
from engine.schemas.catalogue import Catalogue
from engine.schemas.generate import catalogue_document
from engine.schemas.openapi import ConversionError

GroupVersion = tuple[str, str]


def connect(kubeconfig: str | None) -> Cluster:
    try:
        return Cluster.connect(kubeconfig)
    except (ApiError, OSError, ValueError) as exc:
        raise UsageError(f"cannot connect to the cluster: {exc}") from exc
    except Exception as exc:  # the client's config loader raises its own types
        raise UsageError(f"cannot load a kubeconfig: {exc}") from exc


def catalogue(cluster: Cluster, kinds: Iterable[GVK] | None = None) -> Catalogue:
    """The kinds the cluster serves in the group-versions of `kinds` (all: None)."""
    try:
        index = parse_index(cluster.get_path(INDEX_PATH))
        wanted = sorted(index if kinds is None else
                        {(k.group, k.version) for k in kinds} & index.keys())
        documents: dict[GroupVersion, Any] = {}
        scopes: dict[GroupVersion, dict[str, bool]] = {}
        for group, version in wanted:
            parts = urlsplit(index[group, version])
            documents[group, version] = cluster.get_path(parts.path,
                                                         query=parse_qsl(parts.query))
            probe = GVK(group, version, "")
            listed = parse_resource_list(probe, cluster.get_path(group_version_path(probe)))
            scopes[group, version] = {kind: r.namespaced for kind, r in listed.items()}
        served = cluster.get_path("/version") or {}
        return Catalogue.from_document(catalogue_document(
            documents, scopes, kubernetes=str(served.get("gitVersion") or "")))
    except ApiError as exc:
        raise UsageError(f"cannot read what the cluster serves (/openapi/v3, discovery): "
                         f"{exc}") from exc
    except ConversionError as exc:
        raise UsageError(f"cannot read the cluster's schemas: {exc}") from exc
