"""bench/live/compiled.py compiles a copy of the tree: its lists must name the engine's
real modules, so that a renamed or split module is not silently left out of (or kept
in) the measurement."""

from __future__ import annotations

from pathlib import Path

from bench.live.compiled import COMPILED, KEPT_PYTHON, modules

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_kept_as_python_exists_and_would_otherwise_be_compiled() -> None:
    matched = {str(path.relative_to(ROOT)) for pattern in COMPILED
               for path in ROOT.glob(pattern)}
    for name in KEPT_PYTHON:
        assert (ROOT / name).is_file(), name
        assert name in matched, f"{name} is kept as Python but no pattern compiles it"


def test_the_modules_compiled_are_the_patterns_less_packages_and_those_kept() -> None:
    names = modules(ROOT)
    assert names == sorted(names)
    assert "engine/runtime/source/store.py" in names
    assert "engine/evaluate/run.py" in names
    assert not any(name.endswith("__init__.py") for name in names)
    assert not set(names) & set(KEPT_PYTHON)
    every_file = {str(path.relative_to(ROOT)) for pattern in COMPILED
                  for path in ROOT.glob(pattern)}
    assert set(names) | set(KEPT_PYTHON) == {n for n in every_file
                                             if not n.endswith("__init__.py")}
