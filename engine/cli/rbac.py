"""`edict rbac`: print the minimal ClusterRole that a set of rule sets needs.

Offline (no cluster, no `engine.kube`): reads rule sets the way `edict apply` does and
works out, kind by kind, what the engine must be allowed to do for them —

* a kind a rule matches: get/list/watch (the engine watches it), plus patch for
  `mutate`, plus patch on its `status` subresource for `status`;
* a kind a rule looks up (`context`): get/list/watch;
* a kind a rule generates: get/list/watch/create/patch/delete (children are created,
  kept at desired state and pruned);
* the CRD of a ClusterRuleSet's `spec.api`: create, and patch/delete of that CRD by name
  (the engine installs, updates and retires it; reading CRDs is in its own role).

The role is labelled `edict.dev/aggregate-to-manage: "true"`, so once applied the
cluster aggregates it into `edict-manage`, which `deploy/` binds to the engine. REST
resource names come from a table of well-known kinds, then from CRDs found among the
input files (`spec.names.plural`); anything else is a guess and says so in a comment.
Called by `engine.cli.main`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, error, load_rule_sets
from engine.errors import CompileError, Where
from engine.evaluate import clone
from engine.evaluate.compile import generated_kinds
from engine.objects import GVK
from engine.rules.api import crd_of, crds_of
from engine.rules.documents import Document
from engine.rules.model import CLONE_ALIAS, Generate, Mutate, RuleSet, StatusAction

AGGREGATE_LABEL = "edict.dev/aggregate-to-manage"
CRD = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
READ = ("get", "list", "watch")
WRITE_CHILDREN = ("create", "patch", "delete")
MAX_REASONS = 3

# Plurals of the kinds every cluster has (and Edict's own), by API group.
WELL_KNOWN: dict[str, dict[str, str]] = {
    "": {"ConfigMap": "configmaps", "Endpoints": "endpoints", "Event": "events",
         "LimitRange": "limitranges", "Namespace": "namespaces", "Node": "nodes",
         "PersistentVolume": "persistentvolumes",
         "PersistentVolumeClaim": "persistentvolumeclaims", "Pod": "pods",
         "PodTemplate": "podtemplates", "ReplicationController": "replicationcontrollers",
         "ResourceQuota": "resourcequotas", "Secret": "secrets", "Service": "services",
         "ServiceAccount": "serviceaccounts"},
    "admissionregistration.k8s.io": {
        "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
        "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
        "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
        "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings"},
    "apiextensions.k8s.io": {"CustomResourceDefinition": "customresourcedefinitions"},
    "apiregistration.k8s.io": {"APIService": "apiservices"},
    "apps": {"ControllerRevision": "controllerrevisions", "DaemonSet": "daemonsets",
             "Deployment": "deployments", "ReplicaSet": "replicasets",
             "StatefulSet": "statefulsets"},
    "autoscaling": {"HorizontalPodAutoscaler": "horizontalpodautoscalers"},
    "batch": {"CronJob": "cronjobs", "Job": "jobs"},
    "certificates.k8s.io": {"CertificateSigningRequest": "certificatesigningrequests"},
    "coordination.k8s.io": {"Lease": "leases"},
    "discovery.k8s.io": {"EndpointSlice": "endpointslices"},
    "edict.dev": {"RuleSet": "rulesets", "ClusterRuleSet": "clusterrulesets"},
    "events.k8s.io": {"Event": "events"},
    "networking.k8s.io": {"Ingress": "ingresses", "IngressClass": "ingressclasses",
                          "NetworkPolicy": "networkpolicies"},
    "node.k8s.io": {"RuntimeClass": "runtimeclasses"},
    "policy": {"PodDisruptionBudget": "poddisruptionbudgets"},
    "rbac.authorization.k8s.io": {"ClusterRole": "clusterroles",
                                  "ClusterRoleBinding": "clusterrolebindings",
                                  "Role": "roles", "RoleBinding": "rolebindings"},
    "scheduling.k8s.io": {"PriorityClass": "priorityclasses"},
    "storage.k8s.io": {"CSIDriver": "csidrivers", "CSINode": "csinodes",
                       "StorageClass": "storageclasses",
                       "VolumeAttachment": "volumeattachments"},
}


DESCRIPTION = """\
Print the minimal ClusterRole the engine needs for a set of rule sets, kind by kind:

  a kind a rule matches: get, list, watch (the engine watches it), plus patch for
  mutate, plus patch on its status subresource for status;
  a kind a rule looks up (context): get, list, watch;
  a kind a rule generates: get, list, watch, create, patch, delete.

