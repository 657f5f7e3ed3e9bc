"""Two gallery operators on the real control plane: the PostgreSQL Database and the app
with an ordered migration. No kubelet runs here, so readiness is simulated the way a
controller reports it: by patching the children's status subresource.

Order is proven with resourceVersions: on one etcd they are revisions of one counter,
so a child whose creation carries a higher resourceVersion than the status patch that
made its predecessor ready was created after it. (resourceVersions are opaque to
clients in general; on the suite's own single etcd this reading is exact.)
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.kube.client import Cluster
from engine.kube.errors import NotFound
from engine.objects import GVK
from engine.runtime.manager import Manager
from tests.support import eventually

from .conftest import Objects
from .live import condition, kind_served

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
SECRET = GVK("", "v1", "Secret")
SERVICE = GVK("", "v1", "Service")
STATEFULSET = GVK("apps", "v1", "StatefulSet")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
JOB = GVK("batch", "v1", "Job")
DATABASE = GVK("gallery.edict.dev", "v1alpha1", "Database")
APP = GVK("gallery.edict.dev", "v1alpha1", "App")


@pytest.fixture
def install(admin: Cluster, objects: Objects) -> Iterator[Callable[[str], None]]:
    """Apply rules/<name>/operator.yaml; its CRD goes after the test, whatever happens."""
    crds: list[str] = []

    def apply(name: str) -> None:
        rule_set = yaml.safe_load((ROOT / "rules" / name / "operator.yaml").read_text())
        api = rule_set["spec"]["api"]
        crds.append(f"{api['kind'].lower()}s.{api['group']}")
        objects.create(rule_set)
        eventually(lambda: crd_established(admin, crds[-1]), timeout=60,
                   what=f"the CRD of {name} installed by the engine")
        # Established does not mean discovery serves the group yet: wait until it does
        gvk = GVK(api["group"], api.get("version", "v1alpha1"), api["kind"])
        eventually(lambda: kind_served(admin, gvk), timeout=30,
                   what=f"discovery serving {gvk.kind}")

    yield apply
    objects.cleanup()
    for name in crds:
        with contextlib.suppress(NotFound):
            admin.delete(CRD, None, name)


def crd_established(cluster: Cluster, name: str) -> bool:
    try:
        crd = cluster.get(CRD, None, name)
    except NotFound:
        return False
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or ())


def get(cluster: Cluster, gvk: GVK, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return cluster.get(gvk, namespace, name)
    except NotFound:
        return None


def revision(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def conditions(cluster: Cluster, gvk: GVK, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.get(gvk, namespace, name)
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or ()}


def status_is(cluster: Cluster, gvk: GVK, namespace: str, name: str,
              **expected: tuple[str, str]) -> bool:
    """Each condition type has the (status, reason) given."""
    found = conditions(cluster, gvk, namespace, name)
    return all((found.get(t) or {}).get("status") == s and found[t].get("reason") == r
               for t, (s, r) in expected.items())


def test_the_postgres_operator(admin: Cluster, namespace: str, engine: Manager,
                               install: Callable[[str], None]) -> None:
    install("postgres")
    admin.create({"apiVersion": "gallery.edict.dev/v1alpha1", "kind": "Database",
                  "metadata": {"name": "orders", "namespace": namespace},
                  "spec": {"version": "16", "database": "orders"}})
    server = eventually(lambda: get(admin, STATEFULSET, namespace, "orders"),
                        what="the StatefulSet")
    secret = admin.get(SECRET, namespace, "orders-credentials")
    service = admin.get(SERVICE, namespace, "orders")
    # after: [credentials, service] — the StatefulSet came after both existed
    assert revision(server) > max(revision(secret), revision(service))
    assert service["spec"]["clusterIP"] == "None"
    assert server["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:16"
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 24 and password.isalnum()
    eventually(lambda: status_is(admin, DATABASE, namespace, "orders",
                                 Ready=("False", "NotReady"),
                                 ServerReady=("False", "NotReady")),
               what="not Ready while no replica is")

    # A controller reports the replica ready: so is the Database.
    admin.patch_merge_status(STATEFULSET, namespace, "orders",
                             {"status": {"replicas": 1, "readyReplicas": 1}})
    eventually(lambda: status_is(admin, DATABASE, namespace, "orders",
                                 Ready=("True", "AllReady"), ServerReady=("True", "Ready")),
               what="Ready once the server is")
    database = admin.get(DATABASE, namespace, "orders")
    assert database["status"]["endpoint"] == f"orders.{namespace}.svc:5432"
    assert database["status"]["readyReplicas"] == 1
    assert database["spec"]["storage"] == "1Gi"  # the API server's default, from spec.api

    # The Database changes: the StatefulSet follows, the password stays as made.
    admin.patch_merge(DATABASE, namespace, "orders", {"spec": {"replicas": 2}})
    eventually(lambda: admin.get(STATEFULSET, namespace, "orders")["spec"]["replicas"] == 2,
               what="the StatefulSet follows")
    eventually(lambda: status_is(admin, DATABASE, namespace, "orders",
                                 ServerReady=("False", "NotReady")),
               what="one of two replicas ready is not ready")
    assert admin.get(SECRET, namespace, "orders-credentials")["data"] == secret["data"]


def test_the_cascade_runs_each_step_after_the_one_before_is_ready(
        admin: Cluster, namespace: str, engine: Manager,
        install: Callable[[str], None]) -> None:
    install("app-with-migrations")
    admin.create({"apiVersion": "gallery.edict.dev/v1alpha1", "kind": "App",
                  "metadata": {"name": "shop", "namespace": namespace},
                  "spec": {"image": "ghcr.io/example/shop:1.0", "replicas": 2}})

    def children(gvk: GVK) -> list[dict[str, Any]]:
        items, _ = admin.list(gvk, namespace=namespace, label_selector="edict.dev/rule")
        return items

    # Step 1: the database; the migration waits for it.
    database = eventually(lambda: get(admin, STATEFULSET, namespace, "shop-db"),
                          what="the database StatefulSet")
    assert revision(database) > revision(admin.get(SECRET, namespace, "shop-db"))
    eventually(lambda: status_is(admin, APP, namespace, "shop",
                                 DatabaseReady=("False", "NotReady"),
                                 MigrateReady=("False", "Waiting"),
                                 WebReady=("False", "Waiting")),
               what="the App says the migration and the app wait")
    assert children(JOB) == [] and children(DEPLOYMENT) == []

    # Step 2: the database is ready; the migration Job is made, the app waits for it.
    ready = admin.patch_merge_status(STATEFULSET, namespace, "shop-db",
                                     {"status": {"replicas": 1, "readyReplicas": 1}})
    jobs = eventually(lambda: children(JOB), what="the migration Job")
    (job,) = jobs
    assert revision(job) > revision(ready), "the Job was created before the database was ready"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["migrate", "up"]
    eventually(lambda: status_is(admin, APP, namespace, "shop",
                                 DatabaseReady=("True", "Ready"),
                                 MigrateReady=("False", "NotReady"),
                                 WebReady=("False", "Waiting")),
               what="the App says the app waits for the migration")
    assert children(DEPLOYMENT) == []

    # Step 3: the migration succeeded; the app is made.
    started = job["metadata"]["creationTimestamp"]
    done = admin.patch_merge_status(JOB, namespace, job["metadata"]["name"], {"status": {
        "startTime": started, "completionTime": started, "succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": started},
            {"type": "Complete", "status": "True", "lastTransitionTime": started}]}})
    web = eventually(lambda: get(admin, DEPLOYMENT, namespace, "shop"), what="the app")
    assert revision(web) > revision(done), "the app was created before its migration succeeded"
    eventually(lambda: status_is(admin, APP, namespace, "shop",
                                 MigrateReady=("True", "Ready"), WebReady=("False", "NotReady")),
               what="the App says the app is not available yet")

    # Step 4: the app is available: the App is Ready.
    admin.patch_merge_status(DEPLOYMENT, namespace, "shop",
                             {"status": {"replicas": 2, "readyReplicas": 2,
                                         "availableReplicas": 2}})
    eventually(lambda: status_is(admin, APP, namespace, "shop", Ready=("True", "AllReady")),
               what="the App is Ready")
    app = admin.get(APP, namespace, "shop")
    assert app["status"]["image"] == "ghcr.io/example/shop:1.0"
    assert condition(app, "Ready") is not None
