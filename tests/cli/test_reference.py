"""docs/reference.md: generated from the registries, and never stale or incomplete."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from engine.cel import VARIABLES
from engine.templating.environment import ENV

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference", ROOT / "docs" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (ROOT / "docs" / "reference-examples.yaml").read_text())
    return loaded


def test_the_reference_is_up_to_date() -> None:
    text = generator().render()
    assert (ROOT / "docs" / "reference.md").read_text() == text, (
        "docs/reference.md is stale: run python docs/reference.py")


def test_it_lists_every_variable_filter_and_cel_function() -> None:
    text = (ROOT / "docs" / "reference.md").read_text()
    reference = generator()
    for name in {*VARIABLES, *reference.template_variables()}:
        assert f"| `{name}` |" in text
    assert "| `index` |" in text
    for name in ENV.filters:
        assert f"| `{name}` |" in text
    registered = reference.registered_cel_functions()
    assert {"quantity", "isSorted", "url", "findAll"} <= set(registered)
    for name in registered:
        assert f"| `{name}` |" in text


def test_a_filter_added_without_docs_fails() -> None:
    reference = generator()
    with pytest.raises(reference.MissingDocs, match="filter 'shiny' needs an entry"):
        reference.render(filters={**ENV.filters, "shiny": lambda value: value})


def test_a_cel_function_or_variable_added_without_docs_fails() -> None:
    reference = generator()
    registered = reference.registered_cel_functions()
    with pytest.raises(reference.MissingDocs, match="CEL function 'shiny' has no entry"):
        reference.render(cel_functions=[*registered, "shiny"])
    with pytest.raises(reference.MissingDocs, match="variable 'shiny' needs an entry"):
        reference.render(variables=(*VARIABLES, "shiny"))


def test_docs_for_nothing_and_broken_examples_fail() -> None:
    reference = generator()
    broken = data()
    broken["filters"]["upper"]["example"] = "{{ object.nosuch | upper }}"
    broken["filters"]["gone"] = {"what": "x", "example": "{{ 1 }}"}
    broken["cel"]["size"]["examples"] = ["size(object.spec.replicas)"]
    with pytest.raises(reference.MissingDocs) as raised:
        reference.render(data=broken)
    message = str(raised.value)
    assert "filter 'upper': example '{{ object.nosuch | upper }}' fails" in message
    assert "filter 'gone' is documented but not a filter" in message
    assert "CEL function 'size': example 'size(object.spec.replicas)' fails" in message


def test_the_script_checks() -> None:
    check = subprocess.run([sys.executable, str(ROOT / "docs" / "reference.py"), "--check"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
