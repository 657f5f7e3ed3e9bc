"""`deploy/` on a real API server, and the engine running as its ServiceAccount.

The proof that Edict runs with least privilege: install `deploy/` (server-side dry run
first, then for real), add the aggregated role of ONE ready-made rule set
(namespace-bootstrap's rbac.yaml), mint a token for the `edict` ServiceAccount with the
TokenRequest API and run `edict run` as a subprocess with it — never as admin. That rule
set converges; rule sets that need kinds outside the RBAC report the refusal on their
own status while the first keeps working; a namespaced RuleSet with
`serviceAccountName` writes through impersonation only where deploy/'s
`edict-impersonate` role is bound.

The Deployment itself never runs (the test control plane has no kubelet): the engine
process stands in for its pod, with the same arguments and the same identity.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.testing.controlplane import bin_dir
from engine.testing.pytest_plugin import TestCluster
from tests.support import eventually, wait_established

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SA = "system:serviceaccount:edict-system:edict"
IMAGE = "ghcr.io/edict-dev/edict:0.1.0"
BOOTSTRAP_LABEL = "edict.dev/bootstrap"
# Deadline for what the engine reports after a refused request (never a sleep).
SLOW = 90.0


def tail_of(log: Path) -> Callable[[], str]:
    """The engine log's last lines, for a failure message."""
    return lambda: "\n".join(log.read_text().splitlines()[-30:]) if log.exists() else ""


