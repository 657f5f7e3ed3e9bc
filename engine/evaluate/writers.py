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

A mutate rule with ``forEach`` gets an `ItemWriter` when its template is a chain of
literal keys down to a list of one item that names the list's keys
(`Template.list_shape`): per item it does what the sequence of merges does with that
one item of a keyed list (see the class), and its items may come from the program's
quick filter (`ItemWriter.quick_items`). tests/unit/test_item_writers.py checks it the
same way. Its result (`ItemsWritten`) says whether the object changed and gives the
outcome's paths, so `run_rule` ends the rule without comparing whole objects. A rule
that reads the list it writes runs again in the pass confirming the fixed point; there
the quick filter would check the whole new list as plain data again, so the writer
keeps, for that one evaluation, upper bounds of what the list it made adds to the
measures the first check gave (`ItemWriter.remember`), and the program takes the list
on them (`Program.quick_items_measured`) — or walks it, when they do not settle it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from engine.cel import Program
from engine.cel.program import Known, Measures
from engine.evaluate import field_writers
from engine.evaluate.identity import IDENTITY_FIELDS
from engine.objects import Obj
from engine.patching import Assignment, json_equal
from engine.patching.assignments import ItemKey
from engine.patching.merge import item_identity
from engine.patching.pointer import escape, format_tokens
from engine.patching.values import MISSING
from engine.schemas import Node
from engine.templating import Constant, Leaf, Shape, Template

_SCALARS = (str, int, float, bool)
_SCHEMAS = 16  # schemas a writer remembers its verdict for
_IDENTITY = tuple(tuple(field.split(".")) for field in IDENTITY_FIELDS)
_INT64 = (-(2 ** 63), 2 ** 63)


class Writer:
    """One template's shape, compiled to the assignments it makes (thread-safe).

    The shape is flattened at load into its leaves in order, each with its path and,
    for a constant, its assignment made once (assignments are read-only values).
    """

    __slots__ = ("_fits", "_flat", "_render", "keeps_identity", "leaves", "path_set",
                 "pointers", "shape", "template")

    def __init__(self, template: Template, shape: Shape) -> None:
        self.template = template
        self.shape = shape
        self.leaves: tuple[Leaf, ...] = tuple(shape_leaves(shape))
        self._render = template.leaf_renderer(self.leaves)
        paths = tuple(_paths(shape, ()))
        self.path_set = frozenset(paths)  # the paths of its assignments, as a set
        # the outcome's paths (`run._paths` of the assignments, which are always these)
        self.pointers = tuple(dict.fromkeys(format_tokens(list(path)) for path in paths))
        # no written path is at, above or beneath a field the identity check reads
        self.keeps_identity = not any(
            path[:len(field)] == field or field[:len(path)] == path
            for path in paths for field in _IDENTITY)
        # each leaf in order: its path, the path of its map, its key there, and its
        # assignment when it is a constant
        self._flat: tuple[tuple[tuple[str, ...], tuple[str, ...], str, Assignment | None],
                          ...] = tuple(
            (path, path[:-1], path[-1],
             Assignment(path, leaf.value) if isinstance(leaf, Constant) else None)
            for path, leaf in _flat(shape, ()))
        # id(schema) -> (schema, whether no written map is atomic in it); the schema is
        # kept so that its id stays its own
        self._fits: dict[int, tuple[Node | None, bool]] = {}

    def apply(self, obj: Obj, variables: Mapping[str, Any], schema: Node | None
              ) -> tuple[Obj, list[Assignment]] | None:
        """`obj` after the template, and what it assigned; None: render and merge."""
        done = self.apply_into(obj, variables, schema, {})
        return None if done is None else (done[0], done[1])

    def apply_into(self, obj: Obj, variables: Mapping[str, Any], schema: Node | None,
                   fresh: dict[tuple[str, ...], dict[str, Any]]
                   ) -> tuple[Obj, list[Assignment], bool, list[tuple[str, ...]]] | None:
        """`apply`, writing in place into the maps in `fresh` and adding the maps it
        copies or makes to it: `merge`'s result for these keys, maps copied only where
        something changes. The object, the assignments, whether anything changed, and
        the paths of the maps it made where there was none or a scalar
        (`engine.evaluate.changes.created`); None: render and merge.

        `fresh` maps a path to the map at that path of `obj` that this step of rules
        (engine.evaluate.batch) made — seen by no one else, so written in place. The
        rules of a step never write at, above or beneath each other's paths, so a map
        in `fresh` stays the one at its path for the whole step: a leaf whose map is
        there is written straight into it."""
        fits = self._fits.get(id(schema))
        if fits is None:
            if len(self._fits) >= _SCHEMAS:  # schemas refreshed over a long run
                self._fits.clear()
            fits = self._fits[id(schema)] = (schema, _fits(self.shape, schema))
        if not fits[1]:
            return None
        values = self._render(variables) if self.leaves else ()
        for value in values:
            if type(value) not in _SCALARS:
                return None
        rendered = iter(values)
        out: list[Assignment] = []
        made: list[tuple[str, ...]] = []
        changed = False
        for path, above, last, assignment in self._flat:
            if assignment is None:
                assignment = Assignment(path, next(rendered))
            out.append(assignment)
            value = assignment.value
            mine = fresh.get(above)
            if mine is not None:  # the map is this step's: no walk, no copy
                node = mine.get(last, MISSING)
                if node is MISSING or not json_equal(node, value):
                    changed = True
                    mine[last] = value
                continue
            node = obj
            for key in path:
                node = node.get(key, MISSING) if isinstance(node, dict) else MISSING
            if node is not MISSING and json_equal(node, value):
                continue
            changed = True
            obj = parent = _own(obj, (), fresh)
            for depth in range(len(above)):
                key, here = path[depth], path[:depth + 1]
                child = parent.get(key)
                if isinstance(child, dict):
                    child = _own(child, here, fresh)
                else:
                    child = fresh[here] = {}
                    if not made or made[-1] != here:
                        made.append(here)
                parent[key] = child
                parent = child
            parent[last] = value
        return obj, out, changed, made


