"""A forEach template writing one item of a keyed list gives what rendering and merging
each item in sequence gives.

`engine.evaluate.writers.ItemWriter`: on random templates of that form (the item's key
from a templated string, a constant or missing; scalar fields, nested maps), random
objects (the list missing, not a list, holding the key twice, items without the key or
not maps) and random forEach items, under the Deployment schema and none, the writer's
object, assignments (paths, values and their types) and identity equal a
`MergeSequence`'s over the rendered items, its template errors equal render's, and it
declines (None) where the generic path must decide. Then whole evaluations of rule sets
with forEach rules, with and without writers (`Settings(writers=False)`, which also
turns off the quick filter that feeds them), conclude the same.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.cel import compile_expression
from engine.cel import program as program_module
from engine.cel.limits import CelLimits
from engine.errors import CompileError, MergeError, TemplateError, Where
from engine.evaluate.changes import created
from engine.evaluate.compile import compile_rule
from engine.evaluate.run import Pass, _paths, run_rule
from engine.evaluate.world import ManifestWorld
from engine.evaluate.writers import item_key, item_writer_of
from engine.objects import GVK
from engine.patching import MergeSequence, json_equal
from engine.patching.assignments import ItemKey
from engine.rules.load import parse_rule_set
from engine.schemas import Node
from engine.schemas.catalogue import builtin
from engine.templating import compile_template
from tests.support import assert_writers_change_nothing

WHERE = Where(rule_set="random", rule="r")
DEPLOYMENT = builtin().for_kind(GVK("apps", "v1", "Deployment"))
SCHEMAS: dict[str, Node | None] = {"none": None, "Deployment": DEPLOYMENT}
CHAIN = ("spec", "template", "spec", "containers")
NAMES = st.one_of(st.just("{{ item.name }}"), st.sampled_from([
    "{{ item.name }}", "{{ item }}", "c0", "{{ item.n }}", "{{ params.v }}",
    "{{ item.name }}-x"]))
LEAVES = st.sampled_from(["{{ params.v }}", "{{ item.name }}", "{{ index }}", "1Gi", 2, True,
                          "{{ params.v | default('d', true) }}",
                          "{{ item.missing }}", "{{ object.metadata.name }}",
                          "{{ item.image | default('none') }}",
                          "{{ object.spec.template.spec.containers | length }}"])
SCALARS = st.one_of(st.sampled_from(["c0", "c1", "c2", "", "x"]), st.integers(0, 2),
                    st.booleans(), st.none())


def item_templates() -> st.SearchStrategy[dict[str, Any]]:
    """The item of the list: its key (or none), and fields (or none: only its key)."""
    fields = st.fixed_dictionaries({}, optional={
        "image": LEAVES,
        "resources": st.fixed_dictionaries({}, optional={
            "limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), LEAVES,
                                      min_size=1)}).filter(bool),
        "args": LEAVES})  # a list in the schema: a scalar there replaces it
    fields = st.one_of(fields.filter(bool), fields.filter(bool), fields)
    return st.tuples(st.one_of(NAMES, NAMES, NAMES, st.none()), fields).map(
        lambda t: {**({"name": t[0]} if t[0] is not None else {}), **t[1]}).filter(bool)


def templates() -> st.SearchStrategy[dict[str, Any]]:
    def wrap(item: dict[str, Any]) -> dict[str, Any]:
        out: Any = [item]
        for key in reversed(CHAIN):
            out = {key: out}
        return out  # type: ignore[no-any-return]
    return item_templates().map(wrap)


CONTAINER = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["c0", "c1", "c2", 1]),
    "image": SCALARS,
    "resources": st.one_of(st.just({}), st.fixed_dictionaries({}, optional={
        "limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), SCALARS)}),
        st.just("odd")),
    "args": st.lists(st.text(max_size=2), max_size=2)})
CONTAINERS = st.one_of(st.lists(st.one_of(CONTAINER, SCALARS), max_size=4),
                       st.lists(CONTAINER, max_size=4), st.just({"name": "c0"}), st.just("x"))


def objects() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly a Deployment holding a list of containers; sometimes not."""
    pod = st.one_of(st.fixed_dictionaries({}, optional={"containers": CONTAINERS}),
                    st.just("odd"))
    odd = st.fixed_dictionaries({
        "metadata": st.fixed_dictionaries({"name": st.sampled_from(["app", "web"])}),
        "spec": st.one_of(st.fixed_dictionaries({"template": st.fixed_dictionaries(
            {}, optional={"spec": pod})}), st.just({}))})
    usual = st.lists(CONTAINER.filter(lambda c: "name" in c), max_size=4).map(
        lambda containers: {"metadata": {"name": "app"},
                            "spec": {"template": {"spec": {"containers": containers}}}})
    return st.one_of(usual, usual, usual, odd)


