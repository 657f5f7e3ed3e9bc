"""`edict lint`: the corpus of rule sets with one mistake each, and the shipped rule sets.

Each file of tests/lint_corpus/ holds one mistake, marked on its line with a comment
`# <- CODE`: lint must exit 1 and report CODE at that file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "lint_corpus").glob("*.yaml"))
MARK = re.compile(r"#\s*<-\s*([a-z-]+)\s*$")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["lint", *args])
    return code, capsys.readouterr().out


def expected(path: Path) -> tuple[int, str]:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        found = MARK.search(line)
        if found:
            return number, found.group(1)
    raise AssertionError(f"{path.name} marks no mistake with '# <- CODE'")


def test_the_corpus_covers_every_kind_of_mistake() -> None:
    assert len(CORPUS) >= 30
    codes = {expected(path)[1] for path in CORPUS}
    assert {"unknown-field", "schema", "cel-compile", "undefined-variable", "undefined-param",
            "undefined-context", "item-outside-foreach", "unknown-filter", "unknown-test",
            "template-syntax", "never-matches", "never-applies", "overlap", "unknown-kind",
            "unknown-api-version", "unknown-path", "type-mismatch"} <= codes


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_mistake_is_found_at_its_line(path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    line, code = expected(path)
    exit_code, out = run(capsys, str(path))
    assert exit_code == 1, out
    reported = [row for row in out.splitlines() if row.startswith(f"{path}:{line}:")]
    assert any(f": {code}: " in row for row in reported), out


def test_the_shipped_rule_sets_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code, out = run(capsys, str(ROOT / "rules"))
    assert exit_code == 0, out
    assert out.strip().splitlines()[-1] == (
        "13 rule sets, 40 rules: 0 findings (15 accepted by comments)")


def test_warn_only_prints_but_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "tests" / "lint_corpus" / "template-undefined-variable.yaml"
    exit_code, out = run(capsys, "--warn-only", str(path))
    assert exit_code == 0
    assert "undefined-variable" in out and "(did you mean 'params'?)" in out


def test_a_comment_accepts_a_finding_on_its_line_or_its_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = (ROOT / "tests" / "lint_corpus" / "overlap-json-patch.yaml").read_text()
    on_line = source.replace("# <- overlap", "# edict-lint: ignore[overlap]")
    (tmp_path / "line.yaml").write_text(on_line)
    assert run(capsys, str(tmp_path / "line.yaml"))[0] == 0
    on_rule = source.replace("  - name: two", "  - name: two  # edict-lint: ignore[overlap]")
    (tmp_path / "rule.yaml").write_text(on_rule)
    exit_code, out = run(capsys, str(tmp_path / "rule.yaml"))
    assert exit_code == 0 and "(1 accepted by comments)" in out
    other_code = source.replace("  - name: two", "  - name: two  # edict-lint: ignore[schema]")
    (tmp_path / "other.yaml").write_text(other_code)
    assert run(capsys, str(tmp_path / "other.yaml"))[0] == 1


def test_guarded_reads_and_real_keys_are_not_findings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.yaml").write_text("""
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: fine}
spec:
  params: {team: platform, quota: {cpu: "1"}, list: [{a: 1}]}
  rules:
  - name: fine
    match: {resources: [{apiVersion: apps/v1, kinds: [Deployment]}]}
    context:
      settings: {apiVersion: v1, kind: ConfigMap, name: "{{ params.team }}-settings"}
    condition: >-
      params.team != '' && context.settings != null &&
      object.spec.template.spec.containers.all(c, c.name != '')
    mutate:
      forEach: "object.spec.template.spec.containers"
      template:
        metadata:
          labels:
            team: "{{ params.team }}"
            optional: "{{ params.missing | default('none') }}"
            defined: "{{ 'yes' if params.other is defined else 'no' }}"
            by-method: "{{ params.get('absent', 'x') }}"
            listed: "{{ params.list[0].b | default(1) }}"
            cpu: "{{ params.quota.cpu }}"
            loop: "{% for k in params.quota %}{{ k }}{% endfor %}"
            set: "{% set n = object.metadata.name %}{{ n }}"
            index: "{% for k in params.quota %}{{ loop.index }}{% endfor %}"
            macro: "{% macro f(n) %}{{ n }}{{ caller() if caller }}{% endmacro %}{{ f(1) }}"
        spec:
          template:
            spec:
              containers:
              - name: "{{ item.name }}"
                env: [{name: TEAM, value: "{{ context.settings.data.team }}"}]
""")
    exit_code, out = run(capsys, str(tmp_path / "ok.yaml"))
    assert exit_code == 0, out


WEBAPP_RULES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: webapps}
spec:
  rules:
  - name: image
    match: {resources: [{apiVersion: example.edict.dev/v1, kinds: [WebApp]}]}
    condition: "object.spec.replicas > 1"
    mutate: {template: {spec: {IMAGE: nginx}}}
"""


def test_crds_add_kinds_and_their_schemas(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(WEBAPP_RULES.replace("IMAGE", "image"))
    crd = str(ROOT / "rules" / "webapp-operator" / "crd.yaml")
    exit_code, out = run(capsys, str(rules))
    assert exit_code == 1 and ": unknown-api-version: " in out and "--crds" in out
    assert run(capsys, str(rules), "--crds", crd) == (0, "1 rule sets, 1 rules: 0 findings\n")
    rules.write_text(WEBAPP_RULES.replace("IMAGE", "imag"))
    exit_code, out = run(capsys, str(rules), "--crds", crd)
    assert exit_code == 1
    assert (f"{rules}:10:32: unknown-path: ClusterRuleSet webapps, rule 'image', "
            "spec.rules[0].mutate.template.spec.imag: WebApp has no field 'imag' (did you "
            "mean 'image'?) under spec") in out


def test_overlaps_are_reported_for_every_pair_and_every_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = "\n".join(f"""  - name: r{n}
    match: {{resources: [{{apiVersion: v1, kinds: [ConfigMap]}}]}}
    mutate: {{template: {{metadata: {{labels: {{a: "{n}", b: "{n}"}}}}}}}}""" for n in range(3))
    (tmp_path / "rules.yaml").write_text(f"""
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {{name: three}}
spec:
  rules:
{rules}
""")
    exit_code, out = run(capsys, str(tmp_path / "rules.yaml"))
    assert exit_code == 1
    found = sorted((row.split("rule '")[2][:2], row.split("rule '")[3][:2],
                    row.split("can both write ")[1].split(" ")[0])
                   for row in out.splitlines() if ": overlap: " in row)
    assert found == sorted((first, second, f"/metadata/labels/{label}")
                           for first, second in (("r0", "r1"), ("r0", "r2"), ("r1", "r2"))
                           for label in "ab")
