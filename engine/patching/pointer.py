"""JSON Pointers (RFC 6901): the paths that JSON patch operations address.

`make_patch` builds pointers with `join`, `apply_patch` reads them back with `parse`.
Kubernetes keys routinely hold the two characters that need escaping — label and
annotation keys such as ``app.kubernetes.io/name`` — so both directions go through
here and nowhere else: ``~`` is written ``~0`` and ``/`` is written ``~1``.
"""

from __future__ import annotations


def escape(token: str) -> str:
    """Escape one reference token: ``~`` becomes ``~0``, then ``/`` becomes ``~1``."""
    if "~" in token:
        token = token.replace("~", "~0")
    if "/" in token:
        token = token.replace("/", "~1")
    return token


def join(pointer: str, token: str | int) -> str:
    """The pointer to child `token` (a key or a list index) of the value at `pointer`."""
    if isinstance(token, int):
        return f"{pointer}/{token}"
    return f"{pointer}/{escape(token)}"


def parse(pointer: str) -> list[str] | str:
    """The unescaped tokens of `pointer`, or a message saying why it is not a pointer.

    ``""`` is the whole document (no tokens); anything else must start with ``/``.
    Returns a string (the reason) instead of raising, so that `apply_patch` can put
    the operation's index and field into its error.
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        return f"{pointer!r} is not a JSON pointer (it must be empty or start with '/')"
    tokens = pointer[1:].split("/")
    if "~" not in pointer:
        return tokens
    out: list[str] = []
    for token in tokens:
        rest = token
        while "~" in rest:
            at = rest.index("~")
            if rest[at + 1 : at + 2] not in ("0", "1"):
                return f"{pointer!r} has a '~' that is not '~0' or '~1'"
            rest = rest[at + 2 :]
        out.append(token.replace("~1", "/").replace("~0", "~"))
    return out


def format_tokens(tokens: list[str]) -> str:
    """Tokens written back as a pointer, for messages."""
    return "".join("/" + escape(token) for token in tokens)
