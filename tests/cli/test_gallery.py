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


def test_the_readme_opens_with_an_operator_that_works(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A rule set"):]
    example = section[section.index("```yaml\n") + 8:section.index("```\n", 10)]
    rules = tmp_path / "webapps.yaml"
    rules.write_text(example)
    assert main(["lint", str(rules)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    app = tmp_path / "app.yaml"
    app.write_text("apiVersion: example.com/v1alpha1\nkind: WebApp\n"
                   "metadata: {name: shop, namespace: team-a, uid: u1}\n"
                   "spec: {image: 'shop:1.4'}\n")
    assert main(["apply", "-r", str(rules), "-f", str(app)]) == 0
    out = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    webapp, deployment = out[0], out[1]
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/example/shop:1.4")
    assert [d["kind"] for d in out[1:]] == ["Deployment"]  # the Service waits
    assert webapp["status"]["url"] == "http://shop.team-a.svc"
    assert {c["type"]: c["status"] for c in webapp["status"]["conditions"]} == {
        "Ready": "False", "DeploymentReady": "False", "ServiceReady": "False"}
    assert main(["crd", str(rules)]) == 0
    (crd,) = list(yaml.safe_load_all(capsys.readouterr().out))
    assert crd["metadata"]["name"] == "webapps.example.com"
