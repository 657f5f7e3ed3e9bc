"""Regenerate the shipped schema catalogue, ``engine/schemas/builtin.json``.

    python scripts/generate_schemas.py                  # a fresh test control plane
    python scripts/generate_schemas.py --kubeconfig K   # an existing cluster
    python scripts/generate_schemas.py --check          # exit 1 when the file is stale

Starts the test suite's kube-apiserver (the binaries of ``python -m
engine.testing.controlplane build``) in a temporary directory, reads ``/openapi/v3`` and
discovery for every built-in group-version, and writes the compact catalogue (field
names, scalar types, list/map markers, list-map key defaults, scopes). The output is
stable: the same server gives the same bytes. Run it after moving the control plane to
a new Kubernetes version; the cluster test ``tests/e2e/test_schemas_live.py`` fails
while the committed file differs from what the suite's server serves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

# The checkout this script sits in, not whichever `engine` is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.kube import Cluster
from engine.kube.openapi import builtin_catalogue_document
from engine.schemas.catalogue import BUILTIN_PATH
from engine.schemas.generate import dumps
from engine.testing.controlplane import ControlPlane


def generate(kubeconfig: str) -> str:
    cluster = Cluster.connect(kubeconfig)
    try:
        return dumps(builtin_catalogue_document(cluster))
    finally:
        cluster.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="read this cluster instead of starting one")
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed file instead of writing it")
    parser.add_argument("--output", type=Path, default=BUILTIN_PATH)
    args = parser.parse_args(argv)
    if args.kubeconfig:
        text = generate(args.kubeconfig)
    else:
        with tempfile.TemporaryDirectory(prefix="edict-schemas-") as run_dir, \
                ControlPlane(Path(run_dir)) as plane:
            text = generate(str(plane.kubeconfig_path))
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run scripts/generate_schemas.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
