"""Running one compiled rule on one trigger: lookups, condition, action, as a value.

`Engine` calls `run_rule` for mutate and status rules inside its fixed-point passes, and
`run_generate` (and `validate.run_validate`) once on the converged object. Every failure of a
rule becomes an outcome here (the one place that classifies them); the rule's changes are
then dropped as a whole, so no object is ever half-changed by a rule. A rule for Pods
with `podTemplates` runs on a workload's pod template seen as a Pod
(`engine.evaluate.podtemplates`); its writes land at the template's paths.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from engine.cel import SLOW, Bindings, bind
from engine.errors import (
    CelError,
    CelMissingData,
    ConfinementError,
    EdictError,
    MergeError,
    Where,
)
from engine.evaluate import children, clone, identity, makers, podtemplates
from engine.evaluate import variables as named
from engine.evaluate.compile import CompiledRule
from engine.evaluate.outcomes import ChildAction, ChildPlan, Outcome, RuleConflict, Status
from engine.evaluate.request import ADMISSION_ONLY, Request
from engine.evaluate.world import World
from engine.evaluate.writers import ItemsWritten
from engine.matching import namespace_for
from engine.objects import GVK, Obj, ObjectKey, gvk_of
from engine.patching import DELETE, Assignment, MergeSequence, apply_patch, json_equal, merge
from engine.patching.pointer import escape
from engine.patching.pointer import parse as parse_pointer
from engine.rules.model import POD, Generate, Mutate, StatusAction
from engine.schemas import Node


class Skip(Exception):
    """The rule does not apply to this trigger now (condition false, data not there)."""


class Pass:
    """State shared by the rules of one pass: who set which path, what was looked up.

    A plain slotted class (three are made per evaluation; a dataclass with factories
    costs twice as much to make)."""

    __slots__ = ("alone", "assigned", "bound", "changers", "conflicts", "gvk", "lookups",
                 "makers", "named_values", "ns_obj", "request", "schema", "seen", "views",
                 "world")

    def __init__(
            self, world: World, ns_obj: Obj | None, lookups: set[ObjectKey],
            bound: dict[tuple[Any, ...], tuple[dict[str, Any], Bindings]] | None = None, *,
            schema: Node | None = None, request: Request | None = None,
            gvk: GVK | None = None, makers: bool = True,
            alone: frozenset[int] = frozenset(),
            seen: dict[tuple[int, int, tuple[str, ...] | None], dict[str, Any]] | None = None
            ) -> None:
        self.world = world
        self.ns_obj = ns_obj
        self.lookups = lookups
        # CEL converts bound values once per binding: share bindings between the rules
        # that see the same object, rule set and lookups (kept alive with their values,
        # so ids stay unique). Shared by every pass of one evaluation.
        self.bound = {} if bound is None else bound
        self.assigned: dict[tuple[Any, ...], tuple[CompiledRule, Any]] = {}
        self.conflicts: list[RuleConflict] = []
        self.changers: set[int] = set()
        self.schema = schema  # the trigger kind's, for merging
        self.request = request  # at admission; None in the background
        self.gvk = gvk  # the trigger's kind (computed once per evaluation)
        # (id of an object, template path) -> (the object, its pod template seen as a Pod)
        self.views: dict[tuple[int, tuple[str, ...]], tuple[Obj, Obj]] = {}
        # rule variables computed in this pass (engine.evaluate.variables): once per
        # object
        self.named_values: dict[tuple[int, int], Any] = {}
        # generate templates of literal keys made into children (engine.evaluate.makers);
        # False renders every one (`Settings.writers`)
        self.makers = makers
        # ids of the rules whose writes can meet no other rule's (engine.evaluate.regions):
        # they can never conflict, so their assignments are not recorded
        self.alone = alone
        # the variables of rules without lookups or variables of their own, by rule set,
        # object and pod template (`variables`); shared by every pass of one evaluation,
        # each entry keeping its object alive, so that the ids stay theirs
        self.seen = {} if seen is None else seen

    def again(self, *, makers: bool | None = None, alone: frozenset[int] | None = None
              ) -> Pass:
        """The next pass of the same evaluation: what its passes share (the world, the
        bindings, the variables, the lookups, the trigger's kind and schema, the request)
        kept, this pass's own records new; `makers` and `alone` as given, else as here.
        Made without the constructor's keywords (passes are made per evaluation)."""
        p = Pass.__new__(Pass)
        p.world, p.ns_obj, p.lookups, p.bound = self.world, self.ns_obj, self.lookups, self.bound
        p.schema, p.request, p.gvk, p.seen = self.schema, self.request, self.gvk, self.seen
        p.makers = self.makers if makers is None else makers
        p.alone = self.alone if alone is None else alone
        p.assigned, p.conflicts, p.changers = {}, [], set()
        p.views, p.named_values = {}, {}
        return p

    def view(self, obj: Obj, path: tuple[str, ...]) -> Obj:
        """The pod template at `path` of `obj` as a Pod (one per object: rules that
        see the same template share bindings)."""
        hit = self.views.get((id(obj), path))
        if hit is None:
            hit = self.views[(id(obj), path)] = (obj, podtemplates.view(obj, path))
        return hit[1]

    def old_object(self, path: tuple[str, ...] | None) -> Obj | None:
        old = self.request.old_object if self.request is not None else None
        return old if old is None or path is None else podtemplates.view(old, path)

    def bindings(self, rule: CompiledRule, values: dict[str, Any]) -> Bindings:
        context = values["context"]
        key = (_object_key(rule, values["object"]), id(rule.rule_set),
               *((alias, id(value)) for alias, value in context.items()))
        if rule.variables:  # the rule's own: never shared with another rule's
            key = (*key, id(values[named.NAME]))
        hit = self.bound.get(key)
        if hit is None:
            hit = self.bound[key] = (values, bind(values))
        return hit[1]

    def changed(self, rule: CompiledRule) -> bool:
        return id(rule) in self.changers

    def record(self, rule: CompiledRule, assignments: Any) -> None:
        """Remember who set what; two rules setting one path differently conflict, and so
        does a rule setting beneath a path an earlier rule set to a scalar."""
        if id(rule) in self.alone:
            return
        for assignment in assignments:
            path, value = tuple(assignment.path), assignment.value
            earlier = self.assigned.get(path)
            if earlier is not None and not json_equal(earlier[1], value):
                self._conflict(rule, earlier[0], path)
            for cut in range(1, len(path)):
                above = self.assigned.get(path[:cut])
                if above is not None and not isinstance(above[1], dict) and (
                        above[1] is not DELETE):
                    self._conflict(rule, above[0], path)
            self.assigned[path] = (rule, value)

    def _conflict(self, rule: CompiledRule, earlier: CompiledRule, path: tuple[Any, ...]
                  ) -> None:
        if earlier is rule:
            return
        conflict = RuleConflict(path=format_pointer(path),
                            winner=(rule.rule_set.ref, rule.rule.name),
                            loser=(earlier.rule_set.ref, earlier.rule.name))
        if conflict not in self.conflicts:
            self.conflicts.append(conflict)


def _object_key(rule: CompiledRule, obj: Any) -> tuple[Any, ...]:
    """What of `obj` a rule's bindings depend on: the top-level fields it can read, by
    identity. A rule that applied gives a new object sharing what it did not touch, so
    the next rule reading only untouched fields (a label rule's `object.spec.replicas`
    after another set a label) reuses the converted values instead of converting anew."""
    reads = rule.reads
    if reads is None or () in reads or not isinstance(obj, dict):
        return ("", id(obj))
    return tuple((field, id(obj.get(field))) for field in sorted({path[0] for path in reads}))


class RuleRun:
    """What one run of a rule came to (a value: never changed once made; a plain class
    rather than a frozen dataclass, as one is made per rule per pass and a frozen
    dataclass costs several times as much to make)."""

    __slots__ = ("created", "kept", "message", "obj", "path_set", "paths", "status",
                 "written")

    def __init__(self, status: Status, message: str = "", obj: Obj | None = None,
                 paths: tuple[str, ...] = (), written: tuple[Any, ...] = (),
                 path_set: frozenset[tuple[Any, ...]] | None = None,
                 created: list[tuple[Any, ...]] | None = None, *,
                 of: CompiledRule | None = None) -> None:
        self.status = status
        self.message = message
        self.obj = obj  # the trigger after this rule, when it changed it
        self.paths = paths
        self.written = written  # the assignments its template makes (changed or not)
        # their paths as a set, when known beforehand (a writer's); None: from `written`
        self.path_set = path_set
        # the maps its write made above its paths (engine.evaluate.changes.created),
        # when it knows them; None: found from the object before it
        self.created = created
        # `of`: the one rule this run is made for, once, ahead of any trigger (a step
        # compiled whole, engine.evaluate.batch): its outcome made with it
        self.kept: tuple[CompiledRule, Outcome] | None = None
        if of is not None:
            self.kept = (of, Outcome(of.rule_set.ref, of.rule.name, status, message, paths))

    def __repr__(self) -> str:
        return f"RuleRun({self.status.name}, {self.message!r}, paths={self.paths!r})"

    def merged_with(self, earlier: RuleRun) -> RuleRun:
        """Outcome over several passes: an error or a change in any pass sticks.

        A rule whose condition turns false once it has applied (`owner` is empty → set
        owner) applied; the later pass that skips it only confirms the fixed point.
        """
        if (earlier.status is Status.ERROR and self.status is not Status.ERROR) or (
                earlier.status is Status.APPLIED
                and self.status in (Status.UNCHANGED, Status.SKIPPED)):
            return RuleRun(earlier.status, earlier.message, self.obj, earlier.paths,
                           earlier.written, earlier.path_set)
        return self

    def outcome(self, rule: CompiledRule) -> Outcome:
        """The rule's outcome: equal outcomes of one rule are one value, made once."""
        kept = self.kept
        if kept is not None and kept[0] is rule:
            return kept[1]
        key = (id(rule), self.status, self.message, self.paths)
        hit = _OUTCOMES.get(key)
        if hit is not None and hit[0] is rule:
            return hit[1]
        made = Outcome(rule.rule_set.ref, rule.rule.name, self.status, self.message,
                       self.paths)
        if len(_OUTCOMES) >= _OUTCOMES_KEPT:
            _OUTCOMES.clear()
        _OUTCOMES[key] = (rule, made)
        return made


# the run of a rule whose condition is false (one value: runs are never changed once made)
CONDITION_FALSE = "condition is false"
SKIPPED = RuleRun(Status.SKIPPED, CONDITION_FALSE)
# the run of a forEach rule whose list of items is empty
NO_ITEMS = RuleRun(Status.UNCHANGED, path_set=frozenset(), created=[])

# (id of a rule, status, message, paths) -> (the rule, its outcome): the rule is kept so
# that its id stays its own while the entry lives
_OUTCOMES: dict[tuple[Any, ...], tuple[CompiledRule, Outcome]] = {}
_OUTCOMES_KEPT = 4096


@functools.lru_cache(maxsize=8192)  # rules are immutable: one Where per rule and field
def where_of(rule: CompiledRule, field: str | None = None) -> Where:
    return Where(file=rule.rule_set.source, rule_set=rule.rule_set.ref.name,
                 rule=rule.rule.name, field=field)


def variables(rule: CompiledRule, obj: Obj, p: Pass, *,
              template: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The variables conditions and templates see, with `context` lookups resolved;
    `template`: the path of the pod template `obj` is a view of. Read-only: the same
    for every rule of a rule set without lookups or variables of its own, on one
    object, and then made once per evaluation (`Pass.seen`)."""
    rs = rule.rule_set
    alike = not rule.lookups and not rule.variables
    if alike:
        found = p.seen.get((id(rs), id(obj), template))
        if found is not None:
            return found
    base: dict[str, Any] = {
        "object": obj,
        "oldObject": p.old_object(template) if p.request is not None else None,
        "request": p.request.variable if p.request is not None else None,
        "params": rs.params,
        "namespaceObject": p.ns_obj,
        "ruleSet": rule.rule_set_variable,
        "item": None,
        "index": None,
    }
    context: dict[str, Any] = {}
    base["context"] = context
    for lookup in rule.lookups:
        gvk = lookup.lookup.gvk
        name = lookup.static_name
        if name is None:
            name = str(lookup.name.render(base))
        namespaced = p.world.namespaced(gvk)
        if lookup.static_namespace is not None:
            namespace = lookup.static_namespace
        elif lookup.namespace is not None:
            namespace = str(lookup.namespace.render(base))
        else:
            namespace = namespace_for(obj) if namespaced is not False else ""
        if namespaced is False:
            namespace = ""
        if rs.ref.namespaced and namespace != rs.ref.namespace:
            scope = f"namespace {namespace!r}" if namespace else "cluster scope"
            raise ConfinementError(
                f"{lookup.lookup.field} looks up {gvk.kind} {name} in {scope}; a "
                f"RuleSet only reads its own namespace {rs.ref.namespace!r}",
                where=where_of(rule, lookup.lookup.field))
        p.lookups.add(ObjectKey(gvk, namespace, name))
        context[lookup.lookup.alias] = p.world.get(gvk, namespace, name)
    if rule.variables:
        base[named.NAME] = named.evaluate(rule.variables, base, memo=p.named_values)
    elif alike:
        p.seen[(id(rs), id(obj), template)] = base
    return base


def check_condition(rule: CompiledRule, values: dict[str, Any], p: Pass) -> None:
    if not holds(rule, values, p):
        raise Skip(CONDITION_FALSE)


def holds(rule: CompiledRule, values: dict[str, Any], p: Pass) -> bool:
    """Whether the rule's condition holds (no condition: it does); raises `CelError` when
    it gives anything but a bool."""
    condition = rule.condition
    if condition is None:
        return True
    value = condition.quick(values)
    if value is SLOW:
        value = condition.evaluate(p.bindings(rule, values))
    if value is True or value is False:
        return value
    raise CelError(f"must give a bool, gave {type(value).__name__} {value!r}",
                   where=where_of(rule, "condition"))



def for_each_items(rule: CompiledRule, values: dict[str, Any], p: Pass
                   ) -> Iterator[tuple[int, Any]] | None:
    """The forEach items with their positions (computed once), or None without forEach.
    A rule with an item writer takes them from the quick filter when it can
    (`ItemWriter.quick_items`: its template reads only scalars of the items)."""
    if rule.for_each is None:
        return None
    quick = (rule.item_writer.quick_items(rule.for_each, values)
             if rule.item_writer is not None else None)
    if quick is not None:
        return enumerate(quick)
    return enumerate(_program_items(rule, values, p))


def _program_items(rule: CompiledRule, values: dict[str, Any], p: Pass) -> list[Any]:
    """The forEach items as the CEL program gives them."""
    assert rule.for_each is not None
    items = rule.for_each.evaluate(p.bindings(rule, values))
    if not isinstance(items, list):
        field = f"{rule.rule.action_kind.value}.forEach"
        raise CelError(f"must give a list, gave {type(items).__name__} {items!r}",
                       where=where_of(rule, field))
    return items


def renderings(rule: CompiledRule, values: dict[str, Any], p: Pass
               ) -> Iterator[dict[str, Any]]:
    """The variables of each rendering of a generate rule: once, or per forEach item."""
    items = for_each_items(rule, values, p)
    if items is None:
        yield values
        return
    for index, item in items:
        yield {**values, "item": item, "index": index}


def admission_only(rule: CompiledRule, p: Pass) -> bool:
    """A rule that reads `request` fails in the background because there is none:
    that is a skip, not an error (an expression guarded by `request != null` never
    gets here)."""
    return p.request is None and rule.reads_request


def run_rule(rule: CompiledRule, obj: Obj, p: Pass) -> RuleRun:
    """A mutate or status rule on the working object (or on its pod template)."""
    path = rule.rule.match.on_template(p.gvk or gvk_of(obj))
    target = obj if path is None else p.view(obj, path)
    schema = p.schema if path is None else p.world.schema(POD)
    writer = rule.writer
    try:
        values = variables(rule, target, p, template=path)
        if not holds(rule, values, p):
            return SKIPPED
        quick = writer.apply(target, values, schema) if writer is not None else None
        if quick is not None and path is None and writer is not None:
            # a writer copies only what it changes and knows the paths it writes (the
            # identity fields or not): its object is new exactly when it differs
            working, assignments = quick
            if working is obj:
                p.record(rule, assignments)
                return RuleRun(Status.UNCHANGED, written=tuple(assignments),
                               path_set=writer.path_set)
            if not (writer.keeps_identity and isinstance(obj.get("metadata"), dict)):
                identity.check_trigger_identity(obj, working, action=rule.rule.action,
                                                where=where_of(rule))
            p.record(rule, assignments)
            p.changers.add(id(rule))
            return RuleRun(Status.APPLIED, obj=working, paths=writer.pointers,
                           written=tuple(assignments), path_set=writer.path_set)
        if quick is not None:
            working, assignments = quick
        elif rule.item_writer is not None and rule.for_each is not None and path is None:
            item_writer, program = rule.item_writer, rule.for_each
            found = item_writer.quick_items_measured(program, values, token=p.bound)
            listed = found[0] if found is not None else _program_items(rule, values, p)
            if not listed:
                # no item: the writer and the merges alike leave the object as it is and
                # assign nothing (the confirming run of a rule whose items are all done)
                p.record(rule, ())
                return NO_ITEMS
            done = item_writer.write(obj, values, schema, listed)
            if done is not None:
                if found is not None:
                    item_writer.remember(program, found[1], done, token=p.bound)
                return _items_written(rule, obj, done, p)
            working, assignments = _render_onto(rule, target, values, p, schema,
                                                items=enumerate(listed))
        else:
            working, assignments = _render_onto(rule, target, values, p, schema)
        if path is not None:
            if working is not target:
                field = f"{rule.rule.action_kind.value}.template"
                working = podtemplates.put_back(obj, path, target, working,
                                                where=where_of(rule, field))
            else:
                working = obj
            assignments = [Assignment((*path, *a.path), a.value) for a in assignments]
        identity.check_trigger_identity(obj, working, action=rule.rule.action,
                                        where=where_of(rule))
    except Skip as skip:
        return RuleRun(Status.SKIPPED, str(skip))
    except EdictError as exc:
        return failed(rule, p, exc)
    p.record(rule, assignments)
    # merge hands back the very object when nothing changed: identity first, then value.
    written = tuple(assignments)
    if working is obj or json_equal(working, obj):
        return RuleRun(Status.UNCHANGED, written=written)
    p.changers.add(id(rule))
    return RuleRun(Status.APPLIED, obj=working, paths=_paths(assignments), written=written)


def failed(rule: CompiledRule, p: Pass, exc: EdictError) -> RuleRun:
    """The run of a mutate or status rule that raised `exc`."""
    if admission_only(rule, p):
        return RuleRun(Status.SKIPPED, ADMISSION_ONLY)
    if isinstance(exc, CelMissingData):
        return RuleRun(Status.SKIPPED, f"data not there (yet): {exc}")
    return RuleRun(Status.ERROR, str(exc))


def _items_written(rule: CompiledRule, obj: Obj, written: ItemsWritten, p: Pass
                   ) -> RuleRun:
    """The end of `run_rule` for an item writer's result: what the generic end concludes,
    without comparing whole objects when the writer can say the object changed, and
    without the identity check when no written path can reach an identity field."""
    working, assignments = written.obj, written.assignments
    writer = rule.item_writer
    assert writer is not None
    if working is not obj and not (writer.keeps_identity
                                   and isinstance(obj.get("metadata"), dict)):
        identity.check_trigger_identity(obj, working, action=rule.rule.action,
                                        where=where_of(rule))
    p.record(rule, assignments)
    if working is obj or (not written.surely_changed and json_equal(working, obj)):
        return RuleRun(Status.UNCHANGED, written=tuple(assignments))
    p.changers.add(id(rule))
    # the writer found a map at every step down to the list, and the walk of
    # `changes.created` ends at a list: no map is made above the written paths
    return RuleRun(Status.APPLIED, obj=working, paths=written.pointers(),
                   written=tuple(assignments), created=[])


def _render_onto(rule: CompiledRule, obj: Obj, values: dict[str, Any], p: Pass,
                 schema: Node | None, *, items: Iterator[tuple[int, Any]] | None = None
                 ) -> tuple[Obj, list[Any]]:
    """Render a mutate or status rule (once, or per forEach item) and merge it onto
    `obj`: the object after the rule and what the rule assigned. `items`: the forEach
    items when the caller has them already (its item writer declined)."""
    assert rule.template is not None
    working = obj
    action = rule.rule.action
    where = where_of(rule, f"{rule.rule.action_kind.value}.template")
    assignments: list[Any] = []
    tried = items is not None  # the caller's item writer declined these items
    if items is None:
        items = for_each_items(rule, values, p)
    if (items is not None and not tried and rule.item_writer is not None
            and rule.for_each is not None):
        listed = list(items)
        written = rule.item_writer.apply(obj, values, schema, [item for _, item in listed])
        if written is not None:
            return written
        items = iter(listed)
    # forEach runs in sequence: the list is computed once, from the object as the
    # rule started; each item renders against the object as the previous one left it.
    # The merges of the items are one sequence (linear in their number); what it made
    # is the rule's own until the rule is done, and dropped whole if an item fails.
    sequence = None if items is None else MergeSequence(obj, schema=schema)
    for index, item in [(None, None)] if items is None else items:
        item_values = values if items is None else {
            **values, "object": working, "item": item, "index": index}
        rendered = rule.template.render(item_values)
        if isinstance(action, Mutate) and action.json_patch is not None:
            if not isinstance(rendered, list):
                raise MergeError("jsonPatch must render to a list of operations",
                                 where=where_of(rule, "mutate.jsonPatch"))
            working = apply_patch(working, rendered, where=where_of(rule, "mutate.jsonPatch"))
            assignments.extend(_patch_assignments(rendered))
            continue
        if isinstance(action, StatusAction):
            rendered = {"status": rendered}
        if not isinstance(rendered, dict):
            raise MergeError(f"the template must render to a mapping, not "
                             f"{type(rendered).__name__}", where=where)
        if sequence is None:
            working, done = merge(working, rendered, where=where, schema=schema)
        else:
            working, done = sequence.merge(rendered, where=where)
        assignments.extend(done)
    return working, assignments


def run_generate(rule: CompiledRule, obj: Obj, p: Pass) -> tuple[list[ChildPlan], Outcome]:
    """A generate rule: render the children and plan them against what exists."""
    action = rule.rule.action
    assert isinstance(action, Generate) and rule.template is not None
    where = where_of(rule, "generate.template")
    rs = rule.rule_set
    try:
        values = variables(rule, obj, p)
        check_condition(rule, values, p)
        # a template of literal keys over scalars is made into its children directly
        maker = makers.maker_of(rule) if p.makers else None
        facts = children.TriggerFacts.of(obj) if maker is not None else None
        desired: list[Obj | children.Made] = []
        for item_values in renderings(rule, values, p):
            if maker is not None and facts is not None:
                made = maker.make(item_values, trigger=obj, facts=facts, world=p.world,
                                  where=where)
                if made is not None:
                    desired.append(made)
                    continue
            rendered = rule.template.render(item_values)
            if action.clone is not None:
                rendered = clone.child(rendered, values=item_values, where=where,
                                       schema=p.world.schema(action.clone.gvk))
            for child in rendered if isinstance(rendered, list) else [rendered]:
                desired.append(children.stamp(child, rule_set=rs, rule=rule.rule.name,
                                              trigger=obj, world=p.world, where=where))
        plans = children.plan(desired, rule_set=rs, rule=rule.rule.name, trigger=obj,
                              kinds=rule.generates, synchronize=action.synchronize,
                              world=p.world, where=where, facts=facts)
    except (Skip, CelMissingData) as skip:
        reason = str(skip) if isinstance(skip, Skip) else f"data not there (yet): {skip}"
        plans = children.stale(rule_set=rs, rule=rule.rule.name, trigger=obj,
                               kinds=rule.generates, world=p.world, keep=set()
                               ) if action.synchronize else []
        status = Status.APPLIED if plans else Status.SKIPPED
        return plans, Outcome(rs.ref, rule.rule.name, status, reason,
                              tuple(str(c.key) for c in plans))
    except EdictError as exc:
        return [], Outcome(rs.ref, rule.rule.name, Status.ERROR, str(exc))
    changed = [c for c in plans if c.action is not ChildAction.NONE]
    status = Status.APPLIED if changed else Status.UNCHANGED
    summary = tuple(f"{c.action.value} {c.key}" for c in changed)
    return plans, Outcome(rs.ref, rule.rule.name, status, "; ".join(summary), summary)


def _patch_assignments(ops: list[Any]) -> list[Assignment]:
    """What JSON patch operations set, in the shape merge assignments have."""
    out = []
    for op in ops:
        if isinstance(op, dict) and op.get("op") in ("add", "replace", "remove"):
            tokens = parse_pointer(str(op.get("path", "")))
            if isinstance(tokens, list):
                value = DELETE if op["op"] == "remove" else op.get("value")
                out.append(Assignment(tuple(tokens), value))
    return out


def format_pointer(path: tuple[Any, ...]) -> str:
    """An assignment path as a JSON pointer (named-list items keep their `name=x`)."""
    return "".join("/" + escape(str(p)) for p in path)


def _paths(assignments: list[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(format_pointer(tuple(a.path)) for a in assignments))
