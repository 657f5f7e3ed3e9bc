"""engine.cel.reads and engine.cel.syntax: what an expression reads, and projection.

`Program.reads` must never miss a path the expression can read (the engine skips rules
whose reads did not change, and evaluation binds only those paths), so the cases are a
table of expressions and their read sets; then a property: for random JSON-like values
and a fixed set of expressions, evaluating on the projection gives exactly what
evaluating on the whole values gives, the same value or the same error.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cel import VARIABLES, Program, bind, compile_expression
from engine.cel import adapter as cel_adapter
from engine.cel.reads import analyse, view_of, whole_view
from engine.cel.syntax import Node, SyntaxUnknown, parse
from engine.errors import CelBug, CelError, Where
from tests.support import same

WHERE = Where(rule_set="reads", rule="case", field="condition")


def compiled(source: str) -> Program:
    return compile_expression(source, where=WHERE)


def whole(program: Program) -> Program:
    """The same program evaluating on the whole variables, as before projection."""
    return dataclasses.replace(program, _view=None)


READS: list[tuple[str, set[tuple[str, ...]] | None]] = [
    ("object.spec.replicas > 1", {("spec", "replicas")}),
    ("object.metadata.name == 'a' && object.metadata.namespace == 'b'",
     {("metadata", "name"), ("metadata", "namespace")}),
    # has(), optional select and index with string literals continue the chain
    ("has(object.spec.revisionHistoryLimit)", {("spec", "revisionHistoryLimit")}),
    ("has(object.spec)", {("spec",)}),
    ("object.?metadata.?labels.?app.orValue('') == 'web'", {("metadata", "labels", "app")}),
    ("object['metadata']['labels'] == {}", {("metadata", "labels")}),
    ("object.metadata.labels[?'app'].orValue('')", {("metadata", "labels", "app")}),
    ("object[?'spec'][?'x'].orValue(1) == 1", {("spec", "x")}),
    ("object.metadata.labels['app.kubernetes.io/name'] == 'x'",
     {("metadata", "labels", "app.kubernetes.io/name")}),
    ("object['a']['']", {("a", "")}),
    # a chain stops at a non-literal index, a method call, a macro
    ("object.spec.containers[0].name == 'a'", {("spec", "containers")}),
    ("object.metadata.labels[params.key] == 'a'", {("metadata", "labels")}),
    ("object.spec.template.spec.containers.all(c, c.image != '')",
     {("spec", "template", "spec", "containers")}),
    ("object.spec.template.spec.containers.filter(c, !has(c.resources)).map(c, c.name)",
     {("spec", "template", "spec", "containers")}),
    ("object.metadata.name.startsWith('web')", {("metadata", "name")}),
    ("size(object.metadata.labels) > 0", {("metadata", "labels")}),
    ("'app' in object.metadata.labels", {("metadata", "labels")}),
    ("object.metadata.?labels.orValue({}).size() == 0", {("metadata", "labels")}),
    ("cel.bind(m, object.metadata, m.name + m.namespace)", {("metadata",)}),
    ("{'k': object.spec}.k.replicas", {("spec",)}),
    ("[object.a.b, object.c][0]", {("a", "b"), ("c",)}),
    ("dyn(object.spec).replicas", {("spec",)}),
    # a path under another read path adds nothing
    ("object.metadata.labels.app == 'a' || size(object.metadata) > 1", {("metadata",)}),
    # string literals and comments are not reads
    ("'object.x' == 'object.y' // object.z", set()),
    ("params.x == 'object.spec.replicas'", set()),
    ("namespaceObject != null", set()),
    ("oldObject.spec.replicas == 1", set()),
    ("[1, 2].all(x, x > 0)", set()),
    # object used whole: reads everything
    ("object != null", None),
    ("size(object) > 0", None),
    ("object == oldObject", None),
    ("'spec' in object", None),
    ("object.all(k, k != '')", None),
    ("cel.bind(o, object, o.spec.replicas)", None),
    ("object[params.key] == 1", None),
    ("object[0] == 1", None),
    ("object.?spec.orValue(object) == {}", None),
    ("dyn(object).spec == 1", None),
    ("type(object) == map", None),
    # a comprehension variable named like it: shadowed, so everything
    ("[{'a': 1}].all(object, object.a == 1)", None),
    ("object.spec.containers.exists(object, object.name == 'a')", None),
    ("cel.bind(object, {'a': 1}, object.a) == 1", None),
]


@pytest.mark.parametrize(("source", "expected"), READS)
def test_reads(source: str, expected: set[tuple[str, ...]] | None) -> None:
    reads = compiled(source).reads
    assert reads == (None if expected is None else frozenset(expected))


READS_VARIABLES = [
    ("object.spec.replicas > 1", {"object"}),
    ("params.a + context.b.c", {"params", "context"}),
    ("namespaceObject != null && ruleSet.name == 'x'", {"namespaceObject", "ruleSet"}),
    ("'object' + 'item'", set()),
    ("[1].map(x, x + 1) == [2]", set()),
    ("object.spec.containers.map(item, item.name) == []", {"object", "item"}),  # shadowed
    ("oldObject == null || item.x == 1", {"oldObject", "item"}),
]


@pytest.mark.parametrize(("source", "expected"), READS_VARIABLES)
def test_reads_variables(source: str, expected: set[str]) -> None:
    assert compiled(source).reads_variables == frozenset(expected)


def test_other_variables_are_read_the_same_way() -> None:
    program = compiled("params.limits.cpu == context.settings.?data.?tier.orValue('') && "
                       "namespaceObject != null")
    reads = program._seen().reads
    assert reads == {"params": frozenset({("limits", "cpu")}),
                     "context": frozenset({("settings", "data", "tier")}),
                     "namespaceObject": None}
    self_rule = compile_expression("self.size() > 1 && self[0] == 1", where=WHERE,
                                   variables=("self",))
    assert self_rule.reads == frozenset()  # no `object` there
    assert self_rule.reads_variables == frozenset()
    assert self_rule._seen().reads == {"self": None}


def test_hand_built_program_reads_everything() -> None:
    program = whole(compiled("object.a == 1"))
    assert program.reads is None
    assert program.reads_variables == frozenset(VARIABLES)
    assert program.evaluate({"object": {"a": 1}}) is True


# The syntax tree: the decoder of the library's serialization, and its failure mode.

def test_syntax_tree_of_a_condition() -> None:
    source = "has(object.a.b) && object.c[?'d'].orValue(1) in [1, 2] && {'k': 1}.k == 1"
    root = parse(compiled(source)._expression.serialize())
    assert root.kind == "call" and root.name == "_&&_"
    kinds: set[str] = set()
    strings: set[str] = set()

    def walk(node: Node) -> None:
        kinds.add(node.kind)
        if node.kind == "const" and node.name is not None:
            strings.add(node.name)
        for child in node.children():
            walk(child)

    walk(root)
    assert kinds == {"call", "select", "ident", "const", "list", "map"}
    assert {"d", "k"} <= strings


def test_comprehensions_name_their_variables() -> None:
    root = parse(compiled("object.xs.all(c, c > 0)")._expression.serialize())
    assert root.kind == "comprehension" and "c" in root.binds
    assert root.loop is not None
    assert root.loop.iter_range.kind == "select" and root.loop.iter_range.name == "xs"
    assert root.children()[0] is root.loop.iter_range


@pytest.mark.parametrize("garbage", [b"", b"\x0a\x03abc", b"\xff\xff\xff", b"\x0b"])
def test_undecodable_means_everything(garbage: bytes) -> None:
    with pytest.raises((SyntaxUnknown, UnicodeDecodeError)):
        parse(garbage)
    assert analyse(garbage, VARIABLES) == dict.fromkeys(VARIABLES)


# Projection.

def test_projection_keeps_read_paths_and_stops_where_the_data_does() -> None:
    view = view_of(VARIABLES, {"object": frozenset({("spec", "replicas"), ("a", "b", "c"),
                                                   ("m", "x"), ("l", "x")}),
                               "params": None})
    obj = {"spec": {"replicas": 2, "paused": True}, "a": {"b": "text", "z": 1},
           "l": [1, 2], "other": {"big": list(range(100))}}
    params = {"p": 1}
    data = view.project({"object": obj, "params": params, "item": 5})
    assert data["object"] == {"spec": {"replicas": 2}, "a": {"b": "text"}, "l": [1, 2]}
    assert data["object"]["l"] is obj["l"]  # subtrees are shared, never copied
    assert data["params"] is params and data["item"] == 5  # not read: as given
    assert set(data) == set(VARIABLES) and data["oldObject"] is None
    assert view.project({"object": [1]})["object"] == [1]
    assert view.project({})["object"] is None


PRESENCE: list[tuple[str, dict[str, set[tuple[str, ...]]]]] = [
    ("namespaceObject != null", {"namespaceObject": {()}}),
    ("null == context.settings", {"context": {("settings",)}}),
    ("object.spec.x != null && object.metadata.labels.a == 'b'", {"object": {("spec", "x")}}),
    ("object.a.b == null || object.c != null", {"object": {("a", "b"), ("c",)}}),
    ("namespaceObject != null && params.x == null", {"namespaceObject": {()},
                                                      "params": {("x",)}}),
    # read otherwise at, above or beneath: the value itself
    ("namespaceObject != null && namespaceObject.metadata.name == 'x'", {}),
    ("object.a != null && object.a.b == null", {}),
    ("object.a.b != null && has(object.a)", {}),
    ("object.a != null && size(object) > 1", {}),
    ("object.a != null && object.a.size() > 1", {}),
    ("object.?a.orValue(null) != null", {}),  # not a plain chain
    ("object[?'a'] != null", {}),
    ("params.xs.all(object, object != null)", {}),  # shadowed
    ("cel.bind(x, object, x != null)", {}),
]


@pytest.mark.parametrize(("source", "expected"), PRESENCE)
def test_what_is_only_compared_with_null(source: str, expected: dict[str, Any]) -> None:
    program = compiled(source)
    assert program._seen().present == {
        name: frozenset(paths) for name, paths in expected.items()}
    # what the expression reads is the same either way (the skip of unchanged rules)
    assert program._seen().reads == analyse(program._expression.serialize(), VARIABLES) | {
        name: None for name, paths in expected.items() if () in paths}


def test_projection_holds_a_stand_in_for_what_is_only_compared_with_null() -> None:
    program = compiled("object.a.b != null && null != object.c && namespaceObject != null "
                       "&& object.d != null && object.e.f == 1")
    nested = {"deep": ["x\x00"]}
    obj = {"a": {"b": nested, "z": 1}, "c": 2 ** 70, "d": (1,), "e": {"f": 1, "g": 2}}
    data = program._seen().project({"object": obj, "namespaceObject": [nested]})
    assert data["object"] == {"a": {"b": {}}, "c": 0, "d": (1,), "e": {"f": 1}}
    assert data["namespaceObject"] == []
    assert program.evaluate({"object": obj, "namespaceObject": [nested]}) is True
    assert compiled("object.c == null").evaluate({"object": {"c": None}}) is True


def test_views_are_shared_by_programs_that_read_the_same() -> None:
    first = compiled("object.spec.replicas > 1")
    second = compiled("object.spec.replicas == 3")
    assert first._view is second._view
    assert compiled("object.spec.paused")._view is not first._view
    assert whole_view(VARIABLES) is whole_view(VARIABLES)


def test_bindings_share_projections_and_then_the_whole() -> None:
    obj = {"spec": {"replicas": 3, "paused": False}, "metadata": {"name": "web"}}
    bound = bind({"object": obj})
    sources = ["object.spec.replicas > 1", "object.spec.replicas == 3", "object.spec.paused",
               "object.metadata.name", "has(object.status)", "object.?x.orValue(1)",
               "object.spec.?y.orValue(2)", "size(object)"]
    expected = [True, True, False, "web", False, 1, 2, 2]
    for source, value in zip(sources, expected, strict=True):
        assert compiled(source).evaluate(bound) == value
    limit = cel_adapter.PROJECTIONS_PER_BINDING
    assert len(bound._activations) == limit + 1  # the projections, then the whole values
    assert whole_view(VARIABLES) in bound._activations  # keyed by view for default limits


def test_data_that_is_not_read_cannot_fail_the_expression() -> None:
    # An int beyond int64 or a null map key fail the library's conversion; a program
    # that does not read them no longer converts them.
    program = compiled("object.spec.replicas")
    for odd in (2**70, {None: 1}, {(1, 2): 3}):
        obj = {"spec": {"replicas": 2}, "status": {"odd": odd}}
        assert program.evaluate({"object": obj}) == 2
        with pytest.raises(CelBug):
            whole(program).evaluate({"object": obj})
        with pytest.raises(CelBug):
            compiled("object.status.odd == 1").evaluate({"object": obj})


# Property: projection never changes a result.

KEYS = ["a", "b", "c", ""]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-3, max_value=3),
    st.sampled_from(["", "a", "b", "x"]))
keys = st.sampled_from(KEYS)
values = st.recursive(  # maps twice as likely as lists, so that paths often lead somewhere
    scalars,
    lambda inner: st.one_of(st.dictionaries(keys, inner, min_size=1, max_size=4),
                            st.dictionaries(keys, inner, max_size=3),
                            st.lists(inner, max_size=3)),
    max_leaves=14)
objects = st.one_of(st.dictionaries(keys, values, max_size=4), values)

EXPRESSIONS = [
    "object.a", "object.a.b", "object.a.b.c == 1", "object.a.b.c.a",
    "has(object.a)", "has(object.a.b)", "has(object.a.b.c)",
    "object.?a.?b.orValue('none')", "object.?a.?b.?c.orValue(0) == 0",
    "object['a']['b']", "object[?'a'][?'b'].orValue(7)", "object.a[?''].orValue(7)",
    "object.a[''].b", "object.a[0]", "object.a[0].b", "object.a[1] == 'x'",
    "size(object.a)", "size(object.a.b) > 1", "'b' in object.a", "object.a == object.b",
    "object.a.b == object.c", "object.a.b + object.a.c", "object.a.c - object.b.a",
    "object.a.all(k, k != 'zz')", "object.a.exists(k, has(object.b.c))",
    "object.a.map(x, x)", "object.a.b.filter(x, x != null)",
    "has(object.a.b) ? object.a.b : object.c", "object.a.b.c || object.b == null",
    "object.?a.orValue(null) == null", "type(object.a) == map", "type(object.a.b)",
    "dyn(object.a).b", "{'k': object.a}.k.b", "[object.a.b, object.c]",
    "cel.bind(x, object.a, x.b)", "object.a.b.startsWith('a')", "string(object.a.b)",
    "object == {}", "size(object)", "object.a.?b.hasValue()",
    "params.a.b", "params.?a.?c.orValue(1)", "context.a[?'b'].orValue(1) == 1",
    "oldObject.a == object.a", "has(oldObject.b.c) || has(object.c.b)",
    # compared with null: a stand-in where nothing else is read at, above or beneath
    "object.a != null", "object.a.b == null", "object == null", "null != params.a",
    "object.a != null && object.a.b == 1", "object.a.b != null || object.c == null",
    "object.a != null && object.a.b != null", "object.a == null ? 1 : size(object.b)",
    "context.a.b != null && context.a.b == context.c",
    "{'k': object.a == null}.k && object.b != null",
]
PROGRAMS = [compiled(source) for source in EXPRESSIONS]
WHOLE = [whole(program) for program in PROGRAMS]


def outcome(program: Program, variables: Any) -> tuple[str, Any]:
    try:
        return ("value", program.evaluate(variables))
    except CelError as error:
        return (type(error).__name__, str(error))


@settings(max_examples=300, deadline=None)
@given(obj=objects, old=objects, params=values, context=values)
def test_projection_gives_the_same_results(obj: Any, old: Any, params: Any,
                                           context: Any) -> None:
    variables = {"object": obj, "oldObject": old, "params": params, "context": context}
    shared = bind(variables)
    for program, on_whole in zip(PROGRAMS, WHOLE, strict=True):
        expected = outcome(on_whole, variables)
        for got in (outcome(program, variables), outcome(program, shared)):
            assert got[0] == expected[0], (program.source, got, expected)
            if got[0] == "value":
                assert same(got[1], expected[1]), (program.source, got, expected)
            else:
                assert got[1] == expected[1], (program.source, got, expected)
