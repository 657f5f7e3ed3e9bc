"""A step compiled whole concludes what its rules one by one in the step conclude.

`engine.evaluate.compiled.Whole` runs a step of writer rules for the first time in an
evaluation as one piece: the conditions in a row (one answer per distinct condition of
a rule set), the writes of those that hold into one set of copies (a template of
constants written without the writer's set-up into a map the step made), runs and
outcomes made once per rule list, one change-log entry. On random rule lists in one or
two rule sets (templates of constants and templated ones, the same key written with
other values and types, a map the Deployment schema calls atomic, a delete, a templated
map that makes the writer decline; conditions quick, slow, false, failing, not a bool,
reading the rule set's params) against random Deployments (labels missing, a scalar,
holding the written values or other types), the engine with it and without it
(`Settings(whole=False)`) gives the same result — desired object with its types, patch,
outcomes with messages, conflicts in order, children — and, call for call, the same
change-log writes, the same answers to every skip test and the same conflict records:
what later passes see is the same. Also what every rule run in every pass concludes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import whole as compiled
from engine.evaluate.changes import ChangeLog
from engine.evaluate.engine import Engine, Settings
from engine.evaluate.run import Pass
from engine.evaluate.world import ManifestWorld
from engine.rules.load import parse_rule_set
from tests.support import assert_concludes_alike, drawn_mutate_rules, same

MATCH = {"resources": [{"apiVersion": "apps/v1", "kinds": ["Deployment"]}]}
TEMPLATES: list[dict[str, Any]] = [
    {"metadata": {"labels": {"a": "1"}}},
    {"metadata": {"labels": {"b": "2"}}},
    {"metadata": {"labels": {"a": "2"}}},  # the first's path, another value
    {"metadata": {"labels": {"a": 1}}},  # an int where a string may be
    {"metadata": {"labels": {"c": True, "d": "x"}, "annotations": {"e": "y"}}},
    {"metadata": {"annotations": {"f": "1"}}},
    {"metadata": {"labels": {"g": "{{ object.metadata.name }}"}}},  # templated
    {"metadata": {"labels": {"h": "{{ object.spec }}"}}},  # a map: the writer declines
    {"metadata": {"labels": None}},  # a delete: merged generically
    {"spec": {"selector": {"matchLabels": {"i": "1"}}}},  # atomic: the writer declines
    {"spec": {"paused": True}},
    {"spec": {"replicas": 3}},  # what quick conditions read
    {"metadata": {"labels": {"j": "{{ object.metadata.labels.a | default('none') }}"}}},
    {"metadata": {"labels": {"k": "v", "l": "w"}}},
]
CONDITIONS: list[str | None] = [
    None,
    "true",
    "false",
    "object.spec.replicas > 1",
    "object.spec.replicas > 2",
    "has(object.metadata.labels) && 'a' in object.metadata.labels",  # not quick
    "object.metadata.name.startsWith('x')",
    "object.metadata.name",  # not a bool: the rule errors
    "object.spec.missing == 'x'",  # no such key: data not there
    "object.spec.replicas",  # not a bool either, reading only spec
    "params.n == 1",  # the same source, another answer in each rule set
]
LABELS = st.dictionaries(st.sampled_from(["a", "b", "c", "k"]),
                         st.sampled_from(["1", "2", 1, True, "v"]), max_size=3)


def _rule_sets(drawn: list[tuple[int, int]], cut: int) -> list[Any]:
    rules = drawn_mutate_rules(drawn, MATCH, TEMPLATES, CONDITIONS)
    parts = [rules[:cut], rules[cut:]] if 0 < cut < len(rules) else [rules]
    return [parse_rule_set({"apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
                            "metadata": {"name": f"set-{n}"},
                            "spec": {"priority": n, "params": {"n": n}, "rules": part}})
            for n, part in enumerate(parts)]


@contextmanager
def _calls() -> Iterator[list[tuple[Any, ...]]]:
    """Every change-log write (what it marks), skip test (with its answer) and conflict
    record made while inside, in order (see `_by_kind`)."""
    seen: list[tuple[Any, ...]] = []
    wrote, changed_since, record = ChangeLog.wrote, ChangeLog.changed_since, Pass.record

    def spy_wrote(log: ChangeLog, paths: Any, created: Any = ()) -> None:
        paths, created = frozenset(paths), tuple(created)
        seen.append(("wrote", log.seq, paths, created))
        wrote(log, paths, created)

    def spy_changed(log: ChangeLog, seq: int, paths: Any, *, above: Any = None) -> bool:
        paths = tuple(paths)
        answer = changed_since(log, seq, paths, above=above)
        seen.append(("changed", seq, frozenset(paths), answer))
        return answer

    def spy_record(p: Pass, rule: Any, assignments: Any) -> None:
        assignments = tuple(assignments)
        seen.append(("record", rule.rule.name, assignments, id(rule) in p.alone))
        record(p, rule, assignments)

    with mock.patch.object(ChangeLog, "wrote", spy_wrote), \
            mock.patch.object(ChangeLog, "changed_since", spy_changed), \
            mock.patch.object(Pass, "record", spy_record):
        yield seen


def _by_kind(calls: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """The calls of each kind in order: writes, skip tests and records each keep their
    order, not their order among the others' (the three touch different state)."""
    out: dict[str, list[tuple[Any, ...]]] = {"wrote": [], "changed": [], "record": []}
    for call in calls:
        out[call[0]].append(call)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(range(len(TEMPLATES))),
                          st.sampled_from(range(len(CONDITIONS)))), min_size=1, max_size=9),
       st.integers(0, 9),
       st.one_of(st.none(), LABELS, st.just("scalar")),
       st.integers(0, 3), st.booleans())
