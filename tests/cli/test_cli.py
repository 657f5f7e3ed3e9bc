"""`edict` as a user runs it: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def edict(*args: str, stdin: str | None = None,
          cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


RULES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: team}
spec:
  params: {team: platform}
  rules:
  - name: owner
    match: {resources: [{apiVersion: apps/v1, kinds: [Deployment]}]}
    mutate: {template: {metadata: {labels: {owner: "{{ params.team }}"}}}}
  - name: broken
    match: {resources: [{apiVersion: apps/v1, kinds: [Deployment]}]}
    mutate: {template: {metadata: {labels: {x: "{{ object.missing.key }}"}}}}
"""

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: untouched, namespace: shop}
data: {a: "1"}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


COMMANDS = ("apply", "test", "lint", "explain", "graph", "rbac", "plan", "run")


def test_help_explains_every_command_with_an_example_and_names_no_module() -> None:
    out = edict("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert f"\n  {command} " in out.stdout
    assert "edict apply -r" in out.stdout and "docs/reference.md" in out.stdout
    assert "engine." not in out.stdout
    for command in COMMANDS:
        sub = edict(command, "--help")
        assert sub.returncode == 0 and "example:" in sub.stdout, command
        assert "engine." not in sub.stdout, f"edict {command} --help names a module"


def test_apply_prints_every_object_and_reports_the_broken_rule(tmp_path: Path) -> None:
    out = edict("apply", "-r", write(tmp_path, "r.yaml", RULES), "-f",
                write(tmp_path, "m.yaml", MANIFESTS))
    assert out.returncode == 1, out.stderr
    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["kind"] for d in docs] == ["Deployment", "ConfigMap"]
    assert docs[0]["metadata"]["labels"] == {"owner": "platform"}
    assert docs[1] == yaml.safe_load(MANIFESTS.split("---")[1])
    assert "ClusterRuleSet team, rule 'broken', Deployment shop/web: error" in out.stderr
    assert "Traceback" not in out.stderr


def test_apply_reads_stdin_and_prints_json_patch_and_diff(tmp_path: Path) -> None:
    rules = write(tmp_path, "r.yaml", RULES.split("  - name: broken")[0])
    as_json = edict("apply", "-r", rules, "-f", "-", "-o", "json", stdin=MANIFESTS)
    assert as_json.returncode == 0, as_json.stderr
    listing: dict[str, Any] = json.loads(as_json.stdout)
    assert listing["kind"] == "List" and len(listing["items"]) == 2
    patch = edict("apply", "-r", rules, "-f", "-", "-o", "patch", stdin=MANIFESTS)
    entries = list(yaml.safe_load_all(patch.stdout))
    assert entries == [{"object": {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "namespace": "shop", "name": "web"},
                        "patch": [{"op": "add", "path": "/metadata/labels",
                                   "value": {"owner": "platform"}}]}]
    diff = edict("apply", "-r", rules, "-f", "-", "-o", "diff", stdin=MANIFESTS)
    assert "+  labels:" in diff.stdout and "+    owner: platform" in diff.stdout
    assert "ConfigMap" not in diff.stdout


def test_apply_on_the_shipped_example_generates_children() -> None:
    out = edict("apply", "-r", "rules/", "-f", "examples/shop.yaml")
    assert out.returncode == 0, out.stderr
    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out.stdout)]
    assert kinds[:3] == [("Namespace", "shop"), ("Deployment", "web"), ("WebApp", "hello")]
    assert ("ResourceQuota", "default-quota") in kinds and ("Service", "hello") in kinds


def test_unusable_input_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    missing = edict("apply", "-r", "nope.yaml", "-f", "nope.yaml")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = edict("apply", "-r", write(tmp_path, "r.yaml", "a: [1"), "-f", "-", stdin="")
    assert broken.returncode == 2 and "not valid YAML" in broken.stderr
    assert "Traceback" not in missing.stderr + broken.stderr


def test_a_schema_error_names_rule_set_rule_and_field_and_the_rest_still_runs(
        tmp_path: Path) -> None:
    bad = RULES.replace("name: team", "name: bad").replace("kinds: [Deployment]}]}\n    mutate",
                                                           "kinds: []}]}\n    mutate", 1)
    good = RULES.split("  - name: broken")[0]
    rules = write(tmp_path, "r.yaml", bad + "---" + good)
    out = edict("apply", "-r", rules, "-f", "-", stdin=MANIFESTS)
    assert out.returncode == 1
    assert "rule set 'bad'" in out.stderr and "rule 'owner'" in out.stderr
    assert "spec.rules[0].match.resources[0].kinds" in out.stderr
    assert "owner: platform" in out.stdout


def test_test_command_runs_the_shipped_rule_sets() -> None:
    out = edict("test", "rules/")
    assert out.returncode == 0, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.endswith(" passed, 0 failed") and int(last.split()[0]) >= 10


def test_test_command_fails_a_wrong_expectation(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES.split("  - name: broken")[0])
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "case.yaml").write_text("""
apiVersion: edict.dev/v1alpha1
kind: RuleTest
metadata: {name: wrong-owner}
spec:
  objects:
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop}}
  expect:
    objects:
    - {apiVersion: apps/v1, kind: Deployment,
       metadata: {name: web, namespace: shop, labels: {owner: someone-else}}}
    outcomes:
    - {rule: owner, status: unchanged}
""")
    out = edict("test", str(tmp_path))
    assert out.returncode == 1
    assert "expected 'someone-else', got 'platform'" in out.stdout
    assert "outcome ['applied'], expected 'unchanged'" in out.stdout
    assert out.stdout.strip().endswith("0 passed, 1 failed")


def test_lint_reports_compile_errors_and_overlaps(tmp_path: Path) -> None:
    rules = RULES.replace("{{ object.missing.key }}", "{{ object.metadata.name }}")
    rules = rules.replace("labels: {x:", "labels: {owner:")
    rules += """  - name: bad-cel
    match: {resources: [{apiVersion: apps/v1, kinds: [Deployment]}]}
    condition: "object.spec.replicas +"
    mutate: {template: {metadata: {annotations: {a: b}}}}
"""
    path = write(tmp_path, "r.yaml", rules)
    out = edict("lint", path)
    assert out.returncode == 1
    assert f"{path}:16:16: cel-compile: ClusterRuleSet team, rule 'bad-cel', " in out.stdout
    assert f"{path}:13:52: overlap: ClusterRuleSet team, rule 'broken', " in out.stdout
    assert "/metadata/labels/owner" in out.stdout
    assert out.stdout.strip().endswith("1 rule sets, 3 rules: 2 findings")
    fixed = rules.split("  - name: bad-cel")[0]
    only_overlap = edict("lint", write(tmp_path, "ok.yaml", fixed))
    assert only_overlap.returncode == 1 and "1 findings" in only_overlap.stdout
    assert edict("lint", "--warn-only", str(tmp_path / "ok.yaml")).returncode == 0
    clean = edict("lint", "rules/")
    assert clean.returncode == 0, clean.stdout
