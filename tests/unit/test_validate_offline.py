"""Validate rules offline: `edict apply` lists violations and exits 1, `edict test` cases
expect them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main

RULES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: images}
spec:
  rules:
  - name: pinned
    match: {resources: [{apiVersion: apps/v1, kinds: [Deployment]}]}
    validate:
      expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"
      message: images must be pinned to a tag or digest
"""


def deployment(name: str, image: str) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  template: {{spec: {{containers: [{{name: app, image: "{image}"}}]}}}}
"""


def test_apply_lists_violations_on_stderr_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "app.yaml").write_text(deployment("good", "nginx:1.27") + "---"
                                       + deployment("bad", "nginx:latest"))
    code = main(["apply", "-r", str(tmp_path / "rules.yaml"), "-f", str(tmp_path / "app.yaml")])
    out = capsys.readouterr()
    assert code == 1
    lines = [line for line in out.err.splitlines() if "violation" in line]
    assert lines[0] == ("edict: ClusterRuleSet images, rule 'pinned', Deployment shop/bad: "
                        "violation: images must be pinned to a tag or digest"), out.err
    assert lines[-1].endswith("0 errors; 1 violation"), out.err
    assert "Deployment shop/good" not in out.err
    assert "name: bad" in out.out, "objects are printed all the same"


def test_apply_exits_0_when_everything_holds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "app.yaml").write_text(deployment("good", "nginx:1.27"))
    assert main(["apply", "-r", str(tmp_path / "rules.yaml"), "-f",
                 str(tmp_path / "app.yaml")]) == 0
    assert "violation" not in capsys.readouterr().err


CASE = """
apiVersion: edict.dev/v1alpha1
kind: RuleTest
metadata: {{name: {name}}}
spec:
  objects:
  - {obj}
  expect:
{expect}
"""


def run_case(tmp_path: Path, name: str, image: str, expect: str,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "tests").mkdir(exist_ok=True)
    obj = ("{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop}, "
           f"spec: {{template: {{spec: {{containers: [{{name: app, image: '{image}'}}]}}}}}}}}")
    (tmp_path / "tests" / "case.yaml").write_text(CASE.format(name=name, obj=obj,
                                                              expect=expect))
    code = main(["test", str(tmp_path)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(("image", "expect", "passes", "says"), [
    ("nginx:latest", "    violations:\n    - {rule: pinned, object: Deployment shop/web, "
     "message: must be pinned}", True, "1 passed"),
    ("nginx:latest", "    violations: 1\n    outcomes:\n    - {rule: pinned, status: violation}",
     True, "1 passed"),
    ("nginx:latest", "    writes: 0", False, "1 violations, expected 0"),
    ("nginx:1.27", "    violations:\n    - {rule: pinned}", False, "no violation like"),
    ("nginx:latest", "    violations:\n    - {rule: pinned, message: something else}", False,
     "unexpected violation of rule 'pinned' on Deployment shop/web"),
])
def test_rule_test_cases_expect_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           image: str, expect: str, passes: bool,
                                           says: str) -> None:
    code, out = run_case(tmp_path, "case", image, expect, capsys)
    assert (code == 0) is passes, out
    assert says in out, out
