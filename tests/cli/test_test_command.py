"""`edict test`: what a failing case prints, `--explain`, `runTwice` and `writes`."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
RULES = (Path(__file__).resolve().parent / "explain" / "rules.yaml").read_text()

CASE = """
apiVersion: edict.dev/v1alpha1
kind: RuleTest
metadata: {name: NAME}
spec:
  objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      template: {spec: {containers: [{name: web, image: nginx}]}}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: other, namespace: shop}
EXTRA
"""


def folder(tmp_path: Path, *cases: str) -> str:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "cases.yaml").write_text("---\n".join(cases))
    return str(tmp_path)


def case(name: str, extra: str) -> str:
    return CASE.replace("NAME", name).replace("EXTRA", extra)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test", *args])
    return code, capsys.readouterr().out


def test_a_failing_case_prints_the_patch_and_every_rules_outcome(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder(tmp_path, case("wrong", """  expect:
    outcomes:
    - {rule: team, object: Deployment shop/web, status: unchanged}
"""))
    code, out = run(capsys, path)
    assert code == 1
    lines = [line.strip() for line in out.splitlines()]
    failure = lines.index("- rule 'team' on Deployment shop/web: outcome ['applied'], "
                          "expected 'unchanged'")
    assert lines[failure + 1:failure + 14] == [
        "Deployment shop/web:",
        "patch:",
        "add /metadata/labels {'app.kubernetes.io/part-of': 'shop', 'managed': 'yes', "
        "'team': 'payments'}",
        "add /metadata/annotations {'reviewed': 'yes'}",
        "add /spec/template/spec/containers/0/resources {'limits': {'cpu': '500m'}}",
        "add /spec/replicas 2",
        "outcomes:",
        "ClusterRuleSet platform-base, rule 'part-of': applied: wrote "
        "/metadata/labels/app.kubernetes.io~1part-of, /metadata/labels/managed",
        "ClusterRuleSet platform-base, rule 'replicas': applied: wrote /spec/replicas",
        "ClusterRuleSet team-payments, rule 'team': applied: wrote /metadata/labels/team",
        "ClusterRuleSet team-payments, rule 'limits': applied: wrote "
        "/spec/template/spec/containers/name=web/resources/limits/cpu",
        "ClusterRuleSet review, rule 'reviewed': applied: wrote /metadata/labels/managed, "
        "/metadata/annotations/reviewed",
        "0 passed, 1 failed",
    ]
    assert "ConfigMap shop/other" not in out  # the failure is not about it


def test_explain_prints_the_report_of_every_object_of_one_case(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder(tmp_path, case("one", ""), case("two", ""))
    code, out = run(capsys, path, "--explain", "two")
    assert code == 0
    assert out.startswith(f"case two ({tmp_path}/tests/cases.yaml#2)")
    assert "Deployment shop/web: changed" in out and "ConfigMap shop/other: unchanged" in out
    assert "/metadata/labels/team" in out and "ClusterRuleSet team-payments, rule 'team'" in out
    assert main(["test", path, "--explain", "three"]) == 2


def test_writes_counts_what_the_run_would_write(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder(tmp_path, case("once", "  expect: {writes: 1}"),
                  case("twice", "  runTwice: true\n  expect: {writes: 0}"),
                  case("twice-wrong", "  runTwice: true\n  expect: {writes: 1}"))
    code, out = run(capsys, path)
    assert code == 1
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()
            if line and not line.startswith(" ")}
    assert rows["once"] == "PASS" and rows["twice"] == "PASS"
    assert rows["twice-wrong"] == "FAIL"
    assert "- 0 writes, expected 1: none" in out
    (tmp_path / "tests" / "cases.yaml").write_text(case("counted", "  expect: {writes: 5}"))
    _, out = run(capsys, path)
    assert "- 1 writes, expected 5: patch Deployment shop/web" in out


def test_run_twice_keeps_the_first_runs_children_and_applies_changes_between(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # RuleTest paths stay inside the test's tree: work on a copy of the shipped rule set
    rules = "ruleset.yaml"
    (tmp_path / rules).write_text(
        (ROOT / "rules" / "namespace-bootstrap" / "ruleset.yaml").read_text())
    (tmp_path / "case.yaml").write_text(f"""
apiVersion: edict.dev/v1alpha1
kind: RuleTest
metadata: {{name: changed-between-runs}}
spec:
  ruleSets: [{rules}]
  objects:
  - apiVersion: v1
    kind: Namespace
    metadata: {{name: team-x, uid: u-1, labels: {{edict.dev/bootstrap: "true"}}}}
  runTwice:
    objects:
    - apiVersion: v1
      kind: Namespace
      metadata:
        name: team-x
        uid: u-1
        labels: {{edict.dev/bootstrap: "true", edict.dev/allow-all: "true"}}
    delete:
    - {{apiVersion: v1, kind: LimitRange,
       metadata: {{name: container-defaults, namespace: team-x}}}}
  # END
  expect:
    writes: 2  # the LimitRange made again, the NetworkPolicy pruned
    generated:
    - {{apiVersion: v1, kind: ResourceQuota, metadata: {{name: default-quota, namespace: team-x}}}}
    - {{apiVersion: v1, kind: LimitRange,
       metadata: {{name: container-defaults, namespace: team-x}}}}
    absent:
    - {{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy,
       metadata: {{name: default-deny, namespace: team-x}}}}
""")
    code, out = run(capsys, str(tmp_path / "case.yaml"))
    assert code == 0, out
    text = (tmp_path / "case.yaml").read_text()
    once = text[:text.index("  runTwice:")] + text[text.index("  # END\n") + 8:]
    (tmp_path / "once.yaml").write_text(once)  # one run: 3 creates, the policy stays
    code, out = run(capsys, str(tmp_path / "once.yaml"))
    assert code == 1 and "- 3 writes, expected 2: create" in out
    assert "NetworkPolicy team-x/default-deny exists, expected absent" in out
    (tmp_path / "case.yaml").write_text(
        (tmp_path / "case.yaml").read_text().replace("runTwice:", "runTwice: [1]\n  x:"))
    assert main(["test", str(tmp_path / "case.yaml")]) == 2
