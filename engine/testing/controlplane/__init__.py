"""A real Kubernetes control plane for Edict's tests, built from Go modules.

``build`` compiles kube-apiserver, kube-controller-manager and etcd once into a cache
outside the checkout; ``ControlPlane`` starts them on loopback with generated
certificates, the way controller-runtime's envtest does, without Docker.

Used by ``engine.testing.pytest_plugin`` and by ``python -m engine.testing.controlplane``
(see ``docs/control-plane.md``). Imports nothing else of ``engine`` and never the
kubernetes client.
"""

from .build import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    BuildError,
    bin_dir,
    build_binaries,
    missing_binaries,
)
from .plane import ControlPlane, ControlPlaneError
from .processes import StartError

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "BuildError",
    "ControlPlane",
    "ControlPlaneError",
    "StartError",
    "bin_dir",
    "build_binaries",
    "missing_binaries",
]
