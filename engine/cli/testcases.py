"""Rule-set test cases: the file format, and running one case to a verdict.

A test case is a YAML document (see docs/testing.md for the full format):

    apiVersion: edict.dev/v1alpha1
    kind: RuleTest
    metadata: {name: adds-owner-label}
    spec:
      ruleSets: [../rules.yaml]      # optional; default: the rule sets beside tests/
      objects: [...]                 # the "cluster": triggers, Namespaces, ConfigMaps...
      expect:
        objects: [...]               # inputs as they must end up (subset match)
        generated: [...]             # objects that must have been generated (subset match)
        absent: [...]                # objects that must not exist at the end
        outcomes:                    # per-rule outcome of the first evaluation of an object
        - {rule: owner-label, object: Deployment team-a/web, status: applied}
        errors: 0                    # rule errors expected (default 0)
        violations:                  # validate rules that do not hold at the end (default
        - {rule: pinned, object: Deployment team-a/web, message: pinned}  # none), or a count
        writes: 0                    # writes the run makes (see engine.cli.testruns)
      runTwice: true                 # run again on what the first run left
      observed: [...]                # children's state as controllers report it

`run_case` simulates the rules over the objects to a fixed point, checks that a second
evaluation of the result changes nothing (convergence), then compares expectations.

A test case reads only inside its rule-set folder (the folder above ``tests/``, or the
test file's own folder): ``ruleSets`` are relative paths that must resolve there, links
included, so a test cannot make ``edict test`` read ``/etc/shadow`` or ``/dev/zero``.
Test files are read like any input (`engine.rules.documents`); a malformed case is an
unusable input, reported in one line naming the file and document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError, engine_of, load_rule_sets, object_problem
from engine.cli.observed import observed_of, simulate_observed
from engine.cli.testruns import check_writes, run_twice
from engine.errors import InputError
from engine.evaluate.engine import Engine
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.evaluate.outcomes import ChildAction, Outcome
from engine.evaluate.simulate import Simulation
from engine.objects import GVK, ObjectKey, key_of
from engine.rules.documents import Document, files_under, parse_stream, read_text
from engine.rules.model import API_VERSION

KIND = "RuleTest"


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    rule_paths: tuple[str, ...]
    objects: tuple[dict[str, Any], ...]
    expect: dict[str, Any]
    run_twice: dict[str, list[dict[str, Any]]] | None = None  # see engine.cli.testruns
    observed: tuple[dict[str, Any], ...] = ()  # see engine.cli.observed


@dataclass
class Verdict:
    case: Case
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def discover(paths: list[str]) -> list[Case]:
    cases: list[Case] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"no such file or directory: {raw}")
        for file in files_under(path):
            if path.is_dir() and "tests" not in file.relative_to(path).parts and path.name != (
                "tests"
            ):
                continue
            try:
                docs = parse_stream(read_text(file), source=str(file))
            except InputError as exc:
                raise UsageError(str(exc)) from None
            for doc in docs:
                if _is_case(doc.value):
                    cases.append(_case(doc, file))
    return cases


def _is_case(value: Any) -> bool:
    return isinstance(value, dict) and value.get("apiVersion") == API_VERSION and (
        value.get("kind") == KIND)


def rule_set_root(file: Path) -> Path:
    """The folder a test case may read: the one above ``tests/``, else its own."""
    folder = file.resolve().parent
    return folder.parent if folder.name == "tests" else folder


def _case(doc: Document, file: Path) -> Case:
    value = doc.value
    spec = value.get("spec")
    metadata = value.get("metadata")
    raw_name = metadata.get("name") if isinstance(metadata, dict) else None
    name = raw_name if isinstance(raw_name, str) and raw_name else doc.source
    if not isinstance(spec, dict):
        raise UsageError(f"{doc.source}: test case {name!r} needs a spec")
    root = rule_set_root(file)
    rule_paths = spec.get("ruleSets")
    if rule_paths is None:  # every YAML file of the folder: regular files, inside it
        resolved = tuple(str(p) for p in sorted(root.glob("*.y*ml"))
                         if p.is_file() and p.resolve().is_relative_to(root))
    elif isinstance(rule_paths, list) and all(isinstance(p, str) and p for p in rule_paths):
        # a test may use its neighbours' rule sets (an operator built on another's
        # API), never anything outside the folder that holds the rule-set folders
        resolved = tuple(_confined(p, file, root.parent,
                                   f"{doc.source}: test case {name!r}")
                         for p in rule_paths)
    else:
        raise UsageError(f"{doc.source}: spec.ruleSets of {name!r} must be a list of paths")
    objects = spec.get("objects") or []
    if not isinstance(objects, list):
        raise UsageError(f"{doc.source}: spec.objects of {name!r} must be a list of objects")
    for index, obj in enumerate(objects):
        problem = object_problem(obj)
        if problem:
            raise UsageError(f"{doc.source}: spec.objects[{index}] of {name!r}: {problem}")
    expect = spec.get("expect") or {}
    problem = _expect_problem(expect)
    if problem:
        raise UsageError(f"{doc.source}: spec.expect of {name!r}: {problem}")
    return Case(name, doc.source, resolved, tuple(objects), expect,
                run_twice(spec.get("runTwice"), source=doc.source),
                observed_of(spec.get("observed"), source=doc.source))


def _confined(raw: str, file: Path, root: Path, what: str) -> str:
    """`raw`, relative to the test file, resolved (links too) inside `root`."""
    if Path(raw).is_absolute():
        raise UsageError(f"{what}: ruleSets path {raw!r} is absolute; give it relative to "
                         "the test file, inside its rule-set folder")
    resolved = (file.resolve().parent / raw).resolve()
    if not resolved.is_relative_to(root):
        raise UsageError(f"{what}: ruleSets path {raw!r} leads outside {root}, the folder "
                         "of the rule-set folders")
    return str(resolved)


def _expect_problem(expect: Any) -> str | None:
    if not isinstance(expect, dict):
        return "must be a mapping"
    for part in ("objects", "generated", "absent", "outcomes"):
        entries = expect.get(part)
        if entries is not None and not (isinstance(entries, list) and all(
                isinstance(e, dict) for e in entries)):
            return f"{part} must be a list of mappings"
    for part in ("objects", "generated", "absent"):
        for index, entry in enumerate(expect.get(part) or ()):
            if not isinstance(entry.get("kind"), str) or not isinstance(
                    entry.get("apiVersion"), str):
                return f"{part}[{index}] needs apiVersion and kind"
    for index, entry in enumerate(expect.get("outcomes") or ()):
        if not isinstance(entry.get("rule"), str) or not isinstance(entry.get("status"), str):
            return f"outcomes[{index}] needs a rule and a status"
    errors = expect.get("errors", 0)
    if not isinstance(errors, int) or isinstance(errors, bool) or errors < 0:
        return "errors must be a count"
    return None


def run_case(case: Case, *, limits: Limits = DEFAULT_LIMITS) -> Verdict:
    """Run one case with its rule sets compiled under `limits`."""
    verdict = Verdict(case)
    loaded = load_rule_sets(list(case.rule_paths))
    for exc in loaded.errors:
        verdict.failures.append(f"rule set does not load: {exc}")
    engine = engine_of(loaded.rule_sets, limits)
    sim = simulate_observed(engine, case.objects, case.run_twice, case.observed,
                            schemas=loaded.schemas)
    if not sim.converged:
        verdict.failures.append(f"no convergence after {sim.rounds} rounds")
    _check_idempotent(engine, sim, verdict)
    _check_objects(sim, case.expect.get("objects") or [], verdict, generated=False)
    _check_objects(sim, case.expect.get("generated") or [], verdict, generated=True)
    for spec in case.expect.get("absent") or []:
        key = _key(spec)
        if sim.final(key) is not None:
            verdict.failures.append(f"{key} exists, expected absent")
    _check_outcomes(sim, case.expect.get("outcomes") or [], verdict)
    check_writes(sim, case.expect, verdict.failures)
    _check_violations(sim, case.expect.get("violations") or 0, verdict)
    errors = sum(1 for _ in sim.problems) + len(sim.conflicts)
    if errors != int(case.expect.get("errors", 0)):
        details = "; ".join(f"{o.rule}: {o.message}" for _, o in sim.problems)
        details += "; ".join(c.describe() for _, c in sim.conflicts)
        verdict.failures.append(
            f"{errors} rule errors/conflicts, expected {case.expect.get('errors', 0)}"
            + (f" ({details})" if details else ""))
    return verdict


def _check_idempotent(engine: Engine, sim: Simulation, verdict: Verdict) -> None:
    """Evaluating the converged world again must change nothing."""
    for key in [*sim.inputs, *sim.generated]:
        obj = sim.final(key)
        if obj is None:
            continue
        again = engine.evaluate(obj, world=sim.world)
        pending = [c for c in again.children if c.action is not ChildAction.NONE]
        if again.patch or again.status_patch or pending:
            verdict.failures.append(
                f"not idempotent: a second evaluation of {key} still changes "
                f"{[op['path'] for op in again.patch + again.status_patch]}"
                f"{[f'{c.action.value} {c.key}' for c in pending]}")


def _key(spec: dict[str, Any]) -> ObjectKey:
    meta = spec.get("metadata") or {}
    return ObjectKey(GVK.of(str(spec.get("apiVersion", "")), str(spec.get("kind", ""))),
                     str(meta.get("namespace") or spec.get("namespace") or ""),
                     str(meta.get("name") or spec.get("name") or ""))


def _check_objects(sim: Simulation, expected: list[dict[str, Any]], verdict: Verdict, *,
                   generated: bool) -> None:
    for spec in expected:
        key = key_of(spec)
        actual = sim.final(key)
        if actual is None or (generated and key not in sim.generated):
            what = "generated" if generated else "present"
            verdict.failures.append(f"{key} was not {what}")
            continue
        for difference in subset_differences(spec, actual):
            verdict.failures.append(f"{key}: {difference}")


def subset_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` differs from `expected`.

    Maps need only the keys `expected` names (`null` means the key must be absent); lists
    must have the same length, item by item; scalars must be equal.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for k, v in expected.items():
            if v is None:  # `null` expects the key to be absent
                if actual.get(k) is not None:
                    out.append(f"{path}/{k}: expected absent, got {actual[k]!r}")
            elif k not in actual:
                out.append(f"{path}/{k}: missing, expected {v!r}")
            else:
                out.extend(subset_differences(v, actual[k], f"{path}/{k}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in subset_differences(e, a, f"{path}/{i}")]
    if (expected == actual and type(expected) is type(actual)) or (
        isinstance(expected, int | float) and not isinstance(expected, bool)
        and isinstance(actual, int | float) and not isinstance(actual, bool)
        and expected == actual
    ):
        return []
    return [f"{path or '/'}: expected {expected!r}, got {actual!r}"]


def _check_outcomes(sim: Simulation, expected: list[dict[str, Any]], verdict: Verdict) -> None:
    for spec in expected:
        rule, status = spec.get("rule"), spec.get("status")
        target = spec.get("object")
        found: list[Outcome] = []
        for key, outcomes in sim.outcomes.items():
            if target and str(key) != target:
                continue
            found.extend(o for o in outcomes if o.rule == rule and (
                not spec.get("ruleSet") or o.rule_set.name == spec["ruleSet"]))
        if not found:
            verdict.failures.append(f"rule {rule!r} has no outcome"
                                    + (f" for {target}" if target else ""))
            continue
        statuses = sorted({o.status.value for o in found})
        if statuses != [status]:
            messages = "; ".join(o.message for o in found if o.message)
            verdict.failures.append(
                f"rule {rule!r}{' on ' + target if target else ''}: outcome {statuses}, "
                f"expected {status!r}" + (f" ({messages})" if messages else ""))
        wanted = spec.get("message")
        if wanted and not any(wanted in o.message for o in found):
            verdict.failures.append(f"rule {rule!r}: no outcome message contains {wanted!r}")


def _check_violations(sim: Simulation, expected: Any, verdict: Verdict) -> None:
    """`violations`: a count, or one entry per violation (`rule`, and optionally
    `object`, `ruleSet` and a `message` substring), in any order."""
    found = sim.violations
    listed = "; ".join(f"{key} {o.rule!r}: {o.message}" for key, o in found) or "none"
    if not isinstance(expected, list):
        if len(found) != int(expected):
            verdict.failures.append(f"{len(found)} violations, expected {expected}: {listed}")
        return
    left = list(found)
    for spec in expected:
        hit = next((pair for pair in left if _is_violation(spec, *pair)), None)
        if hit is None:
            verdict.failures.append(f"no violation like {spec} (violations: {listed})")
        else:
            left.remove(hit)
    for key, outcome in left:
        verdict.failures.append(f"unexpected violation of rule {outcome.rule!r} on {key}: "
                                f"{outcome.message}")


def _is_violation(spec: Any, key: ObjectKey, outcome: Outcome) -> bool:
    return isinstance(spec, dict) and spec.get("rule") == outcome.rule and (
        not spec.get("object") or spec["object"] == str(key)) and (
        not spec.get("ruleSet") or spec["ruleSet"] == outcome.rule_set.name) and (
        str(spec.get("message") or "") in outcome.message)
