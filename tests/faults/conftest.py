"""Fixtures of the fault suite: a control plane per test, the workload, engines as
processes, and the table of what each fault cost (printed at the end of the run).

Every test gets a fresh control plane (`--watch-cache=false`: watches go to etcd, so a
compacted resourceVersion is a real 410 Gone; and an audit log of every write), its
1,000 objects in a namespace of its own, and the `edict run` processes it starts; all
of it is stopped at the test's end. What a test measured goes into `MEASURED` and the
terminal summary (and, with `EDICT_FAULT_REPORT=path`, one JSON line per fault there).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.kube.client import Cluster
from engine.testing.controlplane import ControlPlane
from tests.support import eventually

from . import harness
from .harness import (
    AUDIT_POLICY,
    OBJECTS,
    Edict,
    State,
    Writes,
    audit,
    converged,
    install_crds,
    rule_set_settled,
    state,
)


@dataclass
class Measured:
    fault: str
    recovery_s: float
    """Seconds from the end of the fault to every object converged and the status Ready."""
    writes: int
    """Write requests of the engine that reached the API server (2,000 are needed)."""
    extra: int
    codes: dict[str, int] = field(default_factory=dict)
    note: str = ""


MEASURED: list[Measured] = []


@dataclass
class Scenario:
    """One fault test: its control plane, admin client, namespace and engines."""

    plane: ControlPlane
    admin: Cluster
    namespace: str
    directory: Path
    engines: list[Edict] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def kubeconfig(self, user: str | None = None, groups: tuple[str, ...] = (
            "system:masters",)) -> str:
        if user is None:
            return str(self.plane.kubeconfig_path)
        return str(self.plane.add_user(user, list(groups)))

    def start_edict(self, *, user: str = "edict", **options: Any) -> Edict:
        """`edict run` as `user` (in system:masters unless a kubeconfig is given), so
        that the audit log tells its requests from the test's own (as "admin")."""
        kubeconfig = options.pop("kubeconfig", None) or self.kubeconfig(user)
        engine = Edict(kubeconfig, self.namespace,
                       self.directory / f"edict-{len(self.engines)}.log", **options)
        self.engines.append(engine)
        return engine

    def prepare(self) -> None:
        """The namespace and the RuleSet (engines may start now)."""
        harness.prepare(self.admin, self.namespace)

    def load(self, count: int = OBJECTS) -> None:
        """The triggers (after `prepare`)."""
        self.names = harness.load(self.admin, self.namespace, count)

    def mid_way(self, engine: Edict, writes: float = 400, timeout: float = 120) -> None:
        """Wait until `engine` has written `writes` times: well into converging."""
        eventually(lambda: engine.writes() >= writes, timeout=timeout, interval=0.05,
                   what=f"{writes:g} writes by the engine", detail=engine.tail)
        assert converged(self.admin, self.namespace) is None, "converged before the fault"

    def recover(self, since: float, *, within: float, objects: int = OBJECTS) -> float:
        """Wait until everything converged and the status is Ready and current again;
        return the seconds since `since` (the end of the fault)."""
        def done() -> State | None:
            current = converged(self.admin, self.namespace)
            return current if current and rule_set_settled(
                self.admin, self.namespace, objects) else None

        eventually(done, timeout=within, interval=0.5, what="convergence after the fault",
                   detail=self.why_not)
        return time.monotonic() - since

    def why_not(self) -> str:
        try:
            problems = state(self.admin, self.namespace).problems()
        except Exception as error:
            problems = [f"cannot read the state: {error}"]
        logs = "\n".join(f"--- {e.log.name} ---\n{e.tail()}" for e in self.engines)
        return f"{len(problems)} problems, first: {problems[:5]}\n{logs}"

    def writes(self, *users: str) -> Writes:
        return Writes.of(audit(self.plane.audit_log_path, namespace=self.namespace),
                         set(users or ("edict",)))

    def measured(self, fault: str, recovery: float, writes: Writes, note: str = "",
                 needed: int = 2 * OBJECTS) -> None:
        entry = Measured(fault, round(recovery, 1), len(writes.all()),
                         writes.extra(needed),
                         {str(k): v for k, v in sorted(writes.codes().items())}, note)
        MEASURED.append(entry)
        report = os.environ.get("EDICT_FAULT_REPORT")
        if report:
            with open(report, "a") as out:
                out.write(json.dumps(asdict(entry)) + "\n")


@pytest.fixture
def scenario(start_control_plane: Callable[..., ControlPlane], tmp_path: Path,
             request: pytest.FixtureRequest) -> Iterator[Callable[..., Scenario]]:
    """`scenario(apiserver_args=...)`: a control plane with the CRDs and an empty
    namespace-to-be; engines started through it are stopped at the end."""
    made: list[Scenario] = []

    def make(*, apiserver_args: tuple[str, ...] = ()) -> Scenario:
        plane = start_control_plane(apiserver_args=("--watch-cache=false", *apiserver_args),
                                    audit_policy=AUDIT_POLICY)
        install_crds(str(plane.kubeconfig_path))
        admin = Cluster.connect(str(plane.kubeconfig_path))
        made.append(Scenario(plane, admin, "faults", tmp_path))
        return made[-1]

    yield make
    for scene in made:
        for engine in scene.engines:
            engine.stop()
        scene.admin.close()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for engine in scene.engines:
                print(f"--- {engine.log.name} ---\n{engine.tail(200)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MEASURED:
        return
    write = terminalreporter.write_line
    write("")
    write("fault suite: recovery time, the engine's write requests (2,000 needed), answers")
    for m in MEASURED:
        codes = " ".join(f"{k}:{v}" for k, v in m.codes.items())
        write(f"  {m.fault:<44} {m.recovery_s:>6.1f}s  {m.writes:>5} (+{m.extra})  {codes}"
              f"  {m.note}")