ITEMS = st.one_of(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["c0", "c3"])}),
                           min_size=1, max_size=3), st.lists(st.one_of(
    st.fixed_dictionaries({}, optional={"name": st.sampled_from(["c0", "c1", "c2", "c3"]),
                                        "n": st.integers(0, 2),
                                        "image": SCALARS}),
    st.sampled_from(["c0", "c9", 3])), max_size=4),
    st.lists(st.fixed_dictionaries({"name": st.sampled_from(["c0", "c1", "c2", "c3"])}),
             min_size=1, max_size=4))


def generic(template: Any, obj: dict[str, Any], variables: dict[str, Any],
            items: list[Any], schema: Node | None) -> Any:
    """What `run._render_onto` does with a forEach template: one merge per item."""
    sequence = MergeSequence(obj, schema=schema)
    working: Any = obj
    assignments: list[Any] = []
    for index, item in enumerate(items):
        rendered = template.render({**variables, "object": working, "item": item,
                                    "index": index})
        working, done = sequence.merge(rendered, where=WHERE)
        assignments.extend(done)
    return working, assignments


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates(), objects(), ITEMS, SCALARS, st.sampled_from(sorted(SCHEMAS)))
def test_the_item_writer_gives_what_render_and_merge_give(
        template: dict[str, Any], obj: dict[str, Any], items: list[Any], v: Any,
        schema_name: str) -> None:
    compiled = compile_template(template, where=WHERE)
    writer = item_writer_of(compiled)
    schema = SCHEMAS[schema_name]
    variables = {"object": obj, "params": {"v": v}}
    before = copy.deepcopy(obj)
    try:
        expected, done = generic(compiled, obj, variables, items, schema)
    except (TemplateError, MergeError) as exc:
        if writer is None:
            return
        try:
            written = writer.apply(obj, variables, schema, items)
        except TemplateError as raised:
            assert str(raised) == str(exc)
            return
        assert written is None, exc
        return
    assert obj == before  # the generic path changed nothing it was given
    if writer is None:  # no key in the item, or all static: merged generically
        return
    written = writer.apply(obj, variables, schema, items)
    assert obj == before
    if written is None:  # the generic path decides
        return
    result, assignments = written
    assert result == expected
    assert (result is obj) == (expected is obj)
    assert [(a.path, a.value) for a in assignments] == [(a.path, a.value) for a in done]
    assert [type(a.value) for a in assignments] == [type(a.value) for a in done]
    assert [[type(p) for p in a.path] for a in assignments] == [
        [type(p) for p in a.path] for a in done]
    # what `run._items_written` ends the rule with, instead of the generic end's
    # comparison of whole objects and formatting of every assignment's path
    ended = writer.write(obj, variables, schema, items)
    assert ended is not None and ended.obj == result
    assert ended.pointers() == _paths(done)
    if ended.surely_changed and ended.obj is not obj:
        assert not json_equal(ended.obj, obj)


def test_the_corpus_rule_is_an_item_writer() -> None:
    template = compile_template({"spec": {"template": {"spec": {"containers": [
        {"name": "{{ item.name }}", "resources": {"limits": {"cpu": "{{ params.cpu }}"}}}]}}}},
        where=WHERE)
    writer = item_writer_of(template)
    assert writer is not None and writer.item_reads == {("name",)}
    obj = {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "x"}, {"name": "b", "resources": {"limits": {"cpu": "1"}}}]}}}}
    items = [obj["spec"]["template"]["spec"]["containers"][0], {"name": "c"}]
    result = writer.apply(obj, {"object": obj, "params": {"cpu": "2"}}, DEPLOYMENT, items)
    assert result is not None
    assert result[0]["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "x", "resources": {"limits": {"cpu": "2"}}},
        {"name": "b", "resources": {"limits": {"cpu": "1"}}},
        {"name": "c", "resources": {"limits": {"cpu": "2"}}}]
    assert writer.apply(obj, {"object": obj, "params": {"cpu": "2"}}, None, items) is None


