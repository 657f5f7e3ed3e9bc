"""Command line for the test control plane.

    python -m engine.testing.controlplane build [--force]
    python -m engine.testing.controlplane up --dir DIR     # returns once ready
    python -m engine.testing.controlplane env --dir DIR    # prints `export KUBECONFIG=…`
    python -m engine.testing.controlplane down --dir DIR

Run by developers, by ``.ci/run`` (``build``) and from a shell when a cluster is
wanted outside pytest; ``up`` leaves the processes running after it exits.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from . import build
from .plane import ControlPlane, ControlPlaneError
from .processes import StartError


def _export_line(plane: ControlPlane) -> str:
    return f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig_path))}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.testing.controlplane",
                                     description="A local Kubernetes control plane for tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build the binaries into the cache")
    build_cmd.add_argument("--force", action="store_true", help="rebuild cached binaries")
    for name, text in (("up", "start and wait until ready"), ("down", "stop everything"),
                       ("env", "print the export line for KUBECONFIG")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dir", type=Path, required=True, help="run directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            build.build_binaries(force=args.force)
            print(f"binaries in {build.bin_dir()}")
            return 0
        plane = ControlPlane(args.dir, die_with_parent=False,
                             log=lambda line: print(line, file=sys.stderr))
        if args.command == "up":
            started = time.monotonic()
            plane.start()
            print(f"control plane {build.KUBERNETES_VERSION} up at {plane.server} "
                  f"in {time.monotonic() - started:.1f}s; logs in {plane.run_dir / 'logs'}",
                  file=sys.stderr)
            print(_export_line(plane))
        elif args.command == "down":
            plane.stop()
            print(f"control plane in {plane.run_dir} stopped", file=sys.stderr)
        elif not plane.kubeconfig_path.exists():
            raise ControlPlaneError(f"no kubeconfig in {plane.run_dir}: run `up` first")
        else:
            print(_export_line(plane))
    except (build.BuildError, ControlPlaneError, StartError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