def _own(node: dict[str, Any], path: tuple[str, ...],
         fresh: dict[tuple[str, ...], dict[str, Any]]) -> dict[str, Any]:
    """`node` itself when this step made it (it is `fresh`'s map at `path`), else a
    copy, made the step's."""
    if fresh.get(path) is node:
        return node
    copy = fresh[path] = dict(node)
    return copy


def _flat(shape: Shape, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Leaf]]:
    """The leaves of the shape in order, with their paths."""
    for key, child in shape:
        if isinstance(child, tuple):
            yield from _flat(child, (*path, key))
        else:
            yield (*path, key), child


def writer_of(template: Template | None) -> Writer | None:
    """A writer for a mutate template, when its shape allows one."""
    shape = template.shape() if template is not None else None
    return Writer(template, shape) if template is not None and shape is not None else None


def shape_leaves(shape: Shape) -> Iterator[Leaf]:
    """The templated leaves of a shape, in order (what `Template.render_leaves` renders)."""
    for _, child in shape:
        if isinstance(child, tuple):
            yield from shape_leaves(child)
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
    """`merge`'s result for these keys: maps copied only where something changes. (An
    `ItemWriter` runs this compiled for its fields, `field_writers.compiled`; this is the
    walk the compiled functions are checked against, tests/unit/test_field_writers.py.)"""
    result: dict[str, Any] | None = None
    for key, child in shape:
        here = (*path, key)
        before = target.get(key, MISSING)
        if isinstance(child, tuple):
            after = _write(before, child, here, values, out) if isinstance(
                before, dict) else _fresh({}, child, here, values, out)
        else:
            value = child.value if isinstance(child, Constant) else next(values)
            out.append(Assignment(here, value))
            after = before if before is not MISSING and json_equal(before, value) else value
        if after is not before:
            if result is None:
                result = dict(target)
            result[key] = after
    return target if result is None else result


def _fresh(made: dict[str, Any], shape: Shape, path: tuple[str, ...],
           values: Iterator[Any], out: list[Assignment]) -> dict[str, Any]:
    """`_write` of `shape` onto a map holding none of its keys (`made`, filled and
    given back): every leaf is new, so nothing is looked up, compared or copied."""
    for key, child in shape:
        here = (*path, key)
        if isinstance(child, tuple):
            made[key] = _fresh({}, child, here, values, out)
        else:
            value = child.value if isinstance(child, Constant) else next(values)
            out.append(Assignment(here, value))
            made[key] = value
    return made


