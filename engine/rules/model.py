"""The rule-set data model: what a RuleSet or ClusterRuleSet says, as frozen values.

`engine.rules.load` builds these from YAML that already passed the CRD schema; the
evaluator compiles them (`engine.evaluate.compile`). Templates and params stay the plain
JSON-like values they were in YAML; treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.objects import GVK

GROUP = "edict.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
RULE_SET = "RuleSet"
CLUSTER_RULE_SET = "ClusterRuleSet"
KINDS = (RULE_SET, CLUSTER_RULE_SET)

DEFAULT_MODE = "Enforce"
DEFAULT_PRIORITY = 100
DEFAULT_SYNCHRONIZE = True
DEFAULT_ADMISSION = True
DEFAULT_FAILURE_POLICY = "Ignore"

POD = GVK.of("v1", "Pod")  # the one instance (see `GVK.of`)
# Where each workload kind keeps the template of its Pods (`match.podTemplates`): a rule
# written for Pods also runs on these templates, seen as Pods (engine.evaluate.podtemplates).
POD_TEMPLATES: dict[GVK, tuple[str, ...]] = {
    GVK("apps", "v1", "Deployment"): ("spec", "template"),
    GVK("apps", "v1", "StatefulSet"): ("spec", "template"),
    GVK("apps", "v1", "DaemonSet"): ("spec", "template"),
    GVK("apps", "v1", "ReplicaSet"): ("spec", "template"),
    GVK("batch", "v1", "Job"): ("spec", "template"),
    GVK("batch", "v1", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


class Mode(StrEnum):
    ENFORCE = "Enforce"
    AUDIT = "Audit"
    SUSPENDED = "Suspended"


class ActionKind(StrEnum):
    MUTATE = "mutate"
    GENERATE = "generate"
    STATUS = "status"
    VALIDATE = "validate"


class FailurePolicy(StrEnum):
    """What the API server does when Edict's webhook cannot answer (or a rule fails at
    admission): `Ignore` admits the request, `Fail` refuses it."""

    IGNORE = "Ignore"
    FAIL = "Fail"


@dataclass(frozen=True)
class Requirement:
    """One `matchExpressions` entry of a label selector."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


@dataclass(frozen=True)
class Exclude:
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None


@dataclass(frozen=True)
class Match:
    """Which objects a rule is about. Empty filters match everything."""

    kinds: tuple[GVK, ...]
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    exclude: Exclude | None = None
    pod_templates: bool = False  # a Pod rule also runs on the pod templates of workloads

    @property
    def trigger_kinds(self) -> tuple[GVK, ...]:
        """The kinds whose objects the rule runs on: `kinds`, plus the workload kinds
        whose pod templates it reaches (`podTemplates`) that it does not name itself."""
        if not self.pod_templates or POD not in self.kinds:
            return self.kinds
        return self.kinds + tuple(k for k in POD_TEMPLATES if k not in self.kinds)

    def on_template(self, gvk: GVK) -> tuple[str, ...] | None:
        """Where in an object of `gvk` the rule runs: the path of its pod template, or
        None when the rule runs on the object itself."""
        if gvk in self.kinds or not self.pod_templates or POD not in self.kinds:
            return None
        return POD_TEMPLATES.get(gvk)


CLONE_ALIAS = "generate.clone"
"""The name under which a `generate.clone` source is looked up (`Rule.lookups`): not a CEL
identifier, so no `context.<name>` can reach it, and refused as a `context` name."""


@dataclass(frozen=True)
class Lookup:
    """A named `context` lookup: one object, by (templated) namespace and name."""

    alias: str
    gvk: GVK
    namespace: str | None  # template source; None: the trigger's namespace or cluster scope
    name: str  # template source

    @property
    def field(self) -> str:
        """Where the lookup is written in the rule: `context.<alias>` or `generate.clone`."""
        return self.alias if self.alias == CLONE_ALIAS else f"context.{self.alias}"


@dataclass(frozen=True)
class Variable:
    """A rule's named CEL expression (`variables`), read as `variables.<name>`."""

    name: str
    expression: str


@dataclass(frozen=True)
class Mutate:
    template: Any = None
    json_patch: Any = None
    for_each: str | None = None


@dataclass(frozen=True)
class Generate:
    template: Any  # None with `clone` and no template to merge over the copy
    for_each: str | None = None
    synchronize: bool = DEFAULT_SYNCHRONIZE
    ready_when: str | None = None  # CEL over `child`: when a child is ready
    after: tuple[str, ...] = ()  # generate rules whose children must be ready first
    clone: Lookup | None = None  # the source object copied into the child (CLONE_ALIAS)


@dataclass(frozen=True)
class StatusAction:
    template: Any


@dataclass(frozen=True)
class Validate:
    """What must hold of the trigger: a CEL expression giving a bool, and the message
    (text, or a CEL string expression) that says what is wrong when it is false."""

    expression: str
    message: str | None = None
    message_expression: str | None = None


Action = Mutate | Generate | StatusAction | Validate


@dataclass(frozen=True)
class Rule:
    name: str
    position: int
    match: Match
    action: Action
    condition: str | None = None
    context: tuple[Lookup, ...] = ()
    admission: bool = DEFAULT_ADMISSION  # mutate and validate rules run at admission too
    variables: tuple[Variable, ...] = ()  # named CEL expressions, in order

    @property
    def lookups(self) -> tuple[Lookup, ...]:
        """Every object the rule reads by name: its `context`, then its clone source."""
        clone = getattr(self.action, "clone", None)
        return self.context if clone is None else (*self.context, clone)

    @property
    def action_kind(self) -> ActionKind:
        if isinstance(self.action, Mutate):
            return ActionKind.MUTATE
        if isinstance(self.action, Generate):
            return ActionKind.GENERATE
        if isinstance(self.action, Validate):
            return ActionKind.VALIDATE
        return ActionKind.STATUS

    @property
    def at_admission(self) -> bool:
        """Whether the rule runs in Edict's admission webhooks: mutate and validate rules
        unless they opt out (`admission: false`); generate and status rules never."""
        return self.admission and isinstance(self.action, Mutate | Validate)


@dataclass(frozen=True, order=True)
class RuleSetRef:
    """Names a rule set: kind, namespace ("" for ClusterRuleSet) and name. Its hash is
    computed once (every outcome names one; the status board and the metrics key maps
    by it, per evaluation)."""

    kind: str
    namespace: str
    name: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.kind, self.namespace, self.name)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:  # a string's hash is per process: made anew
        return (RuleSetRef, (self.kind, self.namespace, self.name))

    @property
    def namespaced(self) -> bool:
        return self.kind == RULE_SET

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else (
            f"{self.kind} {self.name}")


@dataclass(frozen=True)
class RuleSet:
    ref: RuleSetRef
    rules: tuple[Rule, ...]
    mode: Mode = Mode.ENFORCE
    priority: int = DEFAULT_PRIORITY
    params: Any = field(default_factory=dict)
    service_account_name: str | None = None
    generation: int = 0
    uid: str = ""
    source: str | None = None  # the file it came from, offline
    api: Any = None  # `spec.api` (engine.rules.api): the kind the rule set introduces
    failure_policy: FailurePolicy = FailurePolicy.IGNORE  # spec.admission.failurePolicy

    @property
    def order_key(self) -> tuple[int, str, str]:
        """Rule sets run by ascending priority, ties by name (later wins)."""
        return (self.priority, self.ref.name, self.ref.namespace)
