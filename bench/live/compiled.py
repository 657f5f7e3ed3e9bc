"""A copy of this tree with most of the engine compiled by mypyc, to benchmark.

    python -m bench.live.compiled --out /tmp/edict-compiled        # ~1.5 min on 2 cores
    cd /tmp/edict-compiled && python -m bench.live --objects 10000 --repeat 3 \\
        --phases engine,baseline

Not how Edict runs (bench/README.md, "the engine compiled with mypyc": tried, not
kept): the reproducible half of that measurement. The copy is `git archive HEAD` of this checkout,
so commit first. mypyc is mypy's compiler (in the `dev` extra); it turns the modules'
annotations (already checked by `mypy --strict`) into C extension modules, and needs a
C compiler and Python's headers. Modules in `KEPT_PYTHON` stay Python, each for the
reason given: what mypyc refuses, crashes on, or compiles into something that fails at
run time. The build runs with the copy's pyproject.toml moved aside, because setuptools,
which mypyc's build drives, refuses its `license` field.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

COMPILED = ("engine/runtime/source/*.py", "engine/runtime/controller/*.py",
            "engine/evaluate/*.py", "engine/patching/*.py", "engine/kube/*.py",
            "engine/matching/*.py", "engine/runtime/writer.py",
            "engine/runtime/concurrency.py", "engine/runtime/status.py",
            "engine/runtime/current.py", "engine/runtime/metrics.py",
            "engine/runtime/counting.py", "engine/objects.py")
"""What runs per object in the live engine: the cache, routing, the reconcile, the
rules' evaluation and merges, the client (the CEL runtime and templates are C or stay
Python)."""

_BUILTIN_BASE = "inherits from a builtin type (mypyc: 'Inheriting from most builtin " \
                "types is unimplemented')"
KEPT_PYTHON = {
    "engine/objects.py": "GVK, a dataclass with order=True, fails at import once compiled "
                         "(TypeError: Cannot overwrite attribute __lt__)",
    "engine/runtime/source/watches.py": f"NotWatched {_BUILTIN_BASE}",
    "engine/kube/wire.py": f"_Closed {_BUILTIN_BASE}",
    "engine/patching/assignments.py": f"ItemKey {_BUILTIN_BASE}",
    "engine/runtime/controller/events.py": "its attribute `_thread` becomes the C field "
                                           "`__thread`, a C compiler keyword",
    "engine/evaluate/clone.py": "mypyc takes `merge` (the function engine.patching "
                                "exports) for the module engine.patching.merge",
    "engine/evaluate/patch_writers.py": "mypyc crashes on it (AssertionError in its IR "
                                        "builder)",
    "engine/evaluate/writers.py": "fails at run time (TypeError: None object expected; "
                                  "got Assignment, from a conditional in a generator)",
    "engine/evaluate/outcomes.py": "sets attributes through `self.__dict__`, which "
                                   "compiled classes do not have",
}


def modules(root: Path) -> list[str]:
    found = sorted({str(path.relative_to(root)) for pattern in COMPILED
                    for path in root.glob(pattern) if path.name != "__init__.py"})
    return [name for name in found if name not in KEPT_PYTHON]


def build(repo: Path, out: Path) -> list[str]:
    """Copy HEAD of `repo` to `out` and compile `modules` there; return them."""
    out.mkdir(parents=True)
    with tempfile.TemporaryFile() as archive:
        subprocess.run(["git", "-C", str(repo), "archive", "HEAD"], stdout=archive,
                       check=True)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(out, filter="tar")
    names = modules(out)
    project, aside = out / "pyproject.toml", out / "pyproject.toml.aside"
    project.rename(aside)
    try:
        subprocess.run([sys.executable, "-m", "mypyc", *names], cwd=out, check=True)
    finally:
        aside.rename(project)
    check = subprocess.run(
        [sys.executable, "-c", "import engine.runtime.source.store as m; print(m.__file__)"],
        cwd=out, check=True, capture_output=True, text=True)
    if not check.stdout.strip().endswith(".so"):
        raise SystemExit(f"the copy imports Python, not the compiled module: {check.stdout}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="a directory that does not exist yet")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args()
    names = build(args.repo, args.out)
    print(f"{len(names)} modules compiled in {args.out}; kept as Python:")
    for name, why in KEPT_PYTHON.items():
        print(f"  {name}: {why}")


if __name__ == "__main__":
    main()
