"""What a merged partial object asserts, and where two such assertions clash.

`merge` reports, next to its result, one `Assignment` per leaf that the partial object
sets. The evaluator keeps the assignments of every rule in a pass and calls `conflicts`
on them: two rules that set the same path to different values are a conflict
(DESIGN.md, "Evaluation semantics" 3) — the later rule still wins, but both rule sets are
told. Assignments describe the *partial*, not the target, so two rules are compared on
what they asked for whatever the object looked like in between.

Paths are tuples of keys. Items of lists merged by their keys (``x-kubernetes-list-type:
map``) are addressed by those keys, and items of ``set`` lists by their value, as an
`ItemKey` — a string such as ``"name=app"`` or ``"containerPort=80,protocol=TCP"`` that
also carries the keys — so ``("spec", "template", "spec", "containers", ItemKey.of_keys(
{"name": "app"}), "image")`` is the image of container ``app`` wherever that container
sits in the list.

Leaves, and the value an assignment carries:

- a scalar: the scalar;
- ``null`` (delete a key) or an item ``{name: x, $patch: delete}``: `DELETE`;
- a list that replaces (an atomic list, or one the schema says nothing of): the whole
  new list;
- an item of a ``set`` list: the item;
- an empty map ``{}``, or a keyed item that holds nothing but its keys: ``{}``, meaning
  "this map exists" — it is compatible with anything set beneath it.

Assignment values belong to the merge result: treat them as read-only.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from engine.patching.values import json_equal

PathKey = tuple[str | int, ...]


class ItemKey(str):
    """A list item named by its keys (a map list) or by its value (a set list).

    It compares and hashes as its text, so paths stay plain tuples; `keys` or `value`
    keep what it names, so a path can be followed back into an object.
    """

    keys: Mapping[str, Any] | None
    value: Any

    @classmethod
    def of_keys(cls, keys: Mapping[str, Any]) -> ItemKey:
        text = ",".join(f"{k}={v if isinstance(v, str) else _canonical(v)}"
                        for k, v in keys.items())
        made = cls(text)
        made.keys, made.value = dict(keys), None
        return made

    @classmethod
    def of_value(cls, value: Any) -> ItemKey:
        made = cls("=" + _canonical(value))
        made.keys, made.value = None, value
        return made


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Deletion(enum.Enum):
    """The value of an assignment that removes a key or a named item."""

    DELETE = "delete"

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = Deletion.DELETE


@dataclass(frozen=True, slots=True)
class Assignment:
    """One leaf that a partial object sets: `value` at `path` (or `DELETE`)."""

    path: PathKey
    value: Any

    def describe(self) -> str:
        shown = "deleted" if self.value is DELETE else repr(self.value)
        return f"{format_path(self.path)} = {shown}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two assignments that cannot both hold: `first` from one rule, `second` from the other.

    Their paths are equal (different values), or one is a prefix of the other (the
    shorter one sets a scalar, a list or a deletion where the longer one sets something
    beneath).
    """

    first: Assignment
    second: Assignment

    def describe(self) -> str:
        return f"{self.first.describe()} conflicts with {self.second.describe()}"


def format_path(path: PathKey) -> str:
    """A path as people write it: ``spec.template.spec.containers[name=app].image``."""
    out: list[str] = []
    for key in path:
        if isinstance(key, int | ItemKey):
            out.append(f"[{key}]")
        elif not key.replace("-", "").replace("_", "").isalnum():
            out.append(f"[{key!r}]")
        else:
            out.append(f".{key}" if out else key)
    return "".join(out) or "(the whole object)"


def conflicts(a: Sequence[Assignment], b: Sequence[Assignment]) -> list[Conflict]:
    """The pairs of assignments, one from `a` and one from `b`, that cannot both hold.

    - same path, different values (`json_equal`: ``1`` and ``true`` differ), which
      includes a deletion against a set;
    - one path a proper prefix of the other, where the shorter sets anything but a map
      (a scalar, a list, a deletion) and the longer sets a value beneath it. A deletion
      beneath a non-map is no conflict: both leave that path absent.

    Cost is O((len(a) + len(b)) * depth) dict lookups, not O(len(a) * len(b)).
    Conflicts come in the order of `a`; each pair is reported once.
    """
    if not a or not b:
        return []
    index_a = _index(a)
    index_b = _index(b)
    found: list[tuple[int, Conflict]] = []
    for position, x in enumerate(a):
        for _, y in index_b.get(x.path, ()):
            if not json_equal(x.value, y.value):
                found.append((position, Conflict(x, y)))
        if x.value is not DELETE:
            for cut in range(len(x.path)):
                for _, y in index_b.get(x.path[:cut], ()):
                    if not isinstance(y.value, dict):
                        found.append((position, Conflict(x, y)))
    for y in b:
        if y.value is DELETE:
            continue
        for cut in range(len(y.path)):
            for position, x in index_a.get(y.path[:cut], ()):
                if not isinstance(x.value, dict):
                    found.append((position, Conflict(x, y)))
    found.sort(key=lambda pair: pair[0])
    return [conflict for _, conflict in found]


def _index(assignments: Sequence[Assignment]) -> dict[PathKey, list[tuple[int, Assignment]]]:
    index: dict[PathKey, list[tuple[int, Assignment]]] = {}
    for position, item in enumerate(assignments):
        index.setdefault(item.path, []).append((position, item))
    return index
