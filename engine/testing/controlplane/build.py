"""Build kube-apiserver, kube-controller-manager and etcd from Go modules, once.

Release binaries cannot be downloaded here, so the test control plane is compiled
from the wrapper modules in ``engine/testing/go/`` (see ``docs/control-plane.md``).
Binaries land in ``~/.cache/edict/controlplane/<k8s>-<etcd>/bin/`` (``$EDICT_CACHE`` or
``$XDG_CACHE_HOME`` move it), outside the checkout, so a fresh clone on the same machine
reuses them.

Called by ``python -m engine.testing.controlplane build``, by the pytest plugin when
``EDICT_BUILD_CONTROLPLANE=1``, and by :mod:`.plane` to find the binaries.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"

GO_MODULES = Path(__file__).resolve().parent.parent / "go"


@dataclass(frozen=True)
class Target:
    """One binary: the Go package to build, from which wrapper module, with which ldflags."""

    name: str
    package: str
    module_dir: Path
    ldflags: str


def _version_ldflags(version: str) -> str:
    """Stamp the version that ``/version`` reports; without it the server says v0.0.0."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


TARGETS = (
    Target(
        "kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        GO_MODULES / "kubernetes",
        _version_ldflags(KUBERNETES_VERSION),
    ),
    Target(
        "kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        GO_MODULES / "kubernetes",
        _version_ldflags(KUBERNETES_VERSION),
    ),
    Target("etcd", "go.etcd.io/etcd/server/v3", GO_MODULES / "etcd", "-s -w"),
)


def _say(line: str) -> None:
    print(line, flush=True)  # interleaves correctly with go's own output


class BuildError(RuntimeError):
    """The Go toolchain is missing or ``go build`` failed; the message says which."""


def cache_root() -> Path:
    """``$EDICT_CACHE``, else ``$XDG_CACHE_HOME/edict``, else ``~/.cache/edict``; per version."""
    edict_cache = os.environ.get("EDICT_CACHE")
    if not edict_cache:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        edict_cache = str(Path(xdg) / "edict")
    return Path(edict_cache) / "controlplane" / f"{KUBERNETES_VERSION}-{ETCD_VERSION}"


def bin_dir() -> Path:
    return cache_root() / "bin"


def binary(name: str) -> Path:
    return bin_dir() / name


def missing_binaries() -> list[str]:
    return [t.name for t in TARGETS if not os.access(binary(t.name), os.X_OK)]


def find_go() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(found, os.X_OK):
        raise BuildError("no Go toolchain: put `go` (1.26 or newer) on PATH")
    return found


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # GOTOOLCHAIN=local: never fetch another toolchain; -mod=readonly: the committed
    # go.sum is complete, and a build must not rewrite files in the checkout.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly")
    return env


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds of one cache entry (a session and CI may start one together)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_target(target: Target, *, go: str, log: Callable[[str], None]) -> None:
    out = binary(target.name)
    partial = out.with_name(f".{target.name}.partial")
    log(f"building {target.name} ({target.package}) into {out} ...")
    started = time.monotonic()
    command = [go, "build", "-trimpath", "-ldflags", target.ldflags, "-o", str(partial),
               target.package]
    result = subprocess.run(command, cwd=target.module_dir, env=_go_env(), check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BuildError(f"`{' '.join(command)}` in {target.module_dir} "
                         f"failed with exit code {result.returncode}")
    os.replace(partial, out)  # atomic: a reader never sees half a binary
    log(f"built {target.name} in {time.monotonic() - started:.0f}s")


def build_binaries(*, force: bool = False, log: Callable[[str], None] = _say) -> Path:
    """Build whatever is missing (everything with ``force``); return the bin directory."""
    with _build_lock():
        bin_dir().mkdir(parents=True, exist_ok=True)
        todo = [t for t in TARGETS if force or t.name in missing_binaries()]
        for target in TARGETS:
            if target not in todo:
                log(f"reusing cached {binary(target.name)}")
        if todo:
            go = find_go()
            started = time.monotonic()
            for target in todo:
                build_target(target, go=go, log=log)
            log(f"control plane binaries built in {time.monotonic() - started:.0f}s")
    return bin_dir()
