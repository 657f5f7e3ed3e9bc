"""Compile-time checks Kubernetes makes on a checked expression, beyond type-checking.

`engine.cel.adapter.compile_expression` calls `check` on every expression; it returns
the problems (empty when there are none), each a message the adapter turns into a
`engine.errors.CompileError`. As Kubernetes' base environment does (since 1.29):

- **Regex literals**: a constant pattern of ``matches``, ``find`` or ``findAll`` must
  compile with RE2 (`engine.regex`), so a broken pattern fails when the rule set
  loads rather than on every evaluation.
- **Duration and timestamp literals**: ``duration('…')`` and ``timestamp('…')`` of a
  constant must parse.
- **Homogeneous aggregate literals**: the elements of a list literal, and the keys and
  the values of a map literal, must all have the same type (``[1, 2.5]`` and
  ``[object.x, 'a']`` do not compile: write ``[dyn(1), 2.5]`` to mean it); literals
  anywhere inside the arguments of ``format`` are exempt, as in Kubernetes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from engine import regex
from engine.cel.syntax import Checked, Node

_REGEX_FUNCTIONS = ("matches", "find", "findAll")


def check(checked: Checked, *, literal: Callable[[str, str], str | None]) -> list[str]:
    """Problems of `checked`; `literal(function, text)` validates a duration or timestamp
    constant (the adapter evaluates it with the library), giving its error or None."""
    problems: list[str] = []
    _walk(checked.root, checked.types, problems, literal, exempt=False)
    return problems


def _walk(node: Node, types: Mapping[int, str], problems: list[str],
          literal: Callable[[str, str], str | None], *, exempt: bool) -> None:
    if node.kind == "call":
        _call(node, problems, literal)
        exempt = exempt or node.name == "format"
    elif node.kind == "list" and not exempt:
        _same(problems, [_type(types, item.id, index in node.optional_indices)
                         for index, item in enumerate(node.args)])
    elif node.kind == "map" and not exempt and not node.message:
        _same(problems, [types.get(entry.key.id, "dyn") for entry in node.entries
                         if entry.key is not None])
        _same(problems, [_type(types, entry.value.id, entry.optional)
                         for entry in node.entries])
    for child in node.children():
        _walk(child, types, problems, literal, exempt=exempt)


def _type(types: Mapping[int, str], node_id: int, optional: bool) -> str:
    found = types.get(node_id, "dyn")
    if optional and found.startswith("optional_type(") and found.endswith(")"):
        return found[len("optional_type("):-1]
    return found


def _same(problems: list[str], found: list[str]) -> None:
    for kind in found[1:]:
        if kind != found[0]:
            problems.append(f"expected type '{_show(found[0])}' but found '{_show(kind)}' (a list "
                            "or map literal must hold values of one type; wrap one in dyn() "
                            "to mix them)")
            return


def _show(kind: str) -> str:
    return {"google.protobuf.Duration": "duration",
            "google.protobuf.Timestamp": "timestamp"}.get(kind, kind)


def _call(node: Node, problems: list[str], literal: Callable[[str, str], str | None]) -> None:
    arguments = ([node.operand] if node.operand is not None else []) + list(node.args)
    name = str(node.name)
    if name in _REGEX_FUNCTIONS and len(arguments) >= 2:
        pattern = _constant(arguments[1])
        if pattern is not None:
            error = _regex_error(pattern)
            if error:
                problems.append(f"{name}(): {error}")
    elif name in ("duration", "timestamp") and len(arguments) == 1:
        text = _constant(arguments[0])
        if text is not None:
            failed = literal(name, text)
            if failed:
                problems.append(f"invalid {name} literal {text!r}: {failed}")


def _constant(node: Node) -> Any:
    return node.value if node.kind == "const" and node.const == "string" else None


@functools.lru_cache(maxsize=1024)
def _regex_error(pattern: str) -> str:
    try:
        regex.compile(pattern)
    except regex.RegexError as error:
        return str(error)
    return ""
