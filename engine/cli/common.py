"""What the offline commands share: loading rule sets and manifests, exit codes, messages.

Exit codes (documented in the README): 0 all good; 1 the run worked but found problems
(rule errors, conflicts, oscillations, failed tests, lint findings); 2 the input could not
be used (missing file, invalid YAML, bad arguments).

Whatever the input, a command ends with messages of one line each, never a traceback:
`one_line_errors` wraps `apply`, `test` and `lint`, and turns anything that escapes
(which would be a bug of Edict's, found by some input) into a `UsageError` saying so.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EdictError, InputError
from engine.evaluate import validation
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.limits import DEFAULT_LIMITS, Limits, parse_limits
from engine.rules.api import crds_of
from engine.rules.documents import Document, parse_value, read_documents, read_text
from engine.rules.load import load_documents
from engine.rules.model import RuleSet
from engine.rules.names import name_problem, object_name_problem
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


LIMITS_HELP = ("a YAML file of limits on CEL and templates (sections cel: and templates:; "
               "docs/security.md); default: the built-in limits")


def add_limits_argument(parser: argparse.ArgumentParser) -> None:
    """``--limits FILE``, for every command that compiles or evaluates rules."""
    parser.add_argument("--limits", metavar="FILE", help=LIMITS_HELP)


def read_limits(path: str | None) -> Limits:
    """The `Limits` of ``--limits FILE`` (the defaults without one); a `UsageError`
    naming the file and the key when it cannot be used."""
    if path is None:
        return DEFAULT_LIMITS
    try:
        return parse_limits(parse_value(read_text(Path(path)), source=path), source=path)
    except InputError as exc:
        raise UsageError(str(exc)) from None


def engine_of(rule_sets: Sequence[RuleSet], limits: Limits) -> Engine:
    """The engine of an offline command: its rule sets compiled under `limits`."""
    return Engine(rule_sets, settings=Settings(limits=limits))


def read_objects(paths: Sequence[str]) -> list[dict[str, Any]]:
    try:
        docs = read_documents(paths)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    objects = []
    for doc in docs:
        problem = object_problem(doc.value)
        if problem:
            raise UsageError(f"{doc.source}: {problem}")
        objects.append(doc.value)
    return objects


def object_problem(value: Any) -> str | None:
    """Why `value` is not a Kubernetes object the API server would take (None if it is):
    apiVersion and kind, a valid name and namespace, labels and annotations of strings."""
    if not isinstance(value, dict):
        return "not a Kubernetes object (a mapping with apiVersion, kind and metadata)"
    api_version, kind = value.get("apiVersion"), value.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or (
            not kind):
        return "not a Kubernetes object (needs apiVersion and kind, as strings)"
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        return f"{kind} needs metadata (a mapping with a name)"
    name = metadata.get("name")
    if name is None or name == "":
        return f"{kind} needs metadata.name"
    problem = object_name_problem(api_version, kind, name)
    if problem:
        return f"{kind} metadata.name {name!r} {problem}"
    shown = f"{kind} {name}"
    namespace = metadata.get("namespace")
    if namespace is not None and namespace != "":
        problem = name_problem(namespace, label=True)
        if problem:
            return f"{shown}: metadata.namespace {namespace!r} {problem}"
    for part in ("labels", "annotations"):
        entries = metadata.get(part)
        if entries is not None and not (isinstance(entries, dict) and all(
                isinstance(v, str) for v in entries.values())):
            return f"{shown}: metadata.{part} must map strings to strings"
    for part in ("uid", "resourceVersion", "generateName"):
        if metadata.get(part) is not None and not isinstance(metadata[part], str):
            return f"{shown}: metadata.{part} must be a string"
    return None


def error(message: str) -> None:
    print(f"edict: {message}", file=sys.stderr)


def one_line_errors(main: Callable[[argparse.Namespace], int]
                    ) -> Callable[[argparse.Namespace], int]:
    """`main`, with every unexpected exception turned into a one-line `UsageError`."""

    @functools.wraps(main)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return main(args)
        except (UsageError, EdictError, KeyboardInterrupt, BrokenPipeError):
            raise  # the command line reports these itself
        except RecursionError:
            raise UsageError("the input nests too deeply to be processed") from None
        except MemoryError:
            raise UsageError("out of memory while processing the input") from None
        except Exception as exc:  # a bug: say so in one line, with what went wrong
            text = " ".join(str(exc).split())[:300]
            raise UsageError(f"internal error ({type(exc).__name__}: {text}); please report "
                             "it with the input that caused it") from None

    return guarded
