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
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.cel.syntax import Node, parse

Path = tuple[str, ...]
Trie = dict[str, "Trie | None"]
"""Read paths as a tree: a key maps to the paths below it, or to None (all of it)."""

_STEPS = frozenset({"_[_]", "_[?_]", "_?._"})  # index, optional index, optional select


@dataclass(frozen=True, eq=False)
class View:
    """What one program sees: for each variable it mentions, the read paths (None: all).

    Compared by identity: programs that read the same share one `View` (see `view_of`),
    which keys the per-binding cache of projected activations in the adapter.
    """

    names: tuple[str, ...]
    reads: Mapping[str, frozenset[Path] | None]
    _cuts: tuple[tuple[str, Trie], ...]

    def project(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """All of `names` (null when not given), those with read paths cut down to them.

        Variables the program does not mention stay bound as they are: the library only
        converts what an expression reads, so they cost nothing, and should the analysis
        ever miss a use, that use still sees the real value.
        """
        data = {**dict.fromkeys(self.names), **variables}
        for name, trie in self._cuts:
            data[name] = _cut(data[name], trie)
        return data


_VIEWS: dict[tuple[Any, ...], View] = {}
_MAX_VIEWS = 10_000  # distinct read sets kept for sharing; beyond that, views are private


def view_of(names: tuple[str, ...], reads: Mapping[str, frozenset[Path] | None]) -> View:
    """The shared `View` of `reads` (a read set per mentioned variable) over `names`."""
    normal = tuple(sorted(
        (name, None if paths is None or () in paths else _minimal(paths))
        for name, paths in reads.items()))
    key = (names, normal)
    found = _VIEWS.get(key)
    if found is None:  # a race only makes two equal views: less sharing, never wrong
        cuts = tuple((name, _trie(paths)) for name, paths in normal if paths is not None)
        found = View(names, dict(normal), cuts)
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


class _Reads:
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.paths: dict[str, set[Path]] = {}
        self.whole: set[str] = set()

    def visit(self, node: Node) -> None:
        root, path = _chain(node)
        if root is not None:
            if root in self.names:
                self.paths.setdefault(root, set()).add(path)
                if not path:
                    self.whole.add(root)
            elif root.partition(".")[0] in self.names:  # a qualified name: be safe
                self.whole.add(root.partition(".")[0])
            return
        for name in node.binds:
            if name in self.names:  # shadowed: do not tell its uses apart
                self.whole.add(name)
        for child in node.children():
            self.visit(child)

    def result(self) -> dict[str, frozenset[Path] | None]:
        mentioned = self.paths.keys() | self.whole
        return {name: None if name in self.whole else _minimal(self.paths[name])
                for name in sorted(mentioned)}


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


def _trie(paths: Iterable[Path]) -> Trie:
    """Minimal, non-empty paths as a tree."""
    trie: Trie = {}
    for path in paths:
        level = trie
        for key in path[:-1]:
            below = level.setdefault(key, {})
            assert below is not None, "paths are minimal"
            level = below
        level[path[-1]] = None
    return trie


def _cut(value: Any, trie: Trie) -> Any:
    if type(value) is not dict:
        return value  # a list, scalar, null or odd mapping: what the full value has here
    out = {}
    for key, below in trie.items():
        if key in value:
            item = value[key]
            out[key] = item if below is None or type(item) is not dict else _cut(item, below)
    return out
