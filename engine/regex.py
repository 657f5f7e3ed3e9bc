"""Regular expressions for everything a rule can run: RE2, compiled once, linear in time.

The one regex module of Edict, at the bottom layer: CEL's ``matches``/``find``/``findAll``
(`engine.cel.library`), constant-pattern checks at compile time (`engine.cel.checks`),
the format checks of `engine.cel.names` and the template filters ``regex_search`` and
``regex_replace`` (`engine.templating.filters`) all compile through `compile`, so they
share one syntax, one set of error messages and one cache. A backtracking engine would
let a pattern and a string from data hang the engine (``(a+)+$`` against
``'a' * 40 + '!'``); RE2 runs in time linear in the text. CEL's own ``matches`` with a
constant pattern runs on RE2 inside cel-expr-python, with the same syntax.

API (all that callers should use):

- ``compile(pattern, *, ignorecase=False, multiline=False, dotall=False) -> Pattern``:
  RE2 syntax (as Go's ``regexp`` and Kubernetes accept it: ``\\pL``, ``\\z``, named
  groups; no lookaround, no backreferences, ``$`` only at the very end unless
  multiline). Compiled patterns are cached by pattern and flags (`CACHE_SIZE`, least
  recently used out). A pattern RE2 rejects raises `RegexError` naming the pattern and
  RE2's reason; so does one whose program needs more than `MAX_PROGRAM_MEMORY`; so does a
  pattern that counted repetitions and Unicode classes grow beyond `MAX_EXPANSION` atoms
  (RE2 builds every copy of ``x{1,1000}``, and its time grows faster than their number:
  three of them take 16 ms to compile, ten 300 ms; a pattern taken from data must not
  stall the engine).
- ``Pattern.search(text, pos=0)``, ``Pattern.fullmatch(text)`` -> `Match` or None;
  ``Pattern.finditer(text)``; ``Pattern.sub(replacement, text, count=0)`` with Python's
  template syntax (``\\1``, ``\\g<name>``).
- ``Pattern.find(text)`` and ``Pattern.find_all(text, limit=-1)``: Go's
  ``FindString``/``FindAllString`` (an empty match right after a match is skipped),
  which is what Kubernetes' ``find``/``findAll`` return. Each search is linear, but
  every successive search of ``find_all`` may scan the rest of the text (``a*b|a``
  over ``'a' * n`` scans n²/2 characters, as in Go), so ``find_all`` stops with
  `RegexWorkExceeded` once it has run `FIND_ALL_SECONDS` (checked every 64 matches).
- A `Match` has ``group()``, ``groups()``, ``groupdict()``, ``span()``, ``start()``,
  ``end()`` and ``expand(template)``, like Python's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import re2

CACHE_SIZE = 512
"""Compiled patterns kept; RE2 objects hold up to `MAX_PROGRAM_MEMORY` each."""

MAX_PROGRAM_MEMORY = 8 << 20
"""Memory RE2 may use for one compiled pattern (its default): bigger ones are refused."""

FIND_ALL_SECONDS = 0.25
"""How long one ``find_all`` may run. Ordinary patterns find 10,000 matches in a
100,000-character text in about 30 ms; a pattern that rescans the text per match takes
seconds there."""


MAX_EXPANSION = 3000
"""Most atoms a pattern may grow by through counted repetition and Unicode classes (a
``\\p`` class counts 100: thirty of them take 30 ms to compile)."""
_UNICODE_CLASS = 100  # a \p class compiles to hundreds of ranges


class RegexError(ValueError):
    """A pattern RE2 does not accept."""


class RegexWorkExceeded(RuntimeError):
    """``find_all`` would scan the text too many times over."""


class Match(Protocol):
    """One match (RE2's match object, shaped like Python's ``re.Match``)."""

    def group(self, *groups: int | str) -> Any: ...
    def groups(self, default: Any = None) -> tuple[Any, ...]: ...
    def groupdict(self, default: Any = None) -> dict[str, Any]: ...
    def span(self, group: int = 0) -> tuple[int, int]: ...
    def start(self, group: int = 0) -> int: ...
    def end(self, group: int = 0) -> int: ...
    def expand(self, template: str) -> str: ...


@dataclass(frozen=True, eq=False)
class Pattern:
    """A compiled RE2 pattern; immutable, shared by threads."""

    pattern: str
    _regex: Any

    @property
    def groups(self) -> int:
        return int(self._regex.groups)

    @property
    def groupindex(self) -> dict[str, int]:
        return dict(self._regex.groupindex)

    def search(self, text: str, pos: int = 0) -> Match | None:
        found: Match | None = self._regex.search(text, pos)
        return found

    def fullmatch(self, text: str) -> Match | None:
        found: Match | None = self._regex.fullmatch(text)
        return found

    def finditer(self, text: str) -> Iterator[Match]:
        iterator: Iterator[Match] = self._regex.finditer(text)
        return iterator

    def sub(self, replacement: str, text: str, count: int = 0) -> str:
        return str(self._regex.sub(replacement, text, count))

    def find(self, text: str) -> str:
        """The leftmost match, or ``''`` when there is none."""
        match = self.search(text)
        return "" if match is None else str(match.group())

    def find_all(self, text: str, limit: int = -1, *,
                 seconds: float = FIND_ALL_SECONDS) -> list[str]:
        """Every match left to right, at most `limit` of them when `limit` >= 0."""
        found: list[str] = []
        if limit == 0:
            return found
        deadline = time.perf_counter() + seconds
        previous_end = -1
        for count, match in enumerate(self.finditer(text), 1):
            if count % 64 == 0 and time.perf_counter() > deadline:
                raise RegexWorkExceeded(
                    f"findAll({self.pattern!r}) over a {len(text)}-character string stopped "
                    f"after {seconds} s and {count} matches")
            start, end = match.span()
            accepted = not (start == end and start == previous_end)
            previous_end = end
            if accepted:
                found.append(str(match.group()))
                if 0 < limit <= len(found):
                    break
        return found


def compile(pattern: str, *, ignorecase: bool = False, multiline: bool = False,
            dotall: bool = False) -> Pattern:
    """The RE2 `Pattern` for `pattern`, from the cache when it was compiled before."""
    flags = "".join(flag for flag, on in (("i", ignorecase), ("m", multiline), ("s", dotall))
                    if on)
    return _compile(pattern, flags)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile(pattern: str, flags: str) -> Pattern:
    size = expansion(pattern) - len(pattern)
    if size > MAX_EXPANSION:
        raise RegexError(f"regular expression {_shown(pattern)} is too complex for RE2: "
                         f"its counted repetitions and Unicode classes expand it by about "
                         f"{size} atoms, more than {MAX_EXPANSION}")
    options = re2.Options()
    options.log_errors = False  # the error is raised, not printed on standard error
    options.max_mem = MAX_PROGRAM_MEMORY
    source = f"(?{flags}){pattern}" if flags else pattern
    try:
        return Pattern(pattern, re2.compile(source, options))
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"invalid regular expression {_shown(pattern)} (RE2 syntax): "
                         f"{reason}") from None
    except UnicodeEncodeError:
        raise RegexError(f"invalid regular expression {_shown(pattern)} (RE2 syntax): not "
                         "valid UTF-8") from None


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:77] + "...")


def expansion(pattern: str) -> int:
    """About how many atoms `pattern` expands to (counted repetitions multiply what they
    repeat, nested ones multiply again); a cheap scan, no parsing of the rest."""
    total, _ = _sequence(pattern, 0)
    return total


def _sequence(pattern: str, at: int) -> tuple[int, int]:
    """The expansion of the alternatives from `at` to the matching ``)`` (or the end)."""
    total = previous = 0
    while at < len(pattern):
        char = pattern[at]
        if char == ")":
            return total, at + 1
        if char == "(":
            previous, at = _sequence(pattern, at + 1)
        elif char == "[":
            previous, at = _class(pattern, at + 1)
        elif char == "\\":
            unicode = pattern[at + 1:at + 2] in ("p", "P")
            previous, at = (_UNICODE_CLASS, at + 2) if unicode else (1, at + 2)
            if unicode and pattern[at:at + 1] == "{":
                at = max(pattern.find("}", at), at) + 1
            elif unicode:
                at += 1
        elif char == "{":
            close = pattern.find("}", at)
            bounds = pattern[at + 1:close].split(",") if close > at else []
            numbers = [int(part) for part in bounds if part.isdigit()]
            if close < 0 or not numbers:
                previous, at = 1, at + 1
                total += 1
                continue
            total += previous * (max(numbers) - 1)
            previous *= max(numbers)
            at = close + 1
            continue
        else:
            previous, at = 1, at + 1
        total += previous
    return total, at


def _class(pattern: str, at: int) -> tuple[int, int]:
    weight = 1
    if pattern[at:at + 1] == "]":
        at += 1
    while at < len(pattern) and pattern[at] != "]":
        if pattern[at] == "\\":
            weight += _UNICODE_CLASS if pattern[at + 1:at + 2] in ("p", "P") else 0
            at += 1
        at += 1
    return weight, at + 1