def run(kubeconfig: str, *args: str, stdin: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH"
    out = subprocess.run([binary, "--kubeconfig", kubeconfig, *args], input=stdin,
                         capture_output=True, text=True, timeout=120, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{out.stderr}")
    return out


def get(kubeconfig: str, *args: str) -> Any:
    return json.loads(run(kubeconfig, "get", *args, "-o", "json").stdout)


def exists(kubeconfig: str, *args: str) -> bool:
    return run(kubeconfig, "get", *args, check=False).returncode == 0


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return {}


def rendered() -> list[dict[str, Any]]:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH"
    out = subprocess.run([binary, "kustomize", str(DEPLOY)], capture_output=True, text=True,
                         timeout=60, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


# -- offline: what `kubectl apply -k deploy/` would send --------------------------------


def test_the_crds_come_from_crds_not_a_copy() -> None:
    docs = rendered()
    crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert set(crds) == {"rulesets.edict.dev", "clusterrulesets.edict.dev"}
    for path in sorted((ROOT / "crds").glob("edict.dev_*.yaml")):
        source = yaml.safe_load(path.read_text())
        assert crds[source["metadata"]["name"]]["spec"] == source["spec"]
    assert not list(DEPLOY.rglob("*customresourcedefinition*"))
    assert not [p for p in DEPLOY.rglob("*.yaml")
                for doc in yaml.safe_load_all(p.read_text())
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]


def test_the_deployment_is_hardened() -> None:
    docs = rendered()
    deployment = find(docs, "Deployment", "edict")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert pod["serviceAccountName"] == "edict"
    assert container["image"] == IMAGE
    assert container["args"][:2] == ["run", "--leader-elect"]
    assert "--log-format=json" in container["args"]
    assert "--lease-namespace=$(POD_NAMESPACE)" in container["args"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 8080, "health": 8081, "webhook": 9443}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert set(container["resources"]) == {"requests", "limits"}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 65532
    pdb = find(docs, "PodDisruptionBudget", "edict")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    service = find(docs, "Service", "edict-metrics")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    namespaced = [d for d in docs if d["kind"] in (
        "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service",
        "PodDisruptionBudget")]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"edict-system"}


def test_the_image_can_be_overridden(tmp_path: Path) -> None:
    """What `kustomize edit set image ghcr.io/edict-dev/edict=…` writes: the `images`
    entry (kubectl has no `edit`, so the entry is edited as that command would)."""
    shutil.copytree(ROOT / "crds", tmp_path / "crds")
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    kustomization = tmp_path / "deploy" / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    (entry,) = data["images"]
    assert entry == {"name": "ghcr.io/edict-dev/edict", "newName": "ghcr.io/edict-dev/edict",
                     "newTag": "0.1.0"}
    entry.update(newName="registry.example.com/edict", newTag="dev")
    kustomization.write_text(yaml.safe_dump(data))
    out = subprocess.run(["kubectl", "kustomize", str(tmp_path / "deploy")],
                         capture_output=True, text=True, timeout=60, check=True)
    deployment = find([d for d in yaml.safe_load_all(out.stdout) if d], "Deployment", "edict")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/edict:dev"


# -- on the API server ---------------------------------------------------------------


def warnings(stderr: str) -> list[str]:
    """kubectl's warnings, less the one about objects other tests created without
    `kubectl apply` (the suite's CRDs may have been applied server-side before)."""
    return [line for line in stderr.splitlines() if line.startswith("Warning:")
            and "last-applied-configuration annotation" not in line]


@pytest.fixture(scope="module")
def installed(kubeconfig: str) -> str:
    """deploy/ applied: a server-side dry run first (admission, schemas, Pod Security),
    then for real. The Namespace goes first so the dry run can check what lives in it."""
    run(kubeconfig, "apply", "-f", str(DEPLOY / "namespace.yaml"))
    dry = run(kubeconfig, "apply", "-k", str(DEPLOY), "--dry-run=server")
    assert warnings(dry.stderr) == [], dry.stderr  # e.g. PodSecurity "restricted"
    assert re.search(r"deployment\.apps/edict \w+ \(server dry run\)", dry.stdout), dry.stdout
    real = run(kubeconfig, "apply", "-k", str(DEPLOY))
    assert warnings(real.stderr) == [], real.stderr
    wait_established(kubeconfig, "rulesets.edict.dev", "clusterrulesets.edict.dev")
    return kubeconfig


@pytest.mark.cluster
def test_install_uninstall_and_least_privilege(installed: str) -> None:
    kubeconfig = installed
    for kind, name in [("deployment", "edict"), ("service", "edict-metrics"),
                       ("poddisruptionbudget", "edict"), ("serviceaccount", "edict"),
                       ("role", "edict-leader-election")]:
        assert exists(kubeconfig, kind, name, "-n", "edict-system"), (kind, name)
    # Uninstalling is validated too, without doing it (other tests use the CRDs).
    gone = run(kubeconfig, "delete", "-k", str(DEPLOY), "--dry-run=server")
    assert "customresourcedefinition.apiextensions.k8s.io \"rulesets.edict.dev\" deleted" \
        in gone.stdout

    def can(verb: str, *what: str) -> bool:
        out = run(kubeconfig, "auth", "can-i", verb, *what, "--as", SA, check=False)
        return out.stdout.strip() == "yes"

    assert can("watch", "clusterrulesets.edict.dev")
    assert can("patch", "rulesets.edict.dev", "--subresource=status", "-n", "team-a")
    assert not can("patch", "clusterrulesets.edict.dev")  # only their status
    assert can("list", "namespaces")
    assert can("create", "events", "-n", "anywhere")
    assert can("update", "leases.coordination.k8s.io/edict-engine", "-n", "edict-system")
    assert not can("update", "leases.coordination.k8s.io/other", "-n", "edict-system")
    assert not can("get", "leases.coordination.k8s.io", "-n", "kube-system")
    assert not can("impersonate", "serviceaccounts", "-n", "kube-system")
    assert not can("impersonate", "users")
    assert not can("list", "secrets", "-A")
    assert not can("list", "configmaps", "-A")


@dataclass
class Engine:
    """An `edict run` subprocess and what it writes."""

    process: subprocess.Popen[bytes]
    health: str
    log: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.health + path, timeout=2) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()
        except OSError as error:
            return 0, str(error)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_account_kubeconfig(admin: str, path: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token for deploy/'s ServiceAccount."""
    token = run(admin, "create", "token", "edict", "-n", "edict-system",
                "--duration=2h").stdout.strip()
    view = json.loads(run(admin, "config", "view", "--raw", "--minify", "--flatten",
                          "-o", "json").stdout)
    cluster = view["clusters"][0]["cluster"]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "edict",
        "clusters": [{"name": "cluster", "cluster": {
            "server": cluster["server"],
            "certificate-authority-data": cluster["certificate-authority-data"]}}],
        "users": [{"name": "edict", "user": {"token": token}}],
        "contexts": [{"name": "edict", "context": {"cluster": "cluster", "user": "edict"}}],
    }))
    return path


