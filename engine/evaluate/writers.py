"""Mutate templates with literal keys, applied as writers instead of rendered and merged.

`compile_rule` gives a mutate rule a `Writer` when its template is literal keys over
scalars and templated strings (`Template.shape`: no list, no templated key, no null)
and the rule has no ``forEach`` and no ``variables``. `run.run_rule` applies it first:
the writer renders only the templated strings, copies only the maps on the paths it
writes, and hands back the same object and the same assignments, in the same order,
as rendering the whole template and `merge`-ing it would. Whenever a rendering or the
schema leaves any doubt — a templated string that renders to something other than a
scalar (a map, a list, null, ``omit``), a map on a written path that the schema marks
atomic — `apply` answers None and the caller renders and merges generically.
tests/unit/test_writers.py checks on random objects, templates and schemas that both
paths agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.evaluate.identity import IDENTITY_FIELDS
from engine.objects import Obj
from engine.patching import Assignment, json_equal
from engine.patching.pointer import format_tokens
from engine.patching.values import MISSING
from engine.schemas import Node
from engine.templating import Constant, Leaf, Shape, Template

_SCALARS = (str, int, float, bool)
_SCHEMAS = 16  # schemas a writer remembers its verdict for
_IDENTITY = tuple(tuple(field.split(".")) for field in IDENTITY_FIELDS)


class Writer:
    """One template's shape, compiled to the assignments it makes (thread-safe)."""

    __slots__ = ("_fits", "keeps_identity", "leaves", "pointers", "shape", "template")

    def __init__(self, template: Template, shape: Shape) -> None:
        self.template = template
        self.shape = shape
        self.leaves: tuple[Leaf, ...] = tuple(_leaves(shape))
        paths = tuple(_paths(shape, ()))
        # the outcome's paths (`run._paths` of the assignments, which are always these)
        self.pointers = tuple(dict.fromkeys(format_tokens(list(path)) for path in paths))
        # no written path is at, above or beneath a field the identity check reads
        self.keeps_identity = not any(
            path[:len(field)] == field or field[:len(path)] == path
            for path in paths for field in _IDENTITY)
        # id(schema) -> (schema, whether no written map is atomic in it); the schema is
        # kept so that its id stays its own
        self._fits: dict[int, tuple[Node | None, bool]] = {}

    def apply(self, obj: Obj, variables: Mapping[str, Any], schema: Node | None
              ) -> tuple[Obj, list[Assignment]] | None:
        """`obj` after the template, and what it assigned; None: render and merge."""
        fits = self._fits.get(id(schema))
        if fits is None:
            if len(self._fits) >= _SCHEMAS:  # schemas refreshed over a long run
                self._fits.clear()
            fits = self._fits[id(schema)] = (schema, _fits(self.shape, schema))
        if not fits[1]:
            return None
        values = self.template.render_leaves(self.leaves, variables) if self.leaves else []
        for value in values:
            if type(value) not in _SCALARS:
                return None
        out: list[Assignment] = []
        return _write(obj, self.shape, (), iter(values), out), out


def writer_of(template: Template | None) -> Writer | None:
    """A writer for a mutate template, when its shape allows one."""
    shape = template.shape() if template is not None else None
    return Writer(template, shape) if template is not None and shape is not None else None


def _leaves(shape: Shape) -> Iterator[Leaf]:
    for _, child in shape:
        if isinstance(child, tuple):
            yield from _leaves(child)
        elif not isinstance(child, Constant):
            yield child


def _paths(shape: Shape, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The paths of the assignments the shape makes, in their order."""
    for key, child in shape:
        if isinstance(child, tuple):
            yield from _paths(child, (*path, key))
        else:
            yield (*path, key)


def _fits(shape: Shape, node: Node | None) -> bool:
    """Whether every map the shape writes into merges key by key under `node`."""
    for key, child in shape:
        if not isinstance(child, tuple):
            continue
        inner = node.field(key) if node is not None else None
        if inner is not None and inner.atomic and inner.list_type is None:
            return False
        if not _fits(child, inner):
            return False
    return True


def _write(target: dict[str, Any], shape: Shape, path: tuple[str, ...],
           values: Iterator[Any], out: list[Assignment]) -> dict[str, Any]:
    """`merge`'s result for these keys: maps copied only where something changes."""
    result: dict[str, Any] | None = None
    for key, child in shape:
        here = (*path, key)
        before = target.get(key, MISSING)
        if isinstance(child, tuple):
            after = _write(before if isinstance(before, dict) else {}, child, here, values,
                           out)
        else:
            value = child.value if isinstance(child, Constant) else next(values)
            out.append(Assignment(here, value))
            after = before if before is not MISSING and json_equal(before, value) else value
        if after is not before:
            if result is None:
                result = dict(target)
            result[key] = after
    return target if result is None else result
