"""Kubernetes-exact desired state, offline: each field merges by its own list markers,
generated children are owned exactly, children are pruned whenever their rule stops
producing them, and `forEach` runs in sequence.

Each test is one of the ways rule sets copied from everyday policies lost data or left
access behind before (merging lists "by name" when every item had one, children merged
rather than owned, pruning only on a false condition, `forEach` patches rendered against
the object as the rule started). They run through `simulate`, as `edict apply` does;
`tests/e2e/test_live_exact.py` shows the same on a real API server.
"""

from __future__ import annotations

import json
from typing import Any

from engine.evaluate.children import OWNED_ANNOTATION
from engine.evaluate.engine import Engine
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import GVK, ObjectKey
from engine.patching import owned
from engine.rules.load import parse_rule_set
from engine.schemas.catalogue import builtin

DEPLOYMENT = GVK("apps", "v1", "Deployment")
ROLE_BINDING = GVK("rbac.authorization.k8s.io", "v1", "RoleBinding")
SECRET = GVK("", "v1", "Secret")
NAMESPACE = GVK("", "v1", "Namespace")


def rule_set(name: str, rules: list[dict[str, Any]], **spec: Any) -> Any:
    return parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                           "metadata": {"name": name}, "spec": {"rules": rules, **spec}},
                          source=f"{name}.yaml")


def run(rule_sets: list[Any], *objects: dict[str, Any]) -> Simulation:
    sim = simulate(Engine(rule_sets), list(objects))
    assert sim.converged and not sim.problems, sim.problems
    return sim


def outputs(sim: Simulation) -> list[dict[str, Any]]:
    """What `edict apply` prints: inputs as they end up, then generated objects."""
    keys = [*sim.inputs, *sim.generated]
    return [obj for key in keys if (obj := sim.final(key)) is not None]


def deployment(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [container], **spec}}}}


def mutate_containers(container: dict[str, Any]) -> Any:
    return rule_set("add", [{
        "name": "add", "match": {"resources": [{"apiVersion": "apps/v1",
                                                "kinds": ["Deployment"]}]},
        "mutate": {"template": {"spec": {"template": {"spec": {"containers": [container]}}}}},
    }])


def containers(sim: Simulation) -> list[dict[str, Any]]:
    final = sim.final(ObjectKey(DEPLOYMENT, "shop", "web"))
    assert final is not None
    result: list[dict[str, Any]] = final["spec"]["template"]["spec"]["containers"]
    return result


def test_a_named_port_is_added_beside_an_unnamed_one() -> None:
    sim = run([mutate_containers({"name": "app", "ports": [
        {"name": "metrics", "containerPort": 9090}]})],
        deployment({"name": "app", "image": "i", "ports": [
            {"containerPort": 80, "protocol": "TCP"}]}))
    assert containers(sim)[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"},
                                           {"name": "metrics", "containerPort": 9090}]


def test_a_second_mount_of_one_volume_is_added_not_rewritten() -> None:
    sim = run([mutate_containers({"name": "app", "volumeMounts": [
        {"name": "certs", "mountPath": "/etc/ssl/certs"}]})],
        deployment({"name": "app", "image": "i", "volumeMounts": [
            {"name": "certs", "mountPath": "/other", "subPath": "a"}]}))
    assert containers(sim)[0]["volumeMounts"] == [
        {"name": "certs", "mountPath": "/other", "subPath": "a"},
        {"name": "certs", "mountPath": "/etc/ssl/certs"}]


def test_an_atomic_list_is_replaced_whole() -> None:
    tolerate = rule_set("tolerate", [{
        "name": "t", "match": {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]},
        "mutate": {"template": {"spec": {"template": {"spec": {"tolerations": [
            {"key": "gpu", "operator": "Exists"}]}}}}}}])
    sim = run([tolerate], deployment({"name": "app", "image": "i"}, tolerations=[
        {"key": "old", "operator": "Exists"}]))
    final = sim.final(ObjectKey(DEPLOYMENT, "shop", "web"))
    assert final is not None
    assert final["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "gpu", "operator": "Exists"}]


ADMINS = rule_set("admins", [{
    "name": "binding",
    "match": {"resources": [{"apiVersion": "v1", "kinds": ["Namespace"]}],
              "selector": {"matchLabels": {"team": "yes"}}},
    "generate": {"template": {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                      "name": "{{ object.metadata.name }}-admins"}]}}}])


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
                                                                  "labels": labels}}