@pytest.fixture(scope="module")
def aggregation(installed: str, control_plane: TestCluster,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ClusterRole aggregation. The suite's control plane runs only the garbage
    collector and namespace controllers, so run kube-controller-manager's
    clusterrole-aggregation-controller beside it; an existing cluster has its own."""
    try:
        kcm_kubeconfig = control_plane.add_user("system:edict-test-aggregation",
                                                ["system:masters"])
    except RuntimeError:  # EDICT_TEST_KUBECONFIG: a real cluster aggregates already
        yield
        return
    log = tmp_path_factory.mktemp("aggregation") / "kube-controller-manager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(bin_dir() / "kube-controller-manager"), f"--kubeconfig={kcm_kubeconfig}",
             "--controllers=clusterrole-aggregation-controller", "--leader-elect=false",
             "--secure-port=0"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def start_engine(config: Path, directory: Path) -> Engine:
    """`edict run` as the Deployment runs it (leader election, JSON logs), with the
    given kubeconfig only; returns once /healthz answers."""
    port = free_port()
    log = directory / "engine.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "run", "--kubeconfig", str(config),
             "--leader-elect", "--lease-namespace", "edict-system", "--log-format", "json",
             "--metrics-addr", "127.0.0.1:0", "--health-addr", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory,
            env={**os.environ, "KUBECONFIG": "/nonexistent", "PYTHONPATH": str(ROOT)})
    handle = Engine(process, f"http://127.0.0.1:{port}", log)
    try:
        eventually(lambda: handle.get("/healthz")[0] == 200, what="/healthz", detail=tail_of(log))
    except BaseException:
        handle.stop()
        raise
    return handle


def manage_rules(kubeconfig: str) -> list[dict[str, Any]]:
    return list(get(kubeconfig, "clusterrole", "edict-manage").get("rules") or [])


@pytest.fixture(scope="module")
def engine(installed: str, aggregation: None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """`edict run` as deploy/'s ServiceAccount, with namespace-bootstrap's RBAC only."""
    admin = installed
    run(admin, "apply", "-f", str(ROOT / "rules/namespace-bootstrap/rbac.yaml"))
    eventually(lambda: any("networkpolicies" in r.get("resources", [])
                           for r in manage_rules(admin)),
               what="edict-manage to aggregate namespace-bootstrap's role")
    directory = tmp_path_factory.mktemp("engine")
    config = service_account_kubeconfig(admin, directory / "kubeconfig")
    whoami = run(str(config), "auth", "whoami", "-o", "json").stdout
    assert json.loads(whoami)["status"]["userInfo"]["username"] == SA
    handle = start_engine(config, directory)
    log = handle.log
    try:
        eventually(lambda: "became leader" in log.read_text(), what="the Lease",
                   detail=tail_of(log))
        yield handle
    finally:
        code = handle.stop()
        for name in ("namespace-secrets", "configmap-labels", "namespace-bootstrap"):
            run(admin, "delete", "clusterruleset", name, "--ignore-not-found", check=False)
        run(admin, "delete", "-f", str(ROOT / "rules/namespace-bootstrap/rbac.yaml"),
            "--ignore-not-found", check=False)
        assert code == 0, f"edict run exited {code}:\n{log.read_text()[-3000:]}"


def bootstrapped_namespace(admin: str) -> str:
    name = f"deploy-{uuid.uuid4().hex[:6]}"
    run(admin, "create", "namespace", name)
    run(admin, "label", "namespace", name, f"{BOOTSTRAP_LABEL}=true")
    return name


def children(admin: str, namespace: str) -> set[str]:
    found = get(admin, "resourcequota,limitrange,networkpolicy", "-n", namespace)
    return {f"{i['kind']}/{i['metadata']['name']}" for i in found["items"]
            if (i["metadata"].get("labels") or {}).get("edict.dev/rule-set")
            == "namespace-bootstrap"}


BOOTSTRAPPED = {"ResourceQuota/default-quota", "LimitRange/container-defaults",
                "NetworkPolicy/default-deny"}


def rule_set_status(admin: str, name: str) -> dict[str, Any]:
    return dict(get(admin, "clusterruleset", name))


@pytest.mark.cluster
def test_a_ready_made_rule_set_converges_under_the_service_account(
        installed: str, engine: Engine) -> None:
    admin = installed
    run(admin, "apply", "-f", str(ROOT / "rules/namespace-bootstrap/ruleset.yaml"))
    namespace = bootstrapped_namespace(admin)
    try:
        eventually(lambda: children(admin, namespace) == BOOTSTRAPPED, timeout=60,
                   what="namespace-bootstrap's children", detail=tail_of(engine.log))
        status = eventually(lambda: (s := rule_set_status(admin, "namespace-bootstrap"))
                            and condition(s, "Ready").get("status") == "True"
                            and all(r["applied"] >= 1 for r in s["status"]["rules"]) and s,
                            what="namespace-bootstrap's status", detail=tail_of(engine.log))
        assert condition(status, "Degraded")["status"] == "False"
        lease = get(admin, "lease", "edict-engine", "-n", "edict-system")
        assert lease["spec"]["holderIdentity"], "the engine leads through deploy/'s Role"
        events = get(admin, "events", "-n", "default",
                     "--field-selector", f"involvedObject.name={namespace}")
        assert any(e["reason"] == "RuleApplied" for e in events["items"])
        assert engine.get("/readyz")[0] == 200
        assert "edict_leader 1.0" in engine.get("/metrics")[1]
    finally:
        run(admin, "delete", "namespace", namespace, "--wait=false")


FORBIDDEN_SECRET = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: namespace-secrets}
spec:
  rules:
  - name: registry-secret
    match:
      resources: [{apiVersion: v1, kinds: [Namespace]}]
      selector: {matchLabels: {edict.dev/bootstrap: "true"}}
    generate:
      template:
        apiVersion: v1
        kind: Secret
        metadata: {name: registry, namespace: "{{ object.metadata.name }}"}
        stringData: {token: not-a-secret}
"""

FORBIDDEN_CONFIGMAP = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: configmap-labels}
spec:
  rules:
  - name: label-configmaps
    match:
      resources: [{apiVersion: v1, kinds: [ConfigMap]}]
    mutate:
      template:
        metadata:
          labels: {edict.dev/seen: "true"}
