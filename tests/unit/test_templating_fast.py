"""The fast path of engine.templating (fast.py) against Jinja2, and `Template.reads`.

The fast path must be invisible: for any variables, a template renders to the same value
of the same type, or fails with the same `TemplateError` message, with and without it
(``compile_template(..., fast=False)`` is Jinja2 only). `reads` must never miss a read:
changing the object anywhere that does not overlap a read path leaves the render as it was.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from engine.errors import TemplateError, Where
from engine.templating import compile_template
from engine.templating.filters import MAX_STRING
from engine.templating.structured import _Leaf, compile_text, scope

WHERE = Where(file="rules.yaml", rule_set="fast", rule="r", field="mutate.template")

# ---------------------------------------------------------------------------------------
# Random variables: keys named like dict and str methods, internals, missing keys.

KEYS = ["name", "a", "b", "items", "values", "keys", "get", "upper", "pop", "_x", "__class__"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8) | st.sampled_from(["", "Web App", "{{ 7 * 7 }}", "a,b", "0x1"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=4)),
    max_leaves=20,
)
MAPPINGS = st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=5)
ROOTS = ["object", "object", "params", "params", "item", "omit", "range", "nothere"]
VARIABLES = st.fixed_dictionaries({"object": MAPPINGS, "params": MAPPINGS},
                                  optional={"item": VALUES, "omit": VALUES})

# Random fast-path-eligible strings: paths (mostly through keys the variables have),
# filters, text around them.

STEP = st.one_of(
    st.sampled_from([k for k in KEYS if k.isidentifier()]).map(lambda k: f".{k}"),
    st.sampled_from([*KEYS, "with space", ""]).map(lambda k: f"[{k!r}]"),
    st.integers(-3, 3).map(lambda i: f"[{i}]"),
)
FILTERS = ["string", "lower", "upper", "trim", "length", "int", "float", "abs", "count",
           "first", "last", "sort", "to_json", "tojson", "b64encode", "dns_label", "mandatory",
           "default('d')", "default(omit)", "default(none)", "default('', true)", "d(3)",
           "default(params.a)", "default(item.name, boolean=true)", "join(',')",
           "replace('a', 'b')", "int(7)", "round(1)", "truncate(5)", "capitalize", "title",
           "quote", "sha256", "to_yaml", "from_json", "dict2items", "wordcount", "indent(2)"]
SHAPES = ["{{ @1 }}", "  {{ @1 }}\n", "{{- @1 -}}", "{# note #}{{ @1 }}", "pre-{{ @1 }}",
          "{{ @1 }}-{{ @2 }}", "{{ @1 }}{{ @2 }}", "a\n{{ @1 }}\n{{ @2 }}\n", "{{ @1 }} ({{ @2 }})"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """Variables, and a fast-path-eligible string that mostly finds what it looks for."""
    variables = draw(VARIABLES)

    def path() -> str:
        root = draw(st.sampled_from(ROOTS))
        text, value = root, variables.get(root)
        for _ in range(draw(st.integers(0, 3))):
            if isinstance(value, dict) and value and draw(st.integers(0, 3)):
                key = draw(st.sampled_from(sorted(value)))
                text += f".{key}" if draw(st.booleans()) else f"[{key!r}]"
                value = value[key]
            elif isinstance(value, list) and value and draw(st.integers(0, 3)):
                index = draw(st.integers(-len(value), len(value) - 1))
                text += f"[{index}]"
                value = value[index]
            else:
                text += draw(STEP)
                value = None
        return text

    def expression() -> str:
        filters = draw(st.sampled_from([0, 0, 1, 2]))
        return " | ".join([path(), *(draw(st.sampled_from(FILTERS)) for _ in range(filters))])

    shape = draw(st.sampled_from(SHAPES))
    return shape.replace("@1", expression()).replace("@2", expression()), variables


def outcome(run: Callable[[], Any]) -> tuple[str, str]:
    """What a render gave, comparable across runs: the value's repr (which tells 1, 1.0 and
    True apart, inside containers too) and type, or the error message."""
    try:
        value = run()
    except TemplateError as exc:
        return "error", str(exc)
    return type(value).__name__, repr(value)


def both(template: Any, variables: dict[str, Any]) -> tuple[tuple[str, str], tuple[str, str]]:
    fast = compile_template(template, where=WHERE)
    slow = compile_template(template, where=WHERE, fast=False)
    return outcome(lambda: fast.render(variables)), outcome(lambda: slow.render(variables))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(["value", "key", "text"]))
def test_the_fast_path_renders_what_jinja_renders(case: tuple[str, dict[str, Any]],
                                                  mode: str) -> None:
    source, variables = case
    frozen = copy.deepcopy(variables)
    if mode == "text":  # render_string: always text, even a lone expression
        def text(fast: bool) -> Any:
            return compile_text(source, where=WHERE, fast=fast).render(scope(variables))
        fast, slow = outcome(lambda: text(True)), outcome(lambda: text(False))
    else:
        template = {source: 1} if mode == "key" else {"x": source}
        fast, slow = both(template, variables)
    assert fast == slow
    assert repr(variables) == repr(frozen)  # neither path changed the variables
    event(f"{mode}: {fast[0]}")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.booleans())
def test_whenever_the_runner_answers_jinja_gives_the_same(
        case: tuple[str, dict[str, Any]], text: bool) -> None:
    """The stronger property, without the fallback: a runner that returns (rather than
    deferring to Jinja2) returns exactly Jinja2's value."""
    source, variables = case

    def leaf(fast: bool) -> _Leaf:
        node = (compile_text(source, where=WHERE, fast=fast) if text
                else compile_template(source, where=WHERE, fast=fast).root)
        assert isinstance(node, _Leaf)
        return node

    runner = leaf(True).compiled.runner
    assert runner is not None, source
    try:
        value = runner(scope(variables))
    except Exception:
        event("runner deferred to Jinja2")
        return
    event("runner answered")
    jinja = leaf(False)
    expected = jinja.render(scope(variables))  # must not raise either
    assert (type(value), repr(value)) == (type(expected), repr(expected))


