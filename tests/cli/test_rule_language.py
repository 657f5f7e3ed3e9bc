"""`variables` and `generate.clone` through the offline commands, as a user runs them:
`edict apply`, `edict test` on the documented example, `edict lint` and `edict rbac`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "pull-secret"


def edict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


VARIABLES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: named}
spec:
  rules:
  - name: owner
    match: {resources: [{apiVersion: apps/v1, kinds: [Deployment]}]}
    variables:
    - {name: team, expression: "object.metadata.?labels.?team.orValue('')"}
    - {name: owner, expression: "variables.team + '-owners'"}
    condition: "variables.team != ''"
    mutate: {template: {metadata: {annotations: {owner: "{{ variables.owner }}"}}}}
"""

DEPLOYMENTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {team: blue}}
spec: {replicas: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: loner, namespace: shop}
spec: {replicas: 1}
"""

SOURCE = """
apiVersion: v1
kind: Namespace
metadata: {name: team-a, uid: a, labels: {registry-access: "true", team: blue}}
---
apiVersion: v1
kind: Secret
metadata: {name: registry-pull, namespace: edict-system, uid: s, resourceVersion: "4"}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: e30=}
"""


def test_apply_computes_variables_for_the_condition_and_the_template(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(VARIABLES)
    (tmp_path / "in.yaml").write_text(DEPLOYMENTS)
    out = edict("apply", "-r", str(tmp_path / "rules.yaml"), "-f", str(tmp_path / "in.yaml"))
    assert out.returncode == 0, out.stderr
    web, loner = yaml.safe_load_all(out.stdout)
    assert web["metadata"]["annotations"] == {"owner": "blue-owners"}
    assert "annotations" not in loner["metadata"]


def test_an_unknown_variable_is_reported_by_apply_and_lint(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(VARIABLES.replace("variables.team != ''", "variables.teem != ''"))
    (tmp_path / "in.yaml").write_text(DEPLOYMENTS)
    applied = edict("apply", "-r", str(rules), "-f", str(tmp_path / "in.yaml"))
    assert "rule set 'named', rule 'owner', field condition: variables.teem is not a " \
           "variable of this rule" in applied.stderr
    linted = edict("lint", str(rules))
    assert linted.returncode == 1
    assert f"{rules}:12:16: undefined-variable:" in linted.stdout
    assert "did you mean 'team'?" in linted.stdout


def test_the_clone_example_passes_its_tests_and_lints_clean() -> None:
    tested = edict("test", str(EXAMPLE))
    assert tested.returncode == 0, tested.stdout
    assert tested.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"
    linted = edict("lint", str(EXAMPLE / "ruleset.yaml"))
    assert linted.returncode == 0, linted.stdout


def test_apply_copies_the_source_from_the_manifests(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(SOURCE)
    out = edict("apply", "-r", str(EXAMPLE / "ruleset.yaml"), "-f", str(tmp_path / "in.yaml"))
    assert out.returncode == 0, out.stderr
    copies = [d for d in yaml.safe_load_all(out.stdout)
              if d["kind"] == "Secret" and d["metadata"]["namespace"] == "team-a"]
    (copy,) = copies
    assert copy["data"] == {".dockerconfigjson": "e30="}
    assert copy["metadata"]["labels"]["team"] == "blue"
    assert "resourceVersion" not in copy["metadata"] and "uid" not in copy["metadata"]
    assert "1 created" in out.stderr


def test_rbac_grants_reading_the_source_kind() -> None:
    out = edict("rbac", str(EXAMPLE / "ruleset.yaml"))
    assert out.returncode == 0, out.stderr
    role = yaml.safe_load(out.stdout)
    (secrets,) = [r for r in role["rules"] if r["resources"] == ["secrets"]]
    assert {"get", "list", "watch"} <= set(secrets["verbs"])
    assert "# secrets: clone by pull-secret (copy-pull-secret)" in out.stdout
