"""Which paths of the trigger changed, and when, during one evaluation.

The engine's fixed-point passes re-run a rule only when something it reads (or
something it wrote) changed since it last ran; otherwise the rule would give exactly
the same result again, so a confirmation pass costs almost nothing. Paths are the
tuples merge assignments use; reads come from `CompiledRule.reads` (conservative
supersets computed from the CEL and Jinja sources; None means "reads everything").
"""

from __future__ import annotations

from collections.abc import Iterable

Path = tuple[str | int, ...]


class ChangeLog:
    def __init__(self) -> None:
        self.seq = 0
        self._at: dict[Path, int] = {}  # a path written exactly here, last time
        self._under: dict[Path, int] = {}  # something at or beneath this path, last time

    def wrote(self, paths: Iterable[Path]) -> None:
        self.seq += 1
        for path in paths:
            self._at[path] = self.seq
            for cut in range(len(path) + 1):
                self._under[path[:cut]] = self.seq

    def changed_since(self, seq: int, paths: Iterable[Path]) -> bool:
        """Whether a write after `seq` touched any of `paths`, above, at or beneath."""
        if self.seq <= seq:
            return False
        for path in paths:
            if self._under.get(path, 0) > seq:
                return True
            for cut in range(1, len(path)):
                if self._at.get(path[:cut], 0) > seq:
                    return True
        return False
