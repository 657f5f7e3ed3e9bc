"""Generate templates made into children directly give exactly what rendering gives.

`engine.evaluate.makers`: on random generate templates (literal keys over constants and
templated strings that may render to maps, lists, null, ``omit`` or fail; labels,
annotations and namespaces from the template; ``forEach``; shapes a maker refuses),
random triggers (namespaced or a Namespace, with and without a uid, uids that JSON
escapes), worlds (nothing there, the child as the rule left it, drifted, someone
else's) and rule sets (cluster-wide or confined, synchronized or not), one engine
evaluating a sequence of triggers — so that what a maker learned from one child lays
the next — concludes what the generic path (makers off) concludes: the same child
plans (every desired object with its keys in the same order), outcomes, desired
trigger and patch.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import Where
from engine.evaluate import children, makers
from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction, Result
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK
from engine.patching.lay import lay
from engine.rules.load import parse_rule_set
from engine.schemas.catalogue import builtin

CONFIGMAPS = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap", "Namespace"]}]}
KINDS = [("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ResourceQuota"),
         ("example.com/v1", "Widget"), ("v1", "Namespace"),
         ("rbac.authorization.k8s.io/v1", "ClusterRole")]
PLAIN_NAMES = ["{{ object.metadata.name }}-config", "{{ object.metadata.name }}", "fixed"]
NAMES = PLAIN_NAMES * 4 + ["{{ object.data.n }}", "{{ object.metadata.name }}-{{ item }}",
                           "{{ object.data.missing }}", "{{ omit }}", "Bad_Name"]
PLAIN_LEAVES = ["{{ object.metadata.name }}", "{{ object.data.n }}",
                "{{ object.data.n | string }}", "x-{{ object.data.n }}"]
LEAVES = PLAIN_LEAVES * 4 + ["{{ object.metadata.labels }}", "{{ object.data.missing }}",
                             "{{ omit }}", "{{ none }}", "{{ [1] }}", "{{ item }}",
                             "{{ index }}"]
SCALARS = st.one_of(st.sampled_from(["", "a", "1", "b c"]), st.integers(-1, 2), st.booleans(),
                    st.sampled_from([0.5]))
KEYS = ["a", "b", "data", "hard", "pods", "replicas"] * 3 + [
    "$keep", "edict.dev/owned-fields", "app.kubernetes.io/managed-by", "edict.dev/rule",
    "edict.dev/trigger-uid", "edict.dev/trigger", "namespace", "ownerReferences"]
UIDS = ["u-1", "u-2", "", 'q"\\é\n', "u-3"]


def maps(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=3)


def values() -> st.SearchStrategy[Any]:
    return st.recursive(st.one_of(SCALARS, st.sampled_from(LEAVES)), maps, max_leaves=5)


@st.composite
def templates(draw: st.DrawFn, *, plain: bool = False) -> dict[str, Any]:
    """Generate templates; `plain`: only those a maker builds from (what renders to a
    non-scalar, fails, or is refused then only by the data)."""
    names, leaves = (PLAIN_NAMES, PLAIN_LEAVES) if plain else (NAMES, LEAVES)
    leaf = st.one_of(SCALARS, st.sampled_from(leaves))
    api_version, kind = draw(st.sampled_from(KINDS))
    metadata: dict[str, Any] = {"name": draw(st.sampled_from(names))}
    if draw(st.booleans()):
        metadata["labels"] = draw(maps(leaf) if plain else st.one_of(
            maps(leaf), st.sampled_from(LEAVES[-7:])))
    if draw(st.booleans()):
        metadata["annotations"] = draw(maps(leaf))
    if draw(st.booleans()):
        metadata["namespace"] = draw(st.sampled_from(["n1", "n2", "{{ object.data.ns }}",
                                                      "", *([] if plain else ["{{ omit }}"])]))
    if not plain and draw(st.integers(0, 9)) == 0:
        metadata["ownerReferences"] = draw(st.sampled_from(LEAVES))
    template = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    for key in draw(st.lists(st.sampled_from(["data", "spec", "a"]), max_size=2,
                             unique=True)):
        template[key] = draw(st.recursive(leaf, maps, max_leaves=5) if plain else values())
    return template


@st.composite
def triggers(draw: st.DrawFn, number: int) -> dict[str, Any]:
    uid = draw(st.sampled_from(UIDS))
    data = {"n": draw(st.sampled_from(["1", 2, "x", "Y_"])),
            "ns": draw(st.sampled_from(["n1", "n2", ""]))}
    if draw(st.booleans()):
        metadata: dict[str, Any] = {"name": f"ns{number}", "resourceVersion": "1"}
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
    else:
        metadata = {"name": f"t{number}", "namespace": draw(st.sampled_from(["n1", "n2"])),
                    "resourceVersion": "1"}
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
    if uid:
        metadata["uid"] = uid
    if draw(st.booleans()):
        metadata["labels"] = {"a": "1"}
    return obj


def rule_set_of(template: dict[str, Any], *, synchronize: bool, for_each: bool,
                confined: bool, condition: bool) -> Any:
    generate: dict[str, Any] = {"template": template, "synchronize": synchronize}
    if for_each:
        generate["forEach"] = "['p', 'q']"
    rule: dict[str, Any] = {"name": "gen", "match": CONFIGMAPS, "generate": generate}
    if condition:
        rule["condition"] = "object.?data.?n.orValue('') != 'x'"
    metadata: dict[str, Any] = {"name": "random"}
    if confined:
        metadata["namespace"] = "n1"
    return parse_rule_set({"apiVersion": "edict.dev/v1alpha1",
                           "kind": "RuleSet" if confined else "ClusterRuleSet",
                           "metadata": metadata, "spec": {"rules": [rule]}})


def generic(engine: Engine, obj: dict[str, Any], world: ManifestWorld) -> Result:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(makers, "maker_of", lambda rule: None)
        return engine.evaluate(obj, world=world)


def assert_same(fast: Result, slow: Result) -> None:
    assert fast.children == slow.children
    assert [json.dumps(c.desired) for c in fast.children] == [
        json.dumps(c.desired) for c in slow.children]  # same keys in the same order
    assert fast.outcomes == slow.outcomes
    assert fast.desired == slow.desired
    assert fast.patch == slow.patch


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates(), st.lists(st.integers(0, 3), min_size=2, max_size=6),
       st.data(), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from(["empty"] * 4 + ["made", "drifted", "foreign"]))
def test_made_children_are_the_rendered_ones(
        template: dict[str, Any], numbers: list[int], data: st.DataObject,
        synchronize: bool, for_each: bool, confined: bool, condition: bool,
        world_kind: str) -> None:
    rule_set = rule_set_of(template, synchronize=synchronize, for_each=for_each,
                           confined=confined, condition=condition)
    fast_engine, slow_engine = Engine([rule_set]), Engine([rule_set])
    for number in numbers:
        obj = data.draw(triggers(number))
        world = ManifestWorld([obj])
        if world_kind != "empty":  # the children as the rule made them, then changed
            for plan in generic(slow_engine, obj, world).children:
                if plan.desired is None:
                    continue
                child = copy.deepcopy(plan.desired)
                if world_kind == "drifted":
                    child["extra"] = "x"
                    child["metadata"]["labels"].pop("edict.dev/rule", None)
                    child["metadata"].get("annotations", {}).pop(
                        children.OWNED_ANNOTATION, None)
                elif world_kind == "foreign":
                    child["metadata"] = {k: v for k, v in child["metadata"].items()
                                         if k in ("name", "namespace")}
                world.put(child)
        frozen = copy.deepcopy(obj)
        fast = fast_engine.evaluate(obj, world=world)
        assert obj == frozen
        assert_same(fast, generic(slow_engine, obj, world))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates(plain=True), st.lists(st.integers(0, 3), min_size=3, max_size=8),
       st.data(), st.booleans())
def test_children_laid_from_what_was_learned_are_the_laid_ones(
        template: dict[str, Any], numbers: list[int], data: st.DataObject,
        synchronize: bool) -> None:
    rule_set = rule_set_of(template, synchronize=synchronize, for_each=False,
                           confined=False, condition=False)
    engine = Engine([rule_set])
    for number in numbers:
        obj = data.draw(triggers(number))
        world = ManifestWorld([obj])
        assert_same(engine.evaluate(obj, world=world), generic(engine, obj, world))


CORPUS_TEMPLATE = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "{{ object.metadata.name }}-config"},
                   "data": {"replicas": "{{ object.data.n | string }}"}}


def test_the_corpus_template_is_made_and_laid_from_what_was_learned() -> None:
    rule_set = rule_set_of(CORPUS_TEMPLATE, synchronize=True, for_each=False,
                           confined=False, condition=False)
    engine = Engine([rule_set])
    (rule,) = engine.rules_for(GVK("", "v1", "ConfigMap"))
    maker = makers.maker_of(rule)
    assert maker is not None
    schema = builtin().for_kind(GVK("", "v1", "ConfigMap"))
    where = Where(rule_set="random", rule="gen")
    for number, uid in enumerate(["u-1", 'q"\\é\n', "u-2"]):
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": f"t{number}", "namespace": "n1", "uid": uid},
               "data": {"n": str(number)}}
        world = ManifestWorld([obj])
        made = maker.make({"object": obj}, trigger=obj, facts=children.TriggerFacts.of(obj),
                          world=world, where=where)
        assert made is not None
        stamped = children.stamp(rule.template.render({"object": obj}), rule_set=rule_set,
                                 rule="gen", trigger=obj, world=world, where=where)
        assert json.dumps(made.child) == json.dumps(stamped)
        created = maker.created(made.child, schema, uid)
        laid = lay(stamped, schema=schema, skip=[children.OWNED_PATH])
        assert laid is not None and created is not None
        assert json.dumps(created) == json.dumps(children.with_record(*laid))
        fast = engine.evaluate(obj, world=world)
        assert fast.children[0].action is ChildAction.CREATE
        assert_same(fast, generic(engine, obj, world))


@pytest.mark.parametrize("template", [
    {**CORPUS_TEMPLATE, "metadata": {"name": "x", "labels": "{{ object.metadata.labels }}"}},
    {**CORPUS_TEMPLATE, "metadata": {"name": "x", "ownerReferences": "{{ item }}"}},
    {**CORPUS_TEMPLATE, "metadata": {"name": "x", "annotations": {
        children.OWNED_ANNOTATION: "{}"}}},
    {**CORPUS_TEMPLATE, "metadata": "{{ object.metadata }}"},
    {**CORPUS_TEMPLATE, "data": {"a": ["1"]}},
    {**CORPUS_TEMPLATE, "data": {"{{ object.metadata.name }}": "1"}},
])
def test_templates_a_maker_cannot_build_are_rendered(template: dict[str, Any]) -> None:
    rule_set = rule_set_of(template, synchronize=True, for_each=False, confined=False,
                           condition=False)
    (rule,) = Engine([rule_set]).rules_for(GVK("", "v1", "ConfigMap"))
    assert makers.maker_of(rule) is None


def test_labels_rendered_as_text_are_the_rules_error() -> None:
    template = {**CORPUS_TEMPLATE, "metadata": {"name": "x",
                                                "labels": "{{ object.metadata.name }}"}}
    rule_set = rule_set_of(template, synchronize=True, for_each=False, confined=False,
                           condition=False)
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "t", "namespace": "n1", "uid": "u"}, "data": {"n": "1"}}
    result = Engine([rule_set]).evaluate(obj, world=ManifestWorld([obj]))
    (outcome,) = result.outcomes
    assert outcome.status.value == "error" and "metadata.labels" in outcome.message
    assert "must be a mapping" in outcome.message and result.children == ()


_META_VALUE = st.none() | st.text(max_size=4) | st.integers(-2, 2) | st.just("")


@given(api_version=st.sampled_from(["v1", "apps/v1", "", 3]),
       kind=st.sampled_from(["Namespace", "Deployment", "", None]),
       metadata=st.none() | st.fixed_dictionaries(
           {}, optional={"name": _META_VALUE, "namespace": _META_VALUE, "uid": _META_VALUE}))
def test_trigger_facts_read_the_metadata_once_as_the_helpers_read_it(
        api_version: Any, kind: Any, metadata: dict[str, Any] | None) -> None:
    """`TriggerFacts.of` gives what `trigger_ref`, `uid_of` and `namespace_for` give."""
    from engine.matching import namespace_for
    from engine.objects import uid_of
    trigger: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    if metadata is not None:
        trigger["metadata"] = metadata
    facts = children.TriggerFacts.of(trigger)
    assert (facts.ref, facts.uid, facts.scope) == (
        children.trigger_ref(trigger), uid_of(trigger), namespace_for(trigger))
    assert facts.namespace == str((trigger.get("metadata") or {}).get("namespace") or "")
