"""`edict graph`: the shipped rule sets (a cascade, no cycle) and planted cycles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli.graph import cycles
from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

PLANTED = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: loop}
spec:
  rules:
  - name: secret-per-configmap
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    generate:
      template:
        apiVersion: v1
        kind: Secret
        metadata: {name: "{{ object.metadata.name }}-s"}
  - name: configmap-per-secret
    match: {resources: [{apiVersion: v1, kinds: [Secret]}]}
    context:
      settings: {apiVersion: v1, kind: ConfigMap, name: settings}
    generate:
      template:
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: "{{ object.metadata.name }}-c"}
  - name: label-namespaces
    match:
      resources: [{apiVersion: v1, kinds: [Namespace]}]
    mutate: {template: {metadata: {labels: {seen: "yes"}}}}
---
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: self}
spec:
  rules:
  - name: copies
    match: {resources: [{apiVersion: v1, kinds: [ServiceAccount]}]}
    condition: "namespaceObject != null"
    generate:
      template:
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: "{{ object.metadata.name }}-copy"}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["graph", *args])
    return code, capsys.readouterr().out


@pytest.fixture
def planted(tmp_path: Path) -> str:
    path = tmp_path / "loop.yaml"
    path.write_text(PLANTED)
    return str(path)


def test_the_shipped_rule_sets_cascade_without_cycles(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "-r", str(ROOT / "rules"))
    assert code == 0
    assert "webapp-operator/workload -> apps/v1 Deployment -> default-labels/default-owner" in (
        out)
    assert "reads:     apps/v1 Deployment (context.deployment)" in out
    assert "writes:    example.edict.dev/v1 WebApp status" in out
    assert "generates: v1 ResourceQuota, v1 LimitRange" in out
    assert out.rstrip().endswith("cycles: none")


def test_a_planted_cycle_is_found_in_text(planted: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "-r", planted)
    assert code == 1
    assert ("CYCLE: loop/secret-per-configmap -> loop/configmap-per-secret -> "
            "loop/secret-per-configmap") in out
    assert "CYCLE: self/copies -> self/copies" in out
    assert "loop/label-namespaces\n" in out  # not in a cycle: no flag
    assert "loop/secret-per-configmap  [cycle]" in out
    assert "reads:     v1 ConfigMap (context.settings)" in out
    assert "reads:     v1 Namespace (namespaceObject)" in out


def test_dot_and_mermaid_draw_the_cycle(planted: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, dot = run(capsys, "-r", planted, "-o", "dot")
    assert dot.startswith("digraph edict {") and dot.rstrip().endswith("}")
    ids = dict(re.findall(r'^  (r\d+) \[shape=box, label="([^"\\]+)', dot, re.MULTILINE))
    kinds = dict(re.findall(r'^  (k\d+) \[shape=ellipse, label="([^"]+)"', dot, re.MULTILINE))
    by_name = {name: ident for ident, name in ids.items()}
    by_kind = {name: ident for ident, name in kinds.items()}
    assert (f'{by_name["loop/secret-per-configmap"]} -> {by_kind["v1 Secret"]} '
            '[label="generates", style=bold];') in dot
    assert (f'{by_kind["v1 Secret"]} -> {by_name["loop/configmap-per-secret"]} '
            '[label="matches", style=solid];') in dot
    assert 'color=red' in dot.split(by_name["self/copies"] + " [")[1].split("\n")[0]
    _, chart = run(capsys, "-r", planted, "-o", "mermaid")
    assert chart.startswith("flowchart LR\n")
    rules = dict(re.findall(r'^  (r\d+)\["([^<"]+)', chart, re.MULTILINE))
    names = {name: ident for ident, name in rules.items()}
    assert f'{names["self/copies"]}["self/copies<br/><i>generate</i>"]:::cycle' in chart
    assert f'{names["loop/label-namespaces"]}["loop/label-namespaces<br/><i>mutate</i>"]\n' in (
        chart)
    assert "classDef cycle" in chart
    secret = dict(re.findall(r'^  (k\d+)\(\["([^"]+)"\]\)', chart, re.MULTILINE))
    secret_id = {name: ident for ident, name in secret.items()}["v1 Secret"]
    assert f"{names['loop/secret-per-configmap']} ==>|generates| {secret_id}" in chart
    assert f"{secret_id} -->|matches| {names['loop/configmap-per-secret']}" in chart


def test_cycles_finds_rings_and_self_loops_only() -> None:
    assert cycles({"a": ["b"], "b": ["c"], "c": []}) == []
    assert cycles({"a": ["b"], "b": ["a"], "c": ["a"]}) == [["a", "b"]]
    assert cycles({"a": ["a"], "b": ["c"], "c": ["d"], "d": ["b"]}) == [["a"], ["b", "c", "d"]]


def test_the_readme_shows_the_current_graph_of_the_shipped_rule_sets(
        capsys: pytest.CaptureFixture[str]) -> None:
    _, chart = run(capsys, "-r", str(ROOT / "rules"), "-o", "mermaid")
    readme = (ROOT / "README.md").read_text()
    assert f"```mermaid\n{chart}```" in readme, (
        "README's graph is stale: paste `edict graph -r rules/ -o mermaid` into it")
