"""Compile rule sets once, when they load: every CEL expression and every template.

Called by `Engine` (offline and live) with the engine's `Limits`
(`engine.evaluate.limits`): every CEL program and every template compiled here keeps
the bounds it is evaluated and rendered under. A rule whose expression or template does
not compile (its static cost above the limit, say) is disabled and reported with the
rule set, rule and field named; the other rules of the rule set still run. Generated
kinds must be literal in templates, so the engine knows which kinds to watch and where
to look for children to prune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.cel import Program, compile_expression
from engine.errors import CompileError, Where
from engine.evaluate import clone
from engine.evaluate.limits import DEFAULT_LIMITS, Limits
from engine.evaluate.order import compile_order
from engine.evaluate.patch_writers import PatchWriter, patch_reads, patch_writer_of
from engine.evaluate.variables import CompiledVariable, compile_variables, unknown_uses
from engine.evaluate.writers import ItemWriter, Writer, item_writer_of, writer_of
from engine.objects import GVK
from engine.rules.model import Generate, Lookup, Mutate, Rule, RuleSet, StatusAction, Validate
from engine.templating import Template, compile_template


@dataclass(frozen=True, eq=False)
class CompiledLookup:
    lookup: Lookup
    namespace: Template | None
    name: Template
    # the name and namespace when their templates hold no Jinja2 (rendered once)
    static_name: str | None = field(init=False, default=None)
    static_namespace: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.name.is_static:
            object.__setattr__(self, "static_name", str(self.name.render({})))
        if self.namespace is not None and self.namespace.is_static:
            object.__setattr__(self, "static_namespace", str(self.namespace.render({})))


@dataclass(frozen=True, eq=False)
class CompiledRule:
    rule_set: RuleSet
    rule: Rule
    condition: Program | None = None
    for_each: Program | None = None
    template: Template | None = None  # mutate/generate/status template, or the jsonPatch ops
    lookups: tuple[CompiledLookup, ...] = ()
    generates: tuple[GVK, ...] = ()
    errors: tuple[CompileError, ...] = ()
    # paths of `object` the rule can read (condition, forEach, templates, the paths of a
    # JSON patch of literal operations: engine.evaluate.patch_writers); None: anything
    reads: frozenset[tuple[str, ...]] | None = None
    validation: Program | None = None  # validate: the expression that must hold
    message: Program | None = None  # validate: messageExpression
    reads_request: bool = False  # some expression or template reads `request`
    # the top-level variables its expressions and templates read (`object`, `request`...)
    reads_variables: frozenset[str] = frozenset()
    ready_when: Program | None = None  # generate.readyWhen (engine.evaluate.order)
    variables: tuple[CompiledVariable, ...] = ()  # engine.evaluate.variables
    # the mutate template as a writer (engine.evaluate.writers), or the jsonPatch of
    # literal operations as one (engine.evaluate.patch_writers)
    writer: Writer | PatchWriter | None = None
    item_writer: ItemWriter | None = None  # a forEach writing a keyed list's item (same)
    # the variable `ruleSet` (kind, name, namespace): one value, read-only, per rule
    rule_set_variable: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return not self.errors

    @property
    def order_key(self) -> tuple[int, str, str, int]:
        return (*self.rule_set.order_key, self.rule.position)


@dataclass(frozen=True, eq=False)
class CompiledRuleSet:
    rule_set: RuleSet
    rules: tuple[CompiledRule, ...]

    @property
    def errors(self) -> tuple[CompileError, ...]:
        return tuple(e for r in self.rules for e in r.errors)


def compile_rule_set(rule_set: RuleSet, *, limits: Limits = DEFAULT_LIMITS
                     ) -> CompiledRuleSet:
    return CompiledRuleSet(rule_set, tuple(compile_rule(rule_set, r, limits=limits)
                                           for r in rule_set.rules))


def compile_rule(rule_set: RuleSet, rule: Rule, *, limits: Limits = DEFAULT_LIMITS
                 ) -> CompiledRule:
    where = Where(file=rule_set.source, rule_set=str(rule_set.ref.name), rule=rule.name)
    errors: list[CompileError] = []

    def expression(source: str | None, field: str) -> Program | None:
        if source is None:
            return None
        try:
            return compile_expression(source, where=where.with_field(field),
                                      limits=limits.cel)
        except CompileError as exc:
            errors.append(exc)
            return None

    def template(value: Any, field: str) -> Template | None:
        try:
            return compile_template(value, where=where.with_field(field),
                                    limits=limits.templates)
        except CompileError as exc:
            errors.append(exc)
            return None

    action = rule.action
    for_each: Program | None = None
    validation: Program | None = None
    message: Program | None = None
    generates: tuple[GVK, ...] = ()
    body: Template | None
    if isinstance(action, Mutate):
        for_each = expression(action.for_each, "mutate.forEach")
        if action.json_patch is not None:
            body = template(action.json_patch, "mutate.jsonPatch")
        else:
            body = template(action.template, "mutate.template")
    elif isinstance(action, Generate):
        for_each = expression(action.for_each, "generate.forEach")
        body = template({} if action.template is None else action.template,
                        "generate.template")
        try:
            at = where.with_field("generate.template")
            generates = (generated_kinds(action.template, where=at) if action.clone is None
                         else clone.generated_kinds(action, where=at))
        except CompileError as exc:
            errors.append(exc)
    elif isinstance(action, Validate):
        body = None
        validation = expression(action.expression, "validate.expression")
        message = expression(action.message_expression, "validate.messageExpression")
    else:
        assert isinstance(action, StatusAction)
        body = template(action.template, "status.template")

    lookups = []
    for lookup in rule.lookups:  # context, then a clone source
        field = lookup.field
        name = template(lookup.name, f"{field}.name")
        namespace = None if lookup.namespace is None else template(
            lookup.namespace, f"{field}.namespace")
        if name is not None:
            lookups.append(CompiledLookup(lookup, namespace, name))

    condition = expression(rule.condition, "condition")
    ready_when, problems = compile_order(rule_set, rule, where=where,  # readyWhen, after
                                         limits=limits.cel)
    errors.extend(problems)
    variables, problems = compile_variables(rule, where=where, limits=limits.cel)
    errors.extend(problems)
    errors.extend(unknown_uses(rule, programs=(condition, for_each, validation, message,
                                               ready_when),
                               templates=_templates(rule), where=where))
    sources: list[Any] = [condition, for_each, body, validation, message,
                          *(v.program for v in variables)]
    sources += [part for lookup in lookups for part in (lookup.name, lookup.namespace)]
    is_patch = isinstance(action, Mutate) and action.json_patch is not None
    read_names = frozenset(name for source in sources if source is not None
                           for name in getattr(source, "reads_variables", ()))
    writer: Writer | PatchWriter | None = None
    if (isinstance(action, Mutate) and body is not None and for_each is None
            and action.for_each is None and not variables and not rule.variables):
        writer = (patch_writer_of(action.json_patch, where=where.with_field("mutate.jsonPatch"),
                                  limits=limits.templates) if is_patch else writer_of(body))
    item_writer = (item_writer_of(body) if isinstance(action, Mutate) and not is_patch
                   and for_each is not None and not variables and not rule.variables
                   else None)
    return CompiledRule(
        rule_set=rule_set,
        rule=rule,
        condition=condition,
        for_each=for_each,
        template=body,
        lookups=tuple(lookups),
        generates=generates,
        errors=tuple(errors),
        reads=_reads(sources, action.json_patch if isinstance(action, Mutate) else None),
        validation=validation,
        message=message,
        reads_request="request" in read_names,
        reads_variables=read_names,
        ready_when=ready_when,
        variables=variables,
        writer=writer,
        item_writer=item_writer,
        rule_set_variable={"kind": rule_set.ref.kind, "name": rule_set.ref.name,
                           "namespace": rule_set.ref.namespace},
    )


def _templates(rule: Rule) -> list[tuple[str, Any]]:
    """(field, YAML value) of every template of the rule, lookups included."""
    action = rule.action
    out: list[tuple[str, Any]] = []
    if isinstance(action, Mutate):
        out.append(("mutate.jsonPatch", action.json_patch) if action.json_patch is not None
                   else ("mutate.template", action.template))
    elif isinstance(action, Generate | StatusAction):
        out.append((f"{rule.action_kind.value}.template", action.template))
    for lookup in rule.lookups:
        out += [(f"{lookup.field}.name", lookup.name),
                (f"{lookup.field}.namespace", lookup.namespace)]
    return out


def _reads(sources: list[Any], json_patch: Any) -> frozenset[tuple[str, ...]] | None:
    """What a rule reads of `object`: its expressions' and templates', and for a JSON
    patch (`json_patch`, None without) of literal operations the paths they depend on
    (anything for other patches)."""
    reads = reads_of(sources)
    if json_patch is None or reads is None:
        return reads
    paths = patch_reads(json_patch)
    return None if paths is None else reads | paths


def reads_of(sources: list[Any]) -> frozenset[tuple[str, ...]] | None:
    """Union of what compiled expressions and templates read of `object`; None when any
    of them may read anything (or cannot say)."""
    out: set[tuple[str, ...]] = set()
    for source in sources:
        if source is None:
            continue
        reads = getattr(source, "reads", None)
        if reads is None:
            return None
        out.update(reads)
    return frozenset(out)


def generated_kinds(template: Any, *, where: Where) -> tuple[GVK, ...]:
    """The kinds a generate template yields; apiVersion and kind must be literal."""
    items = template if isinstance(template, list) else [template]
    kinds: list[GVK] = []
    for index, item in enumerate(items):
        label = f"item {index}" if isinstance(template, list) else "the template"
        if not isinstance(item, dict):
            raise CompileError(f"{label} must be a mapping (one object)", where=where)
        api_version, kind = item.get("apiVersion"), item.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or any(
            "{" in s for s in (api_version, kind)
        ):
            raise CompileError(
                f"{label} needs a literal apiVersion and kind (no templating there), so the "
                "engine knows which kinds to watch and prune", where=where)
        gvk = GVK.of(api_version, kind)
        if gvk not in kinds:
            kinds.append(gvk)
    return tuple(kinds)
