"""What a cluster serves, for `edict lint --kubeconfig`: its kinds, scopes and schemas.

Imported by name from `engine.cli.lint` only when --kubeconfig is given, so lint itself
never loads the Kubernetes client.
"""

from __future__ import annotations

from engine.cli.served import catalogue as served_catalogue
from engine.cli.served import connect
from engine.schemas.catalogue import Catalogue


def catalogue(kubeconfig: str) -> Catalogue:
    cluster = connect(kubeconfig)
    try:
        return served_catalogue(cluster)
    finally:
        cluster.close()
