"""The cluster side of the live benchmark: a control plane, the CRDs, namespaces, objects.

`__main__` enters `control_plane` (its own, or `--kubeconfig`), installs the rule-set
CRDs from `crds/` (and warms up their watch, see `warm_up`), and asks for a fresh
namespace of N unlabelled ConfigMaps before each phase; `drop_namespace` deletes it
afterwards and waits, so the next phase's informer does not list the previous phase's
objects. None of this is timed.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from engine.kube import Cluster
from engine.kube.errors import AlreadyExists, NotFound
from engine.objects import GVK, Obj, meta
from engine.testing.controlplane import ControlPlane

CONFIGMAP = GVK.of("v1", "ConfigMap")  # the instances the engine uses (`GVK.of`)
NAMESPACE = GVK.of("v1", "Namespace")
EVENT = GVK("", "v1", "Event")
CLUSTER_RULE_SET = GVK("edict.dev", "v1alpha1", "ClusterRuleSet")
CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@contextlib.contextmanager
def control_plane(kubeconfig: str | None) -> Iterator[tuple[str, Path | None]]:
    """A kubeconfig path: `kubeconfig` as given, or one of a control plane started here
    (stopped and removed on the way out, also on error); and that plane's run directory."""
    if kubeconfig:
        yield kubeconfig, None
        return
    run_dir = Path(tempfile.mkdtemp(prefix="edict-bench-"))
    plane = ControlPlane(run_dir, log=lambda line: print(f"  {line}", file=sys.stderr))
    try:
        started = time.perf_counter()
        plane.start()
        print(f"control plane up in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        yield str(plane.kubeconfig_path), run_dir
    finally:
        plane.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def wait_for(check: Callable[[], bool], *, timeout: float, what: str,
             every: float = 0.1) -> None:
    """Poll `check()` until it is true; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def install_crds(cluster: Cluster, *, timeout: float = 60.0) -> None:
    """Create (or keep) every CRD in `crds/` and wait until each is Established."""
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            names.append(doc["metadata"]["name"])
            with contextlib.suppress(AlreadyExists):
                cluster.create(doc)

    def established(name: str) -> bool:
        conditions = cluster.get(CRD, None, name).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions)

    for name in names:
        wait_for(functools.partial(established, name), timeout=timeout,
                 what=f"CRD {name} to be Established")
    warm_up(cluster, timeout=timeout)


def warm_up(cluster: Cluster, *, timeout: float) -> None:
    """Create and delete a ClusterRuleSet while watching, until the watch sees it at once.

    On a control plane whose CRDs were just installed, the first ClusterRuleSet reaches
    a watch about 2 s after it was created (the API server's side: the same happens to a
    plain watch, with no engine running). An operator's CRDs are installed long before
    its rule sets, so that second is not the engine's and is kept out of the timing.
    """
    deadline = time.monotonic() + timeout
    for attempt in range(20):
        _, version = cluster.list(CLUSTER_RULE_SET)
        stream = cluster.watch(CLUSTER_RULE_SET, resource_version=version,
                               timeout_seconds=int(timeout))
        name = f"bench-warm-up-{attempt}"
        try:
            started = time.monotonic()
            cluster.create({"apiVersion": CLUSTER_RULE_SET.api_version,
                            "kind": CLUSTER_RULE_SET.kind, "metadata": {"name": name},
                            "spec": {"mode": "Suspended", "rules": [WARM_UP_RULE]}})
            for kind, obj in stream:
                if kind == "ADDED" and meta(obj).get("name") == name:
                    break
            seen_after = time.monotonic() - started
        finally:
            stream.close()
            with contextlib.suppress(NotFound):
                cluster.delete(CLUSTER_RULE_SET, None, name)
        print(f"warm-up: a new ClusterRuleSet reached a watch after {seen_after:.2f}s",
              file=sys.stderr)
        if seen_after < 0.5 or time.monotonic() > deadline:
            return


WARM_UP_RULE = {"name": "nothing",
                "match": {"resources": [{"apiVersion": "v1", "kinds": ["ConfigMap"]}],
                          "namespaces": ["bench-warm-up-matches-nothing"]},
                "mutate": {"template": {"metadata": {"labels": {"never": "applied"}}}}}


def configmap(namespace: str, number: int) -> Obj:
    """One benchmark object: a label the rule leaves alone, a little data, no rule label."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{number:05d}", "namespace": namespace,
                         "labels": {"app": "edict-bench"}},
            "data": {"index": str(number), "payload": "x" * 64}}


def fill_namespace(cluster: Cluster, namespace: str, objects: int, *, threads: int) -> str:
    """Create `namespace` with `objects` ConfigMaps; return the list's resourceVersion
    once all of them are there (a watch from it sees only later changes)."""
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda n: cluster.create(configmap(namespace, n)), range(objects)))
    items, version = cluster.list(CONFIGMAP, namespace=namespace, limit=500,
                                  label_selector="app=edict-bench")
    if len(items) != objects:
        raise RuntimeError(f"{namespace}: {len(items)} ConfigMaps listed, {objects} created")
    return version


def count_events(cluster: Cluster, namespace: str) -> int:
    """Kubernetes Events in `namespace` (the engine records one per object it changes)."""
    items, _ = cluster.list(EVENT, namespace=namespace, limit=500)
    return len(items)


def drop_namespace(cluster: Cluster, namespace: str, *, timeout: float = 180.0) -> None:
    """Delete `namespace` and wait until it is gone (the namespace controller empties it)."""
    with contextlib.suppress(NotFound):
        cluster.delete(NAMESPACE, None, namespace)

    def gone() -> bool:
        try:
            cluster.get(NAMESPACE, None, namespace)
        except NotFound:
            return True
        return False

    try:
        wait_for(gone, timeout=timeout, what=f"namespace {namespace} to be deleted", every=0.5)
    except TimeoutError as error:  # not fatal: the next phase uses its own namespace
        print(f"warning: {error}", file=sys.stderr)
