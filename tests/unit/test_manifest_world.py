"""engine.evaluate.world: `ManifestWorld` remembers the scope and the schema of kinds
between objects put or removed, and answers exactly as asking anew would (`_scope`, the
catalogue of the CRDs it holds)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate.world import ManifestWorld
from engine.objects import GVK, key_of

GADGET = GVK("example.com", "v1", "Gadget")
KINDS = [GADGET, GVK("", "v1", "ConfigMap"), GVK("", "v1", "Namespace"),
         GVK("example.com", "v1", "Other")]


def crd(scope: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": scope,
                     "names": {"kind": "Gadget", "plural": "gadgets"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object", "properties": {"spec": {
                                           "type": "object", "x-kubernetes-map-type": scope,
                                       }}}}}]}}


def thing(gvk: GVK, namespace: str, name: str) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": gvk.api_version, "kind": gvk.kind, "metadata": metadata}


OBJECTS = st.one_of(
    st.sampled_from(["Namespaced", "Cluster"]).map(crd),
    st.tuples(st.sampled_from(KINDS), st.sampled_from(["", "team-a"]),
              st.sampled_from(["x", "y"])).map(lambda t: thing(*t)))
STEPS = st.lists(st.tuples(st.sampled_from(["put", "remove", "ask"]), OBJECTS), max_size=12)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_remembered_scopes_are_asked_anew(steps: list[tuple[str, dict[str, Any]]]) -> None:
    world = ManifestWorld()
    for action, obj in steps:
        if action == "put":
            world.put(obj)
        elif action == "remove":
            world.remove(key_of(obj))
        for gvk in KINDS:
            assert world.namespaced(gvk) == world._scope(gvk), (steps, gvk)
            schema = world.schema(gvk)
            assert world._schemas is not None
            assert schema is world._schemas.for_kind(gvk), (steps, gvk)
            name = obj["metadata"]["name"]
            found = world._objects.get(key_of(thing(gvk, "team-a", name)))
            if found is None and world._scope(gvk) is False:
                found = world._objects.get(key_of(thing(gvk, "", name)))
            assert world.get(gvk, "team-a", name) is found


def test_a_crd_put_later_changes_the_scope() -> None:
    world = ManifestWorld([thing(GADGET, "team-a", "x")])
    assert world.namespaced(GADGET) is True  # from its first object
    world.put(crd("Cluster"))
    assert world.namespaced(GADGET) is False
    world.put(thing(GADGET, "", "y"))
    assert world.get(GADGET, "team-a", "y") is not None  # a cluster-scoped kind
    world.remove(key_of(thing(GADGET, "team-a", "x")))
    assert world.namespaced(GADGET) is False  # the CRD's, as before