"""


@pytest.mark.cluster
def test_a_kind_outside_the_rbac_is_reported_and_the_rest_keeps_working(
        installed: str, engine: Engine) -> None:
    admin = installed
    run(admin, "apply", "-f", str(ROOT / "rules/namespace-bootstrap/ruleset.yaml"))
    first = bootstrapped_namespace(admin)
    try:
        eventually(lambda: children(admin, first) == BOOTSTRAPPED, timeout=60,
                   what="namespace-bootstrap before", detail=tail_of(engine.log))
        run(admin, "apply", "-f", "-", stdin=FORBIDDEN_SECRET)
        run(admin, "apply", "-f", "-", stdin=FORBIDDEN_CONFIGMAP)
        run(admin, "create", "configmap", "victim", "-n", first, "--from-literal=a=b")

        def degraded() -> str:
            message = str(condition(rule_set_status(admin, "namespace-secrets"),
                                    "Degraded").get("message", ""))
            return message if "forbidden" in message.lower() else ""

        message = eventually(degraded, timeout=SLOW, what="the refused Secret on the status",
                             detail=tail_of(engine.log))
        assert "403" in message and "secrets" in message and SA in message, message
        # The first rule set keeps working: a new namespace is bootstrapped, and its
        # own status stays clean.
        second = bootstrapped_namespace(admin)
        try:
            eventually(lambda: children(admin, second) == BOOTSTRAPPED, timeout=60,
                       what="namespace-bootstrap after", detail=tail_of(engine.log))
            status = rule_set_status(admin, "namespace-bootstrap")
            assert condition(status, "Degraded")["status"] == "False", status["status"]
            assert not exists(admin, "secret", "registry", "-n", second)
            # Neither probe fails for one rule set's missing role: no restarts, no
            # stalled rollout, the PodDisruptionBudget still counts the pod.
            assert engine.get("/healthz")[0] == 200
            assert engine.get("/readyz")[0] == 200, engine.get("/readyz")
        finally:
            run(admin, "delete", "namespace", second, "--wait=false")
        victim = get(admin, "configmap", "victim", "-n", first)
        assert "edict.dev/seen" not in (victim["metadata"].get("labels") or {})
    finally:
        run(admin, "delete", "clusterruleset", "namespace-secrets", "--ignore-not-found")
        run(admin, "delete", "namespace", first, "--wait=false")


@pytest.mark.cluster
def test_a_kind_the_engine_cannot_list_is_reported_on_the_status(
        installed: str, engine: Engine) -> None:
    """A rule that only matches ConfigMaps, which the engine may not even list: no
    object ever reaches it, so the refusal must come from the cache itself."""
    admin = installed
    run(admin, "apply", "-f", "-", stdin=FORBIDDEN_CONFIGMAP)
    try:
        def reported() -> dict[str, Any]:
            status = rule_set_status(admin, "configmap-labels")
            message = str(condition(status, "Degraded").get("message", ""))
            return status if "cannot list/watch v1 ConfigMap" in message else {}

        status = eventually(reported, timeout=SLOW, what="the refused ConfigMap list on the "
                            "status", detail=tail_of(engine.log))
        assert condition(status, "Degraded")["status"] == "True"
        assert "403" in condition(status, "Degraded")["message"]
        (rule,) = status["status"]["rules"]
        assert "cannot list/watch v1 ConfigMap" in rule["lastError"]
        assert SA in rule["lastError"], rule
        assert engine.get("/readyz")[0] == 200
    finally:
        run(admin, "delete", "clusterruleset", "configmap-labels", "--ignore-not-found")


@pytest.mark.cluster
def test_a_standby_replica_is_ready_and_does_not_reconcile(
        installed: str, engine: Engine, tmp_path: Path) -> None:
    """The Deployment's second replica: same identity and arguments, no Lease."""
    admin = installed
    standby = start_engine(service_account_kubeconfig(admin, tmp_path / "kubeconfig"),
                           tmp_path)
    try:
        eventually(lambda: standby.get("/readyz")[0] == 200, what="the standby ready",
                   detail=tail_of(standby.log))
        assert "edict_leader 0.0" in standby.get("/metrics")[1]
        assert "edict_leader 1.0" in engine.get("/metrics")[1]
    finally:
        assert standby.stop() == 0, standby.log.read_text()[-3000:]