def test_a_hand_added_subject_is_removed_from_a_synchronized_binding() -> None:
    first = run([ADMINS], namespace("team-a", team="yes"))
    binding = first.final(ObjectKey(ROLE_BINDING, "team-a", "admins"))
    assert binding is not None
    tampered = json.loads(json.dumps(binding))
    tampered["subjects"].append({"kind": "User", "name": "mallory"})
    second = run([ADMINS], namespace("team-a", team="yes"), tampered)
    again = second.final(ObjectKey(ROLE_BINDING, "team-a", "admins"))
    assert again is not None
    assert again["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                  "name": "team-a-admins"}]


COPY_SECRET = rule_set("copy", [{
    "name": "copy",
    "match": {"resources": [{"apiVersion": "v1", "kinds": ["Namespace"]}]},
    "context": {"source": {"apiVersion": "v1", "kind": "Secret", "namespace": "platform",
                           "name": "registry"}},
    "condition": "context.source != null",
    "generate": {"template": {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "registry"}, "type": "Opaque",
                              "data": "{{ context.source.data }}"}}}])


def secret(namespace: str, data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "registry", "namespace": namespace, **metadata},
            "data": data}


def test_a_key_removed_from_the_source_is_removed_from_the_copy() -> None:
    source = secret("platform", {"a": "YQ==", "b": "Yg=="})
    first = run([COPY_SECRET], namespace("team-a"), source)
    copy = first.final(ObjectKey(SECRET, "team-a", "registry"))
    assert copy is not None and copy["data"] == {"a": "YQ==", "b": "Yg=="}
    record = owned.decode(copy["metadata"]["annotations"][OWNED_ANNOTATION])
    assert record is not None and "f:b" in record["f:data"]
    # Another controller's annotation on the copy is not Edict's to remove.
    copy = json.loads(json.dumps(copy))
    copy["metadata"]["annotations"]["other"] = "kept"
    # edict apply fed its own earlier output: the copy is the only record.
    second = run([COPY_SECRET], namespace("team-a"), secret("platform", {"a": "YQ=="}), copy)
    again = second.final(ObjectKey(SECRET, "team-a", "registry"))
    assert again is not None
    assert again["data"] == {"a": "YQ=="}
    assert again["metadata"]["annotations"]["other"] == "kept"
    third = run([COPY_SECRET], *outputs(second))
    assert third.final(ObjectKey(SECRET, "team-a", "registry")) == again
    assert not third.deleted


def test_a_child_is_pruned_when_its_trigger_stops_matching() -> None:
    first = run([ADMINS], namespace("team-a", team="yes"))
    (child,) = [o for o in outputs(first) if o["kind"] == "RoleBinding"]
    second = run([ADMINS], namespace("team-a"), child)  # the label is gone
    assert second.deleted == [ObjectKey(ROLE_BINDING, "team-a", "admins")]
    assert second.final(ObjectKey(ROLE_BINDING, "team-a", "admins")) is None


def test_a_child_is_pruned_when_a_namespace_glob_or_an_exclude_stops_matching() -> None:
    def by_glob(match: dict[str, Any]) -> Any:
        return rule_set("quota", [{
            "name": "q", "match": {"resources": [{"apiVersion": "v1",
                                                  "kinds": ["ConfigMap"]}], **match},
            "generate": {"template": {"apiVersion": "v1", "kind": "ResourceQuota",
                                      "metadata": {"name": "q-{{ object.metadata.name }}"},
                                      "spec": {"hard": {"pods": "10"}}}}}])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
                                                                 "namespace": "team-a"}}
    first = run([by_glob({"namespaces": ["team-*"]})], cm)
    children = [o for o in outputs(first) if o["kind"] == "ResourceQuota"]
    assert len(children) == 1
    for match in ({"namespaces": ["other-*"]},
                  {"namespaces": ["team-*"], "exclude": {"names": ["c"]}}):
        later = run([by_glob(match)], cm, *children)
        assert [k.kind for k in (key.gvk for key in later.deleted)] == ["ResourceQuota"]