def test_a_step_compiled_whole_concludes_what_its_rules_in_the_step_conclude(
        drawn: list[tuple[int, int]], cut: int, labels: Any, replicas: int,
        regions: bool) -> None:
    rule_sets = _rule_sets(drawn, cut)
    metadata: dict[str, Any] = {"name": "x-app", "namespace": "n", "resourceVersion": "1"}
    if labels is not None:
        metadata["labels"] = labels
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}}}}
    given_obj = copy.deepcopy(obj)
    world = ManifestWorld([obj])
    with _calls() as whole_calls:
        whole = Engine(rule_sets, settings=Settings(regions=regions)).evaluate(
            obj, world=world)
    with _calls() as step_calls:
        step = Engine(rule_sets, settings=Settings(regions=regions, whole=False)).evaluate(
            obj, world=world)
    assert obj == given_obj
    assert same(whole.desired, step.desired)
    assert whole.patch == step.patch
    assert whole.outcomes == step.outcomes
    assert whole.conflicts == step.conflicts
    assert whole.oscillating == step.oscillating
    assert whole.children == step.children
    assert _by_kind(whole_calls) == _by_kind(step_calls)
    every = Engine(rule_sets, settings=Settings(batch=False, skip_unchanged=False)
                   ).evaluate(obj, world=world)
    assert_concludes_alike(whole, every)


def _whole_runs() -> tuple[list[bool], Any]:
    """A spy on `Whole.run`: whether each call ran the step (not declined)."""
    answers: list[bool] = []
    run = compiled.Whole.run

    def spy(self: compiled.Whole, *args: Any) -> Any:
        done = run(self, *args)
        answers.append(done is not None)
        return done

    return answers, mock.patch.object(compiled.Whole, "run", spy)


def test_label_rules_run_whole_once_per_evaluation() -> None:
    """Twelve label rules over two rule sets (as in bench/corpus.py) run as one step
    compiled whole in the first pass; the confirming pass skips the step."""
    drawn = [(0, 3), (1, 4), (4, 0), (5, 3), (13, 1), (10, 4)]
    rule_sets = _rule_sets(drawn, 3)
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "n", "labels": {"b": "2"}},
           "spec": {"replicas": 2}}
    answers, spy = _whole_runs()
    with spy:
        result = Engine(rule_sets).evaluate(obj, world=ManifestWorld([obj]))
    assert answers == [True]
    assert [(o.rule, o.status.value) for o in result.outcomes] == [
        ("r0", "applied"), ("r1", "skipped"), ("r2", "applied"), ("r3", "applied"),
        ("r4", "applied"), ("r5", "skipped")]
    assert result.desired["metadata"] == {
        "name": "x", "namespace": "n",
        "labels": {"b": "2", "a": "1", "c": True, "d": "x", "k": "v", "l": "w"},
        "annotations": {"e": "y", "f": "1"}}


def test_a_step_whose_rule_errors_declines_to_the_rules_one_by_one() -> None:
    rule_sets = _rule_sets([(0, 0), (1, 9)], 0)
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "n"}, "spec": {"replicas": 2}}
    answers, spy = _whole_runs()
    with spy:
        result = Engine(rule_sets).evaluate(obj, world=ManifestWorld([obj]))
    assert answers == [False]
    assert [(o.rule, o.status.value) for o in result.outcomes] == [
        ("r0", "applied"), ("r1", "error")]


def test_one_condition_in_two_rule_sets_is_asked_in_each() -> None:
    """Members share a condition's answer only within their rule set: the same source
    reads other params in another."""
    condition = CONDITIONS.index("params.n == 1")
    rule_sets = _rule_sets([(0, condition), (1, condition), (5, condition)], 1)
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "n"}, "spec": {"replicas": 2}}
    answers, spy = _whole_runs()
    with spy:
        result = Engine(rule_sets).evaluate(obj, world=ManifestWorld([obj]))
    assert answers == [True]
    assert [(o.rule, o.status.value) for o in result.outcomes] == [
        ("r0", "skipped"), ("r1", "applied"), ("r2", "applied")]