TEAM_BOT_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: team-bot, namespace: NAMESPACE}
rules:
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-bot, namespace: NAMESPACE}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: team-bot}
subjects:
- {kind: ServiceAccount, name: team-bot, namespace: NAMESPACE}
"""


@pytest.mark.cluster
def test_a_service_account_rule_set_writes_only_through_its_own_rbac(
        installed: str, engine: Engine) -> None:
    """team-config as a RuleSet with serviceAccountName: refused until deploy/'s
    edict-impersonate is bound in its namespace, then refused as *that account* until
    the account may patch Deployments, then applied."""
    admin = installed
    namespace = f"deploy-team-{uuid.uuid4().hex[:6]}"
    rbac = str(ROOT / "rules/team-config/rbac.yaml")
    run(admin, "create", "namespace", namespace)
    try:
        run(admin, "apply", "-f", rbac)
        eventually(lambda: any("configmaps" in r.get("resources", [])
                               for r in manage_rules(admin)),
                   what="edict-manage to aggregate team-config's role")
        run(admin, "create", "serviceaccount", "team-bot", "-n", namespace)
        run(admin, "create", "configmap", "team-settings", "-n", namespace,
            "--from-literal=costCentre=cc-42")
        run(admin, "create", "deployment", "web", "-n", namespace, "--image=nginx")
        rule_set = copy.deepcopy(yaml.safe_load((ROOT / "rules/team-config/ruleset.yaml")
                                                .read_text()))
        rule_set["metadata"]["namespace"] = namespace
        rule_set["spec"]["serviceAccountName"] = "team-bot"
        run(admin, "apply", "-f", "-", stdin=yaml.safe_dump(rule_set))

        def refused(word: str) -> Callable[[], str]:
            def check() -> str:
                status = get(admin, "ruleset", "team-config", "-n", namespace)
                message = str(condition(status, "Degraded").get("message", ""))
                return message if word in message else ""
            return check

        def touch(value: str) -> None:
            """Re-queue the Deployment now instead of after the 60 s refusal delay."""
            run(admin, "annotate", "--overwrite", "deployment", "web", "-n", namespace,
                f"test/touch={value}")

        message = eventually(refused("impersonate"), timeout=SLOW,
                             what="impersonation refused", detail=tail_of(engine.log))
        assert SA in message, message  # the engine itself may not act as team-bot
        run(admin, "create", "rolebinding", "edict-impersonate", "-n", namespace,
            "--clusterrole=edict-impersonate", "--serviceaccount=edict-system:edict")
        touch("1")
        message = eventually(refused(f"system:serviceaccount:{namespace}:team-bot"),
                             timeout=90, what="the write refused as team-bot",
                             detail=tail_of(engine.log))
        assert "deployments" in message and "patch" in message, message
        run(admin, "apply", "-f", "-", stdin=TEAM_BOT_ROLE.replace("NAMESPACE", namespace))
        touch("2")
        eventually(lambda: get(admin, "deployment", "web", "-n", namespace)["metadata"]
                   .get("labels", {}).get("cost-centre") == "cc-42", timeout=90,
                   what="the Deployment labelled as team-bot", detail=tail_of(engine.log))
        eventually(lambda: condition(get(admin, "ruleset", "team-config", "-n", namespace),
                                     "Degraded").get("status") == "False",
                   what="the RuleSet healthy again", detail=tail_of(engine.log))
    finally:
        run(admin, "delete", "ruleset", "team-config", "-n", namespace, "--ignore-not-found")
        run(admin, "delete", "-f", rbac, "--ignore-not-found")
        run(admin, "delete", "namespace", namespace, "--wait=false")
