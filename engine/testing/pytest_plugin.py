"""pytest fixtures that give tests a real Kubernetes API server.

Registered from ``tests/conftest.py`` with
``pytest_plugins = ["engine.testing.pytest_plugin"]``. Tests that need a cluster are
marked ``@pytest.mark.cluster`` and take the ``control_plane`` or ``kubeconfig``
fixture. Where the cluster comes from:

* ``EDICT_TEST_KUBECONFIG=/path`` — an existing cluster; ``add_user`` is unavailable.
* otherwise a control plane started once per session from the cached binaries
  (``python -m engine.testing.controlplane build``); missing binaries are built first
  (many minutes, once per machine) unless ``EDICT_BUILD_CONTROLPLANE=0``.

When no cluster can be had the fixture fails the test: a cluster test never skips,
so a green run always means the live tests ran.

Fault-injection tests (``@pytest.mark.faults``) kill, pause and restart components, so
they never share a cluster: ``start_control_plane(...)`` starts a fresh one for the test
(with the flags and audit policy it asks for) and stops it afterwards. It always uses
the cached binaries, whatever ``EDICT_TEST_KUBECONFIG`` says.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .controlplane import BuildError, ControlPlane, build_binaries, missing_binaries

BUILD_HINT = "python -m engine.testing.controlplane build"


@dataclass(frozen=True)
class TestCluster:
    """What a cluster test gets: an admin kubeconfig and a way to mint RBAC users."""

    __test__ = False  # not a test class, despite its name

    kubeconfig: str
    _add_user: Callable[[str, list[str]], Path]

    def add_user(self, name: str, groups: list[str] | None = None) -> str:
        """Return the path of a kubeconfig for ``name`` in ``groups`` (no RBAC grants)."""
        return str(self._add_user(name, list(groups or [])))


def _external_add_user(name: str, groups: list[str]) -> Path:
    raise RuntimeError(
        f"add_user({name!r}) needs the suite's own control plane (it signs client "
        "certificates with the cluster's client CA); unset EDICT_TEST_KUBECONFIG to use it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs a real kube-apiserver (started by the suite, or "
        "EDICT_TEST_KUBECONFIG)")
    config.addinivalue_line(
        "markers", "faults: injects faults into a control plane of its own (kills, pauses "
        "and restarts its components); `-m faults` runs only these")


def _ensure_binaries() -> None:
    missing = missing_binaries()
    if not missing:
        return
    if os.environ.get("EDICT_BUILD_CONTROLPLANE", "1") != "0":
        try:
            build_binaries()
        except BuildError as error:
            pytest.fail(f"building the control plane failed: {error}", pytrace=False)
        return
    pytest.fail(
        f"control plane binaries missing ({', '.join(missing)}); build them once with "
        f"`{BUILD_HINT}` (many minutes), or unset EDICT_BUILD_CONTROLPLANE to build them "
        "here, or point EDICT_TEST_KUBECONFIG at an existing cluster", pytrace=False)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """A running cluster for the whole session; stopped (no process left) at the end."""
    external = os.environ.get("EDICT_TEST_KUBECONFIG")
    if external:
        if not Path(external).is_file():
            pytest.fail(f"EDICT_TEST_KUBECONFIG={external} is not a file", pytrace=False)
        yield TestCluster(external, _external_add_user)
        return
    _ensure_binaries()
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    try:
        plane.start()
    except Exception as error:  # a cluster test must fail, never skip
        pytest.fail(f"could not start the control plane: {error}", pytrace=False)
    try:
        yield TestCluster(str(plane.kubeconfig_path), plane.add_user)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: TestCluster) -> str:
    """Path of an admin (system:masters) kubeconfig for the session's cluster."""
    return control_plane.kubeconfig


StartPlane = Callable[..., ControlPlane]


@pytest.fixture
def start_control_plane(tmp_path: Path) -> Iterator[StartPlane]:
    """`start_control_plane(apiserver_args=..., etcd_args=..., audit_policy=...)`: a fresh
    control plane for this test alone, stopped (no process left) at its end."""
    started: list[ControlPlane] = []

    def start(*, apiserver_args: Sequence[str] = (), etcd_args: Sequence[str] = (),
              audit_policy: Mapping[str, Any] | None = None) -> ControlPlane:
        _ensure_binaries()
        plane = ControlPlane(tmp_path / f"controlplane-{len(started)}",
                             apiserver_args=apiserver_args, etcd_args=etcd_args,
                             audit_policy=audit_policy)
        started.append(plane)
        try:
            plane.start()
        except Exception as error:  # a fault test must fail, never skip
            pytest.fail(f"could not start the control plane: {error}", pytrace=False)
        return plane

    yield start
    for plane in started:
        plane.stop()
