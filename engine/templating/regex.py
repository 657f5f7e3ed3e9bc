"""Regular expressions for the template filters: RE2, compiled once, bounded in size.

`filters.regex_search` and `filters.regex_replace` call `compile_regex` and `check_input`.
RE2 runs in time linear in the text, whatever the pattern (no backtracking, so no
backreferences or lookaround: such a pattern is a clear error), and its compiled program
is bounded in memory. Patterns are cached by text and flags, so a rule that runs on
every object compiles its pattern once. The pattern length and the text a pattern runs
on are bounded by the rendering's `TemplateLimits`.

RE2's syntax is Go's (and Kubernetes CEL's): ``\\d``, ``\\w`` and ``\\b`` are ASCII;
``\\pL`` and ``\\z`` work; replacements use ``\\1`` and ``\\g<name>`` as in Python.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2
from jinja2.exceptions import FilterArgumentError

from engine.templating.limits import LimitExceeded, current

MAX_PROGRAM_MEMORY = 8 << 20
"""Memory RE2 may use for one compiled pattern (its default): bigger ones are refused."""


class RegexError(FilterArgumentError):
    """A pattern RE2 cannot compile (its syntax, or a program over the memory bound)."""


def compile_regex(pattern: str, *, ignorecase: bool = False, multiline: bool = False) -> Any:
    """The compiled pattern (cached); `RegexError` when RE2 refuses it."""
    size = current().max_regex_pattern
    if len(pattern) > size:
        raise LimitExceeded(f"the regular expression is {len(pattern)} characters long, over "
                            f"the limit of {size}", limit="max_regex_pattern")
    return _compile(pattern, ignorecase, multiline)


def check_input(text: str) -> None:
    """Refuse to run a pattern on a text over the limit."""
    size = current().max_regex_input
    if len(text) > size:
        raise LimitExceeded(f"the text a regular expression runs on is {len(text)} "
                            f"characters long, over the limit of {size}",
                            limit="max_regex_input")


@lru_cache(maxsize=512)
def _compile(pattern: str, ignorecase: bool, multiline: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is raised, not printed on standard error
    options.max_mem = MAX_PROGRAM_MEMORY
    flags = ("i" if ignorecase else "") + ("m" if multiline else "")
    try:
        return re2.compile(f"(?{flags}){pattern}" if flags else pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"invalid regular expression {pattern!r} (RE2 syntax): "
                         f"{reason}") from None