OBJECT = {"metadata": {"name": "shop", "namespace": "team-a",
                       "labels": {"app": "shop", "items": "label"}},
          "spec": {"replicas": 3, "values": [1, 2], "nothing": None, "on": True,
                   "ratio": 0.5, "map": {"x": 1}, "list": [{"name": "web"}]}}
VARS: dict[str, Any] = {"object": OBJECT, "params": {"team": "platform", "a": "A"},
                        "item": {"name": "web"}}

FIXED_CASES = [
    "{{ object.metadata.name }}", "{{ object['metadata']['name'] }}",
    "{{ object.metadata.name }}-config", "{{ object.spec.replicas | string }}",
    "{{ object.spec.replicas }}", "{{ object.spec.on }}", "{{ object.spec.ratio }}",
    "{{ object.spec.nothing }}", "x{{ object.spec.nothing }}y", "{{ object.spec.on }}!",
    "{{ object.spec.ratio }}!", "{{ object.spec.map }}", "{{ object.spec.map }}!",
    "{{ object.spec.values }}", "{{ object.spec.values }}!", "{{ object.spec.list[0].name }}",
    "{{ object.spec.list[-1]['name'] }}", "{{ object.spec.list[5] }}",
    "{{ object.metadata.labels.items }}", "{{ object.metadata.items }}",
    "{{ object.metadata.items }}!", "{{ object.spec.map.values }}",
    "{{ object.metadata.name.upper }}", "{{ object.__class__ }}",
    "{{ object.metadata._x }}", "{{ object.metadata.owner }}",
    "{{ object.metadata.owner }}-x", "{{ object.metadata.owner.deeper }}",
    "{{ object.metadata.owner | default('none') }}",
    "{{ object.metadata.owner.deeper | default('none') }}",
    "{{ object.metadata.owner | default(omit) }}", "x{{ object.metadata.owner | default(omit) }}",
    "{{ omit }}", "{{ nothere }}", "{{ nothere | default(params.team) }}", "{{ range }}",
    "{{ object.spec.map | to_json }}", "{{ object.metadata.name | upper }}-{{ item.name }}",
    "{{ params.team | mandatory }}", "{{ params.absent | mandatory('set it') }}",
    "{{ object.metadata.name | int }}", "{{ object.spec.replicas | float }}",
    "{{ object.metadata.owner | default(1e400) }}", "{{ object.metadata.owner | default(-1) }}",
    "{{ object.metadata.owner | default(1.5e3) }}", "{{ object.metadata.owner | default(-0.0) }}",
    "{{ object.spec.list | join(',', attribute='name') }}", "{{ object.spec.values | max }}",
    "{{ object.spec.list | first }}", "{{ object.metadata.labels | dictsort }}",
]