@pytest.mark.parametrize("template", [
    {"spec": {"containers": {"name": "x"}}},  # no list
    {"spec": {"containers": [{"name": "x"}, {"name": "y"}]}},  # two items
    {"spec": {"containers": [{"name": "x", "ports": [{"containerPort": 1}]}]}},  # a list
    {"spec": {"containers": [{"name": "x", "$patch": "delete"}]}},
    {"spec": {"a": 1, "containers": [{"name": "x", "image": "y"}]}},  # more than a chain
    {"spec": {"containers": [{"name": "{{ item.name }}", "env": None}]}},
])
def test_other_templates_are_rendered_and_merged(template: dict[str, Any]) -> None:
    assert item_writer_of(compile_template(template, where=WHERE)) is None


FOR_EACH = [
    "object.spec.template.spec.containers.filter(c, !has(c.resources) || "
    "!has(c.resources.limits))",
    "object.spec.template.spec.containers",
    "object.spec.template.spec.containers.filter(c, has(c.image))",
    "object.spec.template.spec.containers.map(c, c.name)",
]
ITEM_TEMPLATES = [
    {"name": "{{ item.name }}", "resources": {"limits": {"cpu": "{{ params.cpu }}"}}},
    {"name": "{{ item.name }}", "image": "{{ item.image }}-copy"},
    {"name": "{{ item }}", "args": "x"},
    {"name": "{{ item.name }}", "image": "{{ item | string }}"},  # reads all of item
    {"name": "{{ item.name }}", "resources": "{{ item.resources | default({}) }}"},
    {"name": "extra", "image": "{{ index }}"},
]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(range(len(FOR_EACH))),
                          st.sampled_from(range(len(ITEM_TEMPLATES)))), min_size=1, max_size=3),
       st.lists(st.fixed_dictionaries({"name": st.sampled_from(["c0", "c1", "c\x00", "c2"])},
                                      optional={
           "image": st.sampled_from(["img", "img\x00", "é", 2 ** 70, 1.5]),
           "resources": st.one_of(st.just({}), st.just({"limits": {"cpu": "1"}}),
                                  st.just({"limits": {"z": "1", "a": {"y": 1, "b": 2}}}))}),
           max_size=4))
def test_evaluations_with_and_without_writers_conclude_the_same(
        drawn: list[tuple[int, int]], containers: list[dict[str, Any]]) -> None:
    rules = [{"name": f"r{i}",
              "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
              "mutate": {"forEach": FOR_EACH[which], "template": {"spec": {"template": {
                  "spec": {"containers": [ITEM_TEMPLATES[template]]}}}}}}
             for i, (which, template) in enumerate(drawn)]
    rule_set = parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                               "metadata": {"name": "random"},
                               "spec": {"params": {"cpu": "500m"}, "rules": rules}})
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1", "uid": "u"},
           "spec": {"template": {"spec": {"containers": containers}}}}
    assert_writers_change_nothing(rule_set, obj)


FILTER = ("object.spec.template.spec.containers.filter(c, !has(c.resources) || "
          "!has(c.resources.limits))")
LIMITS = [None, CelLimits(max_depth=9), CelLimits(max_depth=8), CelLimits(max_string_length=5),
          CelLimits(max_list_length=3), CelLimits(max_list_length=4),
          CelLimits(runtime_cost_limit=600), CelLimits(runtime_cost_limit=2000)]
def _by_name(template: dict[str, Any]) -> dict[str, Any]:
    """`template` with its item named by ``item.name`` (what the quick filter feeds)."""
    item = template["spec"]["template"]["spec"]["containers"][0]
    return {"spec": {"template": {"spec": {"containers": [
        {**item, "name": "{{ item.name }}"}]}}}}


