"""`kubectl edict`: installing the package puts a `kubectl-edict` script on the PATH, and
kubectl runs it as a plugin."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kubectl_runs_edict_as_a_plugin_after_install(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    bin_dir = env_dir / "bin"
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    script = bin_dir / "kubectl-edict"
    assert script.is_file() and os.access(script, os.X_OK)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path}
    listed = subprocess.run(["kubectl", "plugin", "list"], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert str(script) in listed.stdout
    helped = subprocess.run(["kubectl", "edict", "--help"], capture_output=True, text=True,
                            env=env, timeout=60, check=False, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "Edict: Kubernetes operators written as YAML." in helped.stdout
    linted = subprocess.run(["kubectl", "edict", "lint", str(ROOT / "rules")],
                            capture_output=True, text=True, env=env, timeout=60,
                            check=False, cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