def test_children_of_a_deleted_trigger_or_a_removed_rule_are_swept() -> None:
    first = run([ADMINS], namespace("team-a", team="yes"))
    (child,) = [o for o in outputs(first) if o["kind"] == "RoleBinding"]
    # The trigger is not among the inputs (deleted while no engine ran).
    gone = run([ADMINS], child)
    assert gone.swept == {ObjectKey(ROLE_BINDING, "team-a", "admins"):
                          "its trigger Namespace team-a is gone"}
    # The rule is gone from its rule set.
    other_rule = rule_set("admins", [{"name": "something-else", "match": {"resources": [
        {"apiVersion": "v1", "kinds": ["Namespace"]}]}, "mutate": {"template": {}}}])
    removed = run([other_rule], namespace("team-a", team="yes"), child)
    assert list(removed.swept) == [ObjectKey(ROLE_BINDING, "team-a", "admins")]
    # A rule set that was not given is not known offline: its children stay.
    unknown = run([], namespace("team-a", team="yes"), child)
    assert not unknown.deleted


def test_a_suspended_rule_set_leaves_its_children_alone() -> None:
    first = run([ADMINS], namespace("team-a", team="yes"))
    (child,) = [o for o in outputs(first) if o["kind"] == "RoleBinding"]
    suspended = rule_set("admins", ADMINS.rules and [{
        "name": "binding", "match": {"resources": [{"apiVersion": "v1",
                                                    "kinds": ["Namespace"]}]},
        "generate": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "x"}}}}], mode="Suspended")
    later = run([suspended], namespace("team-a"), child)
    assert not later.deleted


VOLUMES = {"volumes": [{"name": "a", "hostPath": {"path": "/a"}},
                       {"name": "b", "emptyDir": {}},
                       {"name": "c", "hostPath": {"path": "/c"}}]}


def test_for_each_json_patch_removes_exactly_the_matching_items() -> None:
    strip = rule_set("strip", [{
        "name": "no-host-paths",
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["Pod"]}]},
        "mutate": {"forEach": "object.spec.volumes.filter(v, has(v.hostPath))",
                   "jsonPatch": [{"op": "remove", "path":
                                  "/spec/volumes/{{ object.spec.volumes.index(item) }}"}]}}])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
           "spec": {"containers": [{"name": "c", "image": "i"}], **VOLUMES}}
    sim = run([strip], pod)
    final = sim.final(ObjectKey(GVK("", "v1", "Pod"), "n", "p"))
    assert final is not None and final["spec"]["volumes"] == [{"name": "b", "emptyDir": {}}]


def test_for_each_binds_index() -> None:
    number = rule_set("number", [{
        "name": "n", "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "mutate": {"forEach": "['x', 'y', 'z']",
                   "template": {"data": {"{{ item }}": "i{{ index }}"}}}}])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
          "data": {"seed": "s"}}
    sim = run([number], cm)
    final = sim.final(ObjectKey(GVK("", "v1", "ConfigMap"), "n", "c"))
    assert final is not None
    assert final["data"] == {"seed": "s", "x": "i0", "y": "i1", "z": "i2"}


def test_the_catalogue_knows_the_markers_of_the_built_in_kinds() -> None:
    pod_spec = builtin().for_kind(DEPLOYMENT)
    assert pod_spec is not None
    spec = pod_spec.field("spec")
    assert spec is not None
    template = spec.field("template")
    assert template is not None
    pod = template.field("spec")
    assert pod is not None
    ports = pod.field("containers").items().field("ports")  # type: ignore[union-attr]
    assert ports is not None and ports.keys == ("containerPort", "protocol")
    tolerations = pod.field("tolerations")
    assert tolerations is not None and tolerations.list_type == "atomic"