The role is labelled edict.dev/aggregate-to-manage: "true", so the cluster aggregates it
into the edict-manage role the engine is bound to. Resource names come from the
well-known kinds and from CRDs among the input files; a guess says so in a comment.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "rbac", help="print the ClusterRole a set of rule sets needs",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict rbac rules/namespace-bootstrap/ | kubectl apply -f -")
    parser.add_argument("rules", nargs="+", metavar="RULES",
                        help="rule-set files or directories (CRDs among them name plurals)")
    parser.add_argument("--name", help="the ClusterRole's name (default: edict-rules-<rule "
                        "set>, from the rule sets' names)")


@dataclass
class Need:
    """What the engine must be allowed on one resource, and which rules need it."""

    verbs: set[str] = field(default_factory=set)
    # action -> rule set -> rule names, in the order they were met
    reasons: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, verbs: Iterable[str], action: str, rule_set: str, rule: str) -> None:
        self.verbs.update(verbs)
        rules = self.reasons.setdefault(action, {}).setdefault(rule_set, [])
        if rule not in rules:
            rules.append(rule)


@dataclass(frozen=True, order=True)
class Resource:
    group: str
    name: str  # plural, or plural/subresource
    names: tuple[str, ...] = ()  # resourceNames: only these objects


@dataclass(frozen=True)
class Plurals:
    """Kind -> REST resource name: well-known kinds, then CRDs among the inputs."""

    known: dict[tuple[str, str], str]

    @classmethod
    def from_documents(cls, docs: Iterable[Document]) -> Plurals:
        known = {(group, kind): plural for group, kinds in WELL_KNOWN.items()
                 for kind, plural in kinds.items()}
        for doc in docs:
            value = doc.value
            if not (isinstance(value, dict) and value.get("kind") == "CustomResourceDefinition"
                    and str(value.get("apiVersion", "")).startswith("apiextensions.k8s.io/")):
                continue
            spec = value.get("spec") or {}
            names = spec.get("names") or {}
            if spec.get("group") and names.get("kind") and names.get("plural"):
                known[(str(spec["group"]), str(names["kind"]))] = str(names["plural"])
        return cls(known)

    def plural(self, gvk: GVK) -> tuple[str, bool]:
        """(resource name, whether it is a guess)."""
        found = self.known.get((gvk.group, gvk.kind))
        return (found, False) if found else (guess_plural(gvk.kind), True)


def guess_plural(kind: str) -> str:
    """English-ish plural of a lower-cased kind (better than Kubernetes' own guess,
    which turns Gateway into gatewaies); only used when nothing better is known."""
    word = kind.lower()
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


@dataclass
class Role:
    needs: dict[Resource, Need] = field(default_factory=dict)
    guesses: dict[Resource, str] = field(default_factory=dict)  # resource -> kind
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, gvk: GVK, plurals: Plurals, verbs: Iterable[str], *, action: str,
            rule_set: str, rule: str, subresource: str = "") -> None:
        plural, guessed = plurals.plural(gvk)
        resource = Resource(gvk.group, plural + (f"/{subresource}" if subresource else ""))
        if guessed:
            self.guesses[resource] = gvk.kind
        self.needs.setdefault(resource, Need()).add(verbs, action, rule_set, rule)


def needs_of(rule_sets: Sequence[RuleSet], plurals: Plurals) -> Role:
    role = Role()
    for rule_set in rule_sets:
        label = rule_set.ref.name if not rule_set.ref.namespaced else (
            f"{rule_set.ref.namespace}/{rule_set.ref.name}")
        if rule_set.service_account_name:
            role.notes.append(
                f"RuleSet {label} writes as ServiceAccount {rule_set.ref.namespace}/"
                f"{rule_set.service_account_name}: bind ClusterRole edict-impersonate to the "
                f"engine in namespace {rule_set.ref.namespace} (docs/deploy.md), and grant "
                "that account the writes below there.")
        crd = crd_of(rule_set)
        if crd is not None:  # spec.api: the engine installs, updates, retires its CRD
            role.add(CRD, plurals, ("create",), action="api", rule_set=label, rule="spec.api")
            named = Resource(CRD.group, "customresourcedefinitions",
                             (str(crd["metadata"]["name"]),))
            role.needs.setdefault(named, Need()).add(("patch", "delete"), "api", label,
                                                     "spec.api")
        for rule in rule_set.rules:
            action = rule.action
            by = {"rule_set": label, "rule": rule.name}
            for gvk in rule.match.trigger_kinds:
                if isinstance(action, Mutate):
                    role.add(gvk, plurals, (*READ, "patch"), action="mutate", **by)
                else:
                    role.add(gvk, plurals, READ, action="match", **by)
                if isinstance(action, StatusAction):
                    role.add(gvk, plurals, ("patch",), action="status", **by,
                             subresource="status")
            for lookup in rule.lookups:  # context, and the source of generate.clone
                role.add(lookup.gvk, plurals, READ, **by,
                         action="clone" if lookup.alias == CLONE_ALIAS else "lookup")
            if isinstance(action, Generate):
                try:
                    at = Where(rule_set=label, rule=rule.name)
                    kinds = (generated_kinds(action.template, where=at) if action.clone is None
                             else clone.generated_kinds(action, where=at))
                except CompileError as exc:
                    role.errors.append(str(exc))
                    continue
                for gvk in kinds:
                    role.add(gvk, plurals, (*READ, *WRITE_CHILDREN), action="generate",
                             **by)
                    if gvk.group == "rbac.authorization.k8s.io":
                        role.notes.append(
                            f"{label}/{rule.name} generates {gvk.kind}: granting more "
                            "than the engine holds itself also needs `escalate`/`bind`, "
                            "deliberately not added here.")
    return role


