"""What an expression reads of its variables, and the values cut down to exactly that.

`engine.cel.adapter` calls `analyse` when it compiles an expression and keeps the
resulting `View` in the `Program`; evaluating then binds `View.project` of the variables
instead of the variables. Why: cel-expr-python converts a whole variable into its own
values the first time an expression reads it (about 13 µs for a 60-field Deployment),
and rules mostly read two or three fields of it.

**Reads.** Each maximal chain of field selections rooted at a variable, ``object.a.b``,
``object.?a.?b``, ``object['a']``, ``object[?'a']`` (string literals only), also under
``has()``, reads the path ``('a', 'b')`` and everything below it. A chain stops at
anything else (an index that is not a string literal, a method call, a macro), so
``object.spec.containers.all(c, …)`` reads ``('spec', 'containers')``. A variable used
any other way (bare, passed to a function, compared, bound by ``cel.bind``), or shadowed
by a comprehension variable of the same name, is read whole (`None`). Found on the
checked syntax tree (`engine.cel.syntax`), never on the source text; if that tree cannot
be decoded, every variable is read whole.

**Projection.** Nested dicts along each read path, the original value at its end; where
a path meets a missing key it stops, and where it meets anything but a plain ``dict``
(a list, a scalar, null, a mapping the library would refuse) that value is kept whole.
So every selection the expression makes finds exactly what it would find in the full
value, including absence (``has()``, optionals, "no such key") and the library's
refusal of odd input (the adapter's repair step then runs as before). What is never read
is never converted, so data the expression cannot see no longer fails it (an integer
beyond int64 in an unread field used to be an error).

**Presence.** A chain of plain selections compared with ``null`` (``namespaceObject !=
null``, ``null == object.spec.x``) reads only whether the value is there and not null.
When that is all the expression reads at, above or beneath that path (`presence`), the
projection holds a stand-in there instead of the value (`stand_in`): an empty value of
the same type for a map, a list, a string, an int, a double or a bool (``{}`` for a
Namespace), null for null, the value itself for anything else (the library's refusal
and the repair then go as before). The comparison gives what it gives on the value, and
the value is neither converted nor checked: like an unread field, what it holds cannot
fail the expression.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.cel.syntax import Node, parse

Path = tuple[str, ...]
Trie = dict[str, "Trie | _Present | None"]
"""Read paths as a tree: a key maps to the paths below it, to None (all of it), or to
`PRESENT` (only compared with null: a stand-in)."""


class _Present:
    def __repr__(self) -> str:
        return "PRESENT"


PRESENT = _Present()

_STEPS = frozenset({"_[_]", "_[?_]", "_?._"})  # index, optional index, optional select


@dataclass(frozen=True, eq=False)
class View:
    """What one program sees: for each variable it mentions, the read paths (None: all).

    Compared by identity: programs that read the same share one `View` (see `view_of`),
    which keys the per-binding cache of projected activations in the adapter.
    """

    names: tuple[str, ...]
    reads: Mapping[str, frozenset[Path] | None]
    _cuts: tuple[tuple[str, Trie | _Present], ...]
    present: Mapping[str, frozenset[Path]] = field(default_factory=dict)
    """The read paths only compared with null (see *Presence*), by variable."""

    def project(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """All of `names` (null when not given), those with read paths cut down to them.

        Variables the program does not mention stay bound as they are: the library only
        converts what an expression reads, so they cost nothing, and should the analysis
        ever miss a use, that use still sees the real value.
        """
        data = {**dict.fromkeys(self.names), **variables}
        for name, trie in self._cuts:
            data[name] = stand_in(data[name]) if isinstance(trie, _Present) else _cut(
                data[name], trie)
        return data

    def read(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Of `project`, only the variables the program mentions (what it binds and
        checks)."""
        data = {name: variables.get(name) for name in self.reads}
        for name, trie in self._cuts:
            if name in data:
                data[name] = stand_in(data[name]) if isinstance(trie, _Present) else _cut(
                    data[name], trie)
        return data


