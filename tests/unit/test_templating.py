"""Table-driven tests of engine.templating: structured Jinja2 templates in a sandbox."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import CompileError, TemplateError, Where
from engine.templating import OMIT, compile_template, render_string

WHERE = Where(file="rules.yaml", rule_set="team-defaults", rule="owner-label",
              field="mutate.template")

OBJECT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "shop", "namespace": "team-a", "labels": {"app": "shop"}},
    "spec": {"replicas": 3, "selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["web", "api"]}]}},
}
VARS: dict[str, Any] = {
    "object": OBJECT,
    "params": {"team": "platform", "n": 2, "on": True, "tags": ["a", "b"], "nothing": None,
               "map": {"x": 1}, "text": "a: b\nc: d", "jinja": "{{ 7 * 7 }}",
               "big": "a" * 1000},
    "item": {"name": "web", "values": [1, 2]},
}


def render(template: Any, variables: dict[str, Any] | None = None) -> Any:
    return compile_template(template, where=WHERE).render(VARS if variables is None
                                                          else variables)


RENDER_CASES = [
    # static values come back as they are
    ("static scalar", "plain text", "plain text"),
    ("static map", {"a": [1, {"b": None}], "c": True}, {"a": [1, {"b": None}], "c": True}),
    ("braces alone", "{ not jinja }", "{ not jinja }"),
    # a lone expression keeps its native type
    ("native int", "{{ params.n }}", 2),
    ("native arithmetic", "{{ params.n * 3 }}", 6),
    ("native bool", "{{ params.on }}", True),
    ("native none", "{{ params.nothing }}", None),
    ("native list", "{{ params.tags }}", ["a", "b"]),
    ("native map", "{{ params.map }}", {"x": 1}),
    ("native float", "{{ 1.5 }}", 1.5),
    ("native string", "{{ params.team }}", "platform"),
    ("native with whitespace", "  {{ params.n }}\n", 2),
    ("native whitespace control", "{{- params.n -}}", 2),
    ("native generator", "{{ params.tags | map('upper') }}", ["A", "B"]),
    ("native tuple", "{{ (1, 2) }}", [1, 2]),
    ("native items", "{{ params.map.items() }}", [["x", 1]]),
    ("native range", "{{ range(3) }}", [0, 1, 2]),
    ("native dict literal", "{{ {'a': params.n} }}", {"a": 2}),
    ("native comment only", "{# note #}{{ params.n }}", 2),
    # anything else is text
    ("interpolated", "team-{{ params.team }}", "team-platform"),
    ("number in text", "{{ params.n }} replicas", "2 replicas"),
    ("two expressions", "{{ params.n }}{{ params.n }}", "22"),
    ("none in text", "x{{ params.nothing }}y", "xy"),
    ("statement", "{% if params.on %}yes{% else %}no{% endif %}", "yes"),
    ("loop", "{% for t in params.tags %}{{ t }},{% endfor %}", "a,b,"),
    ("loop break", "{% for t in params.tags %}{{ t }}{% break %}{% endfor %}", "a"),
    ("raw", "{% raw %}{{ x }}{% endraw %}", "{{ x }}"),
    ("block scalar keeps newline", "port={{ params.n }}\n", "port=2\n"),
    ("trim blocks", "{% if params.on %}\nyes\n{% endif %}\n", "yes\n"),
    ("namespace object", "{% set ns = namespace(c=0) %}{% for t in params.tags %}"
     "{% set ns.c = ns.c + 1 %}{% endfor %}{{ ns.c }} tags", "2 tags"),
    # attribute access reads keys, and keys win over dict methods
    ("attribute path", "{{ object.metadata.name }}", "shop"),
    ("subscript path", "{{ object['metadata']['labels']['app'] }}", "shop"),
    ("key named values", "{{ item.values }}", [1, 2]),
    ("key named values deep",
     "{{ object.spec.selector.matchExpressions[0].values }}", ["web", "api"]),
    ("dict method", "{{ object.metadata.labels.get('missing', 'none') }}", "none"),
    ("defined test", "{{ params.absent is defined }}", False),
    ("default", "{{ params.absent | default('x') }}", "x"),
    # no injection: rendered text is never parsed again
    ("newline and colon", {"labels": {"x": "{{ params.text }}"}},
     {"labels": {"x": "a: b\nc: d"}}),
    ("newline and colon in text", "v={{ params.text }}", "v=a: b\nc: d"),
    ("jinja in data", "{{ params.jinja }}", "{{ 7 * 7 }}"),
    ("jinja in data text", "x {{ params.jinja }}", "x {{ 7 * 7 }}"),
    # templated keys
    ("templated key", {"{{ params.team }}": "owner"}, {"platform": "owner"}),
    ("templated key text", {"team-{{ params.team }}/x": 1}, {"team-platform/x": 1}),
    ("templated key number", {"{{ params.n }}": "two"}, {"2": "two"}),
    ("templated key and value", {"{{ params.team }}": "{{ params.n }}"}, {"platform": 2}),
    # omit
    ("omit value", {"a": "{{ omit }}", "b": 1}, {"b": 1}),
    ("omit default", {"a": "{{ params.absent | default(omit) }}", "b": 1}, {"b": 1}),
    ("omit kept when defined", {"a": "{{ params.n | default(omit) }}"}, {"a": 2}),
    ("omit conditional", {"a": "{{ omit if not params.on else 'x' }}"}, {"a": "x"}),
    ("omit list item", ["{{ omit }}", 1, "{{ params.n }}"], [1, 2]),
    ("omit key", {"{{ omit }}": 1, "b": 2}, {"b": 2}),
    ("omit nested in native", "{{ [1, omit, {'a': omit, 'b': 2}] }}", [1, {"b": 2}]),
    ("omit deep", {"spec": {"a": ["{{ omit }}"], "b": {"c": "{{ omit }}"}}},
     {"spec": {"a": [], "b": {}}}),
]


@pytest.mark.parametrize(("template", "expected"),
                         [case[1:] for case in RENDER_CASES],
                         ids=[case[0] for case in RENDER_CASES])
def test_render(template: Any, expected: Any) -> None:
    result = render(template)
    assert result == expected
    assert type(result) is type(expected)


def test_a_rendered_deployment() -> None:
    template = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "{{ object.metadata.name }}-web",
                     "labels": {"app.kubernetes.io/name": "{{ object.metadata.name }}",
                                "{{ params.team }}/owned": "true"}},
        "spec": {"replicas": "{{ object.spec.replicas }}",
                 "template": {"spec": {"containers": [
                     {"name": "web", "image": "nginx:{{ params.n }}",
                      "ports": [{"containerPort": 8080}]}]}}},
    }
    assert render(template) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop-web",
                     "labels": {"app.kubernetes.io/name": "shop", "platform/owned": "true"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2", "ports": [{"containerPort": 8080}]}]}}},
    }


def test_is_static() -> None:
    assert compile_template({"a": [1, "x"]}, where=WHERE).is_static
    assert compile_template("{ braces }", where=WHERE).is_static
    assert not compile_template({"a": [1, "{{ x }}"]}, where=WHERE).is_static
    assert not compile_template({"{{ k }}": 1}, where=WHERE).is_static


def test_native_values_are_copies_of_the_variables() -> None:
    variables = copy.deepcopy(VARS)
    result = render({"labels": "{{ object.metadata.labels }}"}, variables)
    result["labels"]["injected"] = "x"
    assert variables["object"]["metadata"]["labels"] == {"app": "shop"}


def test_static_parts_are_fresh_copies() -> None:
    template = compile_template({"a": {"b": [1]}, "c": "{{ params.n }}"}, where=WHERE)
    first = template.render(VARS)
    first["a"]["b"].append(2)
    assert template.render(VARS) == {"a": {"b": [1]}, "c": 2}


def test_omit_sentinel() -> None:
    assert repr(OMIT) == "omit"
    assert copy.deepcopy(OMIT) is OMIT


def test_render_string() -> None:
    assert render_string("cm-{{ object.metadata.name }}", VARS, where=WHERE) == "cm-shop"
    assert render_string("{{ params.n }}", VARS, where=WHERE) == "2"
    assert render_string("plain", {}, where=WHERE) == "plain"
    with pytest.raises(TemplateError, match="'nope'"):
        render_string("{{ nope }}", VARS, where=WHERE)
    with pytest.raises(CompileError):
        render_string("{{ ", VARS, where=WHERE)


def test_concurrent_renders() -> None:
    template = compile_template({"name": "{{ item.name }}-{{ item.n }}", "n": "{{ item.n }}"},
                                where=WHERE)
    failures: list[int] = []

    def work(n: int) -> None:
        for _ in range(200):
            if template.render({"item": {"name": "w", "n": n}}) != {"name": f"w-{n}", "n": n}:
                failures.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


ERROR_CASES = [
    # StrictUndefined: the message names what is missing, and where
    ("missing variable", {"a": "{{ nope }}"},
     ["at a", "variable 'nope' is undefined", "variables: item, object, params"]),
    ("missing key", {"spec": {"x": "{{ params.absent }}"}},
     ["at spec.x", "'{{ params.absent }}'", "no key 'absent'", "keys: team, n"]),
    ("missing deep key", "{{ object.metadata.labels.owner }}",
     ["at the top level", "no key 'owner'", "its keys: app"]),
    ("missing item", {"l": ["{{ params.tags[5] }}"]}, ["at l[0]", "no item 5"]),
    ("missing in text", {"a": "x-{{ params.absent }}"}, ["at a", "no key 'absent'"]),
    ("missing under undefined", "{{ params.absent.deeper }}", ["no key 'absent'"]),
    ("missing in a loop", "{% for t in params.absent %}{% endfor %}", ["no key 'absent'"]),
    ("missing on a line", {"a": "one\n{{ params.n }}\n{{ params.absent }}\n"},
     ["at a", "line 3", "no key 'absent'"]),
    ("odd key path", {"metadata": {"labels": {"app.kubernetes.io/name": "{{ nope }}"}}},
     ['metadata.labels["app.kubernetes.io/name"]']),
    ("mandatory", "{{ params.absent | mandatory('set params.absent') }}",
     ["set params.absent"]),
    ("mandatory default message", "{{ params.absent | mandatory }}",
     ["mandatory value 'absent' is undefined"]),
    # plain Python errors keep their type name
    ("division by zero", {"a": "{{ 1 / 0 }}"}, ["at a", "ZeroDivisionError"]),
    ("bad types", "{{ params.tags + 1 }}", ["TypeError"]),
    # omit and keys
    ("omit in text", {"a": "x{{ omit }}"}, ["omit can only be a whole value"]),
    ("whole template omitted", "{{ omit }}", ["the whole template renders to omit"]),
    ("duplicate keys", {"platform": 1, "{{ params.team }}": 2},
     ["key '{{ params.team }}' renders to 'platform'", "already has"]),
    ("duplicate templated keys", {"{{ params.team }}": 1, "{{ 'platform' }}": 2},
     ["renders to 'platform'"]),
    ("key to a list", {"{{ params.tags }}": 1}, ["a key must render to text"]),
    ("key to nothing", {"{{ params.nothing }}": 1}, ["a key must render to text"]),
    ("empty key", {"{{ '' }}": 1}, ["the key renders to an empty string"]),
    ("native non-data", "{{ cycler }}", ["a Kubernetes object cannot hold"]),
    ("native int keys", "{{ {1: 2} }}", ["mapping keys must be strings"]),
]


@pytest.mark.parametrize(("template", "fragments"), [case[1:] for case in ERROR_CASES],
                         ids=[case[0] for case in ERROR_CASES])
def test_render_errors(template: Any, fragments: list[str]) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template)
    assert caught.value.where == WHERE
    message = str(caught.value)
    assert message.startswith("rules.yaml, rule set 'team-defaults', rule 'owner-label', "
                              "field mutate.template: ")
    for fragment in fragments:
        assert fragment in message


SANDBOX_CASES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ object.__class__ }}",
    "{{ (1).__class__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__call__ }}",
    "{{ namespace.__init__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ dict.mro() }}",
    "{{ ''.join.__self__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ 'x'.format_map({}) }}",
    "{{ (1).to_bytes(8, 'big') }}",
    "{{ 'x'.encode() }}",
    "{{ params.tags.append('c') }}",
    "{% set x = params.tags.pop() %}",
    "{{ params.map.update({'y': 2}) }}",
    "{{ params.map.clear() }}",
    "{% include 'other' %}",
    "{% import 'other' as o %}",
    "{% extends 'base' %}",
    "{{ lipsum() }}",
    "{{ config }}",
    "{{ request }}",
]


@pytest.mark.parametrize("source", SANDBOX_CASES)
def test_sandbox_refuses(source: str) -> None:
    variables = copy.deepcopy(VARS)
    with pytest.raises(TemplateError):
        render({"a": source}, variables)
    assert variables == VARS  # nothing was mutated


def test_unknown_filter_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="No filter named 'random'"):
        compile_template("{{ [1] | random }}", where=WHERE)


LIMIT_CASES = [
    "{{ 'a' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ params.tags * 10**6 }}",
    "{{ 7 ** 10000000 }}",
    "{{ (10 ** 10000) * (10 ** 10000) }}",
    "{{ range(10**9) | list }}",
    "{% for i in range(2000) %}{{ params.big }}{% endfor %}",
    "{% set ns = namespace(s=params.big * 1000) %}{% for i in range(3) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s=params.big * 1000) %}{% for i in range(3) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(l=[1] * 1000) %}{% for i in range(10) %}"
    "{% set ns.l = ns.l + ns.l %}{% endfor %}",
    "{{ '%999999999s' % 'a' }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '%.999999999f' | format(1.0) }}",
    "{{ 'a' | center(10**9) }}",
    "{{ 'a'.center(10**9) }}",
    "{{ 'a'.zfill(10**9) }}",
    "{{ 'a'.ljust(10**9) }}",
    "{{ params.big.replace('a', params.big * 10) }}",
    "{{ params.big | replace('a', params.big * 10) }}",
    "{{ params.big | regex_replace('a', params.big * 10) }}",
    "{{ params.big | regex_replace('(a)', '\\\\1' * 1100) }}",
    "{{ (params.big ~ '\\n') * 1000 | indent(1000) }}",
    "{{ ([params.big] * 10000) | join }}",
    "{{ ','.join([params.big] * 10000) }}",
    "{{ ([params.big] * 10000) | string }}",
    "{{ ([params.big] * 10000) | to_json }}",
    "{{ ([params.big] * 10000) | to_yaml }}",
    "{{ ([params.big] * 10000) | tojson }}",
    "x {{ [params.big] * 10000 }}",
    "{{ 'x' ~ ([params.big] * 10000) }}",
    "{{ [params.big] * 10000 }}",
    "{{ [1] | batch(10**9) | list }}",
    "{{ [1] | slice(10**9) | list }}",
    "{{ 'a: &a [x, x, x, x, x, x, x, x, x, x]\\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d]\\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e]\\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f]'"
    " | from_yaml }}",
]


@pytest.mark.parametrize("source", LIMIT_CASES)
def test_size_limits(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render({"a": source})
    assert "at a" in str(caught.value)


def test_a_megabyte_of_text_is_fine() -> None:
    text = render("{% for i in range(1000) %}{{ params.big }}{% endfor %}")
    assert len(text) == 1_000_000


COMPILE_ERROR_CASES = [
    ("syntax", {"a": "{{ params.n "}, ["at a", "'{{ params.n '", "line 1"]),
    ("bad statement", {"spec": ["ok", "{% if %}"]}, ["at spec[1]"]),
    ("unclosed block", {"a": "x\n{% if params.on %}\ny"}, ["at a", "line 3", "endif"]),
    ("unknown filter", {"a": "{{ params.n | nosuch }}"}, ["No filter named 'nosuch'"]),
    ("bad key", {"{{ bad key }}": 1}, ['at ["{{ bad key }}"]']),
    ("bad key nested", {"m": {"{{ }}": 1}}, ['at m["{{ }}"]']),
]


@pytest.mark.parametrize(("template", "fragments"), [case[1:] for case in COMPILE_ERROR_CASES],
                         ids=[case[0] for case in COMPILE_ERROR_CASES])
def test_compile_errors(template: Any, fragments: list[str]) -> None:
    with pytest.raises(CompileError) as caught:
        compile_template(template, where=WHERE)
    assert caught.value.where == WHERE
    message = str(caught.value)
    assert message.startswith("rules.yaml, rule set 'team-defaults'")
    for fragment in fragments:
        assert fragment in message, message


FILTER_CASES = [
    ("{{ params.map | to_json }}", '{"x": 1}'),
    ("{{ {'b': 1, 'a': [1, none]} | to_json(sort_keys=true) }}", '{"a": [1, null], "b": 1}'),
    ("{{ params.map | to_json(indent=2) }}", '{\n  "x": 1\n}'),
    ("{{ 'é<>' | to_json }}", '"é<>"'),
    ("{{ 'é<>' | tojson }}", '"é<>"'),
    ("{{ params.tags | map('upper') | to_json }}", '["A", "B"]'),
    ("{{ {'a': [1, {'b': none}]} | to_yaml }}", "a:\n- 1\n- b: null\n"),
    ("{{ {'b': 1, 'a': 2} | to_yaml(sort_keys=true) }}", "a: 2\nb: 1\n"),
    ("{{ 'x' | to_yaml }}", "x\n"),
    ("{{ ('word ' * 40) | to_yaml | length }}", 1 + 200 + 1 + 1),
    ("{{ '{\"a\": [1, true]}' | from_json }}", {"a": [1, True]}),
    ("{{ 'a: 1\\nb: [x, null]' | from_yaml }}", {"a": 1, "b": ["x", None]}),
    ("{{ ('a: 1' | from_yaml).a + 1 }}", 2),
    ("{{ 'hello' | b64encode }}", "aGVsbG8="),
    ("{{ 'aGVsbG8=' | b64decode }}", "hello"),
    ("{{ 'héllo' | b64encode | b64decode }}", "héllo"),
    ("{{ 'abc' | sha256 }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("{{ params.map | to_json | sha256 | length }}", 64),
    ("{{ 'abc' | hash }}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("{{ 'abc' | hash('md5') }}", "900150983cd24fb0d6963f7d28e17f72"),
    ("{{ \"it's a test\" | quote }}", "'it'\"'\"'s a test'"),
    ("{{ 'plain' | quote }}", "plain"),
    ("{{ 'foo-bar' | regex_replace('-', '_') }}", "foo_bar"),
    ("{{ 'foo-bar' | regex_replace('(\\\\w+)-(\\\\w+)', '\\\\2-\\\\1') }}", "bar-foo"),
    ("{{ 'A-a' | regex_replace('a', 'x', ignorecase=true) }}", "x-x"),
    ("{{ 'aaa' | regex_replace('a', 'b', count=2) }}", "bba"),
    ("{{ 'v1.25.3' | regex_search('\\\\d+\\\\.\\\\d+') }}", "1.25"),
    ("{{ 'v1.25.3' | regex_search('x') }}", None),
    ("{{ 'v1.25' | regex_search('v(\\\\d+)\\\\.(?P<minor>\\\\d+)', '\\\\1', '\\\\g<minor>') }}",
     ["1", "25"]),
    ("{{ 'A\\nb' | regex_search('^b', multiline=true) }}", "b"),
    ("{{ {'a': 1} | dict2items }}", [{"key": "a", "value": 1}]),
    ("{{ {'a': 1} | dict2items(key_name='k', value_name='v') }}", [{"k": "a", "v": 1}]),
    ("{{ [{'key': 'a', 'value': 1}] | items2dict }}", {"a": 1}),
    ("{{ [{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v') }}", {"a": 1}),
    ("{{ {'a': {'x': 1}, 'b': 1} | combine({'a': {'y': 2}}) }}", {"a": {"y": 2}, "b": 1}),
    ("{{ {'a': {'x': 1}} | combine({'a': {'y': 2}}, recursive=true) }}",
     {"a": {"x": 1, "y": 2}}),
    ("{{ {'a': {'x': 1}} | combine({'a': {'x': 2}}, {'b': 3}, recursive=true) }}",
     {"a": {"x": 2}, "b": 3}),
    ("{{ {'l': [1]} | combine({'l': [2]}, list_merge='append') }}", {"l": [1, 2]}),
    ("{{ {'l': [1]} | combine({'l': [2]}, list_merge='prepend') }}", {"l": [2, 1]}),
    ("{{ {'l': [1]} | combine({'l': [2]}, list_merge='keep') }}", {"l": [1]}),
    ("{{ [{'a': 1}, {'b': 2}] | combine }}", {"a": 1, "b": 2}),
    ("{{ params.map | combine({'y': 2}) }}", {"x": 1, "y": 2}),
    ("{{ params.n | mandatory }}", 2),
    ("{{ 'My_App.Name!!' | dns_label }}", "my-app-name"),
    ("{{ ('x' * 70) | dns_label | length }}", 63),
    ("{{ ('a' * 9 + '-b') | dns_label(max_length=10) }}", "aaaaaaaaa"),
    ("{{ '--Web--API--' | dns_label }}", "web-api"),
    ("{{ 'Ab' | lower }}{{ 'Ab' | upper }}", "abAB"),
    ("{{ params.absent | default('d') }}", "d"),
    ("{{ 'a\\nb' | indent(2) }}", "a\n  b"),
    ("{{ 'a\\nb' | indent('> ', first=true) }}", "> a\n> b"),
    ("{{ 'a' | center(3) }}", " a "),
    ("{{ params.tags | join(',') }}", "a,b"),
    ("{{ [{'n': 'x'}, {'n': 'y'}] | join('/', attribute='n') }}", "x/y"),
    ("{{ 'aaa' | replace('a', 'b', 2) }}", "bba"),
    ("{{ '%s-%03d' | format('a', 7) }}", "a-007"),
    ("{{ '%05d' % 3 }}", "00003"),
    ("{{ 12 | string }}", "12"),
    ("{{ [1, 2, 3] | batch(2) | list }}", [[1, 2], [3]]),
    ("{{ [1, 2, 3] | slice(2) | list }}", [[1, 2], [3]]),
    ("{{ 'a,b'.split(',') }}", ["a", "b"]),
    ("{{ '7'.zfill(3) }}", "007"),
    ("{{ '-'.join(params.tags) }}", "a-b"),
    ("{{ 'Web'.lower().startswith('w') }}", True),
]


@pytest.mark.parametrize(("source", "expected"), FILTER_CASES)
def test_filters(source: str, expected: Any) -> None:
    assert render(source) == expected


FILTER_ERROR_CASES = [
    ("{{ 'not json' | from_json }}", "JSONDecodeError"),
    ("{{ '!!python/object:os.system x' | from_yaml }}", "could not determine a constructor"),
    ("{{ 'a: [' | from_yaml }}", "from_yaml: document 1: not valid YAML: while parsing a flow"),
    ("{{ '%%%' | b64decode }}", "Error"),
    ("{{ params.map | sha256 }}", "to_json"),
    ("{{ 'x' | hash('crc') }}", "unknown algorithm"),
    ("{{ 'x' | regex_replace('(', '') }}", "invalid regular expression '\\(' \\(RE2 syntax\\)"),
    ("{{ 'aa' | regex_search('(a)\\\\1') }}", "invalid escape sequence"),
    ("{{ 'x' | regex_search('(?=x)') }}", "invalid regular expression"),
    ("{{ [1] | dict2items }}", "expects a mapping"),
    ("{{ [1] | items2dict }}", "expects a list of mappings"),
    ("{{ {} | combine([1]) }}", "expects mappings"),
    ("{{ {} | combine({}, list_merge='zip') }}", "list_merge"),
    ("{{ '---' | dns_label }}", "no letter or digit"),
    ("{{ 'x' | dns_label(max_length=64) }}", "max_length"),
    ("{{ omit | to_json }}", "cannot serialise omit"),
]


@pytest.mark.parametrize(("source", "fragment"), FILTER_ERROR_CASES)
def test_filter_errors(source: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match=fragment):
        render(source)


_MARKERS = ("{{", "{%", "{#")
TEXT = st.text(max_size=20).filter(lambda text: not any(m in text for m in _MARKERS))
JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=25,
)


def containers(value: Any) -> list[int]:
    """The ids of every dict and list inside `value`."""
    if isinstance(value, dict):
        return [id(value), *(i for item in value.values() for i in containers(item))]
    if isinstance(value, list):
        return [id(value), *(i for item in value for i in containers(item))]
    return []


def vandalise(value: Any) -> None:
    if isinstance(value, dict):
        for item in list(value.values()):
            vandalise(item)
        value["vandalised"] = True
    elif isinstance(value, list):
        for item in value:
            vandalise(item)
        value.append("vandalised")


@settings(max_examples=300, deadline=None)
@given(JSON_LIKE)
def test_values_without_jinja_render_to_fresh_copies_of_themselves(value: Any) -> None:
    template = compile_template(value, where=WHERE)
    assert template.is_static
    first = template.render({})
    assert first == value
    assert not set(containers(first)) & set(containers(value))
    vandalise(first)
    assert template.render({}) == value


@settings(max_examples=200, deadline=None)
@given(JSON_LIKE)
def test_a_lone_expression_returns_a_copy_of_its_value(value: Any) -> None:
    variables = {"params": {"v": copy.deepcopy(value)}}
    result = compile_template({"x": "{{ params.v }}"}, where=WHERE).render(variables)
    assert result == {"x": value}
    vandalise(result)
    assert variables == {"params": {"v": value}}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50))
def test_text_data_is_never_interpreted(text: str) -> None:
    template = compile_template({"a": "{{ params.v }}", "b": "pre {{ params.v }} post"},
                                where=WHERE)
    assert template.render({"params": {"v": text}}) == {"a": text, "b": f"pre {text} post"}