def default_name(rule_sets: Sequence[RuleSet]) -> str:
    names = sorted({f"{r.ref.namespace}-{r.ref.name}" if r.ref.namespaced else r.ref.name
                    for r in rule_sets})
    if len(names) == 1:
        return f"edict-rules-{names[0]}"
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:6]
    return f"edict-rules-{names[0]}-and-{len(names) - 1}-more-{digest}"


def quoted(value: str) -> str:
    return value if re.fullmatch(r"[a-z0-9][a-z0-9.\-/]*", value) else json.dumps(value)


def flow(values: Iterable[str]) -> str:
    return "[" + ", ".join(quoted(v) for v in values) + "]"


def why(need: Need) -> str:
    """`mutate by default-labels (owner, part-of); lookup by ...` for a comment."""
    parts = []
    for action, by_set in need.reasons.items():
        for rule_set, rules in by_set.items():
            shown = ", ".join(rules[:MAX_REASONS])
            more = f" and {len(rules) - MAX_REASONS} more" if len(rules) > MAX_REASONS else ""
            parts.append(f"{action} by {rule_set} ({shown}{more})")
    return "; ".join(parts)


def render(role: Role, *, name: str, rule_sets: Sequence[RuleSet], command: str) -> str:
    refs = sorted(r.ref for r in rule_sets)
    described = [f"# What the engine needs for {refs[0]}."] if len(refs) == 1 else [
        "# What the engine needs for these rule sets:", *(f"#   {ref}" for ref in refs)]
    lines = [*described,
             f"# Generated by `{command}`; the label aggregates it into edict-manage.",
             *(f"# NOTE: {note}" for note in role.notes),
             "apiVersion: rbac.authorization.k8s.io/v1", "kind: ClusterRole", "metadata:",
             f"  name: {quoted(name)}", "  labels:", f'    {AGGREGATE_LABEL}: "true"']
    # One rule per (group, verbs): resources that need the same verbs share it.
    grouped: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Resource]] = {}
    for resource in sorted(role.needs):
        verbs = tuple(sorted(role.needs[resource].verbs))
        grouped.setdefault((resource.group, verbs, resource.names), []).append(resource)
    if not grouped:
        lines.append("rules: []")
    else:
        lines.append("rules:")
    for (group, verbs, names), resources in grouped.items():
        for resource in resources:
            lines.append(f"# {resource.name}: {why(role.needs[resource])}")
            if resource in role.guesses:
                lines.append(f"#   GUESSED plural of {role.guesses[resource]}: not a "
                             "well-known kind and no CRD among the inputs; check "
                             "`kubectl api-resources`")
        lines.append(f"- apiGroups: {flow([group])}")
        lines.append(f"  resources: {flow(r.name for r in resources)}")
        if names:
            lines.append(f"  resourceNames: {flow(names)}")
        lines.append(f"  verbs: {flow(verbs)}")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    loaded = load_rule_sets(args.rules)
    for exc in loaded.errors:
        error(str(exc))
    if not loaded.rule_sets:
        if loaded.errors:
            return EXIT_PROBLEMS
        raise UsageError(f"no RuleSet or ClusterRuleSet in {' '.join(args.rules)}")
    api_crds = [Document(crd, "spec.api") for crd in crds_of(loaded.rule_sets)]
    role = needs_of(loaded.rule_sets, Plurals.from_documents([*loaded.others, *api_crds]))
    for message in role.errors:
        error(message)
    command = "edict rbac " + " ".join(args.rules) + (f" --name {args.name}" if args.name
                                                       else "")
    sys.stdout.write(render(role, name=args.name or default_name(loaded.rule_sets),
                            rule_sets=loaded.rule_sets, command=command))
    return EXIT_PROBLEMS if loaded.errors or role.errors else EXIT_OK
