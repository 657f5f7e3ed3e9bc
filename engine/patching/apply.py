"""Applying a JSON patch (RFC 6902) to a value without mutating it.

Used for `mutate.jsonPatch` rules (the operations a template rendered, for what
merging cannot say), by `edict test` to check patches, and by the tests of
`make_patch`. All six operations are supported: ``add``, ``remove``, ``replace``,
``move``, ``copy`` and ``test``.

Failures raise `PatchError` naming the operation's index, its path and why: a malformed
operation, a path that does not exist, a ``test`` whose value differs (compared with
`json_equal`, so ``1`` is not ``true``). Either the whole patch applies or none of it.

Sharing: the target is never mutated. Containers along every written path are copied
(each at most once per call), values taken from operations are deep-copied, and
untouched subtrees are shared with the target — treat the result as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import PatchError, Where
from engine.patching.pointer import format_tokens, parse
from engine.patching.values import copy_json, json_equal

_NEEDS = {
    "add": ("path", "value"),
    "remove": ("path",),
    "replace": ("path", "value"),
    "move": ("from", "path"),
    "copy": ("from", "path"),
    "test": ("path", "value"),
}


class _Failed(Exception):
    """Why one operation failed; `apply_patch` adds which operation it was."""


def apply_patch(target: Any, ops: Sequence[Mapping[str, Any]], *, where: Where) -> Any:
    """The result of applying `ops` to `target`, which is left as it was."""
    doc = _Document(target)
    for index, op in enumerate(ops):
        try:
            doc.apply(op)
        except _Failed as failure:
            raise PatchError(f"{_describe(index, op)}: {failure}", where=where) from None
    return doc.root


def _describe(index: int, op: Any) -> str:
    if isinstance(op, Mapping) and isinstance(op.get("op"), str):
        return f"operation {index} ({op['op']} {op.get('path')!r})"
    return f"operation {index}"


class _Document:
    """The value being patched, copied on write."""

    def __init__(self, root: Any) -> None:
        self.root = root
        # Containers this call created, so already safe to edit. Holding the objects
        # (not only their ids) keeps an id from being reused by another object.
        self.owned: dict[int, Any] = {}

    def apply(self, op: Any) -> None:
        if not isinstance(op, Mapping):
            raise _Failed(f"an operation must be a map, not {type(op).__name__}")
        kind = op.get("op")
        if kind not in _NEEDS:
            raise _Failed(f"unknown op {kind!r} (expected one of {', '.join(_NEEDS)})")
        for field in _NEEDS[kind]:
            if field not in op:
                raise _Failed(f"{field!r} is missing")
        path = self.pointer(op, "path")
        if kind == "add":
            self.add(path, copy_json(op["value"]))
        elif kind == "remove":
            self.remove(path)
        elif kind == "replace":
            self.get(path)
            self.set(path, copy_json(op["value"]))
        elif kind == "test":
            actual = self.get(path)
            if not json_equal(actual, op["value"]):
                raise _Failed(f"test failed: the value is {actual!r}, not {op['value']!r}")
        else:
            source = self.pointer(op, "from")
            value = self.get(source)
            if kind == "copy":
                self.add(path, copy_json(value))
            elif source != path:
                if path[: len(source)] == source:
                    raise _Failed("cannot move a value into one of its own children")
                self.remove(source)
                self.add(path, value)

    def pointer(self, op: Mapping[str, Any], field: str) -> list[str]:
        raw = op[field]
        if not isinstance(raw, str):
            raise _Failed(f"{field!r} must be a string, not {type(raw).__name__}")
        tokens = parse(raw)
        if isinstance(tokens, str):
            raise _Failed(tokens)
        return tokens

    def get(self, tokens: list[str]) -> Any:
        node = self.root
        for depth, token in enumerate(tokens):
            node = node[_key(node, token, tokens[: depth + 1])]
        return node

    def add(self, tokens: list[str], value: Any) -> None:
        if not tokens:
            self.root = value
            return
        parent = self.writable(tokens[:-1])
        token = tokens[-1]
        if isinstance(parent, list):
            if token == "-":
                parent.append(value)
            else:
                parent.insert(_index(parent, token, tokens, end_ok=True), value)
        elif isinstance(parent, dict):
            parent[token] = value
        else:
            raise _Failed(f"{format_tokens(tokens[:-1]) or 'the document'} is not a container")

    def set(self, tokens: list[str], value: Any) -> None:
        if not tokens:
            self.root = value
            return
        parent = self.writable(tokens[:-1])
        parent[_key(parent, tokens[-1], tokens)] = value

    def remove(self, tokens: list[str]) -> None:
        if not tokens:
            raise _Failed("cannot remove the whole document")
        parent = self.writable(tokens[:-1])
        del parent[_key(parent, tokens[-1], tokens)]

    def writable(self, tokens: list[str]) -> Any:
        """The container at `tokens`, and every container above it, copied if shared."""
        self.root = self.own(self.root)
        node = self.root
        for depth, token in enumerate(tokens):
            key = _key(node, token, tokens[: depth + 1])
            child = self.own(node[key])
            node[key] = child
            node = child
        return node

    def own(self, node: Any) -> Any:
        if id(node) in self.owned or not isinstance(node, dict | list):
            return node
        copied: Any = dict(node) if isinstance(node, dict) else list(node)
        self.owned[id(copied)] = copied
        return copied


def _key(node: Any, token: str, tokens: list[str]) -> Any:
    """The dict key or list index that `token` names in `node`, which must exist."""
    if isinstance(node, dict):
        if token not in node:
            raise _Failed(f"{format_tokens(tokens)} does not exist")
        return token
    if isinstance(node, list):
        return _index(node, token, tokens, end_ok=False)
    raise _Failed(f"{format_tokens(tokens)} does not exist: its parent is not a container")


def _index(node: list[Any], token: str, tokens: list[str], *, end_ok: bool) -> int:
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise _Failed(f"{format_tokens(tokens)}: {token!r} is not a list index")
    index = int(token)
    if index > len(node) or (index == len(node) and not end_ok):
        raise _Failed(f"{format_tokens(tokens)}: index {index} is out of range")
    return index
