"""`simulate` evaluates only what could change, and concludes what evaluating everything
in every round concludes.

The reference below is the plain algorithm: every round evaluates every object and
sweeps every child. Random worlds (ConfigMaps in two namespaces, their Namespaces) under
random rules of the shapes that make objects depend on each other — a label copied from
a looked-up ConfigMap or from the Namespace, children generated from a label (kept in
sync or not), rules that mutate children, a rule that looks up its own rule's child —
must end in the same world, the same children created and pruned, the same problems,
after the same number of rounds; and the dirty-tracking simulation must not evaluate
more often than the reference.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate.engine import Engine
from engine.evaluate.outcomes import ChildAction
from engine.evaluate.simulate import PROBLEMS, Simulation, simulate
from engine.evaluate.sweep import why_orphaned
from engine.evaluate.world import ManifestWorld
from engine.objects import GVK, ObjectKey, key_of
from engine.rules.load import parse_rule_set

CONFIGMAP = {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]}
NAMES = ["a", "b", "c"]
NAMESPACES = ["n1", "n2"]
VALUES = ["1", "2"]


def rule_set(rules: list[dict[str, Any]]) -> Any:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "random"},
        "spec": {"rules": [{"name": f"r{i}", **r} for i, r in enumerate(rules)]}})


def label(key: str, value: str) -> dict[str, Any]:
    return {"template": {"metadata": {"labels": {key: value}}}}


@st.composite
def rules(draw: Any) -> dict[str, Any]:
    shape = draw(st.sampled_from(["set", "lookup", "namespace", "generate", "children",
                                  "own-child"]))
    target = draw(st.sampled_from(["x", "y"]))
    source = draw(st.sampled_from(["x", "y"]))
    name = draw(st.sampled_from(NAMES))
    only = {"selector": {"matchLabels": {"role": draw(st.sampled_from(VALUES))}}}
    if shape == "set":
        return {"match": {**CONFIGMAP, **only},
                "mutate": label(target, draw(st.sampled_from(VALUES)))}
    if shape == "lookup":  # a label copied from another ConfigMap of the namespace
        return {"match": CONFIGMAP,
                "context": {"other": {"apiVersion": "v1", "kind": "ConfigMap",
                                      "name": name}},
                "condition": f"context.other != null && has(context.other.metadata.labels)"
                             f" && '{source}' in context.other.metadata.labels",
                "mutate": label(target, f"{{{{ context.other.metadata.labels['{source}'] }}}}")}
    if shape == "namespace":  # a label copied from the Namespace
        return {"match": CONFIGMAP,
                "condition": f"namespaceObject.metadata.?labels[?'{source}'].hasValue()",
                "mutate": label(target, f"{{{{ namespaceObject.metadata.labels['{source}'] }}}}")}
    if shape == "generate":  # a child named after a label: it moves when the label does
        return {"match": {**CONFIGMAP, "selector": {"matchLabels": {"role": "1"}}},
                "condition": f"object.metadata.?labels[?'{source}'].hasValue()",
                "generate": {"synchronize": draw(st.booleans()), "template": {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"{{{{ object.metadata.name }}}}-child-"
                                         f"{{{{ object.metadata.labels['{source}'] }}}}",
                                 "labels": {"role": "child"}},
                    "data": {"from": f"{{{{ object.metadata.labels['{source}'] }}}}"}}}}
    if shape == "children":  # mutates generated children (they are triggers too)
        return {"match": {**CONFIGMAP, "selector": {"matchLabels": {"role": "child"}}},
                "mutate": label(target, draw(st.sampled_from(VALUES)))}
    # reads its own rule's child back through a lookup
    return {"match": {**CONFIGMAP, "selector": {"matchLabels": {"role": "2"}}},
            "context": {"mine": {"apiVersion": "v1", "kind": "ConfigMap",
                                 "name": "{{ object.metadata.name }}-own"}},
            "condition": "context.mine != null && has(context.mine.metadata.labels)"
                         " && 'x' in context.mine.metadata.labels",
            "mutate": label("seen", "{{ context.mine.metadata.labels.x }}")}


OWN_CHILD = {"match": {**CONFIGMAP, "selector": {"matchLabels": {"role": "2"}}},
             "generate": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "{{ object.metadata.name }}-own",
                                                    "labels": {"role": "child"}}}}}


@st.composite
def worlds(draw: Any) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for namespace in NAMESPACES:
        labels = draw(st.dictionaries(st.sampled_from(["x", "y"]), st.sampled_from(VALUES)))
        objects.append({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": namespace, "uid": f"uid-{namespace}",
                                     "labels": labels}})
        for name in draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1)):
            labels = draw(st.dictionaries(st.sampled_from(["x", "y", "role"]),
                                          st.sampled_from(VALUES)))
            objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "namespace": namespace,
                                         "uid": f"uid-{namespace}-{name}", "labels": labels}})
    return objects


def reference(engine: Engine, objects: list[dict[str, Any]], *, max_rounds: int = 5
              ) -> Simulation:
    """The plain algorithm: every object and every child, every round."""
    world = ManifestWorld(objects)
    keys = list(dict.fromkeys(key_of(o) for o in objects))
    sim = Simulation(inputs=keys, originals={key_of(o): o for o in objects}, world=world)
    known = set(keys)
    rule_sets = {c.rule_set.ref: c.rule_set for c in engine.rule_sets}

    def exists(gvk: GVK, namespace: str, name: str) -> bool:
        return world.get(gvk, namespace, name) is not None

    for _ in range(max_rounds):
        sim.rounds += 1
        changed = False
        for key in [*sim.inputs, *sim.generated]:
            obj = world.get(key.gvk, key.namespace, key.name)
            if obj is not None and why_orphaned(obj, rule_sets=rule_sets,
                                                trigger_exists=exists, all_loaded=False):
                world.remove(key)
                sim.deleted.append(key) if key not in sim.deleted else None
                changed = True
        for key in [*sim.inputs, *sim.generated]:
            obj = world.get(key.gvk, key.namespace, key.name)
            if obj is None:
                continue
            result = engine.evaluate(obj, world=world)
            sim.evaluations += 1
            sim.outcomes.setdefault(key, result.outcomes)
            for outcome in result.outcomes:
                if outcome.status in PROBLEMS:
                    sim.problems[(key, outcome)] = None
            for conflict in result.conflicts:
                sim.conflicts[(key, conflict)] = None
            if result.desired != obj:
                world.put(result.desired)
                changed = True
            for child in result.children:
                if child.action is ChildAction.DELETE:
                    world.remove(child.key)
                    sim.deleted.append(child.key) if child.key not in sim.deleted else None
                    changed = True
                elif child.action in (ChildAction.CREATE, ChildAction.PATCH):
                    assert child.desired is not None
                    world.put(child.desired)
                    if child.key not in known:
                        known.add(child.key)
                        sim.generated.append(child.key)
                    changed = True
        if not changed:
            sim.converged = True
            break
    return sim


def _state(sim: Simulation) -> dict[str, Any]:
    return {"world": {key_of(o): o for o in sim.world.objects()},
            "generated": sim.generated, "deleted": sorted(map(str, sim.deleted)),
            "problems": set(sim.problems), "conflicts": set(sim.conflicts),
            "converged": sim.converged, "rounds": sim.rounds,
            "outcomes": sim.outcomes}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rules(), min_size=1, max_size=5), st.booleans(), worlds())
def test_evaluating_only_what_could_change_concludes_the_same(
        drawn: list[dict[str, Any]], own_child: bool, objects: list[dict[str, Any]]) -> None:
    engine = Engine([rule_set(drawn + ([OWN_CHILD] if own_child else []))])
    fast, plain = simulate(engine, objects), reference(engine, objects)
    assert _state(fast) == _state(plain)
    assert fast.evaluations <= plain.evaluations


def test_an_object_is_evaluated_again_when_a_lookup_it_read_changes_later() -> None:
    """`b` copies `a`'s label; `a` gets it from a rule only after `b` was evaluated."""
    engine = Engine([rule_set([
        {"match": {**CONFIGMAP, "selector": {"matchLabels": {"role": "1"}}},
         "mutate": label("x", "set")},
        {"match": {**CONFIGMAP, "selector": {"matchLabels": {"role": "2"}}},
         "context": {"other": {"apiVersion": "v1", "kind": "ConfigMap", "name": "a"}},
         "condition": "context.other.metadata.?labels[?'x'].hasValue()",
         "mutate": label("copied", "{{ context.other.metadata.labels.x }}")}])])
    b = {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "b", "namespace": "n", "labels": {"role": "2"}}}
    a = {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "a", "namespace": "n", "labels": {"role": "1"}}}
    sim = simulate(engine, [b, a])
    final = sim.final(ObjectKey(GVK("", "v1", "ConfigMap"), "n", "b"))
    assert sim.converged and final is not None
    assert final["metadata"]["labels"] == {"role": "2", "copied": "set"}
    assert sim.evaluations == 3  # b, a, then b again (a changed under its lookup)


def test_an_object_its_own_evaluation_changed_is_not_evaluated_again() -> None:
    engine = Engine([rule_set([{"match": CONFIGMAP, "mutate": label("x", "1")}])])
    objects = [{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": n, "namespace": "n"}} for n in NAMES]
    sim = simulate(engine, objects)
    assert sim.converged and sim.rounds == 2  # the second evaluates nothing
    assert sim.evaluations == len(NAMES)
    assert all(sim.final(key_of(o))["metadata"]["labels"] == {"x": "1"}  # type: ignore[index]
               for o in objects)