class ItemWriter:
    """A ``forEach`` template writing one item of a keyed list, applied per item as
    `MergeSequence` merges the rendered items (thread-safe).

    The template is a chain of literal keys down to a list holding one item whose shape
    (`Template.list_shape`) names every key of the list (`x-kubernetes-list-map-keys`)
    with a scalar; the item's other fields are its writes. Per ``forEach`` item, the
    writer renders the item's templated strings (on the object as the previous item left
    it), finds the list item of those keys from an index of the list and writes the
    fields onto it as `Writer` writes a shape — or adds the item at the end of the list
    — which is what the sequence of merges does with one item of a keyed list: the same
    object, the same assignments in the same order. It declines (None) when the schema
    does not make the path a keyed list of mergeable items, when a map on a written path
    is atomic, when a rendered value is not a scalar, when the object has no map at a
    step of the chain or no list at its end, and when the list holds the rendered keys
    twice: the rule then renders and merges generically.
    """

    __slots__ = ("_fits", "_reads_list", "_render", "item_reads", "keeps_identity", "key_at",
                 "leaves", "path", "prefix", "shape", "template")

    def __init__(self, template: Template, path: tuple[str, ...], shape: Shape) -> None:
        self.template = template
        self.path = path
        # every path it writes is (*path, item key, ...): the item key is no field name,
        # so the identity fields are safe unless one is at or above the list's path
        self.keeps_identity = not any(
            path[:len(field)] == field[:len(path)] for field in _IDENTITY)
        self.prefix = "".join("/" + escape(key) for key in path)  # the list's pointer
        self.leaves: tuple[Leaf, ...] = tuple(shape_leaves(shape))
        self._render = template.leaf_renderer(self.leaves)
        # each top-level scalar entry: where its value is (a leaf's position, or a constant)
        self.key_at: dict[str, int | Constant] = {}
        position = 0
        for key, child in shape:
            if isinstance(child, Constant):
                self.key_at[key] = child
            elif isinstance(child, tuple):
                position += sum(1 for _ in shape_leaves(child))
            else:
                self.key_at[key] = position
                position += 1
        self.shape = shape
        # the paths of `item` every templated string reads; None: maybe all of it
        reads: set[tuple[str, ...]] | None = set()
        for leaf in self.leaves:
            paths = leaf.compiled.item_reads
            reads = None if reads is None or paths is None else reads | paths
        self.item_reads = None if reads is None else frozenset(reads)
        self._fits: dict[int, tuple[Node | None, _ListFit | None]] = {}
        # id(program) -> (program, whether it reads exactly this writer's list)
        self._reads_list: dict[int, tuple[Program, bool]] = {}

    def fit(self, schema: Node | None) -> _ListFit | None:
        """How the list merges under `schema` (cached per schema), None: not as this
        writer can."""
        found = self._fits.get(id(schema))
        if found is None:
            if len(self._fits) >= _SCHEMAS:
                self._fits.clear()
            found = self._fits[id(schema)] = (schema, _list_fit(self, schema))
        return found[1]

    def quick_items(self, program: Program, variables: Mapping[str, Any]) -> list[Any] | None:
        """The ``forEach`` items from the program's quick filter (`Program.quick_items`)
        when the template reads only scalars of each item (their maps' key order, which
        may differ from the library's, then cannot show); None otherwise."""
        found = self.quick_items_measured(program, variables)
        return None if found is None else found[0]

    def quick_items_measured(self, program: Program, variables: Mapping[str, Any], *,
                             token: object = None) -> tuple[list[Any], Measures] | None:
        """`quick_items`, with upper bounds of the plain measures of what the program read
        (`Program.quick_items_measured`). `token`: the evaluation's (see `remember`):
        a list this writer made in it is not checked again."""
        if self.item_reads is None:
            return None
        known = None
        entry = _CONFIRMING.entry
        if entry is not None and entry[0] is token and entry[1] is program and (
                _list_at(variables.get("object"), self.path) is entry[2]):
            known = entry[3]
        found = program.quick_items_measured(variables, known=known)
        if found is None:
            return None
        items = found[0]
        for item in items:
            for path in self.item_reads:
                value = item
                for key in path:
                    if type(value) is not dict or key not in value:
                        return None
                    value = value[key]
                if value is not None and type(value) not in _SCALARS:
                    return None
        return list(items), found[1]

    def remember(self, program: Program, before: Measures, written: ItemsWritten, *,
                 token: object) -> None:
        """Keep, for the rest of the evaluation `token` names (`Pass.bound`, which its
        passes share and no other evaluation has), bounds of what `program` would read
        once the list is the one `written` made — `before` bounding what it read of the
        object that list replaced — so that the pass confirming the fixed point does not
        walk that list again. Only for a program that reads exactly this writer's list
        (a filter over it), only when every value written is plain; one entry per thread,
        held with the token (ids stay unique while kept)."""
        grew = written.grew
        if grew is None or written.obj is written.given:
            return
        if id(program) not in self._reads_list:
            if len(self._reads_list) >= _SCHEMAS:
                self._reads_list.clear()
            self._reads_list[id(program)] = (program, program.reads_only("object", self.path))
        if not self._reads_list[id(program)][1]:
            return
        listed = _list_at(written.obj, self.path)
        if listed is None:
            return
        longest, items, count, chars = before
        static = grew.static
        touched = grew.touched
        measures = (max(longest, static.longest, grew.longest),
                    max(items + static.widest, len(listed)),
                    count + touched * static.values,
                    chars + touched * static.chars + grew.chars)
        depth = len(self.path) + 2 + static.depth
        _CONFIRMING.entry = (token, program, listed, Known(measures, depth))

    def apply(self, obj: Obj, variables: Mapping[str, Any], schema: Node | None,
              items: list[Any]) -> tuple[Obj, list[Assignment]] | None:
        """`obj` after every item, and what they assigned; None: render and merge."""
        written = self.write(obj, variables, schema, items)
        return None if written is None else (written.obj, written.assignments)

    def write(self, obj: Obj, variables: Mapping[str, Any], schema: Node | None,
              items: list[Any]) -> ItemsWritten | None:
        """`apply`, with what the caller needs to end the rule without comparing whole
        objects (`ItemsWritten`); None: render and merge."""
        fit = self.fit(schema)
        if fit is None:
            return None
        keys = fit.keys
        working = obj
        out: list[Assignment] = []
        listed: list[Any] | None = None  # the list as the items so far left it
        own = False  # whether `listed` and the chain above it are this writer's copies
        index: dict[str, int] = {}  # by the text of the key (`ItemKey` is that text)
        twice: set[str] = set()
        written: list[ItemKey] = []  # the key of every item, in order
        # what the items add to the measures of plain data (see `remember`)
        plain, touched, longest, chars = fit.growth.plain, 0, 0, 0
        # one scope for every item (its three names set anew per item: what
        # `{**variables, "object": …, "item": …, "index": …}` makes, in the same order)
        scope = dict(variables)
        for position, item in enumerate(items):
            scope["object"] = working
            scope["item"] = item
            scope["index"] = position
            values = self._render(scope)
            for value in values:
                kind = type(value)
                if kind not in _SCALARS:
                    return None
                if kind is str:
                    if "\x00" in value or not value.isascii():
                        plain = False
                    chars += len(value)
                    if len(value) > longest:
                        longest = len(value)
                elif kind is float or (kind is int and not _INT64[0] <= value < _INT64[1]):
                    plain = False
            if listed is None:
                listed = _list_at(obj, self.path)
                if listed is None:
                    return None
                for place, existing in enumerate(listed):
                    known = _key_text(existing, keys) or item_identity(existing, fit.node)
                    if known is not None:
                        if known in index:
                            twice.add(known)
                        else:
                            index[known] = place
            named = {}
            for key in keys:
                where = self.key_at[key]
                named[key] = where.value if isinstance(where, Constant) else values[where]
            ident = item_key(named)
            if ident in twice:
                return None
            written.append(ident)
            here = (*self.path, ident)
            at = index.get(ident)
            if at is None:
                # the fields are never the keys (`_list_fit`): all of them are new
                made = fit.fresh(dict(named), here, values, out)
            else:
                base = listed[at]
                made = fit.write(base, here, values, out)
                if made is base:
                    continue
            touched += 1
            if not own:
                listed = list(listed)
                working = _put(obj, self.path, listed)
                own = True
            if at is None:
                index[ident] = len(listed)
                listed.append(made)
            else:
                listed[at] = made
        grew = _Grown(fit.growth, touched, longest, chars) if plain else None
        return ItemsWritten(obj, working, out, self.prefix, fit.suffixes, written, grew)


