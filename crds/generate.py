"""Write the RuleSet and ClusterRuleSet CRDs from one description of the rule-set schema.

The two kinds share every field but scope and a few cross-field checks, so the schema is
written once here and the YAML files beside this script are its output (committed: the API
server, kustomize and the offline validator all read those files). Run
`python crds/generate.py` after editing; a unit test fails when the files are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
GROUP = "edict.dev"
VERSION = "v1alpha1"
MAX_EXPRESSION = 5000
MAX_RULES = 200

ANY: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
# A map of anything: typed, so CEL validations can test for it with has().
ANY_MAP: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# Words CEL reserves: no `variables.<name>` could read a variable named so.
CEL_RESERVED = ("as", "break", "const", "continue", "else", "false", "for", "function", "if",
                "import", "in", "let", "loop", "namespace", "null", "package", "return",
                "true", "var", "void", "while")
STRING_LIST = {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 253}}


def _label_selector(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-map-type": "atomic",
        "properties": {
            "matchLabels": {
                "type": "object",
                "additionalProperties": {"type": "string", "maxLength": 63},
            },
            "matchExpressions": {
                "type": "array",
                "maxItems": 50,
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string", "maxLength": 317},
                        "operator": {
                            "type": "string",
                            "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                        },
                        "values": STRING_LIST,
                    },
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.operator in ['In', 'NotIn'] ? "
                            "(has(self.values) && size(self.values) > 0) : "
                            "(!has(self.values) || size(self.values) == 0)",
                            "message": "In and NotIn need values; Exists and DoesNotExist "
                            "take none",
                        }
                    ],
                },
            },
        },
    }


def _expression(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION,
            "description": description}


def _match(cluster: bool) -> dict[str, Any]:
    resources = {
        "type": "array",
        "minItems": 1,
        "maxItems": 20,
        "description": "Kinds the rule is about: an apiVersion and kinds of that version "
        "(no apiVersion: the kinds of the rule set's own spec.api).",
        "items": {
            "type": "object",
            "required": ["kinds"],
            "properties": {
                "apiVersion": {"type": "string", "minLength": 1, "maxLength": 253},
                "kinds": {
                    "type": "array", "minItems": 1, "maxItems": 50,
                    "items": {"type": "string", "minLength": 1, "maxLength": 63},
                },
            },
        },
    }
    exclude: dict[str, Any] = {
        "type": "object",
        "description": "Objects the rule is never about, even when they match.",
        "properties": {
            "namespaces": STRING_LIST,
            "names": STRING_LIST,
            "selector": _label_selector("Labels of objects to leave alone."),
            "namespaceSelector": _label_selector("Labels of namespaces to leave alone."),
        },
    }
    match: dict[str, Any] = {
        "type": "object",
        "required": ["resources"],
        "description": "Which objects (triggers) the rule is about.",
        "properties": {
            "resources": resources,
            "namespaces": {**STRING_LIST, "description": "Namespace globs (ClusterRuleSet)."},
            "namespaceSelector": _label_selector("Labels the trigger's Namespace must have."),
            "names": {**STRING_LIST, "description": "Name globs."},
            "selector": _label_selector("Labels the trigger must have."),
            "exclude": exclude,
            "podTemplates": {
                "type": "boolean", "default": False,
                "description": "A rule for v1 Pods also runs on the pod templates of "
                "Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, "
                "seen as Pods.",
            },
        },
        "x-kubernetes-validations": [
            {"rule": "!has(self.podTemplates) || !self.podTemplates || "
                     "self.resources.exists(r, r.apiVersion == 'v1' && 'Pod' in r.kinds)",
             "message": "podTemplates reaches the pod templates of workloads: the rule must "
                        "match v1 Pod"},
        ],
    }
    if not cluster:
        message = ("a RuleSet only ever matches objects in its own namespace: "
                   "namespaces and namespaceSelector are for ClusterRuleSet")
        match["x-kubernetes-validations"].append(
            {"rule": "!has(self.namespaces) && !has(self.namespaceSelector)",
             "message": message})
        exclude["x-kubernetes-validations"] = [
            {"rule": "!has(self.namespaces) && !has(self.namespaceSelector)",
             "message": message},
        ]
    return match


def _patch_operation() -> dict[str, Any]:
    """One RFC 6902 operation: typed, so a misspelt `path` or `op` is refused, not kept."""
    return {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"type": "string",
                   "enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"type": "string", "maxLength": 1000},
            "from": {"type": "string", "maxLength": 1000},
            "value": {**ANY, "description": "The value to add, replace or test (templated)."},
        },
    }


def _rule(cluster: bool) -> dict[str, Any]:
    for_each = _expression("CEL giving a list; the template renders once per item, as `item`.")
    return {
        "type": "object",
        # a ClusterRuleSet's rule without match is about the kind of its spec.api
        "required": ["name"] if cluster else ["name", "match"],
        "properties": {
            "name": {
                "type": "string", "minLength": 1, "maxLength": 63,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                "description": "Unique within the rule set (a DNS label).",
            },
            "match": _match(cluster),
            "context": {
                "type": "object",
                "maxProperties": 20,
                "description": "Named lookups of single objects; null when absent.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "name"],
                    "properties": {
                        "apiVersion": {"type": "string", "minLength": 1, "maxLength": 253},
                        "kind": {"type": "string", "minLength": 1, "maxLength": 63},
                        "namespace": {"type": "string", "maxLength": 1000},
                        "name": {"type": "string", "minLength": 1, "maxLength": 1000},
                    },
                },
            },
            "condition": _expression("CEL; the rule applies when it is true."),
            "mutate": {
                "type": "object",
                "description": "Patch the trigger: a partial object merged onto it, or RFC 6902 "
                "operations.",
                "properties": {
                    "template": {**ANY_MAP, "description": "A partial object merged onto "
                                 "the trigger."},
                    "jsonPatch": {"type": "array", "maxItems": 100, "items": _patch_operation()},
                    "forEach": for_each,
                },
                "x-kubernetes-validations": [
                    {"rule": "has(self.template) != has(self.jsonPatch)",
                     "message": "mutate needs exactly one of template and jsonPatch"},
                ],
            },
            "variables": _variables(),
            "generate": {
                "type": "object",
                "description": "Own other objects: the template renders one object or a "
                "list; with clone, the child is a copy of a source object.",
                "properties": {
                    "template": {**ANY, "description": "One object, or a list of objects; "
                                 "with clone, a partial object merged over the copy."},
                    "clone": _clone(),
                    "forEach": for_each,
                    "synchronize": {
                        "type": "boolean", "default": True,
                        "description": "Keep children at desired state and prune them when "
                        "they are no longer wanted.",
                    },
                    **_readiness(),
                },
                # a template, a clone, or both (`template` is untyped, so no CEL rule can
                # test for it: a structural anyOf can)
                "anyOf": [{"required": ["template"]}, {"required": ["clone"]}],
            },
            "status": {
                "type": "object",
                "required": ["template"],
                "description": "Write a partial status to the trigger's status subresource.",
                "properties": {"template": ANY_MAP},
            },
            "validate": {
                "type": "object",
                "required": ["expression"],
                "description": "What must hold: Enforce denies at admission, Audit warns; in "
                "the background violations are counted on the rule set.",
                "properties": {
                    "expression": _expression("CEL giving a bool: true when the object is "
                                              "as it must be."),
                    "message": {"type": "string", "minLength": 1, "maxLength": 1024,
                                "description": "What is wrong, when the expression is false."},
                    "messageExpression": _expression("CEL giving the message as a string."),
                },
                "x-kubernetes-validations": [
                    {"rule": "!(has(self.message) && has(self.messageExpression))",
                     "message": "validate takes message or messageExpression, not both"},
                ],
            },
            "admission": {
                "type": "boolean", "default": True,
                "description": "Mutate and validate rules also run in Edict's admission "
                "webhooks (when the engine serves them); false: only in the background.",
            },
        },
        "x-kubernetes-validations": [
            {"rule": "[has(self.mutate), has(self.generate), has(self.status), "
                     "has(self.validate)].filter(x, x).size() == 1",
             "message": "a rule needs exactly one action: mutate, generate, status or "
                        "validate"},
            {"rule": "!has(self.match) || !has(self.match.podTemplates) || "
                     "!self.match.podTemplates || has(self.mutate) || has(self.validate)",
             "message": "podTemplates is for mutate and validate rules"},
        ],
    }


def _variables() -> dict[str, Any]:
    """`variables`: named CEL expressions of a rule, as ValidatingAdmissionPolicy's."""
    return {
        "type": "array",
        "maxItems": 50,
        "description": "Named CEL expressions, computed once per evaluation in order (a "
        "later one may read an earlier one), read as variables.<name> by the condition, "
        "templates, forEach, validations and readyWhen.",
        "items": {
            "type": "object",
            "required": ["name", "expression"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 63,
                         "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                         "description": "A CEL identifier, unique within the rule."},
                "expression": _expression("CEL giving the variable's value."),
            },
            "x-kubernetes-validations": [
                {"rule": f"!(self.name in {list(CEL_RESERVED)})",
                 "message": "a variable's name cannot be a reserved word of CEL"},
            ],
        },
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }


