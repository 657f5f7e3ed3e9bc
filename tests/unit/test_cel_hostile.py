"""Hostile data and hostile expressions: CEL ends in the right answer or a clear error.

The cases measured before this work (ReDoS from data, chained replace(), a map over
9,999 items, a NUL cutting a string, a data string taken for a quantity), then the
bounds around them: each error is a typed `CelError` (or `CompileError`) naming the
limit, raised before the library starts working. Timings are in docs/cel.md, measured
by tests/unit/cel_conformance/hostile.py, not asserted here.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.cel import CelCostCompileError, CelCostError, CelLimits, compile_expression
from engine.cel.values import MARK
from engine.errors import CelBug, CelError, CelLimitExceeded, CompileError, Where

WHERE = Where(rule_set="hostile", rule="r", field="condition")


def run(source: str, data: dict[str, Any], limits: CelLimits | None = None) -> Any:
    return compile_expression(source, where=WHERE, limits=limits).evaluate({"object": data})


def test_a_redos_pattern_runs_in_linear_time_and_gives_the_right_answer() -> None:
    data = {"metadata": {"annotations": {"x": "a" * 40 + "!"}}}
    assert run("object.metadata.annotations.x.find('(a+)+$') == ''", data) is True
    assert run("object.metadata.annotations.x.matches('(a+)+$')", data) is False


@pytest.mark.parametrize("times", [9, 10])
def test_chained_growth_does_not_compile(times: int) -> None:
    source = "object.s" + ".replace('a','aaaaaaaaaa')" * times
    with pytest.raises(CelCostCompileError) as raised:
        compile_expression(source, where=WHERE)
    message = str(raised.value)
    assert "(limit cel.static_cost_limit)" in message
    assert message.startswith("rule set 'hostile', rule 'r', field condition:")


def test_a_growth_that_depends_on_the_data_is_stopped_before_it_runs() -> None:
    source = "size(object.s" + ".replace('a','aaaaaaaaaa')" * 2 + ")"
    assert run(source, {"s": "ab"}) == 101
    with pytest.raises(CelCostError, match=r"\(limit cel\.runtime_cost_limit\)"):
        run(source, {"s": "a" * 100_000})


def test_a_map_over_many_items_is_refused_before_it_runs() -> None:
    program = compile_expression("size(object.spec.items.map(x, x))", where=WHERE)
    assert program.evaluate({"object": {"spec": {"items": list(range(100))}}}) == 100
    with pytest.raises(CelCostError) as raised:
        program.evaluate({"object": {"spec": {"items": list(range(9_999))}}})
    assert isinstance(raised.value, CelLimitExceeded)
    assert "longest list 9,999 entries" in str(raised.value)


def test_a_nul_cannot_change_the_decision() -> None:
    data = {"metadata": {"annotations": {"x": "ok\x00EVIL"}}}
    with pytest.raises(CelBug, match="holds a NUL character"):
        run("!object.metadata.annotations.x.contains('EVIL')", data)
    with pytest.raises(CelBug, match=r"a key of object\.metadata\.labels holds a NUL"):
        run("object.metadata.labels.size() == 1", {"metadata": {"labels": {"app\x00x": "y"}}})


def test_what_is_not_read_cannot_fail_the_expression() -> None:
    data = {"spec": {"replicas": 2}, "metadata": {"annotations": {"x": "ok\x00EVIL"}}}
    assert run("object.spec.replicas", data) == 2


@pytest.mark.parametrize("forged", ["\ue000quantity:5", MARK + "q2\x1f5", "5"])
def test_data_strings_are_never_quantities(forged: str) -> None:
    with pytest.raises(CelBug):
        run("object.x.isGreaterThan(quantity('1'))", {"x": forged})
    with pytest.raises(CelBug):
        run("object.x.family() == 4", {"x": forged})
    with pytest.raises(CelBug):
        run("object.x.major() == 1", {"x": forged})


def test_a_string_literal_cannot_be_a_quantity() -> None:
    with pytest.raises(CompileError, match=r"'isGreaterThan' applied to '\(string, kubernetes"):
        compile_expression("'\\ue000quantity:5'.isGreaterThan(quantity('1'))", where=WHERE)


def test_kubernetes_values_leave_cel_as_their_text_and_never_inside_other_text() -> None:
    assert run("[quantity('1.5'), quantity('2Ki')]", {}) == ["1500m", "2048"]
    assert run("cidr('10.0.0.1/8').masked()", {}) == "10.0.0.0/8"
    assert run("string(dyn(ip('::1')))", {}) == "::1"
    with pytest.raises(CelBug, match="inside other text"):
        run("'x' + string(dyn(ip('::1')))", {})


def test_comparisons_through_dyn_follow_the_value() -> None:
    assert run("dyn(quantity('2')) < dyn(quantity('10'))", {}) is True
    assert run("dyn(quantity('-1')) < dyn(quantity('-0.5'))", {}) is True
    assert run("dyn(semver('1.0.0-alpha')) < dyn(semver('1.0.0'))", {}) is True
    assert run("dyn(semver('1.0.0-2')) < dyn(semver('1.0.0-10'))", {}) is True


def test_data_too_large_or_too_deep_is_refused() -> None:
    limits = CelLimits(max_string_length=10, max_depth=4)
    with pytest.raises(CelLimitExceeded, match="longer than the limit of 10"):
        run("object.s == ''", {"s": "x" * 11}, limits)
    deep: dict[str, Any] = {}
    for _ in range(5):
        deep = {"a": deep}
    with pytest.raises(CelLimitExceeded, match="nested deeper than the limit"):
        run("size(object) > 0", deep, limits)


def test_limits_are_settings() -> None:
    source = "size(object.items.map(x, x))"
    tight = CelLimits(runtime_cost_limit=1_000)
    assert run(source, {"items": list(range(10))}, tight) == 10
    with pytest.raises(CelCostError, match="above the limit of 1,000"):
        run(source, {"items": list(range(100))}, tight)
    with pytest.raises(CelCostCompileError):
        compile_expression(source, where=WHERE, limits=CelLimits(static_cost_limit=100))


def test_every_failure_is_a_cel_error_with_the_rule_named() -> None:
    cases = [("object.s.find(object.p)", {"s": "a", "p": "("}),
             ("object.s.findAll(object.p)", {"s": "a", "p": "a{1,1000}" * 4}),
             ("object.s.matches(object.p)", {"s": "a", "p": "(?<=a)"})]
    for source, data in cases:
        with pytest.raises(CelError) as raised:
            run(source, data)
        assert "rule set 'hostile', rule 'r'" in str(raised.value)
