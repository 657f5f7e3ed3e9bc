"""`edict graph` shows which generate rules wait for which (`after`) and flags a ring of
them, which no rule on it could ever get out of."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main
from engine.evaluate.order import rings


def rule(name: str, kind: str, *after: str) -> str:
    return f"""
  - name: {name}
    match: {{resources: [{{apiVersion: v1, kinds: [ConfigMap]}}]}}
    generate:
      after: [{", ".join(after)}]
      template: {{apiVersion: v1, kind: {kind}, metadata: {{name: "x-{name}"}}}}"""


def rule_set(*rules: str) -> str:
    return ("apiVersion: edict.dev/v1alpha1\nkind: ClusterRuleSet\nmetadata: {name: app}\n"
            "spec:\n  rules:" + "".join(rules) + "\n")


def graph(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str
          ) -> tuple[int, str]:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    code = main(["graph", "-r", str(path), *args])
    return code, capsys.readouterr().out


def test_an_order_is_shown_and_is_no_problem(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = rule_set(rule("db", "Secret"), rule("migrate", "Service", "db"),
                    rule("web", "Endpoints", "migrate", "db"))
    code, out = graph(tmp_path, capsys, text)
    assert code == 0, out
    assert "  after:     app/migrate, app/db" in out
    assert "rings of after" not in out
    code, out = graph(tmp_path, capsys, text, "-o", "mermaid")
    assert code == 0
    assert out.count("-.->|before|") == 3


def test_a_ring_is_flagged_with_exit_code_1(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = rule_set(rule("a", "Secret", "c"), rule("b", "Service", "a"),
                    rule("c", "Endpoints", "b"), rule("d", "Pod", "a"))
    code, out = graph(tmp_path, capsys, text)
    assert code == 1
    assert "  RING: app/a -> app/c -> app/b -> app/a" in out
    assert "app/d  [cycle]" not in out and "app/a  [cycle]" in out
    code, out = graph(tmp_path, capsys, text, "-o", "dot")
    assert code == 1 and 'label="before", style=dashed' in out


@pytest.mark.parametrize(("edges", "expected"), [
    ({"a": ["b"], "b": ["a"]}, [["a", "b"]]),
    ({"a": ["a"]}, [["a"]]),
    ({"a": ["b"], "b": ["c"]}, []),
    ({"a": ["b", "c"], "b": ["a"], "c": ["a"]}, [["a", "c"], ["a", "b"]]),
])
def test_rings(edges: dict[str, list[str]], expected: list[list[str]]) -> None:
    assert rings(edges) == expected
