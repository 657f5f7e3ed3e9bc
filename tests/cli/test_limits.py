"""``--limits FILE``: the CEL and template limits of one engine, for every command that
compiles or evaluates rules.

A limit lowered in a file turns a rule that passes by default into a rule error naming
the rule set, the rule, the field and the limit; a limit raised lets a heavier case
through; a file that cannot be used is one line on standard error and exit code 2.
The commands run in this process one after the other, so a limit that leaked from one
run into the next (module state) would show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cel.limits import CelLimits
from engine.cli.main import main
from engine.errors import InputError
from engine.evaluate.limits import DEFAULT_LIMITS, Limits, parse_limits
from engine.templating.limits import TemplateLimits

ROOT = Path(__file__).resolve().parents[2]

RULES = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: heavy}
spec:
  rules:
  - name: short-values
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    condition: "object.data.all(k, object.data[k].size() < 100)"
    mutate: {template: {metadata: {labels: {checked: "yes"}}}}
  - name: looped
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    mutate:
      template:
        metadata:
          annotations:
            loops: "{% for i in range(300) %}{% endfor %}done"
"""

CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "settings", "namespace": "shop"},
              "data": {f"key{i}": "v" * 10 for i in range(50)}}

HEAVIER = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: heavier}
spec:
  rules:
  - name: long-string
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    condition: "object.data.?big.orValue('').replace('a', 'b').replace('b', 'c') != 'z'"
    mutate: {template: {metadata: {labels: {long: "yes"}}}}
  - name: long-range
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    mutate: {template: {metadata: {annotations: {count: "n{{ range(150000) | length }}"}}}}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def apply(tmp_path: Path, rules: str, *extra: str, capsys: pytest.CaptureFixture[str],
          config_map: dict[str, Any] = CONFIG_MAP) -> tuple[int, str, str]:
    code = main(["apply", "-r", write(tmp_path, "rules.yaml", rules), "-f",
                 write(tmp_path, "cm.yaml", yaml.safe_dump(config_map)), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_lowered_limits_make_rules_that_pass_by_default_fail_naming_the_limit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = apply(tmp_path, RULES, capsys=capsys)
    assert code == 0, err
    result = yaml.safe_load(out)
    assert result["metadata"]["labels"] == {"checked": "yes"}
    assert result["metadata"]["annotations"] == {"loops": "done"}

    lowered = write(tmp_path, "limits.yaml",
                    "cel: {runtime_cost_limit: 100}\ntemplates: {max_operations: 200}\n")
    code, out, err = apply(tmp_path, RULES, "--limits", lowered, capsys=capsys)
    assert code == 1
    assert "labels" not in yaml.safe_load(out)["metadata"]
    cel, template = (line for line in err.splitlines() if ": error: " in line)
    assert "rule set 'heavy', rule 'short-values', field condition:" in cel
    assert "runtime_cost_limit" in cel
    assert "rule set 'heavy', rule 'looped', field mutate.template:" in template
    assert "more than 200 operations" in template and "max_operations" in template

    code, out, err = apply(tmp_path, RULES, capsys=capsys)  # nothing left behind
    assert code == 0, err


def test_raised_limits_let_a_heavier_case_pass(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = {**CONFIG_MAP, "data": {"big": "a" * 1_000_000}}  # a megabyte: 2.4M cost units
    code, out, err = apply(tmp_path, HEAVIER, capsys=capsys, config_map=big)
    assert code == 1
    assert "rule 'long-string', field condition:" in err
    assert "above the limit of 1,000,000" in err and "runtime_cost_limit" in err
    assert "rule 'long-range', field mutate.template:" in err and "max_items" in err

    raised = write(tmp_path, "limits.yaml", "cel:\n  runtime_cost_limit: 5000000\n"
                   "templates:\n  max_items: 200000\n")
    code, out, err = apply(tmp_path, HEAVIER, "--limits", raised, capsys=capsys,
                           config_map=big)
    assert code == 0, err
    result = yaml.safe_load(out)
    assert result["metadata"]["labels"] == {"long": "yes"}
    assert result["metadata"]["annotations"] == {"count": "n150000"}


def test_edict_test_and_lint_use_the_limits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path, "rules.yaml", RULES)
    case = {"apiVersion": "edict.dev/v1alpha1", "kind": "RuleTest",
            "metadata": {"name": "labels-the-config-map"},
            "spec": {"ruleSets": ["rules.yaml"], "objects": [CONFIG_MAP],
                     "expect": {"objects": [{"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "settings", "namespace": "shop",
                                                          "labels": {"checked": "yes"}}}]}}}
    tests = write(tmp_path, "case.yaml", yaml.safe_dump(case))
    assert main(["test", tests]) == 0, capsys.readouterr().out
    capsys.readouterr()
    lowered = write(tmp_path, "limits.yaml", "cel: {runtime_cost_limit: 100}\n")
    assert main(["test", tests, "--limits", lowered]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "runtime_cost_limit" in out

    assert main(["lint", rules]) == 0, capsys.readouterr().out
    capsys.readouterr()
    tiny = write(tmp_path, "tiny.yaml", "cel: {static_cost_limit: 5}\n")
    assert main(["lint", rules, "--limits", tiny]) == 1
    out = capsys.readouterr().out
    assert "short-values" in out and "static_cost_limit" in out


def test_explain_and_graph_take_the_limits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path, "rules.yaml", HEAVIER)
    manifests = write(tmp_path, "cm.yaml", yaml.safe_dump(CONFIG_MAP))
    raised = write(tmp_path, "limits.yaml", "templates: {max_items: 200000}\n")
    assert main(["explain", "-r", rules, "-f", manifests]) == 0
    default = capsys.readouterr().out
    assert "max_items" in default
    assert main(["explain", "-r", rules, "-f", manifests, "--limits", raised]) == 0
    assert "max_items" not in capsys.readouterr().out
    assert main(["graph", "-r", rules, "--limits", raised]) == 0
    assert "long-string" in capsys.readouterr().out


BAD_FILES = [
    ("cel: {max_lenght: 10}\n", "cel.max_lenght: unknown limit; the limits of cel are"),
    ("templates: {max_operations: 0}\n", "templates.max_operations: 0 is not a positive"),
    ("templates: {max_operations: -5}\n", "templates.max_operations: -5 is not a positive"),
    ("templates: {max_operations: 2.5}\n", "2.5 is not a positive integer"),
    ("templates: {max_operations: lots}\n", "'lots' is not a positive integer"),
    ("templates: {max_seconds: true}\n", "True is not a positive number"),
    ("templates: {max_seconds: .nan}\n", "is not a JSON number"),
    ("cel: {max_length: 200000}\n", "cel.max_length: at most 100,000"),
    ("regex: {size: 1}\n", "unknown section 'regex'"),
    ("cel: [1, 2]\n", "cel must be a mapping"),
    ("- cel\n", "a limits file is a mapping"),
    ("cel: {a: 1\n", "limits.yaml"),  # YAML syntax
    ("cel: {max_depth: 1}\ncel: {max_depth: 2}\n", "duplicate"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
@pytest.mark.parametrize("command", ["apply", "test", "lint", "explain", "graph"])
def test_a_bad_limits_file_is_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str,
        message: str) -> None:
    limits = write(tmp_path, "limits.yaml", text)
    rules = write(tmp_path, "rules.yaml", RULES)
    manifests = write(tmp_path, "cm.yaml", yaml.safe_dump(CONFIG_MAP))
    args = {"apply": ["-r", rules, "-f", manifests], "test": [str(tmp_path)],
            "lint": [rules], "explain": ["-r", rules, "-f", manifests],
            "graph": ["-r", rules]}[command]
    assert main([command, *args, "--limits", limits]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith("edict: ")
    assert limits in out.err and message in out.err


@pytest.mark.parametrize("command", [["plan", "-r", "rules"], ["run"]])
def test_the_live_commands_refuse_a_bad_limits_file_before_connecting(
        tmp_path: Path, command: list[str]) -> None:
    limits = write(tmp_path, "limits.yaml", "cel: {max_lenght: 10}\n")
    missing = str(tmp_path / "no-such-kubeconfig")
    out = subprocess.run([sys.executable, "-m", "engine.cli.main", *command,
                          "--kubeconfig", missing, "--limits", limits],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"edict: {limits}: cel.max_lenght: unknown limit" in out.stderr


def test_a_missing_limits_file_is_exit_2(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert main(["graph", "-r", write(tmp_path, "rules.yaml", RULES), "--limits",
                 missing]) == 2
    assert f"edict: {missing}: cannot read" in capsys.readouterr().err


def test_parse_limits_keeps_the_defaults_of_keys_left_out() -> None:
    assert parse_limits(None, source="f") is DEFAULT_LIMITS
    assert parse_limits({}, source="f") == DEFAULT_LIMITS
    assert parse_limits({"cel": None, "templates": {}}, source="f") == DEFAULT_LIMITS
    limits = parse_limits({"cel": {"runtime_cost_limit": 7},
                           "templates": {"max_seconds": 3, "max_depth": 9}}, source="f")
    assert limits == Limits(CelLimits(runtime_cost_limit=7),
                            TemplateLimits(max_seconds=3.0, max_depth=9))
    assert isinstance(limits.templates.max_seconds, float)
    with pytest.raises(InputError, match=r"^f: templates\.max_depth: '1e3' is not a positive"):
        parse_limits({"templates": {"max_depth": "1e3"}}, source="f")


DEEP = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: deep}
spec:
  rules:
  - name: deep-sum
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    condition: "SUM > 0"
    mutate: {template: {metadata: {labels: {deep: "yes"}}}}
  - name: plain
    match: {resources: [{apiVersion: v1, kinds: [ConfigMap]}]}
    mutate: {template: {metadata: {labels: {plain: "yes"}}}}
""".replace("SUM", "+".join(["1"] * 40))


def test_the_libraries_nesting_limit_of_32_is_a_rule_error_no_file_can_raise(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generous = write(tmp_path, "limits.yaml", "cel: {max_length: 100000, "
                     "static_cost_limit: 1000000000, runtime_cost_limit: 1000000000}\n")
    for extra in ((), ("--limits", generous)):
        code, out, err = apply(tmp_path, DEEP, *extra, capsys=capsys)
        assert code == 1
        assert yaml.safe_load(out)["metadata"]["labels"] == {"plain": "yes"}
        [line] = [line for line in err.splitlines() if "disabled" in line]
        assert "rule set 'deep', rule 'deep-sum', field condition:" in line
        assert "Exceeded max recursion depth of 32 when parsing." in line
        assert "nesting deeper than 32" in line
    assert main(["lint", str(tmp_path / "rules.yaml")]) == 1
    out = capsys.readouterr().out
    assert "rules.yaml:9:16: cel-compile: ClusterRuleSet deep, rule 'deep-sum'" in out
    assert "recursion depth of 32" in out
