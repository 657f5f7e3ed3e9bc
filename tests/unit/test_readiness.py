"""Children that wait for each other (`engine.evaluate.readiness`): `after` holds back
creates until what a rule comes after is ready (`readyWhen` over `child`), never takes
away a child that exists, and the trigger's status says how far along each rule is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.evaluate.engine import Engine, Settings
from engine.evaluate.outcomes import Status
from engine.evaluate.simulate import Simulation, simulate
from engine.objects import GVK, ObjectKey
from engine.rules.api import crds_of
from engine.rules.load import parse_rule_set
from engine.schemas.catalogue import builtin

APP = GVK("example.edict.dev", "v1alpha1", "App")
STATEFULSET = GVK("apps", "v1", "StatefulSet")
JOB = GVK("batch", "v1", "Job")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def child(kind: str, api_version: str, suffix: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "{{ object.metadata.name }}-" + suffix}, "spec": spec}


def generate(name: str, template: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "match": {"resources": [{"kinds": ["App"]}]},
            "generate": {"template": template, **extra}}


RULES = [
    generate("database", child("StatefulSet", "apps/v1", "db", replicas=1),
             readyWhen="child.?status.?readyReplicas.orValue(0) >= 1"),
    generate("migrate-schema", child("Job", "batch/v1", "migrate", backoffLimit=1),
             readyWhen="child.?status.?succeeded.orValue(0) >= 1", after=["database"]),
    generate("web", child("Deployment", "apps/v1", "web", replicas=2),
             after=["migrate-schema"]),
]


def rule_set(rules: list[dict[str, Any]] | None = None) -> Any:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "apps"},
        "spec": {"api": {"group": "example.edict.dev", "kind": "App",
                         "spec": {"image": "string | default=web"}},
                 "rules": RULES if rules is None else rules}})


APP_OBJECT = {"apiVersion": "example.edict.dev/v1alpha1", "kind": "App",
              "metadata": {"name": "shop", "namespace": "prod", "uid": "u1", "generation": 3},
              "spec": {"image": "web:1"}}


class Cascade:
    """The engine over a world, with a controller's say on the children's status."""

    def __init__(self, rules: list[dict[str, Any]] | None = None,
                 now: datetime = T0) -> None:
        loaded = rule_set(rules)
        self.engine = Engine([loaded], settings=Settings(now=lambda: now))
        self.schemas = builtin().with_crds(crds_of([loaded]))
        self.sim: Simulation = simulate(self.engine, [APP_OBJECT], schemas=self.schemas)

    def observe(self, gvk: GVK, name: str, status: dict[str, Any]) -> None:
        obj = self.sim.world.get(gvk, "prod", name)
        assert obj is not None, f"{gvk.kind} {name} does not exist"
        self.sim.world.put({**obj, "status": status})
        self.sim = simulate(self.engine, self.sim.world.objects(), schemas=self.schemas)

    def exists(self, gvk: GVK, name: str) -> bool:
        return self.sim.world.get(gvk, "prod", name) is not None

    def conditions(self) -> dict[str, dict[str, Any]]:
        app = self.sim.world.get(APP, "prod", "shop")
        assert app is not None
        return {c["type"]: c for c in app["status"]["conditions"]}

    def outcome(self, rule: str) -> Any:
        result = self.sim.results[ObjectKey(APP, "prod", "shop")]
        (found,) = [o for o in result.outcomes if o.rule == rule]
        return found


def test_each_step_of_the_cascade_waits_for_the_one_before() -> None:
    cascade = Cascade()
    assert cascade.exists(STATEFULSET, "shop-db")
    assert not cascade.exists(JOB, "shop-migrate")
    assert not cascade.exists(DEPLOYMENT, "shop-web")
    waiting = cascade.outcome("migrate-schema")
    assert waiting.status is Status.SKIPPED
    assert "waiting for rule 'database'" in waiting.message
    assert "held back: create Job prod/shop-migrate" in waiting.message
    conditions = cascade.conditions()
    assert conditions["Ready"]["status"] == "False"
    assert conditions["DatabaseReady"]["reason"] == "NotReady"
    assert conditions["MigrateSchemaReady"]["reason"] == "Waiting"
    assert conditions["WebReady"]["reason"] == "Waiting"

    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 1})
    assert cascade.exists(JOB, "shop-migrate")
    assert not cascade.exists(DEPLOYMENT, "shop-web")
    conditions = cascade.conditions()
    assert conditions["DatabaseReady"]["status"] == "True"
    assert conditions["MigrateSchemaReady"]["reason"] == "NotReady"
    assert "waiting for rule 'migrate-schema'" in conditions["WebReady"]["message"]

    cascade.observe(JOB, "shop-migrate", {"succeeded": 1})
    assert cascade.exists(DEPLOYMENT, "shop-web")
    conditions = cascade.conditions()
    assert {t: c["status"] for t, c in conditions.items()} == {
        "Ready": "True", "DatabaseReady": "True", "MigrateSchemaReady": "True",
        "WebReady": "True"}
    assert conditions["Ready"] == {
        "type": "Ready", "status": "True", "observedGeneration": 3,
        "lastTransitionTime": "2030-01-02T03:04:05Z", "reason": "AllReady",
        "message": "every child is ready"}


def test_a_child_that_exists_is_never_taken_away_when_what_it_follows_turns_unready(
        ) -> None:
    cascade = Cascade()
    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 1})
    cascade.observe(JOB, "shop-migrate", {"succeeded": 1})
    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 0})
    assert cascade.exists(JOB, "shop-migrate") and cascade.exists(DEPLOYMENT, "shop-web")
    conditions = cascade.conditions()
    assert conditions["Ready"]["status"] == "False"
    assert conditions["DatabaseReady"]["status"] == "False"
    assert conditions["WebReady"]["status"] == "True"
    assert "shop-db not ready" in conditions["Ready"]["message"]


def test_a_transition_time_changes_only_with_the_status() -> None:
    cascade = Cascade()
    first = cascade.conditions()["DatabaseReady"]
    later = datetime(2031, 1, 1, tzinfo=UTC)
    cascade.engine = Engine([rule_set()], settings=Settings(now=lambda: later))
    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 0})  # still not ready
    assert cascade.conditions()["DatabaseReady"] == first
    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 1})
    assert cascade.conditions()["DatabaseReady"]["lastTransitionTime"] == "2031-01-01T00:00:00Z"


def test_a_rule_that_wants_no_child_is_nothing_to_wait_for() -> None:
    rules = [{**RULES[0], "condition": "object.spec.image != 'web:1'"}, *RULES[1:]]
    cascade = Cascade(rules)
    assert not cascade.exists(STATEFULSET, "shop-db")
    assert cascade.exists(JOB, "shop-migrate")
    assert cascade.conditions()["DatabaseReady"]["reason"] == "NothingToCreate"


def test_converged_cascades_write_nothing_more() -> None:
    cascade = Cascade()
    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 1})
    cascade.observe(JOB, "shop-migrate", {"succeeded": 1})
    for obj in cascade.sim.world.objects():
        again = cascade.engine.evaluate(obj, world=cascade.sim.world)
        assert again.converged, (obj["kind"], again.patch, again.status_patch)


def test_a_ring_of_after_disables_every_rule_on_it_and_says_so() -> None:
    rules = [generate("a", child("ConfigMap", "v1", "a"), after=["b"]),
             generate("b", child("ConfigMap", "v1", "b"), after=["a"]),
             generate("c", child("ConfigMap", "v1", "c"), after=["nope", "c"])]
    compiled = Engine([rule_set(rules)]).rule_sets[0]
    errors = {r.rule.name: [e.message for e in r.errors] for r in compiled.rules}
    assert errors["a"] == ["after forms a ring, so none of its rules could ever create a "
                           "child: a → b → a"]
    assert errors["b"] == ["after forms a ring, so none of its rules could ever create a "
                           "child: b → a → b"]
    assert errors["c"] == ["'nope' is no generate rule of this rule set (its generate rules: "
                           "a, b)", "a rule cannot come after itself"]


def test_a_rule_after_a_disabled_rule_waits_and_the_conditions_say_why() -> None:
    rules = [generate("database", child("StatefulSet", "apps/v1", "db"),
                      readyWhen="child.status.readyReplicas >"),  # does not compile
             RULES[1]]
    cascade = Cascade(rules)
    assert not cascade.exists(JOB, "shop-migrate")
    conditions = cascade.conditions()
    assert conditions["DatabaseReady"]["reason"] == "Error"
    assert "disabled" in conditions["DatabaseReady"]["message"]
    assert "did not run" in conditions["MigrateSchemaReady"]["message"]


def test_no_conditions_where_the_kind_has_none_in_its_status() -> None:
    rules = [{"name": "copy", "match": {"resources": [{"apiVersion": "v1",
                                                       "kinds": ["ConfigMap"]}]},
              "generate": {"template": child("ConfigMap", "v1", "copy"),
                           "readyWhen": "true"}}]
    loaded = rule_set(rules)
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "c", "namespace": "prod", "uid": "u2"}, "data": {}}
    sim = simulate(Engine([loaded]), [config])
    final = sim.world.get(GVK("", "v1", "ConfigMap"), "prod", "c")
    assert final == config
    assert sim.world.get(GVK("", "v1", "ConfigMap"), "prod", "c-copy") is not None


def test_a_new_version_rolls_out_only_after_its_migration_succeeded() -> None:
    image = "{{ object.spec.image | replace(':', '-') }}"
    rules = [RULES[0],
             generate("migrate-schema", child("Job", "batch/v1", "migrate-" + image),
                      readyWhen="child.?status.?succeeded.orValue(0) >= 1",
                      after=["database"]),
             generate("web", child("Deployment", "apps/v1", "web",
                                   image="{{ object.spec.image }}"),
                      after=["migrate-schema"])]
    cascade = Cascade(rules)
    cascade.observe(STATEFULSET, "shop-db", {"readyReplicas": 1})
    cascade.observe(JOB, "shop-migrate-web-1", {"succeeded": 1})
    web = cascade.sim.world.get(DEPLOYMENT, "prod", "shop-web")
    assert web is not None and web["spec"]["image"] == "web:1"

    app = cascade.sim.world.get(APP, "prod", "shop")
    assert app is not None
    cascade.sim.world.put({**app, "spec": {"image": "web:2"}})
    cascade.sim = simulate(cascade.engine, cascade.sim.world.objects(),
                           schemas=cascade.schemas)
    assert cascade.exists(JOB, "shop-migrate-web-2")
    assert not cascade.exists(JOB, "shop-migrate-web-1")  # pruned: no longer wanted
    assert cascade.sim.world.get(DEPLOYMENT, "prod", "shop-web") == web  # held back
    assert "held back: patch Deployment prod/shop-web" in cascade.outcome("web").message

    cascade.observe(JOB, "shop-migrate-web-2", {"succeeded": 1})
    rolled = cascade.sim.world.get(DEPLOYMENT, "prod", "shop-web")
    assert rolled is not None and rolled["spec"]["image"] == "web:2"
