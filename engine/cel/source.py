"""Source-level rewrites before parsing, for macros the library's parser lacks.

`engine.cel.adapter.compile_expression` calls `prepare` on every expression. The one
rewrite: Kubernetes (cel-go) accepts the two-variable ``exists_one(k, v, predicate)``
besides ``existsOne(k, v, predicate)``; cel-cpp's parser only knows the second, so a
call of ``exists_one`` with three arguments is renamed. The scan knows CEL's lexical
structure (quoted, triple-quoted, raw and bytes strings, escapes, ``//`` comments), so
nothing inside a string or a comment is touched.
"""

from __future__ import annotations

_IDENTIFIER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_OPEN, _CLOSE = "([{", ")]}"


def prepare(source: str) -> str:
    """`source` with three-argument ``.exists_one(`` calls written ``.existsOne(``."""
    if "exists_one" not in source:
        return source
    out: list[str] = []
    at = 0
    for start, end in _code_spans(source):
        chunk = source[start:end]
        position = chunk.find("exists_one")
        while position >= 0:
            absolute = start + position
            if _is_two_variable_call(source, absolute):
                out.append(source[at:absolute] + "existsOne")
                at = absolute + len("exists_one")
            position = chunk.find("exists_one", position + 1)
    out.append(source[at:])
    return "".join(out)


def _is_two_variable_call(source: str, at: int) -> bool:
    before = source[:at].rstrip()
    after_at = at + len("exists_one")
    if not before.endswith(".") or (after_at < len(source) and source[after_at] in _IDENTIFIER):
        return False
    if at > 0 and source[at - 1] in _IDENTIFIER:
        return False
    rest = after_at
    while rest < len(source) and source[rest].isspace():
        rest += 1
    if rest >= len(source) or source[rest] != "(":
        return False
    return _top_level_commas(source, rest) == 2


def _top_level_commas(source: str, open_at: int) -> int:
    """Commas directly inside the parenthesis at `open_at` (-1 when it never closes)."""
    depth, commas = 0, 0
    spans = [span for span in _code_spans(source) if span[1] > open_at]
    for start, end in spans:
        for index in range(max(start, open_at), end):
            char = source[index]
            if char in _OPEN:
                depth += 1
            elif char in _CLOSE:
                depth -= 1
                if depth == 0:
                    return commas
            elif char == "," and depth == 1:
                commas += 1
    return -1


def _code_spans(source: str) -> list[tuple[int, int]]:
    """The stretches of `source` outside string literals and comments."""
    spans: list[tuple[int, int]] = []
    at, start, length = 0, 0, len(source)
    while at < length:
        char = source[at]
        if char == "/" and source.startswith("//", at):
            spans.append((start, at))
            newline = source.find("\n", at)
            at = length if newline < 0 else newline
            start = at
            continue
        if char in "'\"":
            prefix = at
            while prefix > start and source[prefix - 1] in "rRbB":
                prefix -= 1
            raw = "r" in source[prefix:at].lower()
            spans.append((start, prefix))
            at = _string_end(source, at, raw)
            start = at
            continue
        at += 1
    spans.append((start, length))
    return [(a, b) for a, b in spans if b > a]


def _string_end(source: str, at: int, raw: bool) -> int:
    quote = source[at] * 3 if source.startswith(source[at] * 3, at) else source[at]
    at += len(quote)
    while at < len(source):
        if source.startswith(quote, at):
            return at + len(quote)
        at += 2 if source[at] == "\\" and not raw else 1
    return at
