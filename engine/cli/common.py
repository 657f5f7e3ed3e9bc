"""What the offline commands share: loading rule sets and manifests, exit codes, messages.

Exit codes (documented in the README): 0 all good; 1 the run worked but found problems
(rule errors, conflicts, oscillations, failed tests, lint findings); 2 the input could not
be used (missing file, invalid YAML, bad arguments).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EdictError, InputError
from engine.evaluate import validation
from engine.rules.api import crds_of
from engine.rules.documents import Document, read_documents
from engine.rules.load import load_documents
from engine.rules.model import RuleSet
from engine.schemas.catalogue import Catalogue, builtin

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Input the command cannot use at all: reported in one line, exit code 2."""


@dataclass
class RuleSets:
    rule_sets: list[RuleSet] = field(default_factory=list)
    errors: list[EdictError] = field(default_factory=list)
    others: list[Document] = field(default_factory=list)

    @property
    def schemas(self) -> Catalogue:
        """The built-in kinds' schemas plus those of CRDs beside the rule sets (a
        `rules/webapp-operator/crd.yaml`) and of the rule sets' own `spec.api`; CRDs among
        the manifests add theirs later."""
        return builtin().with_crds([*(d.value for d in self.others if isinstance(d.value, dict)),
                                    *crds_of(self.rule_sets)])


def load_rule_sets(paths: Sequence[str]) -> RuleSets:
    try:
        docs = read_documents(paths)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    loaded = load_documents(docs, check_rule=validation.check_rule)
    return RuleSets(loaded.rule_sets, list(loaded.errors), loaded.others)


def read_objects(paths: Sequence[str]) -> list[dict[str, Any]]:
    try:
        docs = read_documents(paths)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    objects = []
    for doc in docs:
        value = doc.value
        if not isinstance(value, dict) or not value.get("kind") or not value.get("apiVersion"):
            raise UsageError(f"{doc.source}: not a Kubernetes object (needs apiVersion and kind)")
        if not isinstance(value.get("metadata"), dict) or not value["metadata"].get("name"):
            raise UsageError(f"{doc.source}: {value['kind']} needs metadata.name")
        objects.append(value)
    return objects


def error(message: str) -> None:
    print(f"edict: {message}", file=sys.stderr)
