"""The gallery of operators (rules/<name>/operator.yaml): each is one ClusterRuleSet
declaring its API, its tests pass, its rbac.yaml is what `edict rbac` prints, and
docs/gallery.md counts its lines, and those of its kro twin, as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ["postgres", "static-site", "postgres-backup", "tenant", "app-with-migrations"]


def lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("name", GALLERY)
def test_each_operator_is_one_rule_set_with_its_api_and_passing_tests(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = ROOT / "rules" / name
    (rule_set,) = [d for d in yaml.safe_load_all((folder / "operator.yaml").read_text())]
    assert rule_set["kind"] == "ClusterRuleSet" and rule_set["spec"]["api"]["kind"]
    assert main(["test", str(folder)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert re.search(r"^[1-9]\d* passed, 0 failed$", out, re.MULTILINE), out
    assert main(["rbac", f"rules/{name}/"]) == 0
    assert capsys.readouterr().out == (folder / "rbac.yaml").read_text()


def test_the_gallery_table_counts_the_lines_as_they_are() -> None:
    table = (ROOT / "docs" / "gallery.md").read_text()
    for name in GALLERY:
        row = re.search(rf"^\| \[{re.escape(name)}\]\(.*\| (\d+) \| (\d+) \|$", table,
                        re.MULTILINE)
        assert row, f"no row for {name}"
        kro = ROOT / "docs" / "gallery" / f"{name}.kro.yaml"
        assert yaml.safe_load(kro.read_text())["kind"] == "ResourceGraphDefinition"
        assert (int(row[1]), int(row[2])) == (
            lines(ROOT / "rules" / name / "operator.yaml"), lines(kro)), name