@pytest.mark.parametrize("source", FIXED_CASES)
@pytest.mark.parametrize("mode", ["value", "key"])
def test_fixed_cases_agree(source: str, mode: str) -> None:
    template = {source: 1} if mode == "key" else {"x": source}
    fast, slow = both(template, VARS)
    assert fast == slow


def test_errors_name_the_template_path_and_the_missing_key() -> None:
    template = {"metadata": {"labels": {"owner": "{{ object.metadata.owner }}-x"}}}
    fast, slow = both(template, VARS)
    assert fast == slow
    assert fast[0] == "error"
    assert "at metadata.labels.owner" in fast[1] and "no key 'owner'" in fast[1]
    fast, slow = both({"a": "{{ nope.x }}"}, VARS)
    assert fast == slow
    assert "variable 'nope' is undefined" in fast[1] and "variables: item, object" in fast[1]


@pytest.mark.parametrize(("source", "value", "fails"), [
    ("{{ params.v }}", "a" * MAX_STRING, False),
    ("{{ params.v }}", "a" * (MAX_STRING + 1), True),
    ("{{ params.v }}x", "a" * MAX_STRING, True),
    ("{{ params.v }}{{ params.v }}", "a" * (MAX_STRING // 2), False),
    ("{{ params.v }}{{ params.v }}", "a" * (MAX_STRING // 2 + 1), True),
    ("{{ params.v | upper }}", "a" * (MAX_STRING + 1), True),
    ("{{ params.v }}", ["a" * 1000] * 1100, False),  # a native value may be larger
    ("x{{ params.v }}", ["a" * 1000] * 1100, True),  # than a printed one
    ("{{ params.v }}", ["a" * 1000] * 4200, True),
])
def test_size_limits_agree(source: str, value: Any, fails: bool) -> None:
    variables = {"params": {"v": value}}
    fast, slow = both({"x": source}, variables)
    assert fast == slow
    assert (fast[0] == "error") is fails


RUNNER_CASES = [
    ("{{ params.team }}", True), ("{{ object.metadata.name }}", True),
    ("{{ item.name }}", True), ("{{ context.settings.data.tier }}", True),
    ("{{ object.metadata.name }}-config", True), ("{{ object.spec.replicas | string }}", True),
    ("{{ object['metadata']['name'] }}", True), ("{{ object.spec.list[0] }}", True),
    ("{{ x | default('a') | upper }}", True), ("{{ x | default(-1) }}", True),
    ("{{ x | default(omit) }}", True), ("{{ x | join(', ') }}", True),
    ("a {{ x }} b {{ y.z }} c", True), ("{% raw %}{{ x }}{% endraw %} {{ y }}", True),
    ("{{ 1 }}", False), ("x{{ 'a' }}", False), ("{{ x + 1 }}", False),
    ("{{ x ~ 'a' }}", False), ("{{ x.get('a') }}", False), ("{{ x[y] }}", False),
    ("{{ x[1:2] }}", False), ("{{ x | map('upper') }}", False), ("{{ x | list }}", False),
    ("{{ x | default([1]) }}", False), ("{{ x if y else z }}", False),
    ("{% if x %}a{% endif %}", False), ("{{ self }}", False), ("{{ x is defined }}", False),
    ("{{ x | default(*y) }}", False),
    ("{{ x | default(1e400) }}", False),  # Jinja2 prints inf back as a name, and fails
]


@pytest.mark.parametrize(("source", "fast"), RUNNER_CASES)
def test_which_strings_take_the_fast_path(source: str, fast: bool) -> None:
    leaf = compile_template(source, where=WHERE).root
    assert isinstance(leaf, _Leaf)
    assert (leaf.compiled.runner is not None) is fast


# ---------------------------------------------------------------------------------------
# reads

READS_CASES: list[tuple[str, Any, set[tuple[str, ...]] | None]] = [
    ("static", {"a": [1, "x"]}, set()),
    ("other variables", "{{ params.team }}-{{ item.name }}", set()),
    ("path", "{{ object.metadata.name }}", {("metadata", "name")}),
    ("subscript", "{{ object['metadata']['labels']['app.kubernetes.io/name'] }}",
     {("metadata", "labels", "app.kubernetes.io/name")}),
    ("text and filter", "{{ object.metadata.name }}-{{ object.spec.replicas | string }}",
     {("metadata", "name"), ("spec", "replicas")}),
    ("filter argument", "{{ params.x | default(object.metadata.name) }}",
     {("metadata", "name")}),
    ("test", "{{ object.spec.replicas is defined }}", {("spec", "replicas")}),
    ("integer index ends the chain", "{{ object.spec.containers[0].image }}",
     {("spec", "containers")}),
    ("dynamic key ends the chain", "{{ object.data[params.key].x }}", {("data",)}),
    ("slice ends the chain", "{{ object.spec.list[1:].x }}", {("spec", "list")}),
    ("method call reads its receiver", "{{ object.metadata.labels.get('a') }}",
     {("metadata", "labels")}),
    ("method on a value", "{{ object.metadata.name.upper() }}", {("metadata", "name")}),
    ("subscripted method", "{{ object.metadata['labels']['items']() }}",
     {("metadata", "labels")}),
    ("loop", "{% for c in object.spec.containers %}{{ c.name }}{% endfor %}",
     {("spec", "containers")}),
    ("set", "{% set m = object.metadata %}{{ m.name }}", {("metadata",)}),
    ("arithmetic", "{{ 3 - object.spec.replicas }}", {("spec", "replicas")}),
    ("condition", "{% if object.spec.on %}{{ object.spec.a }}{% else %}b{% endif %}",
     {("spec", "on"), ("spec", "a")}),
    ("macro", "{% macro m() %}{{ object.spec.a }}{% endmacro %}{{ m() }}", {("spec", "a")}),
    ("call argument", "{{ range(object.spec.replicas) | list }}", {("spec", "replicas")}),
    ("dict method key", "{{ object.spec.items }}", {("spec", "items")}),
    ("templated key", {"{{ object.metadata.name }}": "{{ object.spec.a }}"},
     {("metadata", "name"), ("spec", "a")}),
    ("nested", {"a": ["x", {"b": "{{ object.spec.b }}"}], "c": "{{ object.spec.c }}"},
     {("spec", "b"), ("spec", "c")}),
    ("shadowed name still counts", "{% set object = params %}{{ object.x }}", {("x",)}),
    # object used whole: anything
    ("bare object", "{{ object }}", None),
    ("object in text", "x{{ object }}", None),
    ("object filtered", "{{ object | to_json }}", None),
    ("object tested", "{{ object is mapping }}", None),
    ("object as an argument", "{{ params.x | default(object) }}", None),
    ("object called", "{{ object.items() }}", None),
    ("object get", "{{ object.get('spec') }}", None),
    ("object assigned", "{% set o = object %}{{ o.spec }}", None),
    ("object looped", "{% for k in object %}{{ k }}{% endfor %}", None),
    ("object dynamic key", "{{ object[params.k] }}", None),
    ("object index", "{{ object[0] }}", None),
    ("object in a macro call", "{% macro m(o) %}{{ o.a }}{% endmacro %}{{ m(object) }}", None),
    ("namespace assignment", "{% set object.x = 1 %}", None),
    ("one whole use is enough", {"a": "{{ object.spec.a }}", "b": "{{ object }}"}, None),
    ("in a key", {"{{ object }}": 1}, None),
]


@pytest.mark.parametrize(("template", "expected"), [case[1:] for case in READS_CASES],
                         ids=[case[0] for case in READS_CASES])
def test_reads(template: Any, expected: set[tuple[str, ...]] | None) -> None:
    reads = compile_template(template, where=WHERE).reads
    assert reads == (None if expected is None else frozenset(expected))


@pytest.mark.parametrize(("template", "expected"), [
    ({"a": [1]}, set()),
    ("{{ object.a }}-{{ params.b | default(omit) }}", {"object", "params", "omit"}),
    ({"{{ item.name }}": "{{ context.settings.data }}"}, {"item", "context"}),
    ("{% set x = 1 %}{{ x }}{% for y in items %}{{ y }}{% endfor %}", {"items"}),
    ("{{ range(3) | list }}", {"range"}),
])
def test_reads_variables(template: Any, expected: set[str]) -> None:
    assert compile_template(template, where=WHERE).reads_variables == expected


READS_PROPERTY_SOURCES = [
    "{{ object.metadata.name }}", "{{ object.a.b | default('x') }}", "{{ object.items }}",
    "{{ object.a.items }}-{{ object.a.b.values }}", "{{ object.a.get('b', 'none') }}",
    "{{ object['a']['b'] | to_json }}", "{{ object.a[0] }}", "{{ object.a.b is defined }}",
    "{% for x in object.a %}{{ x }},{% endfor %}", "{{ object.a.b.upper() }}",
    "{% set m = object.a %}{{ m.b }}{{ m.keys() | list }}", "{{ object.a | length }}",
    "{{ object.a.b | dictsort if object.a.b is mapping else object.b }}",
]
OBJECT_KEYS = st.sampled_from(["a", "b", "name", "items", "values"])
OBJECTS = st.dictionaries(OBJECT_KEYS, st.recursive(
    SCALARS, lambda inner: (st.dictionaries(OBJECT_KEYS, inner, min_size=1, max_size=4)
                            | st.lists(inner, max_size=2)),
    max_leaves=10,
), min_size=1, max_size=4)


def overlaps(path: tuple[str, ...], reads: frozenset[tuple[str, ...]]) -> bool:
    return any(read[:len(path)] == path or path[:len(read)] == read for read in reads)


def kind(result: tuple[str, str]) -> tuple[str, str]:
    # An error's wording may list a mapping's keys; whether it fails is what must hold.
    # A printed method names its object's address, which differs in the changed copy.
    if result[0] == "error":
        return "error", ""
    return result[0], re.sub(r" at 0x[0-9a-f]+", "", result[1])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(READS_PROPERTY_SOURCES), OBJECTS, st.data())
def test_changes_away_from_what_a_template_reads_do_not_change_its_render(
        source: str, obj: dict[str, Any], data: st.DataObject) -> None:
    template = compile_template({"x": source}, where=WHERE)
    reads = template.reads
    assert reads is not None
    # a path to change: keys down through mappings, then one more (new or existing) key
    path: list[str] = []
    parent = obj
    while True:
        key = data.draw(OBJECT_KEYS)
        if isinstance(parent.get(key), dict) and data.draw(st.booleans()):
            path.append(key)
            parent = parent[key]
            continue
        path.append(key)
        break
    assume(not overlaps(tuple(path), reads))
    changed = copy.deepcopy(obj)
    target = changed
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and path[-1] in target:
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(VALUES)
    before = outcome(lambda: template.render({"object": obj}))
    after = outcome(lambda: template.render({"object": changed}))
    assert kind(before) == kind(after), (path, reads)
    event(f"render: {before[0]}")