class ItemsWritten:
    """What an `ItemWriter` did to an object: the object (the very one when nothing
    changed), its assignments, and whether the object surely differs from the one it
    was given — each item of its own key (written once) changed a field or was added,
    and nothing is ever removed —, so that only an item key written twice leaves a
    comparison of the two objects to the caller."""

    __slots__ = ("assignments", "given", "grew", "keys", "obj", "prefix", "suffixes")

    def __init__(self, given: Obj, obj: Obj, assignments: list[Assignment], prefix: str,
                 suffixes: tuple[str, ...], keys: list[ItemKey], grew: _Grown | None
                 ) -> None:
        self.given = given
        self.obj = obj
        self.assignments = assignments
        self.prefix = prefix
        self.suffixes = suffixes
        self.keys = keys
        self.grew = grew  # None: a value written is not plain data

    @property
    def surely_changed(self) -> bool:
        return len(set(self.keys)) == len(self.keys)

    def pointers(self) -> tuple[str, ...]:
        """The outcome's paths: the JSON pointers of the assignments, each once, in
        order (`run._paths` of them)."""
        prefix, suffixes, keys = self.prefix, self.suffixes, self.keys
        heads = [f"{prefix}/{escape(key)}" for key in keys]
        pointers = [head + suffix for head in heads for suffix in suffixes]
        if len(set(keys)) == len(keys):  # keys and suffixes distinct: so are the pointers
            return tuple(pointers)
        return tuple(dict.fromkeys(pointers))