def _clone() -> dict[str, Any]:
    """`generate.clone`: the object the child copies (its namespace and name templated)."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "name"],
        "description": "The source object: the child is a copy of it (all but metadata; "
        "labels and annotations included), kept in step when it changes.",
        "properties": {
            "apiVersion": {"type": "string", "minLength": 1, "maxLength": 253},
            "kind": {"type": "string", "minLength": 1, "maxLength": 63},
            "namespace": {"type": "string", "maxLength": 1000,
                          "description": "Default: the trigger's namespace."},
            "name": {"type": "string", "minLength": 1, "maxLength": 1000},
        },
    }


def _readiness() -> dict[str, Any]:
    """`generate.readyWhen` and `generate.after`: children that wait for each other."""
    return {
        "readyWhen": _expression("CEL over `child` (the child as the cluster has it): when "
                                 "it is ready. Without it, a child is ready once it exists."),
        "after": {"type": "array", "maxItems": 20,
                  "items": {"type": "string", "minLength": 1, "maxLength": 63},
                  "x-kubernetes-list-type": "set",
                  "description": "Generate rules of this rule set whose children must be "
                  "ready before this rule creates its own."},
    }


def _api() -> dict[str, Any]:
    """`spec.api` (ClusterRuleSet): the API the operator introduces, in the short schema
    language of engine/rules/api.py (which checks the rest)."""
    column = {"type": "object", "required": ["name", "jsonPath"],
              "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 63},
                             "jsonPath": {"type": "string", "minLength": 1, "maxLength": 500},
                             "type": {"type": "string", "enum": ["string", "integer",
                                                                 "number", "boolean", "date"]},
                             "format": {"type": "string", "maxLength": 63},
                             "description": {"type": "string", "maxLength": 1000},
                             "priority": {"type": "integer", "format": "int32"}}}
    fields = {**ANY_MAP, "description": "field: \"type | markers\", or a map of fields "
              "for a nested object (engine/rules/api.py)."}
    return {
        "type": "object",
        "required": ["group", "kind"],
        "description": "The API this rule set introduces: Edict installs its "
        "CustomResourceDefinition and keeps it up to date.",
        "properties": {
            "group": {"type": "string", "minLength": 1, "maxLength": 253},
            "kind": {"type": "string", "minLength": 1, "maxLength": 63},
            "version": {"type": "string", "minLength": 1, "maxLength": 63},
            "scope": {"type": "string", "enum": ["Namespaced", "Cluster"]},
            "plural": {"type": "string", "minLength": 1, "maxLength": 63},
            "shortNames": {**STRING_LIST, "maxItems": 10},
            "categories": {**STRING_LIST, "maxItems": 10},
            "spec": fields,
            "status": fields,
            "printerColumns": {"type": "array", "maxItems": 20, "items": column},
            "onDelete": {"type": "string", "enum": ["WhenEmpty", "Keep", "Delete"],
                         "description": "When the rule set (or its api) goes: delete the "
                         "CRD once no object of the kind is left (WhenEmpty, the default), "
                         "never (Keep), or at once, with every object (Delete)."},
        },
    }


def _status() -> dict[str, Any]:
    condition = {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": {"type": "string", "maxLength": 316},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": {"type": "string", "maxLength": 1024},
            "message": {"type": "string", "maxLength": 32768},
        },
    }
    rule_status = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "enabled": {"type": "boolean"},
            "matched": {"type": "integer", "format": "int64"},
            "applied": {"type": "integer", "format": "int64"},
            "errors": {"type": "integer", "format": "int64"},
            "wouldApply": {"type": "integer", "format": "int64"},
            "violations": {"type": "integer", "format": "int64",
                           "description": "Objects that violate the rule now (validate)."},
            "violating": {"type": "array", "maxItems": 10,
                          "items": {"type": "string", "maxLength": 512},
                          "description": "A few of those objects."},
            "lastError": {"type": "string", "maxLength": 4096},
            "lastErrorTime": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64"},
            "ruleCount": {"type": "integer"},
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "rules": {
                "type": "array",
                "items": rule_status,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        },
    }


def _spec(cluster: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "mode": {
            "type": "string", "enum": ["Enforce", "Audit", "Suspended"], "default": "Enforce",
            "description": "Enforce writes; Audit evaluates and reports; Suspended does nothing.",
        },
        "priority": {
            "type": "integer", "format": "int32", "default": 100,
            "minimum": -1000000, "maximum": 1000000,
            "description": "Order across rule sets: ascending, ties by name; later wins.",
        },
        "params": {**ANY, "type": "object",
                   "description": "Free data for conditions and templates."},
        "admission": {
            "type": "object",
            "description": "How the rule set takes part in Edict's admission webhooks.",
            "properties": {
                "failurePolicy": {
                    "type": "string", "enum": ["Ignore", "Fail"], "default": "Ignore",
                    "description": "When Edict cannot answer, or one of these rules fails "
                    "at admission: Ignore admits the request, Fail refuses it.",
                },
            },
        },
        "rules": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_RULES,
            "items": _rule(cluster),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    }
    if cluster:
        properties["api"] = _api()
    if not cluster:
        properties["serviceAccountName"] = {
            "type": "string", "maxLength": 253,
            "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
            "description": "Writes are made as this ServiceAccount of the rule set's namespace.",
        }
    return {"type": "object", "required": ["rules"], "properties": properties}


def crd(kind: str, *, cluster: bool) -> dict[str, Any]:
    plural = kind.lower() + "s"
    names = {"kind": kind, "listKind": kind + "List", "plural": plural,
             "singular": kind.lower(), "categories": ["edict"],
             # `rs` is ReplicaSet's: Edict's short names carry an `e`.
             "shortNames": ["ecrs"] if cluster else ["ers"]}
    columns = [
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"},
        {"name": "Rules", "type": "integer", "jsonPath": ".status.ruleCount"},
        {"name": "Ready", "type": "string",
         "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster" if cluster else "Namespaced",
            "names": names,
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": f"{kind}: an ordered list of Edict rules"
                    + ("." if cluster else ", confined to its own namespace."),
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": _spec(cluster),
                        "status": _status(),
                    },
                }},
            }],
        },
    }


def render(kind: str, *, cluster: bool) -> str:
    header = "# Generated by crds/generate.py from one schema description; edit that, not this.\n"
    return header + yaml.safe_dump(crd(kind, cluster=cluster), sort_keys=False, width=100)


FILES = {"edict.dev_rulesets.yaml": ("RuleSet", False),
         "edict.dev_clusterrulesets.yaml": ("ClusterRuleSet", True)}


def main() -> int:
    for filename, (kind, cluster) in FILES.items():
        (HERE / filename).write_text(render(kind, cluster=cluster))
    return 0


if __name__ == "__main__":
    sys.exit(main())