USUAL = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["c0", "c1", "c2"])}, optional={
    "image": st.sampled_from(["img", "registry.example/app:1"]),
    "env": st.lists(st.fixed_dictionaries({"name": st.just("A"), "value": SCALARS}),
                    max_size=2),
    "resources": st.one_of(st.just({}), st.just({"limits": {"cpu": "1"}}))}),
    min_size=1, max_size=4).map(
    lambda containers: {"metadata": {"name": "app"},
                        "spec": {"template": {"spec": {"containers": containers}}}})
HOSTILE = st.sampled_from(["500m", "", "x" * 6, "é", "a\x00b", "\ud800", 2, 2 ** 63, True,
                           1.5])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(templates().map(_by_name), templates()), st.one_of(USUAL, USUAL, objects()),
       st.one_of(st.just("500m"), HOSTILE),
       st.sampled_from(range(len(LIMITS))))
# an item the write made lacks what the template reads of an item (`image`)
@example(template={"spec": {"template": {"spec": {"containers": [
             {"name": "c0", "args": "{{ item.image | default('none') }}"}]}}}},
         obj={"metadata": {"name": "app"}, "spec": {"template": {"spec": {"containers": [
             {"name": "c1", "image": "img"}]}}}},
         v="500m", limits=0)
def test_a_list_the_writer_made_is_checked_as_walking_it_checks(
        template: dict[str, Any], obj: dict[str, Any], v: Any, limits: int) -> None:
    """The confirming pass takes the list an item writer made on the bounds `remember`
    kept instead of walking it: the quick filter then gives what it gives after walking
    the list (the same items, or none where the walk refuses the data), on bounds no
    smaller than the walk's measures; and never in another evaluation."""
    try:
        program = compile_expression(FILTER, where=WHERE, limits=LIMITS[limits])
    except CompileError:
        return
    writer = item_writer_of(compile_template(template, where=WHERE))
    if writer is None:
        return
    token = object()
    variables = {"object": obj, "params": {"v": v}}
    found = writer.quick_items_measured(program, variables, token=token)
    if found is None:
        return
    try:
        done = writer.write(obj, variables, DEPLOYMENT, found[0])
    except TemplateError:
        return
    if done is None:
        return
    writer.remember(program, found[1], done, token=token)
    after = {"object": done.obj, "params": {"v": v}}
    remembered = writer.quick_items_measured(program, after, token=token)
    # the writer's answer without what it remembered (another evaluation's token): the
    # program's walk, unless an item lacks what the template reads of it (an item the
    # write made, too), where the writer leaves the rule to rendering and merging
    elsewhere = writer.quick_items_measured(program, after, token=object())
    walked = program.quick_items_measured(after)
    assert elsewhere is None or elsewhere == walked
    assert (remembered is None) == (elsewhere is None), (template, obj, v)
    if remembered is not None and walked is not None:
        assert remembered[0] == walked[0]
        assert all(map(operator.ge, remembered[1], walked[1])), (remembered, walked)


