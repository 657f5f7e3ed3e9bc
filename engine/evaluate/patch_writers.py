"""JSON patch rules of literal operations, applied as writers instead of rendered and
applied generically; and what such a rule reads.

`compile_rule` gives a ``mutate.jsonPatch`` rule without ``forEach`` or ``variables`` a
`PatchWriter` when every operation is a map of exactly ``op`` (``add``, ``replace`` or
``remove``, literal), ``path`` (a literal JSON pointer below the root) and, but for
``remove``, ``value`` (a constant, or one templated string), and no two paths are equal
or one beneath the other. `run.run_rule` applies it as it applies a template's
`writers.Writer`: the writer renders only the templated values (on one budget, as the
whole list of operations would render), walks the maps on its paths and hands back the
object `apply_patch` would give — the very object when every operation leaves its value
as it was (a JSON-equal value; the generic path then reports the rule unchanged) — with
the assignments `run._patch_assignments` would give, in the same order, copying only the
maps on its paths. Whenever the generic path could raise, or the writer cannot be sure,
`apply` answers None and the caller renders and applies the patch generically (which then
raises): a value that renders to anything but a scalar or null, a rendering that fails,
a step through a list or a missing map, a member that ``replace`` or ``remove`` does not
find. tests/unit/test_patch_writers.py checks on random objects and operations that both
paths agree.

`patch_reads` gives, for a rule whose operations all have a literal ``op`` and ``path``
(``add``, ``replace``, ``remove``, ``test``), the paths of the trigger the operations
depend on, so that the fixed-point loop can skip the rule when none of them changed
(`CompiledRule.reads`): for ``add`` the parent (whether it exists, and the member it
writes beneath it), for the others the path itself; a path is cut at the first token
that may be a list index (``-`` or digits: assignments name list items otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import CompileError, Where
from engine.evaluate.identity import IDENTITY_FIELDS
from engine.objects import Obj
from engine.patching import DELETE, Assignment, copy_json, json_equal
from engine.patching.pointer import format_tokens, parse
from engine.patching.values import MISSING
from engine.schemas import Node
from engine.templating import Leaf, Template, TemplateLimits, compile_template

_WRITES = ("add", "replace", "remove")
_KEYS = {"add": {"op", "path", "value"}, "replace": {"op", "path", "value"},
         "remove": {"op", "path"}}
_VALUES = (str, int, float, bool, type(None))  # what a rendered value may be
_IDENTITY = tuple(tuple(field.split(".")) for field in IDENTITY_FIELDS)
_TEMPLATED = object()  # marks an operation whose value is rendered


class _Op:
    """One operation: its kind, its tokens and its value (a constant or `_TEMPLATED`)."""

    __slots__ = ("container", "kind", "last", "parent", "tokens", "value")

    def __init__(self, kind: str, tokens: tuple[str, ...], value: Any) -> None:
        self.kind = kind
        self.tokens = tokens
        self.parent = tokens[:-1]
        self.last = tokens[-1]
        self.value = value
        # a constant map or list: copied for every application, as apply_patch copies
        self.container = isinstance(value, dict | list)


class PatchWriter:
    """A list of literal JSON patch operations, compiled (thread-safe)."""

    __slots__ = ("_render", "keeps_identity", "leaves", "ops", "path_set", "pointers",
                 "values")

    def __init__(self, ops: tuple[_Op, ...], values: Template | None,
                 leaves: tuple[Leaf, ...]) -> None:
        self.ops = ops
        self.values = values  # the templated values as one template, rendered leaf by leaf
        self.leaves = leaves
        self._render = values.leaf_renderer(leaves) if values is not None else None
        paths = [op.tokens for op in ops]
        self.path_set = frozenset(paths)  # the paths of its assignments, as a set
        # the outcome's paths (`run._paths` of the assignments, which are always these)
        self.pointers = tuple(dict.fromkeys(format_tokens(list(path)) for path in paths))
        # no written path is at, above or beneath a field the identity check reads
        self.keeps_identity = not any(
            path[:len(field)] == field or field[:len(path)] == path
            for path in paths for field in _IDENTITY)

    def apply(self, obj: Obj, variables: Mapping[str, Any], schema: Node | None
              ) -> tuple[Obj, list[Assignment]] | None:
        """`obj` after the patch, and what it assigned; None: render and apply it."""
        rendered: list[Any] = []
        if self._render is not None:
            try:
                rendered = self._render(variables)
            except Exception:  # the generic rendering raises it, with its own words
                return None
            for value in rendered:
                if type(value) not in _VALUES:
                    return None
        values = iter(rendered)
        out: list[Assignment] = []
        changed = False
        # the paths never overlap: each operation sees the object as it was
        for op in self.ops:
            parent: Any = obj
            for token in op.parent:
                if type(parent) is not dict or token not in parent:
                    return None
                parent = parent[token]
            if type(parent) is not dict:
                return None
            before = parent.get(op.last, MISSING)
            if op.kind == "remove":
                if before is MISSING:
                    return None
                out.append(Assignment(op.tokens, DELETE))
                changed = True
                continue
            if op.kind == "replace" and before is MISSING:
                return None
            value = op.value
            if value is _TEMPLATED:
                value = next(values)
            elif op.container:
                value = copy_json(value)
            out.append(Assignment(op.tokens, value))
            if not changed and (before is MISSING or not json_equal(before, value)):
                changed = True
        if not changed:
            return obj, out
        return _written(obj, self.ops, out), out


def _written(obj: Obj, ops: tuple[_Op, ...], assignments: list[Assignment]) -> Obj:
    """`obj` with every assignment made, each map on a path copied once."""
    root = dict(obj)
    owned = {id(root)}
    for op, assignment in zip(ops, assignments, strict=True):
        value = assignment.value
        node = root
        for token in op.parent:
            child = node[token]
            if id(child) not in owned:
                child = dict(child)
                owned.add(id(child))
                node[token] = child
            node = child
        if value is DELETE:
            del node[op.last]
        else:
            node[op.last] = copy_json(value) if op.container else value
    return root


def patch_writer_of(ops: Any, *, where: Where, limits: TemplateLimits
                    ) -> PatchWriter | None:
    """A writer for a rule's ``mutate.jsonPatch`` (the YAML value), when its operations
    are all literal writes (see the module docstring)."""
    if not isinstance(ops, list):
        return None
    compiled: list[_Op] = []
    templated: dict[str, str] = {}
    for raw in ops:
        kind = _literal_kind(raw)
        if kind not in _KEYS or set(raw) != _KEYS[kind]:
            return None
        tokens = _tokens(raw["path"])
        if not tokens:
            return None
        value: Any = None
        if kind != "remove":
            try:
                value_template = compile_template(raw["value"], where=where, limits=limits)
            except CompileError:
                return None
            if value_template.is_static:
                value = value_template.render({})
            elif isinstance(raw["value"], str):
                templated[str(len(templated))] = raw["value"]
                value = _TEMPLATED
            else:  # a map or list with templated strings inside: render and apply
                return None
        compiled.append(_Op(kind, tokens, value))
    for index, op in enumerate(compiled):
        for other in compiled[index + 1:]:
            cut = min(len(op.tokens), len(other.tokens))
            if op.tokens[:cut] == other.tokens[:cut]:  # equal, or one beneath the other
                return None
    values: Template | None = None
    leaves: tuple[Leaf, ...] = ()
    if templated:
        try:
            values = compile_template(templated, where=where, limits=limits)
        except CompileError:
            return None
        shape = values.shape()
        if shape is None or not all(isinstance(leaf, Leaf) for _, leaf in shape):
            return None
        leaves = tuple(leaf for _, leaf in shape)
    return PatchWriter(tuple(compiled), values, leaves)


def patch_reads(ops: Any) -> frozenset[tuple[str, ...]] | None:
    """The paths of the trigger literal operations depend on; None when an operation is
    not a literal ``add``, ``replace``, ``remove`` or ``test`` (see the module docstring)."""
    if not isinstance(ops, list):
        return None
    out: set[tuple[str, ...]] = set()
    for raw in ops:
        kind = _literal_kind(raw)
        if kind not in (*_WRITES, "test") or not isinstance(raw, dict):
            return None
        tokens = _tokens(raw.get("path"))
        if tokens is None:
            return None
        if kind == "add" and len(tokens) > 1:
            tokens = tokens[:-1]
        for cut, token in enumerate(tokens):
            if token == "-" or token.isdigit():
                tokens = tokens[:cut]
                break
        out.add(tokens)
    return frozenset(out)


def _literal_kind(raw: Any) -> str | None:
    """The operation's ``op`` when it is a map whose ``op`` is a literal string."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("op")
    return kind if isinstance(kind, str) and not _is_templated(kind) else None


def _tokens(path: Any) -> tuple[str, ...] | None:
    """A literal pointer's tokens; None when it is not a string, is templated or does not
    parse."""
    if not isinstance(path, str) or _is_templated(path):
        return None
    tokens = parse(path)
    return None if isinstance(tokens, str) else tuple(tokens)


def _is_templated(text: str) -> bool:
    """Whether the template compiler would render `text` (or refuse it)."""
    try:
        return not compile_template(text, where=Where()).is_static
    except CompileError:
        return True
