"""How to start each control-plane component and tell when it is ready.

etcd, then kube-apiserver with envtest's flags (plus the two a loopback-only machine
needs: ``--advertise-address`` and ``--endpoint-reconciler-type=none``), then
kube-controller-manager running only the garbage collector and the namespace
controller. Every start picks fresh loopback ports and is retried when it loses a
port race; callers may add flags of their own (``extra_args``: a later flag wins).
Timeouts are generous: the apiserver takes tens of seconds on 2 cores. A ``Running``
keeps its command line and readiness check, so a component can be started again on
the same ports (:meth:`.plane.ControlPlane.restart`).

Called by :class:`.plane.ControlPlane`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .certs import KeyPair
from .kubeconfig import get_status, tls_context
from .processes import PortRaceError, free_port, spawn, stop, wait_ready

PORT_ATTEMPTS = 4
SERVICE_CIDR = "10.0.0.0/24"
KCM_CONTROLLERS = "garbage-collector-controller,namespace-controller"


@dataclass(frozen=True)
class Running:
    """A started component: its process, the port clients use, how long readiness took,
    and what it takes to start it again the same way."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    ready_after: float
    argv: tuple[str, ...]
    ready: Callable[[], bool]
    timeout: float


@dataclass(frozen=True)
class Pki:
    """Files under ``<run dir>/pki`` that the apiserver reads."""

    serving_ca: KeyPair
    serving: KeyPair
    client_ca: KeyPair
    sa_signer: KeyPair
    admin: KeyPair


def _start(name: str, binary: Path, make: Callable[[int, int], tuple[Sequence[str],
           Callable[[], bool]]], *, run_dir: Path, timeout: float,
           die_with_parent: bool) -> Running:
    """Spawn with two fresh ports; on a lost port race stop it and try new ports."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port, extra_port = free_port(), free_port()
        args, ready = make(port, extra_port)
        argv = (str(binary), *args)
        process = spawn(name, argv, run_dir=run_dir, die_with_parent=die_with_parent)
        try:
            took = wait_ready(name, process, ready, run_dir=run_dir, timeout=timeout)
        except PortRaceError:
            stop(name, run_dir=run_dir, process=process)
            if attempt == PORT_ATTEMPTS:
                raise
            continue
        except BaseException:
            stop(name, run_dir=run_dir, process=process)
            raise
        return Running(name, process, port, took, argv, ready, timeout)
    raise AssertionError("unreachable")


def start_etcd(binary: Path, *, run_dir: Path, timeout: float = 60.0,
               die_with_parent: bool, extra_args: Sequence[str] = ()) -> Running:
    def make(port: int, peer: int) -> tuple[Sequence[str], Callable[[], bool]]:
        client, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
        args = [
            "--name=default", f"--data-dir={run_dir / 'etcd-data'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync",  # test data: durability buys nothing, fsyncs cost seconds
            *extra_args,
        ]

        def ready() -> bool:
            status, body = get_status(f"{client}/health")
            return status == 200 and b'"health":"true"' in body

        return args, ready

    return _start("etcd", binary, make, run_dir=run_dir, timeout=timeout,
                  die_with_parent=die_with_parent)


def start_apiserver(binary: Path, *, etcd_port: int, pki: Pki, run_dir: Path,
                    timeout: float = 240.0, die_with_parent: bool,
                    extra_args: Sequence[str] = ()) -> Running:
    admin = tls_context(ca=pki.serving_ca.cert, client=pki.admin)

    def make(port: int, _unused: int) -> tuple[Sequence[str], Callable[[], bool]]:
        args = [
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--cert-dir={pki.serving.cert.parent}",
            f"--tls-cert-file={pki.serving.cert}", f"--tls-private-key-file={pki.serving.key}",
            f"--secure-port={port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",  # no default route on loopback-only machines
            "--endpoint-reconciler-type=none",  # loopback endpoints are not allowed
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            "--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={pki.sa_signer.cert}",
            f"--service-account-signing-key-file={pki.sa_signer.key}",
            f"--client-ca-file={pki.client_ca.cert}",
            *extra_args,
        ]
        base = f"https://127.0.0.1:{port}"

        def ready() -> bool:
            # /readyz first; then `default`, which the apiserver creates a little later.
            if get_status(f"{base}/readyz", context=admin)[0] != 200:
                return False
            return get_status(f"{base}/api/v1/namespaces/default", context=admin)[0] == 200

        return args, ready

    return _start("kube-apiserver", binary, make, run_dir=run_dir, timeout=timeout,
                  die_with_parent=die_with_parent)


def start_controller_manager(binary: Path, *, kubeconfig: Path, run_dir: Path,
                             timeout: float = 120.0, die_with_parent: bool) -> Running:
    insecure = tls_context(ca=None)  # its serving cert is self-signed; /healthz is public

    def make(port: int, _unused: int) -> tuple[Sequence[str], Callable[[], bool]]:
        args = [
            f"--kubeconfig={kubeconfig}", f"--controllers={KCM_CONTROLLERS}",
            "--leader-elect=false", f"--secure-port={port}", "--bind-address=127.0.0.1",
            f"--cert-dir={run_dir / 'kcm-certs'}",
        ]

        def ready() -> bool:
            return get_status(f"https://127.0.0.1:{port}/healthz", context=insecure)[0] == 200

        return args, ready

    return _start("kube-controller-manager", binary, make, run_dir=run_dir, timeout=timeout,
                  die_with_parent=die_with_parent)