_VIEWS: dict[tuple[Any, ...], View] = {}
_MAX_VIEWS = 10_000  # distinct read sets kept for sharing; beyond that, views are private


def view_of(names: tuple[str, ...], reads: Mapping[str, frozenset[Path] | None],
            present: Mapping[str, frozenset[Path]] | None = None) -> View:
    """The shared `View` of `reads` (a read set per mentioned variable) over `names`;
    `present`: of those paths, the ones only compared with null, each at, above and
    beneath no other path read (`presence`)."""
    normal = tuple(sorted(
        (name, None if paths is None or () in paths else _minimal(paths))
        for name, paths in reads.items()))
    nulls = tuple(sorted((name, paths) for name, paths in (present or {}).items()
                         if paths and name in reads))
    key = (names, normal, nulls)
    found = _VIEWS.get(key)
    if found is None:  # a race only makes two equal views: less sharing, never wrong
        only = dict(nulls)
        cuts: list[tuple[str, Trie | _Present]] = []
        for name, paths in normal:
            if () in only.get(name, ()):
                cuts.append((name, PRESENT))
            elif paths is not None:
                cuts.append((name, _trie(paths, only.get(name, frozenset()))))
        found = View(names, dict(normal), tuple(cuts), only)
        if len(_VIEWS) < _MAX_VIEWS:
            found = _VIEWS.setdefault(key, found)
    return found


@functools.cache
def whole_view(names: tuple[str, ...]) -> View:
    """The `View` that reads every variable whole: what evaluating used to bind."""
    return view_of(names, dict.fromkeys(names))


def analyse(serialized: bytes, names: tuple[str, ...]) -> dict[str, frozenset[Path] | None]:
    """For each of `names` the expression mentions, the paths it reads (None: all)."""
    try:
        root = parse(serialized)
    except Exception:  # a decoding surprise: assume everything
        return dict.fromkeys(names)
    return analyse_tree(root, names)


def analyse_tree(root: Node, names: tuple[str, ...]) -> dict[str, frozenset[Path] | None]:
    """`analyse` on an already decoded tree."""
    try:
        found = _Reads(frozenset(names))
        found.visit(root)
    except Exception:  # a pathological tree: assume everything
        return dict.fromkeys(names)
    return found.result()


def presence(root: Node, names: tuple[str, ...]) -> dict[str, frozenset[Path]]:
    """For each of `names`, the paths the expression reads only by comparing them with
    null (``x != null``, ``x.a == null``) and at, above or beneath which it reads
    nothing else: the projection may hold a stand-in there (see *Presence*)."""
    try:
        found = _Reads(frozenset(names))
        found.visit(root)
    except Exception:  # a pathological tree: no stand-ins
        return {}
    return found.presence()


class _Reads:
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.paths: dict[str, set[Path]] = {}
        self.whole: set[str] = set()
        # by variable, the paths of chains compared with null and of every other chain;
        # the variables read whole otherwise than compared with null
        self.nulls: dict[str, set[Path]] = {}
        self.others: dict[str, set[Path]] = {}
        self.whole_others: set[str] = set()

    def visit(self, node: Node) -> None:
        compared = _null_compared(node)
        root, path = _chain(compared) if compared is not None else _chain(node)
        if compared is not None and root in self.names and _plain_chain(compared):
            self.nulls.setdefault(root, set()).add(path)
            self.paths.setdefault(root, set()).add(path)
            if not path:
                self.whole.add(root)
            return
        root, path = _chain(node)
        if root is not None:
            if root in self.names:
                self.paths.setdefault(root, set()).add(path)
                self.others.setdefault(root, set()).add(path)
                if not path:
                    self.whole.add(root)
                    self.whole_others.add(root)
            elif root.partition(".")[0] in self.names:  # a qualified name: be safe
                self.whole.add(root.partition(".")[0])
                self.whole_others.add(root.partition(".")[0])
            return
        for name in node.binds:
            if name in self.names:  # shadowed: do not tell its uses apart
                self.whole.add(name)
                self.whole_others.add(name)
        for child in node.children():
            self.visit(child)

    def result(self) -> dict[str, frozenset[Path] | None]:
        mentioned = self.paths.keys() | self.whole
        return {name: None if name in self.whole else _minimal(self.paths[name])
                for name in sorted(mentioned)}

    def presence(self) -> dict[str, frozenset[Path]]:
        out: dict[str, frozenset[Path]] = {}
        for name, nulls in self.nulls.items():
            if name in self.whole_others:
                continue
            others = self.others.get(name, set())
            alone = frozenset(
                path for path in nulls
                if not any(_nested(path, other) for other in others)
                and not any(_nested(path, other) for other in nulls if other != path))
            if alone:
                out[name] = alone
        return out


