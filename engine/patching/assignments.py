"""What a merged partial object asserts.

`merge` reports, next to its result, one `Assignment` per leaf that the partial object
sets. The evaluator keeps the assignments of every rule in a pass and checks each new
one against the earlier ones (the engine's one conflict check, in
`engine.evaluate.run`; tests/unit/test_conflict_check.py): two rules that set the same
path to different values are a conflict (DESIGN.md, "Evaluation semantics" 3) — the
later rule still wins, but both rule sets are told. Assignments describe the *partial*,
not the target, so two rules are compared on what they asked for whatever the object
looked like in between.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

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
