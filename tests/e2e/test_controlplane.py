"""Smoke tests of the test control plane itself, and of Edict's CRDs on a real apiserver.

They prove what the live tests rely on: the built version answers, watches deliver
events, RBAC is enforced for users minted with ``add_user``, the garbage collector
(kube-controller-manager) deletes dependents, and ``crds/*.yaml`` install, validate
and print as intended.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from engine.testing.controlplane import KUBERNETES_VERSION
from engine.testing.pytest_plugin import TestCluster
from tests.support import eventually

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).resolve().parents[2] / "crds"
GROUP, VERSION = "edict.dev", "v1alpha1"


def status_of(call: Callable[[], object]) -> int:
    """HTTP status of an API call: 200 when it succeeds, the error's status otherwise."""
    try:
        call()
    except ApiException as error:
        return int(error.status)
    return 200


@pytest.fixture(scope="module")
def api(kubeconfig: str) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=kubeconfig)
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"cp-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def kubectl(kubeconfig: str, *args: str) -> str:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH"
    result = subprocess.run([binary, "--kubeconfig", kubeconfig, *args], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_version_is_the_one_built(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    if os.environ.get("EDICT_TEST_KUBECONFIG"):
        assert info.git_version.startswith("v1.")
    else:
        assert info.git_version == KUBERNETES_VERSION
        assert (info.major, info.minor) == tuple(KUBERNETES_VERSION[1:].split(".")[:2])


def test_configmap_watch_sees_create_and_update(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    since = core.list_namespaced_config_map(namespace).metadata.resource_version
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"a": "1"})
    core.create_namespaced_config_map(namespace, body)
    core.patch_namespaced_config_map("watched", namespace, {"data": {"a": "2"}})
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_config_map, namespace,
                               resource_version=since, timeout_seconds=60):
        seen.append((event["type"], event["object"].data["a"]))
        if len(seen) == 2:
            stream.stop()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2")]


def test_rbac_applies_to_minted_users(control_plane: TestCluster, api: client.ApiClient,
                                      namespace: str) -> None:
    core = client.CoreV1Api(api)
    other = f"{namespace}-other"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        user = control_plane.add_user(f"reader-{namespace}", ["edict-testers"])
        as_user = client.CoreV1Api(config.new_client_from_config(config_file=user))
        assert status_of(lambda: as_user.list_namespaced_secret(namespace)) == 403
        assert status_of(lambda: as_user.list_namespaced_config_map(namespace)) == 403

        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(namespace, {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                       "verbs": ["get", "list", "watch"]}],
        })
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": "configmap-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "configmap-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": f"reader-{namespace}"}],
        })
        # The authorizer reads RBAC objects from an informer: allow it to catch up.
        eventually(lambda: status_of(lambda: as_user.list_namespaced_config_map(namespace))
                   == 200, timeout=30, what="the RoleBinding to take effect")
        assert status_of(lambda: as_user.list_namespaced_config_map(other)) == 403
        assert status_of(lambda: as_user.list_namespaced_secret(namespace)) == 403
    finally:
        core.delete_namespace(other)


def test_garbage_collector_deletes_dependents(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    reference = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner",
                                        uid=owner.metadata.uid)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="dependent", owner_references=[reference])))
    core.delete_namespaced_config_map("owner", namespace)
    eventually(lambda: status_of(lambda: core.read_namespaced_config_map(
        "dependent", namespace)) == 404, timeout=120, what="the dependent to be collected")


# --- Edict's CRDs -------------------------------------------------------------------


def crd_documents() -> list[dict[str, Any]]:
    docs = [doc for path in sorted(CRDS.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())]
    return [d for d in docs if d and d.get("kind") == "CustomResourceDefinition"]


@pytest.fixture(scope="module")
def crds(api: client.ApiClient, kubeconfig: str) -> list[dict[str, Any]]:
    documents = crd_documents()
    assert {d["metadata"]["name"] for d in documents} >= {
        "rulesets.edict.dev", "clusterrulesets.edict.dev"}
    for path in sorted(CRDS.glob("*.yaml")):
        if any(d.get("kind") == "CustomResourceDefinition"
               for d in yaml.safe_load_all(path.read_text()) if d):
            kubectl(kubeconfig, "apply", "--server-side", "-f", str(path))
    extensions = client.ApiextensionsV1Api(api)

    def established(name: str) -> bool:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for document in documents:
        name = document["metadata"]["name"]
        eventually(lambda name=name: established(name), timeout=60,
                   what=f"CRD {name} to be Established")
    return documents


def rule(name: str = "label-configmaps", **action: Any) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}]},
        "condition": "object.metadata.name != ''",
        **(action or {"mutate": {"template": {"metadata": {"labels": {"edict": "yes"}}}}}),
    }


def rule_set(name: str, spec: dict[str, Any], kind: str = "RuleSet") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name},
            "spec": spec}


def test_valid_rule_sets_are_accepted(crds: object, api: client.ApiClient,
                                      namespace: str) -> None:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "rulesets",
        rule_set("labels", {"mode": "Audit", "rules": [rule()]}))
    assert created["spec"]["priority"] == 100  # defaulted by the schema
    generate = rule("config-per-namespace", generate={
        "template": {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "edict-config"}}})
    generate["match"]["namespaces"] = ["team-*"]
    cluster = custom.create_cluster_custom_object(
        GROUP, VERSION, "clusterrulesets",
        rule_set(f"generate-{namespace}", {"rules": [generate]}, kind="ClusterRuleSet"))
    try:
        assert cluster["spec"]["mode"] == "Enforce"
        assert cluster["spec"]["rules"][0]["generate"]["synchronize"] is True
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "clusterrulesets",
                                            f"generate-{namespace}")


INVALID_RULE_SETS = {
    "unknown mode": {"mode": "Sometimes", "rules": [rule()]},
    "no rules": {"rules": []},
    "rule name not a DNS label": {"rules": [rule("Not_A_Label")]},
    "two actions": {"rules": [rule(mutate={"template": {}}, status={"template": {}})]},
    "no action": {"rules": [{**rule(), "mutate": None}]},
    "namespaces in a RuleSet": {"rules": [{**rule(), "match": {
        "resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
        "namespaces": ["other"]}}]},
}


@pytest.mark.parametrize("spec", INVALID_RULE_SETS.values(), ids=INVALID_RULE_SETS.keys())
def test_invalid_rule_sets_are_rejected(crds: object, api: client.ApiClient, namespace: str,
                                        spec: dict[str, Any]) -> None:
    spec = {k: v for k, v in spec.items()}
    spec["rules"] = [{k: v for k, v in r.items() if v is not None} for r in spec["rules"]]
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as error:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "rulesets",
                                               rule_set("invalid", spec))
    assert error.value.status == 422, error.value.body


def test_kubectl_prints_the_crd_columns(crds: list[dict[str, Any]], api: client.ApiClient,
                                        kubeconfig: str, namespace: str) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "rulesets",
        rule_set("printed", {"mode": "Suspended", "priority": 7, "rules": [rule()]}))
    crd = next(d for d in crds if d["metadata"]["name"] == "rulesets.edict.dev")
    columns = [c["name"].upper() for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    header, row = kubectl(kubeconfig, "get", "rulesets", "-n", namespace).splitlines()[:2]
    assert header.split() == ["NAME", *columns]
    assert row.split()[:3] == ["printed", "Suspended", "7"]
