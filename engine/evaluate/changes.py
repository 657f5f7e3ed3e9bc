"""Which paths of the trigger changed, and when, during one evaluation.

The engine's fixed-point passes re-run a rule only when something it reads (or
something it wrote) changed since it last ran; otherwise the rule would give exactly
the same result again, so a confirmation pass costs almost nothing. Paths are the
tuples merge assignments use; reads come from `CompiledRule.reads` (conservative
supersets computed from the CEL and Jinja sources; None means "reads everything").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

Path = tuple[str | int, ...]
# id of a rule -> the log's seq before it ran, after its own write, what it assigned and
# its paths (`engine.evaluate.engine`: what a later pass's skip test reads)
Last = dict[int, tuple[int, int, tuple[Any, ...], frozenset[Path]]]
NO_PATHS: frozenset[Path] = frozenset()


def created(before: Any, paths: Iterable[Path]) -> list[Path]:
    """The maps above `paths` that writing them made or replaced: for each path, the
    first step down from the top where `before` had no map (nothing, or a scalar).

    A write beneath a map that did not exist changes what reads of its other keys
    see — `object.metadata.labels.a` fails without `labels` and is only missing with
    it — so the log counts that map as written. Lists end the walk: a read path never
    names a list item, so a read beneath the list is beneath the written path too.
    """
    out: list[Path] = []
    for path in paths:
        node = before
        for cut in range(1, len(path)):
            node = node.get(path[cut - 1]) if isinstance(node, dict) else None
            if isinstance(node, list):
                break
            if not isinstance(node, dict):
                out.append(path[:cut])
                break
    return out


def prefixes(path: Path) -> tuple[Path, ...]:
    """Every prefix of `path`, from ``()`` to `path` itself (the log's keys; made once per
    path: slicing and hashing new tuples for every write cost more than the write)."""
    found = _PREFIXES.get(path)
    if found is None:
        if len(_PREFIXES) >= _PREFIXES_KEPT:
            _PREFIXES.clear()
        found = _PREFIXES[path] = tuple(path[:cut] for cut in range(len(path) + 1))
    return found


_PREFIXES: dict[Path, tuple[Path, ...]] = {}
_PREFIXES_KEPT = 4096


def prefixes_of(paths: frozenset[Path]) -> frozenset[Path]:
    """Every prefix of every path of `paths` (made once per set: a writer's paths are one
    set, written trigger after trigger)."""
    found = _PREFIXES_OF.get(paths)
    if found is None:
        if len(_PREFIXES_OF) >= _PREFIXES_KEPT:
            _PREFIXES_OF.clear()
        found = _PREFIXES_OF[paths] = frozenset(
            prefix for path in paths for prefix in prefixes(path))
    return found


def above_of(paths: frozenset[Path]) -> frozenset[Path]:
    """Every prefix of every path of `paths` strictly between the whole object and the
    path (made once per set: a rule's reads, a writer's paths)."""
    found = _ABOVE_OF.get(paths)
    if found is None:
        if len(_ABOVE_OF) >= _PREFIXES_KEPT:
            _ABOVE_OF.clear()
        found = _ABOVE_OF[paths] = frozenset(
            prefix for path in paths for prefix in prefixes(path)[1:-1])
    return found


_PREFIXES_OF: dict[frozenset[Path], frozenset[Path]] = {}
_ABOVE_OF: dict[frozenset[Path], frozenset[Path]] = {}


class ChangeLog:
    """The writes of one evaluation, in order: the n-th (`seq` n) as the set of every
    prefix of its paths (what a read at or above one of them sees changed) and the set
    of its paths with the maps it made (what a read beneath one of them sees changed).
    A write is two shared sets, found once per set of paths; a check looks only at the
    writes after its point, usually a few."""

    __slots__ = ("_writes", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self._writes: list[tuple[frozenset[Path], frozenset[Path]]] = []

    def wrote(self, paths: Iterable[Path], created: Iterable[Path] = ()) -> None:
        """A rule (or a step of rules) wrote `paths`; `created`: maps above them it made
        or replaced (see `created`), which count as written themselves."""
        written = paths if type(paths) is frozenset else frozenset(paths)
        made = written.union(created) if created else written
        self._writes.append((prefixes_of(written), made))
        self.seq += 1

    def changed_since(self, seq: int, paths: Collection[Path], *,
                      above: Iterable[Path] | None = None) -> bool:
        """Whether a write after `seq` touched any of `paths`, above, at or beneath;
        `above`: every prefix of theirs but the whole object and the paths themselves,
        when the caller has them already."""
        if self.seq <= seq:
            return False
        if above is None:
            above = (above_of(paths) if type(paths) is frozenset else frozenset(
                prefix for path in paths for prefix in prefixes(path)[1:-1]))
        for under, exact in self._writes[seq:]:
            if not (under.isdisjoint(paths) and exact.isdisjoint(above)):
                return True
        return False