def test_the_confirming_pass_does_not_walk_the_list_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    template = compile_template({"spec": {"template": {"spec": {"containers": [
        {"name": "{{ item.name }}", "resources": {"limits": {"cpu": "{{ params.cpu }}"}}}]}}}},
        where=WHERE)
    writer = item_writer_of(template)
    program = compile_expression(FILTER, where=WHERE)
    assert writer is not None and program.reads_only("object", writer.path)
    obj = {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
        {"name": "b", "resources": {"limits": {"cpu": "1"}}}]}}}}
    token = object()
    variables = {"object": obj, "params": {"cpu": "2"}}
    found = writer.quick_items_measured(program, variables, token=token)
    assert found is not None and found[0] == [obj["spec"]["template"]["spec"]["containers"][0]]
    done = writer.write(obj, variables, DEPLOYMENT, found[0])
    assert done is not None and done.obj is not obj
    writer.remember(program, found[1], done, token=token)

    def walked(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("walked again")

    monkeypatch.setattr(program_module, "plain_measures", walked)
    again = writer.quick_items_measured(program, {**variables, "object": done.obj},
                                        token=token)
    assert again is not None and again[0] == []
    with pytest.raises(AssertionError, match="walked again"):  # another evaluation walks
        writer.quick_items_measured(program, {**variables, "object": done.obj},
                                    token=object())
    monkeypatch.undo()
    # a value written that is not plain data (non-ASCII text) is walked too
    hostile = {**variables, "params": {"cpu": "é"}}
    found = writer.quick_items_measured(program, variables, token=token)
    assert found is not None
    done = writer.write(obj, hostile, DEPLOYMENT, found[0])
    assert done is not None and done.grew is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(USUAL, st.one_of(st.just("500m"), HOSTILE), st.booleans())
def test_evaluations_confirming_on_kept_bounds_conclude_the_same(
        obj: dict[str, Any], cpu: Any, second: bool) -> None:
    """The corpus rule, whose confirming pass takes its list on kept bounds (and, with
    `second`, a later rule writing the same list, whose own pass walks it), evaluated
    with and without writers: the same conclusions."""
    rules = [{"name": "limits",
              "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
              "mutate": {"forEach": FILTER, "template": {"spec": {"template": {"spec": {
                  "containers": [ITEM_TEMPLATES[0]]}}}}}}]
    if second:
        rules.append({**rules[0], "name": "images", "mutate": {
            "forEach": FOR_EACH[1], "template": {"spec": {"template": {"spec": {
                "containers": [ITEM_TEMPLATES[1]]}}}}}})
    rule_set = parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                               "metadata": {"name": "random"},
                               "spec": {"params": {"cpu": cpu}, "rules": rules}})
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1", "uid": "u"},
           "spec": obj["spec"]}
    assert_writers_change_nothing(rule_set, obj)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(FOR_EACH))), st.one_of(templates().map(_by_name), templates()),
       st.one_of(USUAL, objects()), st.one_of(st.just("500m"), HOSTILE))
def test_a_forEach_run_says_what_the_change_log_would_find(
        which: int, template: dict[str, Any], obj: dict[str, Any], cpu: Any) -> None:
    """`run_rule` of a forEach rule with an item writer: the maps its run says it made
    above its paths (`RuleRun.created`) are what `changes.created` finds on the object it
    was given, and its set of paths is that of its assignments; a run of no item is
    unchanged and assigns nothing, as the generic run concludes."""
    rule_set = parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                               "metadata": {"name": "random"},
                               "spec": {"params": {"cpu": cpu, "v": cpu}, "rules": [{
                                   "name": "r", "match": {"resources": [{
                                       "apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
                                   "mutate": {"forEach": FOR_EACH[which],
                                              "template": template}}]}})
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "n", "resourceVersion": "1", "uid": "u"},
           "spec": obj["spec"]}
    world = ManifestWorld([obj])
    runs = []
    for writers in (True, False):
        compiled = compile_rule(rule_set, rule_set.rules[0])
        if not writers:
            compiled = dataclasses.replace(compiled, item_writer=None, writer=None)
        p = Pass(world, None, set(), schema=DEPLOYMENT, gvk=GVK("apps", "v1", "Deployment"))
        runs.append(run_rule(compiled, obj, p))
    fast, slow = runs
    assert (fast.status, fast.message, fast.paths, fast.written) == (
        slow.status, slow.message, slow.paths, slow.written)
    assert (fast.obj is None) == (slow.obj is None)
    assert fast.obj is None or fast.obj == slow.obj
    paths = frozenset(tuple(a.path) for a in fast.written)
    if fast.path_set is not None:
        assert fast.path_set == paths
    if fast.obj is not None and fast.created is not None:
        assert fast.created == created(obj, paths)


@given(st.dictionaries(st.sampled_from(["name", "port", "a=b", "é"]),
                       st.one_of(st.text(max_size=3), SCALARS, st.lists(st.integers(), max_size=2)),
                       max_size=3))
def test_an_item_key_is_what_of_keys_makes(named: dict[str, Any]) -> None:
    made, expected = item_key(named), ItemKey.of_keys(named)
    assert (str(made), type(made), made.keys, made.value) == (
        str(expected), type(expected), expected.keys, expected.value)
