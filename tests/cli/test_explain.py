"""`edict explain`, `edict apply -o diff --explain` and the summary line of `edict apply`,
on a corpus of three rule sets that all change one Deployment (tests/cli/explain/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli.main import main

HERE = Path(__file__).resolve().parent / "explain"
RULES = str(HERE / "rules.yaml")
OBJECTS = str(HERE / "objects.yaml")
ROOT = HERE.parents[2]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def fields(report: str) -> dict[str, str]:
    """`path -> rule set, rule` from the `fields changed:` part of a report."""
    part = report.split("fields changed:")[1].split("generated for it:")[0]
    rows = [line.split(None, 1) for line in part.strip().splitlines()]
    return {path: who.strip() for path, who in rows}


def test_every_changed_field_names_the_rule_that_set_it_last(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "-r", RULES, "-f", OBJECTS)
    assert code == 0
    assert out.startswith("Deployment shop/web: changed\n")
    assert fields(out) == {
        "/metadata/labels/app.kubernetes.io~1part-of":
            "ClusterRuleSet platform-base, rule 'part-of'",
        # part-of set it first; reviewed, which runs later, set it again
        "/metadata/labels/managed": "ClusterRuleSet review, rule 'reviewed'",
        "/metadata/labels/team": "ClusterRuleSet team-payments, rule 'team'",
        "/metadata/annotations/reviewed": "ClusterRuleSet review, rule 'reviewed'",
        "/spec/template/spec/containers/0/resources/limits/cpu":
            "ClusterRuleSet team-payments, rule 'limits'",
        "/spec/replicas": "ClusterRuleSet platform-base, rule 'replicas'",
    }


def test_every_rule_says_why_it_matched_or_not_and_what_it_did(
        capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", "-r", RULES, "-f", OBJECTS)
    rules = re.findall(r"^    \d+\. (.*)$", out, re.MULTILINE)
    assert rules == [
        "ClusterRuleSet platform-base, rule 'part-of' (mutate): matched",
        "ClusterRuleSet platform-base, rule 'replicas' (mutate): matched",
        "ClusterRuleSet team-payments, rule 'team' (mutate): matched",
        "ClusterRuleSet team-payments, rule 'limits' (mutate): matched",
        "ClusterRuleSet review, rule 'reviewed' (mutate): matched",
        "ClusterRuleSet review, rule 'only-other' (mutate): not matched: name 'web' is not "
        "in match.names ['other']",
        "ClusterRuleSet review, rule 'not-kube-system' (mutate): not matched: excluded: "
        "exclude.namespaces ['shop'] holds",
    ]
    reviewed = out.split("rule 'reviewed'")[1].split("6.")[0]
    # its condition reads a label an earlier rule sets: false on the input, true when it ran
    assert "condition: true (false on the input: earlier rules changed what it reads)" in (
        reviewed)
    assert "outcome: applied" in reviewed
    assert "wrote: /metadata/labels/managed, /metadata/annotations/reviewed" in reviewed


def test_explain_one_object_of_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "-r", str(ROOT / "rules"), "-f",
                       str(ROOT / "examples" / "shop.yaml"), "--object", "Namespace/shop")
    assert code == 0 and out.startswith("Namespace shop: unchanged")
    assert ("ResourceQuota shop/default-quota: created by rule set 'namespace-bootstrap', "
            "rule 'quota-and-limits'") in out
    assert "36 rules about other kinds: --all lists them" in out
    _, every, _ = run(capsys, "explain", "-r", str(ROOT / "rules"), "-f",
                      str(ROOT / "examples" / "shop.yaml"), "--object", "Namespace/shop",
                      "--all")
    assert "not matched: match.resources names apps/v1 Deployment" in every
    assert run(capsys, "explain", "-r", RULES, "-f", OBJECTS, "--object", "Pod/x/y")[0] == 2


def test_apply_diff_explain_names_the_rules_of_each_hunk(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "apply", "-r", RULES, "-f", OBJECTS, "-o", "diff",
                         "--explain")
    assert code == 0
    hunks = [line for line in out.splitlines() if line.startswith("@@")]
    assert hunks == [
        "@@ -3,6 +3,12 @@ ClusterRuleSet platform-base, rule 'part-of'; ClusterRuleSet "
        "team-payments, rule 'team'; ClusterRuleSet review, rule 'reviewed'",
        "@@ -15,3 +21,7 @@ ClusterRuleSet platform-base, rule 'replicas'; ClusterRuleSet "
        "team-payments, rule 'limits'",
    ]
    assert err.strip().splitlines()[-1] == (
        "edict: 1 object changed; children: 0 created, 0 updated, 0 pruned; 0 rules "
        "skipped for missing data; 2 rules matched nothing (ClusterRuleSet review "
        "'only-other', ClusterRuleSet review 'not-kube-system'); 0 errors")
    assert run(capsys, "apply", "-r", RULES, "-f", OBJECTS, "--explain")[0] == 2


def test_apply_summary_counts_children_and_missing_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text("""
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: kids}
spec:
  rules:
  - name: child
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}], names: [trigger-*]}
    condition: "object.data.wanted == 'yes'"
    generate:
      template:
        apiVersion: v1
        kind: Secret
        metadata: {name: "{{ object.metadata.name }}-secret"}
""")
    (tmp_path / "objects.yaml").write_text("""
apiVersion: v1
kind: ConfigMap
metadata: {name: trigger-a, namespace: ns}
data: {wanted: "yes"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: trigger-b, namespace: ns}
data: {other: "1"}
""")
    code, _, err = run(capsys, "apply", "-r", str(tmp_path / "rules.yaml"), "-f",
                       str(tmp_path / "objects.yaml"))
    assert code == 0
    assert err.strip().splitlines()[-1] == (
        "edict: 0 objects changed; children: 1 created, 0 updated, 0 pruned; 1 rule "
        "skipped for missing data; 0 rules matched nothing; 0 errors")