def _nested(one: Path, other: Path) -> bool:
    """Whether either path is at or above the other."""
    return one[:len(other)] == other or other[:len(one)] == one


def _null_compared(node: Node) -> Node | None:
    """The other side of ``<x> == null`` or ``<x> != null``; None for anything else."""
    if (node.kind != "call" or node.name not in ("_==_", "_!=_")
            or node.operand is not None or len(node.args) != 2):
        return None
    left, right = node.args
    if left.kind == "const" and left.const == "null":
        left, right = right, left
    return left if right.kind == "const" and right.const == "null" else None


def _plain_chain(node: Node) -> bool:
    """A chain of plain field selections (no ``has()``, optional or index) from an
    identifier, or the identifier."""
    while node.kind == "select" and not node.test_only and node.operand is not None:
        node = node.operand
    return node.kind == "ident"


def _chain(node: Node) -> tuple[str | None, Path]:
    """(identifier, path) when `node` is a chain of selections on an identifier."""
    steps: list[str] = []
    while True:
        if node.kind == "ident":
            return node.name, tuple(reversed(steps))
        if node.kind == "select" and node.operand is not None and node.name is not None:
            steps.append(node.name)
            node = node.operand
        elif (node.kind == "call" and node.name in _STEPS and node.operand is None
              and len(node.args) == 2 and node.args[1].kind == "const"
              and node.args[1].name is not None):
            steps.append(node.args[1].name)
            node = node.args[0]
        else:
            return None, ()


def _minimal(paths: Iterable[Path]) -> frozenset[Path]:
    """Drop paths under another read path: that one already brings all below it."""
    kept: list[Path] = []
    for path in sorted(paths, key=len):
        if not any(path[:len(short)] == short for short in kept):
            kept.append(path)
    return frozenset(kept)


def _trie(paths: Iterable[Path], present: frozenset[Path] = frozenset()) -> Trie:
    """Minimal, non-empty paths as a tree; those in `present` end in `PRESENT`."""
    trie: Trie = {}
    for path in paths:
        level = trie
        for key in path[:-1]:
            below = level.setdefault(key, {})
            assert isinstance(below, dict), "paths are minimal"
            level = below
        level[path[-1]] = PRESENT if path in present else None
    return trie


_EMPTY: dict[type, Any] = {list: list, str: str, int: int, float: float, bool: bool}
STAND_INS = frozenset({dict, *_EMPTY})
"""The types of values `stand_in` replaces."""


def stand_in(value: Any) -> Any:
    """What the projection holds for a value only compared with null: null for null, an
    empty value of its type for plain JSON data, anything else as it is."""
    if type(value) is dict:
        return {}
    made = _EMPTY.get(type(value))
    return value if made is None else made()


def _cut(value: Any, trie: Trie) -> Any:
    if type(value) is not dict:
        return value  # a list, scalar, null or odd mapping: what the full value has here
    out = {}
    for key, below in trie.items():
        if key in value:
            item = value[key]
            if below is None or (type(item) is not dict and below is not PRESENT):
                out[key] = item
            elif isinstance(below, _Present):
                out[key] = stand_in(item)
            else:
                out[key] = _cut(item, below)
    return out
