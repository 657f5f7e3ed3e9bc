"""`MergeSequence` (the merges of a ``forEach``) against `merge` one partial after the
other, on random targets and partials: the same result after every step, the same
assignments, the same error at the same step, and neither the target nor any partial
changed. Keys come from a small alphabet, so items collide, repeat and get deleted;
some lists hold items without keys or the same key twice.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import MergeError, Where
from engine.evaluate import run
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import Result, Status
from engine.evaluate.world import ManifestWorld
from engine.patching import DELETE, MergeSequence, merge
from engine.rules.load import parse_rule_set
from engine.schemas import Node, Table

WHERE = Where(rule_set="r", rule="each", field="mutate.template")
BY_NAME = {"l": "map", "k": ["name"]}
TABLE = Table({
    "t.Root": {"f": {
        "spec": "t.Spec", "env": {**BY_NAME, "i": "t.Env"}, "c": {**BY_NAME, "i": "any"},
        "owners": {**BY_NAME, "i": "t.Owner"}, "finalizers": {"l": "set", "i": "string"},
        "selector": {"m": "atomic", "v": "string"}, "tolerations": {"l": "atomic", "i": "any"},
    }},
    "t.Spec": {"f": {"containers": {**BY_NAME, "i": "t.Container"}}},
    "t.Container": {"f": {
        "name": "string", "image": "string", "env": {**BY_NAME, "i": "t.Env"},
        "ports": {"l": "map", "k": ["containerPort", "protocol"], "i": "t.Port"},
        "resources": {"f": {"limits": {"v": "string"}}}}},
    "t.Port": {"f": {"containerPort": "integer", "protocol": {"s": "string", "d": "TCP"}}},
    "t.Env": {"f": {"name": "string", "value": "string"}},
    "t.Owner": {"a": True, "f": {"name": "string", "uid": "string"}},
})
SCHEMA: Node | None = TABLE.node("t.Root")

NAMES = st.sampled_from(["a", "b", "c", "d"])
SCALARS = st.one_of(st.sampled_from(["x", "y", ""]), st.integers(0, 2), st.booleans())
VALUES = st.one_of(st.none(), SCALARS)
FREE = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["p", "q"]), inner,
                                                 max_size=2)), max_leaves=6)


def keyed(fields: dict[str, Any], *, deletes: bool = True, junk: bool = False
          ) -> st.SearchStrategy[list[Any]]:
    """A list merged by name: items of `fields`, maybe a `$patch: delete`, maybe (in a
    target) an item with no name or a string."""
    item = st.fixed_dictionaries({"name": NAMES}, optional=fields)
    options = [item]
    if deletes:
        options.append(st.builds(lambda n: {"name": n, "$patch": "delete"}, NAMES))
    if junk:
        options += [st.just("junk"), st.fixed_dictionaries({}, optional=fields)]
    return st.lists(st.one_of(*options), max_size=4)


PORT = st.fixed_dictionaries({"containerPort": st.integers(80, 81)},
                             optional={"protocol": st.sampled_from(["TCP", "UDP", None])})


def container(junk: bool) -> dict[str, Any]:
    return {"image": VALUES, "env": keyed({"value": VALUES}, deletes=not junk, junk=junk),
            "ports": st.lists(PORT, max_size=2),
            "resources": st.fixed_dictionaries({}, optional={
                "limits": st.dictionaries(st.sampled_from(["cpu", "mem"]), VALUES,
                                          max_size=2)})}


def document(junk: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "spec": st.fixed_dictionaries({}, optional={
            "containers": keyed(container(junk), deletes=not junk, junk=junk)}),
        "env": keyed({"value": VALUES}, deletes=not junk, junk=junk),
        "c": keyed({"v": FREE}, deletes=not junk, junk=junk),
        "owners": keyed({"uid": VALUES}, deletes=False, junk=junk),
        "finalizers": st.lists(st.sampled_from(["f1", "f2"]), unique=True, max_size=2),
        "selector": st.dictionaries(st.sampled_from(["app", "tier"]), VALUES, max_size=2),
        "tolerations": st.lists(FREE, max_size=2),
        "free": FREE,
        "gone": VALUES,
    })


TARGETS = document(junk=True)
PARTIALS = st.lists(document(junk=False), min_size=1, max_size=6)


def text(value: Any) -> str:
    """Strict: types (1 is not true), key order and list order all count."""
    return json.dumps(value, default=lambda v: "<DELETE>" if v is DELETE else repr(v))


def one_by_one(target: Any, partials: list[Any]) -> tuple[list[str], list[str], str]:
    results, assignments = [], []
    for partial in partials:
        try:
            target, done = merge(target, partial, where=WHERE, schema=SCHEMA)
        except MergeError as error:
            return results, assignments, str(error)
        results.append(text(target))
        assignments += [text([list(a.path), a.value]) for a in done]
    return results, assignments, ""


def in_sequence(target: Any, partials: list[Any]) -> tuple[list[str], list[Any], str]:
    sequence = MergeSequence(target, schema=SCHEMA)
    results, assignments = [], []
    for partial in partials:
        try:
            result, done = sequence.merge(partial, where=WHERE)
        except MergeError as error:
            return results, assignments, str(error)
        assert result is sequence.result
        results.append(text(result))
        assignments += done
    return results, assignments, ""


@settings(max_examples=1500, deadline=None)
@given(TARGETS, PARTIALS)
def test_a_sequence_gives_what_merging_one_by_one_gives(target: dict[str, Any],
                                                         partials: list[Any]) -> None:
    target_before, partials_before = text(target), text(partials)
    expected_results, expected_assignments, expected_error = one_by_one(target, partials)
    results, assignments, error = in_sequence(target, partials)
    assert results == expected_results
    assert error == expected_error
    # compared once every merge is done: a later merge must not have changed what an
    # earlier one assigned
    assert [text([list(a.path), a.value]) for a in assignments] == expected_assignments
    assert text(target) == target_before
    assert text(partials) == partials_before


# shared items in the partial's order, new ones after the partial's item before them,
# the target's others in their places; a deleted item comes back at the end
ORDER = ["d", "b", "c", "z", "a", "junk", "f", "g", "e"]


def test_items_go_where_merge_puts_them_over_many_steps() -> None:
    target = {"spec": {"containers": [{"name": n, "image": n} for n in "dbca"] + ["junk"]}}
    partials = [{"spec": {"containers": [{"name": n, "image": f"{n}{step}"}]}}
                for step in range(3) for n in "abcdefg"]
    partials.append({"spec": {"containers": [{"name": "e", "$patch": "delete"}]}})
    partials.append({"spec": {"containers": [{"name": "e", "image": "back"}]}})
    partials.append({"spec": {"containers": [{"name": "z"}, {"name": "a", "image": "2"}]}})
    expected, _, error = one_by_one(target, partials)
    assert not error
    original = copy.deepcopy(target)
    results, _, error = in_sequence(target, partials)
    assert not error and results == expected
    assert target == original
    final = json.loads(results[-1])["spec"]["containers"]
    assert [c if isinstance(c, str) else c["name"] for c in final] == ORDER


def test_a_key_held_twice_takes_the_path_of_merge() -> None:
    target = {"env": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}
    partials = [{"env": [{"name": "b", "value": "3"}]}, {"env": [{"name": "a", "value": "4"}]},
                {"env": [{"name": "b", "value": "5"}]}]
    expected, _, _ = one_by_one(target, partials)
    results, _, _ = in_sequence(target, partials)
    assert results == expected
    assert json.loads(results[-1]) == {"env": [{"name": "a", "value": "4"},
                                               {"name": "b", "value": "5"}]}


FOR_EACH = {
    "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
    "metadata": {"name": "each"},
    "spec": {"rules": [{
        "name": "limits",
        "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
        "mutate": {
            "forEach": "object.spec.template.spec.containers.filter(c, "
                       "!c.name.startsWith('extra'))",
            # each item reads what the items before it wrote
            "template": {"spec": {"template": {"spec": {"containers": [{
                "name": "{{ item.name }}",
                "image": "{{ object.spec.template.spec.containers | length }}",
                "resources": {"limits": {"cpu": "{{ index }}"}},
            }, {"name": "extra-{{ index % 3 }}", "image": "{{ item.image }}"}]}}}},
        },
    }]},
}


class OneByOne:
    """What the engine did before `MergeSequence`: `merge` for every item in turn."""

    def __init__(self, target: Any, *, schema: Node | None = None) -> None:
        self.result, self.schema = target, schema

    def merge(self, partial: Any, *, where: Where) -> tuple[Any, Any]:
        self.result, done = merge(self.result, partial, where=where, schema=self.schema)
        return self.result, done


def test_the_engine_runs_a_for_each_as_the_merges_one_by_one_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"template": {"spec": {"containers": [
               {"name": f"c{i}", "image": f"i{i}"} for i in range(40)]}}}}
    original = copy.deepcopy(obj)

    def evaluate() -> Result:
        engine = Engine([parse_rule_set(FOR_EACH)])
        return engine.evaluate(obj, world=ManifestWorld([obj]))

    result = evaluate()
    assert obj == original
    assert [o.status for o in result.outcomes] == [Status.APPLIED]
    containers = result.desired["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == [
        *(f"c{i}" for i in range(40)), "extra-0", "extra-1", "extra-2"]
    assert {c["image"] for c in containers} == {43}  # at the fixed point: the whole list
    monkeypatch.setattr(run, "MergeSequence", OneByOne)
    before = evaluate()
    assert text(result.desired) == text(before.desired)
    assert text(result.patch) == text(before.patch)
    assert result.outcomes == before.outcomes