class _Growth:
    """What one item written adds at most to the measures of plain data
    (`inputs.plain_measures`), apart from its rendered text: its keys and values, the
    characters of its keys, the longest key, the widest map it makes wider, the depth of
    its maps below the item; and whether its constants and keys are plain."""

    __slots__ = ("chars", "depth", "longest", "plain", "values", "widest")

    def __init__(self, fields: Shape, keys: tuple[str, ...], key_at: Mapping[str, Any]
                 ) -> None:
        names = [*keys, *(key for key, _ in _entries(fields))]
        constants = [child.value for _, child in _entries(fields)
                     if isinstance(child, Constant)]
        constants += [where.value for key, where in key_at.items()
                      if key in keys and isinstance(where, Constant)]
        self.plain = all(type(name) is str and name.isascii() and "\x00" not in name
                         for name in names) and all(_plain_scalar(v) for v in constants)
        texts = [*names, *(value for value in constants if type(value) is str)]
        # an added item: its keys, its fields and nested maps, its place in the list
        self.values = len(names) + 1
        self.chars = sum(len(text) for text in texts)  # keys and constant text
        self.longest = max((len(text) for text in texts), default=0)
        self.widest = max([len(keys) + len(fields), *(
            len(child) for _, child in _entries(fields) if isinstance(child, tuple))])
        self.depth = _depth(fields)


def _entries(shape: Shape) -> Iterator[tuple[str, Any]]:
    for key, child in shape:
        yield key, child
        if isinstance(child, tuple):
            yield from _entries(child)


def _depth(shape: Shape) -> int:
    return max((1 + _depth(child) for _, child in shape if isinstance(child, tuple)),
               default=0)


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return bool(value.isascii() and "\x00" not in value)
    if kind is int:
        return bool(_INT64[0] <= value < _INT64[1])
    return kind is bool or value is None


class _Grown:
    """What the items one `ItemWriter.write` touched (changed or added) add at most."""

    __slots__ = ("chars", "longest", "static", "touched")

    def __init__(self, static: _Growth, touched: int, longest: int, chars: int) -> None:
        self.static = static
        self.touched = touched
        self.longest = longest  # the longest text rendered
        self.chars = chars  # all text rendered


