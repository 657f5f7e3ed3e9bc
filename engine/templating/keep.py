"""Values rendered once: the `keep` filter and `random_string(n)`.

A generated password must be made once and then left alone, but a template renders on
every evaluation. ``{{ random_string(24) | b64encode | keep }}`` says "this value, unless
the child already has one here": `keep` wraps what it is given in a marker
(``{"$keep": value}``, plain data that survives rendering), and when the engine plans the
child (`engine.evaluate.children.plan`) `resolve` puts the live child's value at that
path in the marker's place, or the marker's value when the child has none (it is being
created, or someone removed the field). So the value is rendered on every evaluation and
written exactly once; a second evaluation changes nothing.

`random_string(n)` (letters and digits from `secrets`, 1 ≤ n ≤ 256) is only allowed
inside a `keep` expression: anywhere else it would change the output on every
evaluation and the engine would write forever. Both rules are checked when a template
compiles, on the token stream (the `Keep` extension): `keep` must be the last filter of
a string that is exactly one ``{{ expression }}``, and a string that calls
`random_string` must end in `keep`. `keep` only means something in a `generate`
template (`engine.evaluate.readiness` refuses it elsewhere, as `uses_keep` finds it).

Registered on the one environment by `environment._build` (``env.add_extension(Keep)``).
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream

KEEP = "$keep"
"""The marker's one key: ``{"$keep": value}`` stands for "the child's value, or this"."""
MAX_RANDOM = 256
_ALPHABET = string.ascii_letters + string.digits
_USES_KEEP = re.compile(r"\|\s*keep\b")


def keep(value: Any) -> dict[str, Any]:
    """The filter: `value`, unless the live child already has a value at this path."""
    return {KEEP: value}


def random_string(length: int = 24) -> str:
    """`length` random letters and digits (only allowed under `keep`)."""
    if not isinstance(length, int) or isinstance(length, bool) or not (
            1 <= length <= MAX_RANDOM):
        raise ValueError(f"random_string needs a length from 1 to {MAX_RANDOM}, not "
                         f"{length!r}")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Keep(Extension):
    """Adds `keep` and `random_string`, and checks where they are used."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters["keep"] = keep
        environment.globals["random_string"] = random_string

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)
        _check(tokens)
        return iter(tokens)

    def parse(self, parser: Any) -> nodes.Node:  # no tags of its own
        raise NotImplementedError


def _check(tokens: list[Token]) -> None:
    keeps = [i for i, t in enumerate(tokens) if t.type == "name" and t.value == "keep"
             and i > 0 and tokens[i - 1].type == "pipe"]
    randoms = [t for t in tokens if t.type == "name" and t.value == "random_string"]
    if not keeps and not randoms:
        return
    line = randoms[0].lineno if randoms else tokens[keeps[0]].lineno
    opened = [t for t in tokens if t.type in ("variable_begin", "block_begin")]
    text = any(t.type == "data" and t.value.strip() for t in tokens)
    whole = len(opened) == 1 and opened[0].type == "variable_begin" and not text
    expression = [t for t in tokens if t.type not in ("data", "variable_begin",
                                                      "variable_end")]
    ends = _ends_in_keep(expression)
    if keeps and not (whole and len(keeps) == 1 and ends):
        raise TemplateSyntaxError("keep must be the last filter of a value that is exactly "
                                  "one '{{ ... | keep }}' (it stands for the whole value), "
                                  "used once", line)
    if randoms and not ends:
        raise TemplateSyntaxError("random_string(n) gives a new value on every evaluation: "
                                  "it is only allowed in a value kept once made, "
                                  "'{{ random_string(24) | keep }}'", line)


def _ends_in_keep(tokens: list[Token]) -> bool:
    """`... | keep` or `... | keep()` at the end of the expression."""
    tail = [t.type if t.type != "name" else f"name:{t.value}" for t in tokens[-4:]]
    return tail[-2:] == ["pipe", "name:keep"] or tail[-4:] == [
        "pipe", "name:keep", "lparen", "rparen"]


def uses_keep(text: str) -> bool:
    """Whether a templated string uses `keep` (for rules that are no `generate`)."""
    return "{{" in text and _USES_KEEP.search(text) is not None


def resolve(rendered: Any, live: Any) -> Any:
    """`rendered` with every `keep` marker replaced by the value at the same path of
    `live` (the child as it exists; None when it does not), or by the marker's value
    when `live` has none there."""
    if isinstance(rendered, dict):
        if len(rendered) == 1 and KEEP in rendered:
            return live if live is not None else resolve(rendered[KEEP], None)
        if not any(_has_marker(v) for v in rendered.values()):
            return rendered
        return {key: resolve(value, live.get(key) if isinstance(live, dict) else None)
                for key, value in rendered.items()}
    if isinstance(rendered, list) and any(_has_marker(v) for v in rendered):
        return [resolve(item, live[index] if isinstance(live, list) and index < len(live)
                        else None) for index, item in enumerate(rendered)]
    return rendered


def _has_marker(value: Any) -> bool:
    if isinstance(value, dict):
        return KEEP in value or any(_has_marker(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_marker(v) for v in value)
    return False
