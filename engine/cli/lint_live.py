"""What a cluster serves, for `edict lint --kubeconfig`: its kinds, scopes and schemas.

Read-only (discovery, `/openapi/v3`, the list of CRDs) through `engine.kube`. Imported
by name from `engine.cli.lint` only when --kubeconfig is given, so lint itself never
loads the Kubernetes client.
"""

from __future__ import annotations

from engine.cli.common import UsageError
from engine.kube.client import Cluster
from engine.kube.errors import ApiError
from engine.kube.openapi import builtin_catalogue_document
from engine.objects import GVK
from engine.schemas.catalogue import Catalogue

CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")


def catalogue(kubeconfig: str) -> Catalogue:
    try:
        cluster = Cluster.connect(kubeconfig)
    except (ApiError, OSError, ValueError) as exc:
        raise UsageError(f"cannot connect to the cluster: {exc}") from exc
    except Exception as exc:  # the client's config loader raises its own types
        raise UsageError(f"cannot load a kubeconfig: {exc}") from exc
    try:
        served = Catalogue.from_document(builtin_catalogue_document(cluster))
        crds, _ = cluster.list(CRD)
    except ApiError as exc:
        raise UsageError(f"cannot read what the cluster serves: {exc}") from exc
    finally:
        cluster.close()
    return served.with_crds(crds)
