"""Template budgets: every limit of `TemplateLimits`, named when it is hit; RE2 regexes;
undefined values that never print; defaults that legitimate templates stay far below."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from engine.errors import TemplateError, Where
from engine.templating import (
    DEFAULT_LIMITS,
    TemplateLimitExceeded,
    TemplateLimits,
    compile_template,
    render_string,
    rendering,
)

WHERE = Where(file="rules.yaml", rule_set="team", rule="hostile", field="mutate.template")
def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


OBJECT = {"metadata": {"name": "web", "namespace": "shop"},
          "data": {"big": "a" * 100_000, "list": list(range(50_000))}, "deep": _deep(150)}


def render(source: Any, limits: TemplateLimits | None = None, **variables: Any) -> Any:
    template = compile_template({"x": source}, where=WHERE, **(
        {"limits": limits} if limits else {}))
    return template.render({"object": OBJECT, **variables})["x"]


LIMIT_CASES = [
    ("nested loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
     "{% endfor %}", "max_operations"),
    ("exponential macro", "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
     "{% endmacro %}{{ f(40) }}", "max_operations"),
    ("membership in a big list in a loop",
     "{% for i in range(100000) %}{{ 5 in object.data.list }}{% endfor %}", "max_operations"),
    ("slices in a loop", "{% for i in range(1000) %}{% set x = object.data.list[1:] %}"
     "{% endfor %}", "max_operations"),
    ("ranges materialised in a map", "{{ ([range(100000)] * 1000) | map('list') | list }}",
     "max_operations"),
    ("split of a big text in a loop",
     "{% for i in range(100000) %}{% set x = object.data.big.split('a') %}{% endfor %}",
     "max_operations"),
    ("regex_replace with a match per character in a loop",
     "{% for i in range(1000) %}{% set x = object.data.big | regex_replace('a', 'b') %}"
     "{% endfor %}", "max_operations"),
    ("range too long", "{{ range(10**6) | list }}", "max_items"),
    ("repeated text", "{{ 'a' * 10**9 }}", "max_string"),
    ("repeated list", "{{ [1] * 10**9 }}", "max_items"),
    ("deep native value", "{{ object.deep }}", "max_depth"),
    ("long pattern", "{{ 'a' | regex_search('a' * 5000) }}", "max_regex_pattern"),
]


# the wall clock is a backstop: out of the way here, so a busy machine hits the same limit
NO_CLOCK = dataclasses.replace(DEFAULT_LIMITS, max_seconds=3600.0)


@pytest.mark.parametrize(("source", "limit"), [c[1:] for c in LIMIT_CASES],
                         ids=[c[0] for c in LIMIT_CASES])
def test_each_limit_is_a_template_error_naming_it(source: str, limit: str) -> None:
    with pytest.raises(TemplateLimitExceeded) as caught:
        render(source, NO_CLOCK)
    assert caught.value.limit == limit
    assert isinstance(caught.value, TemplateError)
    message = str(caught.value)
    assert message.startswith("rules.yaml, rule set 'team', rule 'hostile', field "
                              "mutate.template: at x ")
    assert f"(limit templates.{limit})" in message


def test_limits_are_settable_per_template_and_per_rendering() -> None:
    loop = "{% for i in range(500) %}{% endfor %}done"
    small = TemplateLimits(max_operations=100)
    assert render(loop) == "done"
    with pytest.raises(TemplateLimitExceeded, match="more than 100 operations"):
        render(loop, small)
    template = compile_template({"x": loop}, where=WHERE)
    with pytest.raises(TemplateLimitExceeded):
        template.render({}, limits=small)
    assert template.render({}) == {"x": "done"}
    assert render_string(loop, {}, where=WHERE) == "done"
    with pytest.raises(TemplateLimitExceeded):
        render_string(loop, {}, where=WHERE, limits=small)


def test_the_input_of_a_regex_is_bounded() -> None:
    limits = TemplateLimits(max_regex_input=1000)
    with pytest.raises(TemplateLimitExceeded) as caught:
        render("{{ object.data.big | regex_search('b') }}", limits)
    assert caught.value.limit == "max_regex_input"
    assert render("{{ object.data.big | regex_search('b') }}") is None


def test_one_budget_can_span_several_renderings() -> None:
    template = compile_template("{% for i in range(60) %}{% endfor %}ok", where=WHERE)
    with rendering(TemplateLimits(max_operations=100)):
        assert template.render({}) == "ok"
        with pytest.raises(TemplateLimitExceeded):
            template.render({})  # the second one finds the budget spent
    assert template.render({}) == "ok"  # and the next rendering has its own again


def test_the_wall_clock_is_a_backstop_on_an_injected_clock() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # every look at the clock finds a second gone
        return now[0]

    template = compile_template("{% for i in range(5000) %}{% endfor %}", where=WHERE)
    with pytest.raises(TemplateLimitExceeded) as caught, rendering(
            TemplateLimits(max_seconds=2.5), clock=clock):
        template.render({})
    assert caught.value.limit == "max_seconds"
    assert "ran for more than 2.5 s" in str(caught.value)


def test_default_limits_are_far_above_a_realistic_template() -> None:
    template = compile_template({
        "metadata": {"labels": {"{{ object.metadata.name }}": "{{ object.metadata.namespace"
                                                               " | upper }}"}},
        "data": {"list": "{% for k, v in object.data.items() | sort %}{{ k }}={{ v | length }}"
                         ";{% endfor %}",
                 "json": "{{ object.metadata | to_json }}",
                 "hash": "{{ object.data.big | sha256 }}"},
    }, where=WHERE)
    rendered = template.render({"object": OBJECT})
    assert rendered["metadata"]["labels"] == {"web": "SHOP"}
    assert rendered["data"]["list"] == "big=100000;list=50000;"
    assert dataclasses.asdict(DEFAULT_LIMITS) == {
        "max_string": 1048576, "max_items": 100000, "max_value": 4194304, "max_depth": 100,
        "max_operations": 1000000, "max_seconds": 2.0, "max_regex_pattern": 4096,
        "max_regex_input": 1048576}


REGEX_CASES = [
    ("catastrophic for backtracking", "{{ ('a' * 5000 + '!') | regex_search('(a+)+$') }}", None),
    ("nested quantifiers", "{{ ('ab' * 3000) | regex_search('(a|ab|b)*c') }}", None),
    ("constant folded at compile time",
     "{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' | regex_search('(a*)*$') }}", ""),
    ("replace", "{{ 'web-api' | regex_replace('(\\\\w+)-(\\\\w+)', '\\\\2.\\\\1') }}", "api.web"),
    ("unicode class", "{{ 'héllo wörld' | regex_search('\\\\pL+$') }}", "wörld"),
    ("count", "{{ 'aaaa' | regex_replace('a', 'b', count=3) }}", "bbba"),
    ("empty matches", "{{ 'abc' | regex_replace('x*', '-') }}", "-a-b-c-"),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in REGEX_CASES],
                         ids=[c[0] for c in REGEX_CASES])
def test_regexes_are_re2(source: str, expected: Any) -> None:
    assert render(source) == expected


@pytest.mark.parametrize("pattern", ["(a)\\\\1", "(?=a)", "(?<=a)b", "a{1001}"])
def test_what_re2_cannot_run_is_a_clear_error(pattern: str) -> None:
    with pytest.raises(TemplateError, match=r"invalid regular expression .* \(RE2 syntax\)"):
        render(f"{{{{ 'aa' | regex_search('{pattern}') }}}}")


UNDEFINED_CASES = [
    "x{{ [object.metadata.nosuch] }}",
    "x{{ {'a': object.metadata.nosuch} }}",
    "x{{ (1, object.metadata.nosuch) }}",
    "{{ [object.metadata.nosuch] | string }}",
    "{{ [object.metadata.nosuch] | indent }}",
    "{{ [object.metadata.nosuch] | e }}",
    "{{ [object.metadata.nosuch] | join(',') }}",
    "{{ [object.metadata.nosuch] | to_json }}",
    "{{ '%s' % [object.metadata.nosuch] }}",
    "{{ 'a' ~ [object.metadata.nosuch] }}",
    "{{ [object.metadata.nosuch] }}",
    "{{ [object.metadata.nosuch] | b64encode }}",
]


@pytest.mark.parametrize("source", UNDEFINED_CASES)
def test_an_undefined_value_never_renders_as_text(source: str) -> None:
    with pytest.raises(TemplateError, match="no key 'nosuch'"):
        render(source)


@pytest.mark.parametrize(("source", "fragment"), [
    ("{{ text | float }}", "not a number a Kubernetes object can hold"),
    ("{{ ('-' ~ text) | float }}", "not a number a Kubernetes object can hold"),
    ("{{ [1, text | float] }}", "not a number a Kubernetes object can hold"),
    ("{{ 10 ** 4100 }}", "more than 4,000 digits"),
])
@pytest.mark.parametrize("text", ["nan", "inf"])
def test_only_json_values_come_out(source: str, fragment: str, text: str) -> None:
    with pytest.raises(TemplateError, match=fragment):
        render(source, text=text)