class _Confirming(threading.local):
    """The last list an item writer made on this thread and bounds of what its forEach
    program reads with it (`ItemWriter.remember`): (evaluation token, program, list,
    bounds)."""

    entry: tuple[object, Program, list[Any], Known] | None = None


_CONFIRMING = _Confirming()


class _ListFit:
    """How an `ItemWriter`'s list merges under one schema."""

    __slots__ = ("field_leaves", "fields", "fresh", "growth", "keys", "node", "suffixes",
                 "write")

    def __init__(self, node: Node, fields: Shape, field_leaves: tuple[int, ...],
                 growth: _Growth) -> None:
        self.node = node  # the list's
        self.keys = node.keys  # its items' keys (the schema computes them anew each time)
        self.fields = fields  # the item's shape without its keys
        self.field_leaves = field_leaves  # the positions of their leaves among all
        # the pointers of the item's assignments below its key, in their order
        self.suffixes = tuple("".join("/" + escape(key) for key in path)
                              for path in _paths(fields, ()))
        self.growth = growth
        # `_write` and `_fresh` of the fields, compiled for them (engine.evaluate.field_writers)
        self.write, self.fresh = field_writers.compiled(fields, field_leaves)


def _list_fit(writer: ItemWriter, schema: Node | None) -> _ListFit | None:
    node = schema
    for key in writer.path[:-1]:
        node = node.field(key) if node is not None else None
        if node is not None and node.atomic and node.list_type is None:
            return None
    listed = node.field(writer.path[-1]) if node is not None else None
    if listed is None or listed.list_type != "map" or not listed.keys:
        return None
    item_node = listed.items()
    if item_node is not None and item_node.atomic:
        return None
    if any(key not in writer.key_at for key in listed.keys):
        return None
    fields: list[tuple[str, Any]] = []
    positions: list[int] = []
    position = 0
    for key, child in writer.shape:
        count = sum(1 for _ in shape_leaves(child)) if isinstance(child, tuple) else (
            0 if isinstance(child, Constant) else 1)
        if key not in listed.keys:
            fields.append((key, child))
            positions.extend(range(position, position + count))
        position += count
    if not fields or not _fits(tuple(fields), item_node):
        return None
    return _ListFit(listed, tuple(fields), tuple(positions),
                    _Growth(tuple(fields), listed.keys, writer.key_at))


def item_key(named: dict[str, Any]) -> ItemKey:
    """`ItemKey.of_keys(named)`; for one key holding text, made without its join."""
    if len(named) == 1:
        for key, value in named.items():
            if type(value) is str:
                made = ItemKey(f"{key}={value}")
                made.keys, made.value = {key: value}, None
                return made
    return ItemKey.of_keys(named)


def _key_text(item: Any, keys: tuple[str, ...]) -> str | None:
    """The text of `merge.item_identity`'s key for an item holding every key as a `str`
    (an index of the list keyed by that text finds its `ItemKey`, which compares and
    hashes as its text); None: ask `item_identity`."""
    if type(item) is not dict:
        return None
    parts = []
    for key in keys:
        value = item.get(key)
        if type(value) is not str:
            return None
        parts.append(f"{key}={value}")
    return ",".join(parts)


def _list_at(obj: Any, path: tuple[str, ...]) -> list[Any] | None:
    value: Any = obj
    for key in path:
        if type(value) is not dict or key not in value:
            return None
        value = value[key]
    return value if type(value) is list else None


def _put(obj: Obj, path: tuple[str, ...], value: Any) -> Obj:
    """`obj` with `value` at `path` (every step a map that exists), maps copied."""
    if not path:
        return value  # type: ignore[no-any-return]
    top = out = dict(obj)
    node = obj
    for key in path[:-1]:  # one loop, not a call per step
        node = node[key]
        out[key] = out = dict(node)
    out[path[-1]] = value
    return top


def item_writer_of(template: Template | None) -> ItemWriter | None:
    """An item writer for a ``forEach`` mutate template, when its shape allows one."""
    found = template.list_shape() if template is not None else None
    if template is None or found is None:
        return None
    path, shape = found
    if any(key == "$patch" for key, _ in shape):  # an item directive: merge's
        return None
    writer = ItemWriter(template, path, shape)
    return writer if writer.key_at else None
