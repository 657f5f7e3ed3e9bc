"""engine.schemas.catalogue: the shipped catalogue of built-in kinds, and CRDs laid over it.

Whether the shipped file matches what the API server serves is checked against the real
server in tests/e2e/test_schemas_live.py; here: that it loads, says what server-side
apply says about the fields rule sets touch, and takes CRDs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine.objects import GVK
from engine.schemas.catalogue import BUILTIN_PATH, Catalogue, builtin
from engine.schemas.generate import dumps
from engine.schemas.model import NO_DEFAULT, Node

DEPLOYMENT = GVK("apps", "v1", "Deployment")
SERVICE = GVK("", "v1", "Service")
CONFIGMAP = GVK("", "v1", "ConfigMap")


def at(node: Node | None, *path: str) -> Node:
    """Walk field names; ``[]`` steps into list items."""
    for step in path:
        assert node is not None, path
        node = node.items() if step == "[]" else node.field(step)
    assert node is not None, path
    return node


@pytest.fixture(scope="module")
def pod_spec() -> Node:
    return at(builtin().for_kind(DEPLOYMENT), "spec", "template", "spec")


def test_the_shipped_file_is_written_the_way_the_generator_writes_it() -> None:
    text = BUILTIN_PATH.read_text()
    assert dumps(json.loads(text)) == text
    assert builtin().kubernetes.startswith("v1.")
    assert builtin() is builtin()  # loaded once


def test_built_in_kinds_and_scopes() -> None:
    catalogue = builtin()
    kinds = catalogue.kinds()
    assert {DEPLOYMENT, SERVICE, CONFIGMAP, GVK("", "v1", "Namespace"),
            GVK("rbac.authorization.k8s.io", "v1", "ClusterRole"),
            GVK("networking.k8s.io", "v1", "NetworkPolicy")} <= kinds
    assert GVK("apps", "v1", "DeploymentList") not in kinds  # lists are no resources
    assert catalogue.namespaced(DEPLOYMENT) is True
    assert catalogue.namespaced(GVK("", "v1", "Namespace")) is False
    assert catalogue.namespaced(GVK("rbac.authorization.k8s.io", "v1", "ClusterRole")) is False
    assert catalogue.namespaced(GVK("example.com", "v1", "Nope")) is None
    assert catalogue.for_kind(GVK("example.com", "v1", "Nope")) is None


@pytest.mark.parametrize(("path", "list_type", "keys"), [
    (("containers",), "map", ("name",)),
    (("initContainers",), "map", ("name",)),
    (("volumes",), "map", ("name",)),
    (("imagePullSecrets",), "map", ("name",)),
    (("tolerations",), "atomic", ()),
    (("topologySpreadConstraints",), "map", ("topologyKey", "whenUnsatisfiable")),
    (("containers", "[]", "ports"), "map", ("containerPort", "protocol")),
    (("containers", "[]", "env"), "map", ("name",)),
    (("containers", "[]", "envFrom"), "atomic", ()),
    (("containers", "[]", "volumeMounts"), "map", ("mountPath",)),
    (("containers", "[]", "args"), "atomic", ()),
])
def test_pod_spec_lists(pod_spec: Node, path: tuple[str, ...], list_type: str,
                        keys: tuple[str, ...]) -> None:
    node = at(pod_spec, *path)
    assert (node.list_type, node.keys) == (list_type, keys)


def test_pod_spec_maps_and_key_defaults(pod_spec: Node) -> None:
    assert at(pod_spec, "nodeSelector").atomic
    assert at(pod_spec, "nodeSelector").is_map
    assert not at(pod_spec, "affinity").atomic
    assert at(pod_spec, "affinity", "nodeAffinity",
              "requiredDuringSchedulingIgnoredDuringExecution").atomic
    assert not at(pod_spec, "containers", "[]", "resources", "limits").atomic
    assert at(pod_spec, "containers", "[]", "resources", "limits", "cpu").scalar == "quantity"
    port = at(pod_spec, "containers", "[]", "ports", "[]")
    assert port.field("protocol").default == "TCP"
    assert port.field("hostPort").default is NO_DEFAULT
    assert "image" in at(pod_spec, "containers", "[]").field_names()


def test_other_kinds_rule_sets_touch() -> None:
    catalogue = builtin()
    service_ports = at(catalogue.for_kind(SERVICE), "spec", "ports")
    assert (service_ports.list_type, service_ports.keys) == ("map", ("port", "protocol"))
    assert at(service_ports, "[]", "protocol").default == "TCP"
    assert at(catalogue.for_kind(SERVICE), "spec", "selector").atomic
    metadata = at(catalogue.for_kind(CONFIGMAP), "metadata")
    assert metadata.field("finalizers").list_type == "set"
    assert metadata.field("labels").is_map and not metadata.field("labels").atomic
    assert at(metadata, "ownerReferences", "[]").atomic
    binding = catalogue.for_kind(GVK("rbac.authorization.k8s.io", "v1", "RoleBinding"))
    assert at(binding, "subjects").list_type == "atomic"
    account = catalogue.for_kind(GVK("", "v1", "ServiceAccount"))
    assert at(account, "imagePullSecrets").list_type == "atomic"


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.test.edict.dev"},
    "spec": {
        "group": "test.edict.dev",
        "scope": "Cluster",
        "names": {"kind": "Gadget", "plural": "gadgets"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                "type": "object", "properties": {
                    "tags": {"type": "array", "items": {"type": "string"},
                             "x-kubernetes-list-type": "set"}}}}}}}],
    },
}


def test_crds_add_kinds_scopes_and_schemas() -> None:
    base = builtin()
    gadget = GVK("test.edict.dev", "v1", "Gadget")
    with_crd = base.with_crds([CRD, {"apiVersion": "v1", "kind": "ConfigMap"}])
    assert gadget in with_crd.kinds() and gadget not in base.kinds()
    assert with_crd.namespaced(gadget) is False
    assert at(with_crd.for_kind(gadget), "spec", "tags").list_type == "set"
    assert at(with_crd.for_kind(gadget), "metadata", "finalizers").list_type == "set"
    assert with_crd.for_kind(DEPLOYMENT) is not None
    assert with_crd.kubernetes == base.kubernetes
    assert base.with_crds([{"apiVersion": "v1", "kind": "ConfigMap"}]) is base


def test_a_crd_kind_wins_over_a_built_in_one() -> None:
    shadow = copy.deepcopy(CRD)
    shadow["spec"].update(group="apps", scope="Namespaced")
    shadow["spec"]["names"]["kind"] = "Deployment"
    catalogue = builtin().with_crds([shadow])
    assert at(catalogue.for_kind(DEPLOYMENT), "spec", "tags").list_type == "set"
    assert catalogue.namespaced(DEPLOYMENT) is True
    assert at(builtin().for_kind(DEPLOYMENT), "spec", "replicas").scalar == "integer"


def test_a_catalogue_of_no_kinds() -> None:
    empty = Catalogue({}, {}, {})
    assert empty.kinds() == set()
    assert empty.for_kind(DEPLOYMENT) is None
    assert empty.namespaced(DEPLOYMENT) is None
