"""``ControlPlane``: etcd + kube-apiserver + kube-controller-manager in one run directory.

Layout of the run directory (everything a later ``down`` or ``add_user`` needs is on
disk, so another process can act on a control plane this one started)::

    kubeconfig          admin (system:masters) kubeconfig
    users/<name>.*      client certificates and kubeconfigs made by add_user
    pki/                CAs, serving certificate, service-account signer
    pids/, logs/        one pid file and one log per component
    etcd-data/          etcd's data
    state.json          server URL and versions

Used by the pytest plugin (one per test session) and by the ``up``/``down``/``env``
commands of ``python -m engine.testing.controlplane``.

For fault-injection tests a plane can be started with flags of its own
(``apiserver_args``, ``etcd_args``: e.g. ``--watch-cache=false``), an audit policy
(every request the policy selects is logged to ``logs/audit.log``, one JSON event a
line, and survives apiserver restarts), and then have one component stopped
(``stop_component``) or killed (``kill``: SIGKILL), ``restart``-ed on the same ports
and data, ``pause``-d and ``resume``-d (SIGSTOP/SIGCONT), and etcd's history compacted
on demand (``compact_etcd``: a watch resuming from an older resourceVersion then gets a
real 410 Gone).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import build, certs, components, processes
from .kubeconfig import write_kubeconfig

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")  # start order
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]*$")


class ControlPlaneError(RuntimeError):
    """The control plane cannot be started or used; the message says what to do."""


def _nothing(_: str) -> None:
    return None


class ControlPlane:
    """A local control plane rooted at ``run_dir``; ``start()`` returns once it serves."""

    def __init__(self, run_dir: Path, *, bin_dir: Path | None = None,
                 die_with_parent: bool = True, log: Callable[[str], None] = _nothing,
                 apiserver_args: Sequence[str] = (), etcd_args: Sequence[str] = (),
                 audit_policy: Mapping[str, Any] | None = None) -> None:
        self.run_dir = run_dir.resolve()
        self.bin_dir = bin_dir or build.bin_dir()
        self.die_with_parent = die_with_parent
        self.log = log
        self.apiserver_args = tuple(apiserver_args)
        self.etcd_args = tuple(etcd_args)
        self.audit_policy = audit_policy
        self._running: list[components.Running] = []

    @property
    def audit_log_path(self) -> Path:
        """Where the apiserver logs audit events (only with an `audit_policy`)."""
        return processes.log_path(self.run_dir, "audit")

    def _audit_args(self) -> list[str]:
        if self.audit_policy is None:
            return []
        policy = self.run_dir / "audit-policy.json"
        policy.write_text(json.dumps(self.audit_policy))
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log_path}",
                "--audit-log-format=json", "--audit-log-maxsize=10240",
                "--audit-log-mode=blocking"]

    @property
    def kubeconfig_path(self) -> Path:
        return self.run_dir / "kubeconfig"

    @property
    def server(self) -> str:
        try:
            state = json.loads((self.run_dir / "state.json").read_text())
        except FileNotFoundError:
            raise ControlPlaneError(f"no control plane was started in {self.run_dir}") from None
        return str(state["server"])

    def _pki(self) -> components.Pki:
        pki = self.run_dir / "pki"

        def pair(name: str) -> certs.KeyPair:
            return certs.KeyPair(pki / f"{name}.crt", pki / f"{name}.key")

        return components.Pki(serving_ca=pair("serving-ca"), serving=pair("apiserver"),
                              client_ca=pair("client-ca"), sa_signer=pair("sa-signer"),
                              admin=pair("admin"))

    def _make_pki(self) -> components.Pki:
        pki = self._pki()
        if not pki.admin.cert.exists():  # a restart in the same directory keeps its PKI
            certs.make_ca("edict-test-serving-ca", pki.serving_ca)
            certs.issue_serving(pki.serving_ca, pki.serving)
            certs.make_ca("edict-test-client-ca", pki.client_ca)
            certs.make_signing_key(pki.sa_signer)
            certs.issue_client(pki.client_ca, pki.admin, "admin", ("system:masters",))
        return pki

    def _binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not path.exists():
            raise ControlPlaneError(
                f"{path} is missing: build the control plane with "
                "`python -m engine.testing.controlplane build`")
        return path

    def start(self) -> None:
        binaries = {name: self._binary(name) for name in COMPONENTS}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_if_running()
        pki = self._make_pki()
        shutil.rmtree(self.run_dir / "etcd-data", ignore_errors=True)  # always a fresh store
        run_dir, tied = self.run_dir, self.die_with_parent
        try:
            etcd = components.start_etcd(binaries["etcd"], run_dir=run_dir,
                                         die_with_parent=tied, extra_args=self.etcd_args)
            self._started(etcd)
            apiserver = components.start_apiserver(
                binaries["kube-apiserver"], etcd_port=etcd.port, pki=pki, run_dir=run_dir,
                die_with_parent=tied, extra_args=[*self._audit_args(), *self.apiserver_args])
            self._started(apiserver)
            server = f"https://127.0.0.1:{apiserver.port}"
            (self.run_dir / "state.json").write_text(json.dumps({
                "server": server, "kubernetes": build.KUBERNETES_VERSION,
                "etcd": build.ETCD_VERSION}) + "\n")
            write_kubeconfig(self.kubeconfig_path, server=server, ca=pki.serving_ca.cert,
                             client=pki.admin, user="admin")
            # Its own identity (for the audit trail) but in system:masters: the namespace
            # controller deletes every kind of object.
            kcm = self.add_user("system:kube-controller-manager", ["system:masters"])
            self._started(components.start_controller_manager(
                binaries["kube-controller-manager"], kubeconfig=kcm, run_dir=run_dir,
                die_with_parent=tied))
        except BaseException:
            self.stop()
            raise

    def _refuse_if_running(self) -> None:
        alive = [n for n in COMPONENTS if processes.recorded_alive(n, run_dir=self.run_dir)]
        if alive:
            raise ControlPlaneError(
                f"{', '.join(alive)} already running from {self.run_dir}: stop them first "
                f"with `python -m engine.testing.controlplane down --dir {self.run_dir}`")

    def _started(self, running: components.Running) -> None:
        self._running.append(running)
        self.log(f"{running.name} ready on 127.0.0.1:{running.port} "
                 f"after {running.ready_after:.1f}s")

    def stop(self) -> None:
        """Stop every component, ours or recorded in the run directory's pid files."""
        ours = {r.name: r.process for r in self._running}
        for name in reversed(COMPONENTS):
            processes.stop(name, run_dir=self.run_dir, process=ours.get(name))
        self._running.clear()

    # -- faults ------------------------------------------------------------------------

    def running(self, name: str) -> components.Running:
        """The component `name` as this object last started it."""
        for running in self._running:
            if running.name == name:
                return running
        raise ControlPlaneError(f"{name} was not started by this ControlPlane "
                                f"(started: {', '.join(r.name for r in self._running)})")

    def pid(self, name: str) -> int:
        return self.running(name).process.pid

    def stop_component(self, name: str) -> None:
        """Stop `name` gracefully (SIGTERM, SIGKILL after a grace period); `restart`
        starts it again."""
        processes.stop(name, run_dir=self.run_dir, process=self.running(name).process)

    def kill(self, name: str) -> None:
        """SIGKILL `name` (kill -9: no shutdown of any kind) and reap it."""
        process = self.running(name).process
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

    def pause(self, name: str) -> None:
        """SIGSTOP `name`: it keeps its sockets and answers nothing until `resume`."""
        os.kill(self.pid(name), signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.pid(name), signal.SIGCONT)

    def restart(self, name: str) -> float:
        """Start `name` again with the same command line (ports, data directory), stopping
        it first if it still runs; return the seconds until it was ready again."""
        old = self.running(name)
        if old.process.poll() is None:
            processes.stop(name, run_dir=self.run_dir, process=old.process)
        process = processes.spawn(name, old.argv, run_dir=self.run_dir,
                                  die_with_parent=self.die_with_parent)
        took = processes.wait_ready(name, process, old.ready, run_dir=self.run_dir,
                                    timeout=old.timeout)
        self._running[self._running.index(old)] = components.Running(
            name, process, old.port, took, old.argv, old.ready, old.timeout)
        self.log(f"{name} ready again on 127.0.0.1:{old.port} after {took:.1f}s")
        return took

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision; return that revision.

        Watches already open go on; a watch (or a paged list) that starts from an older
        resourceVersion is answered 410 Gone, as after etcd's periodic compaction.
        """
        revision = int(self._etcd_call("/v3/kv/range", {
            "key": base64.b64encode(b"/registry/").decode(), "limit": 1})["header"]["revision"])
        self._etcd_call("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def _etcd_call(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST to etcd's JSON gateway (the client port serves it)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.running("etcd").port,
                                                timeout=30)
        deadline = time.monotonic() + 30
        try:
            while True:
                connection.request("POST", path, body=json.dumps(body),
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                if response.status == 200:
                    return json.loads(data)
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"etcd {path}: HTTP {response.status}: "
                                            f"{data[:300]!r}")
                time.sleep(0.5)
        finally:
            connection.close()

    # -- users ---------------------------------------------------------------------------

    def add_user(self, name: str, groups: list[str] | tuple[str, ...] = ()) -> Path:
        """Mint a client certificate for ``name`` in ``groups``; return its kubeconfig.

        The user has no permissions beyond what RBAC grants its name or groups
        (``system:authenticated`` is added by the apiserver).
        """
        if not USER_NAME.match(name):
            raise ControlPlaneError(f"user name {name!r} must match {USER_NAME.pattern}")
        pki = self._pki()
        users = self.run_dir / "users"
        file_stem = name.replace(":", "_")
        pair = certs.issue_client(
            pki.client_ca, certs.KeyPair(users / f"{file_stem}.crt", users / f"{file_stem}.key"),
            name, tuple(groups))
        return write_kubeconfig(users / f"{file_stem}.kubeconfig", server=self.server,
                                ca=pki.serving_ca.cert, client=pair, user=name)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
