"""The image's install steps, run without Docker.

There is no Docker engine on our machines, so this repeats what the Dockerfile does in a
fresh venv: build the edict wheel, fetch every dependency pinned in
deploy/requirements.lock as wheels (no dependency resolution, nothing compiled), and
install with no index at all. Then the installed `edict` — not the source tree — must
work: `--version`, `run --help`, `apply` on the shipped example, `lint` and `test` on
the ready-made rule sets (so the CRD schema files travelled inside the wheel), `rbac`.

Needs the package index (or pip's cache) for hatchling and the pinned dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import __version__

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "deploy" / "requirements.lock"


def pip(python: Path | str, *args: str, cwd: Path | None = None) -> str:
    out = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                         timeout=600, check=False, cwd=cwd,
                         env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert out.returncode == 0, f"pip {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@dataclass(frozen=True)
class Built:
    wheel: Path
    seconds: float


@dataclass(frozen=True)
class Installed:
    bin: Path
    seconds: float
    work: Path  # a directory holding copies of rules/ and examples/, and nothing else


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`python -m pip wheel . --no-deps`, the Dockerfile's first step."""
    out_dir = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                          str(out_dir), str(ROOT)], capture_output=True, text=True,
                         timeout=600, check=False)
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = out_dir.glob("edict-*.whl")
    return Built(wheel, seconds)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The Dockerfile's install: pinned wheels only, no index, into a fresh venv."""
    base = tmp_path_factory.mktemp("image")
    wheels = base / "wheels"
    wheels.mkdir()
    shutil.copy(built.wheel, wheels)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True,
                   timeout=120)
    python = base / "venv" / "bin" / "python"
    pip(python, "wheel", "--no-deps", "--only-binary=:all:", "--wheel-dir", str(wheels),
        "--requirement", str(LOCK))
    pip(python, "install", "--no-index", "--find-links", str(wheels), "--constraint",
        str(LOCK), "edict")
    seconds = time.monotonic() - started
    work = base / "work"
    shutil.copytree(ROOT / "rules", work / "rules")
    shutil.copytree(ROOT / "examples", work / "examples")
    return Installed(base / "venv" / "bin", seconds, work)


def edict(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG")}
    return subprocess.run([str(installed.bin / "edict"), *args], capture_output=True,
                          text=True, timeout=300, check=False, cwd=installed.work, env=env)


def test_the_wheel_carries_the_crd_schema(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as archive:
        names = set(archive.namelist())
        for source in sorted((ROOT / "crds").glob("edict.dev_*.yaml")):
            inside = f"engine/crds/{source.name}"
            assert inside in names
            assert archive.read(inside) == source.read_bytes()
        assert not any(n.startswith("tests/") for n in names)
    size = built.wheel.stat().st_size
    print(f"\nwheel {built.wheel.name}: {size / 1024:.0f} KiB, built in {built.seconds:.1f}s")
    assert size < 1024 * 1024


def test_the_lock_is_exactly_what_gets_installed(installed: Installed) -> None:
    frozen = pip(installed.bin / "python", "freeze", "--exclude", "edict").split()
    locked = [line for line in LOCK.read_text().splitlines()
              if line and not line.startswith("#")]
    assert sorted(frozen, key=str.lower) == sorted(locked, key=str.lower)
    print(f"\nvenv install from the lock: {installed.seconds:.1f}s, {len(locked)} pinned")


def test_the_installed_package_is_used_with_its_own_crds(installed: Installed) -> None:
    out = subprocess.run([str(installed.bin / "python"), "-c",
                          "import engine.rules.schema as s; print(s.crd_dir())"],
                         capture_output=True, text=True, timeout=60, check=True,
                         cwd=installed.work)
    crd_dir = Path(out.stdout.strip())
    assert str(crd_dir).startswith(str(installed.bin.parent)), crd_dir
    assert (crd_dir / "edict.dev_rulesets.yaml").is_file()


def test_edict_runs_from_the_venv(installed: Installed) -> None:
    version = edict(installed, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"edict {__version__}"
    run_help = edict(installed, "run", "--help")
    assert run_help.returncode == 0 and "--leader-elect" in run_help.stdout
    # `run` itself loads the Kubernetes client and the live engine before it connects.
    no_cluster = edict(installed, "run", "--kubeconfig", "/nonexistent/kubeconfig")
    assert no_cluster.returncode == 2, no_cluster.stderr
    assert "kubeconfig" in no_cluster.stderr
    applied = edict(installed, "apply", "-r", "rules/", "-f", "examples/shop.yaml")
    assert applied.returncode == 0, applied.stderr
    assert "kind: ResourceQuota" in applied.stdout  # generated by namespace-bootstrap


def test_lint_and_test_find_the_schema_inside_the_wheel(installed: Installed) -> None:
    lint = edict(installed, "lint", "rules/")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert " 0 findings" in lint.stdout
    tested = edict(installed, "test", "rules/")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " 0 failed" in tested.stdout.splitlines()[-1]


def test_rbac_from_the_venv_matches_the_shipped_roles(installed: Installed) -> None:
    out = edict(installed, "rbac", "rules/namespace-bootstrap/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (ROOT / "rules/namespace-bootstrap/rbac.yaml").read_text()
