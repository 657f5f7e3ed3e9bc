"""`edict rbac`: the minimal ClusterRole for a set of rule sets, offline.

Table-driven over the ready-made rule sets (what each one needs, resource by resource),
plus the rules of the command itself: verbs per action, subresources, plurals from CRDs
among the inputs or guessed with a comment, naming, errors and exit codes. Runs the
command as a user does, `python -m engine.cli.main rbac ...`, from the repository root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
READ = ["get", "list", "watch"]
MUTATE = ["get", "list", "patch", "watch"]
GENERATE = ["create", "delete", "get", "list", "patch", "watch"]
LABEL = "edict.dev/aggregate-to-manage"


def rbac(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "rbac", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def role_of(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(docs) == 1, out.stdout
    role: dict[str, Any] = docs[0]
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["kind"] == "ClusterRole"
    return role


def grants(role: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(apiGroup, resource) -> verbs; every resource appears in one rule only (per
    resourceNames: `resource[name,...]`)."""
    out: dict[tuple[str, str], list[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "resourceNames", "verbs"}, rule
        named = f"[{','.join(rule['resourceNames'])}]" if "resourceNames" in rule else ""
        for group in rule["apiGroups"]:
            for resource in (r + named for r in rule["resources"]):
                assert (group, resource) not in out, (group, resource)
                out[(group, resource)] = rule["verbs"]
    return out


WORKLOADS = {("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
             ("apps", "replicasets"), ("batch", "jobs"), ("batch", "cronjobs")}
READY_MADE = {
    "image-policy": ("edict-rules-image-policy", {
        # validate rules only read; podTemplates reaches every workload kind
        ("", "pods"): READ, **dict.fromkeys(WORKLOADS, READ),
    }),
    "namespace-owner": ("edict-rules-namespace-owner", {
        ("", "namespaces"): MUTATE, ("", "configmaps"): GENERATE,
    }),
    "pod-security-defaults": ("edict-rules-pod-security-defaults", {
        ("", "pods"): MUTATE, **dict.fromkeys(WORKLOADS, MUTATE),
    }),
    "default-labels": ("edict-rules-default-labels", {
        ("apps", "deployments"): MUTATE, ("apps", "statefulsets"): MUTATE,
        ("apps", "daemonsets"): MUTATE,
    }),
    "namespace-bootstrap": ("edict-rules-namespace-bootstrap", {
        ("", "namespaces"): READ,
        ("", "resourcequotas"): GENERATE, ("", "limitranges"): GENERATE,
        ("networking.k8s.io", "networkpolicies"): GENERATE,
    }),
    "resource-defaults": ("edict-rules-resource-defaults", {
        ("apps", "deployments"): MUTATE, ("apps", "statefulsets"): MUTATE,
        ("apps", "daemonsets"): MUTATE,
    }),
    "team-config": ("edict-rules-team-a-team-config", {
        ("apps", "deployments"): MUTATE, ("", "configmaps"): READ,
    }),
    "webapp-operator": ("edict-rules-webapp-operator", {
        # the plural comes from crd.yaml beside the rule set; status writes its subresource
        ("example.edict.dev", "webapps"): READ,
        ("example.edict.dev", "webapps/status"): ["patch"],
        # generated, and looked up by the status rule
        ("apps", "deployments"): GENERATE, ("", "services"): GENERATE,
    }),
}


@pytest.mark.parametrize("folder", sorted(READY_MADE))
def test_each_ready_made_rule_set_gets_exactly_what_it_needs(folder: str) -> None:
    name, expected = READY_MADE[folder]
    out = rbac(f"rules/{folder}/")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    role = role_of(out)
    assert role["metadata"]["name"] == name
    assert role["metadata"]["labels"] == {LABEL: "true"}
    assert grants(role) == expected
    assert "GUESSED" not in out.stdout


@pytest.mark.parametrize("folder", sorted(READY_MADE))
def test_the_shipped_rbac_yaml_is_what_the_command_prints(folder: str) -> None:
    """rules/<name>/rbac.yaml is generated: regenerate it when the rule set changes,
    with `edict rbac rules/<name>/ > rules/<name>/rbac.yaml`."""
    out = rbac(f"rules/{folder}/")
    assert out.stdout == (ROOT / "rules" / folder / "rbac.yaml").read_text()


def test_the_shipped_roles_do_not_disturb_the_offline_commands() -> None:
    """The loaders only pick edict.dev/v1alpha1 RuleSet/ClusterRuleSet documents."""
    out = subprocess.run([sys.executable, "-m", "engine.cli.main", "lint", "rules/"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    gallery = 5  # the one-file operators (tests/cli/test_gallery.py)
    assert out.stdout.splitlines()[-1].startswith(f"{len(READY_MADE) + gallery} rule sets, ")


def test_several_rule_sets_make_one_role_with_the_union_of_their_needs() -> None:
    out = rbac("rules/")
    assert out.returncode == 0, out.stderr
    role = role_of(out)
    merged = grants(role)
    assert merged[("apps", "deployments")] == GENERATE  # mutate + generate + lookup
    assert merged[("apps", "daemonsets")] == MUTATE
    assert merged[("", "configmaps")] == GENERATE  # looked up, and namespace-owner's
    assert merged[("example.edict.dev", "webapps/status")] == ["patch"]
    name = role["metadata"]["name"]
    assert name.startswith("edict-rules-app-with-migrations-and-12-more-")
    assert rbac("rules/").stdout == out.stdout  # deterministic
    assert role_of(rbac("rules/", "--name", "edict-rules-all"))["metadata"]["name"] == (
        "edict-rules-all")


def test_never_wildcards_or_escalation_verbs() -> None:
    role = role_of(rbac("rules/"))
    for rule in role["rules"]:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
        assert not {"escalate", "bind", "impersonate", "update", "deletecollection"} & set(
            rule["verbs"])


RULE_SETS = """
apiVersion: edict.dev/v1alpha1
kind: ClusterRuleSet
metadata: {name: custom}
spec:
  rules:
  - name: tag-widgets
    match: {resources: [{apiVersion: example.com/v1, kinds: [Widget, Policy, Box]}]}
    mutate: {template: {metadata: {labels: {tagged: "yes"}}}}
  - name: octopus-status
    match: {resources: [{apiVersion: sea.example.com/v1, kinds: [Octopus]}]}
    status: {template: {arms: 8}}
  - name: octopus-secret
    match: {resources: [{apiVersion: sea.example.com/v1, kinds: [Octopus]}]}
    context:
      ink: {apiVersion: v1, kind: Secret, name: ink}
    generate:
      template:
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: "{{ object.metadata.name }}"}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
        subjects: []
"""

OCTOPUS_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: octopi.sea.example.com}
spec:
  group: sea.example.com
  scope: Namespaced
  names: {kind: Octopus, plural: octopi, singular: octopus, listKind: OctopusList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def test_plurals_come_from_crds_among_the_inputs_else_a_commented_guess(
        tmp_path: Path) -> None:
    (tmp_path / "ruleset.yaml").write_text(RULE_SETS)
    (tmp_path / "crd.yaml").write_text(OCTOPUS_CRD)
    out = rbac(str(tmp_path))
    assert out.returncode == 0, out.stderr
    role = role_of(out)
    assert grants(role) == {
        ("example.com", "widgets"): MUTATE,
        ("example.com", "policies"): MUTATE,
        ("example.com", "boxes"): MUTATE,
        ("sea.example.com", "octopi"): READ,
        ("sea.example.com", "octopi/status"): ["patch"],
        ("", "secrets"): READ,
        ("rbac.authorization.k8s.io", "rolebindings"): GENERATE,
    }
    guessed = [line for line in out.stdout.splitlines() if "GUESSED" in line]
    assert len(guessed) == 3 and all("kubectl api-resources" in g for g in guessed)
    assert "escalate" in out.stdout  # a note: generating RBAC needs more than this
    # without the CRD the octopus plural is a guess too
    alone = rbac(str(tmp_path / "ruleset.yaml"))
    assert ("sea.example.com", "octopuses") in grants(role_of(alone))


def test_a_rule_set_with_a_service_account_says_what_to_bind(tmp_path: Path) -> None:
    source = yaml.safe_load((ROOT / "rules/team-config/ruleset.yaml").read_text())
    source["spec"]["serviceAccountName"] = "team-bot"
    (tmp_path / "ruleset.yaml").write_text(yaml.safe_dump(source))
    out = rbac(str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "edict-impersonate" in out.stdout and "team-a/team-bot" in out.stdout
    assert grants(role_of(out)) == READY_MADE["team-config"][1]


@pytest.mark.parametrize(("content", "code", "message"), [
    (None, 2, "no such file"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", 2, "no RuleSet or ClusterRuleSet"),
    ("apiVersion: edict.dev/v1alpha1\nkind: ClusterRuleSet\nmetadata: {name: x}\n"
     "spec: {rules: []}\n", 1, "spec.rules"),
    ("apiVersion: edict.dev/v1alpha1\nkind: ClusterRuleSet\nmetadata: {name: dyn}\nspec:\n"
     "  rules:\n  - name: dyn\n    match: {resources: [{apiVersion: v1, kinds: [Namespace]}]}\n"
     "    generate: {template: {apiVersion: v1, kind: \"{{ 'Secret' }}\", "
     "metadata: {name: x}}}\n", 1, "literal apiVersion and kind"),
])
def test_errors_and_exit_codes(tmp_path: Path, content: str | None, code: int,
                               message: str) -> None:
    path = tmp_path / "input.yaml"
    if content is not None:
        path.write_text(content)
    out = rbac(str(path))
    assert out.returncode == code, out.stdout + out.stderr
    assert message in out.stderr


def test_help_lists_the_command() -> None:
    top = subprocess.run([sys.executable, "-m", "engine.cli.main", "--help"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    assert "edict rbac rules/namespace-bootstrap/" in top.stdout
    own = rbac("--help")
    assert own.returncode == 0 and "aggregate-to-manage" in own.stdout
