"""Parsing YAML text that anyone may have written, into plain JSON values, within limits.

`engine.rules.documents` calls `load_stream` for every file, standard input and test
case; the template filter ``from_yaml`` calls it through `documents.parse_value`.
Everything YAML can do to the program reading it is bounded or refused here:

- **aliases**: a document whose anchors are used is measured as if every alias were
  expanded (without expanding it): growing by more than `LoadLimits.max_alias_expansion`
  that way, too many shared references (`max_aliases`) or a recursive alias is an
  error. Merge keys (``<<: *base``) are flattened without copying repeated keys, so
  they cannot multiply;
- **nesting** deeper than `max_depth` is an error, found before libyaml's recursive
  composer could overflow the C stack (see `_longest_run`);
- **size**: one document's text over `max_document_chars` is refused before parsing;
- **duplicate keys** are an error naming both lines (YAML says keys are unique; the
  silent "last one wins" hides mistakes and lets a second ``condition:`` slip by);
- **values are JSON values** (`engine.rules.yamlconstruct`): keys are strings (``1:``,
  ``true:`` and ``null:`` become ``"1"``, ``"true"``, ``"null"``, as Kubernetes' YAML
  decoder makes them); unquoted dates stay strings; NaN and infinities, ``!!binary``,
  ``!!set``, ``!!omap``, ``!!pairs`` and every Python tag are errors.

Speed: libyaml (`CParser`) scans, parses and composes as before; only documents whose
cheap depth bound is high or that use anchors pay for an extra walk. A document whose
bound is very high is composed by PyYAML's Python composer instead, with a depth check.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from engine.rules.yamlconstruct import (
    DEFAULT_LOAD_LIMITS,
    CheckedLoader,
    CParser,
    FastLoader,
    LoadError,
    LoadLimits,
)

__all__ = ["DEFAULT_LOAD_LIMITS", "LoadError", "LoadLimits", "load_stream"]

# Documents whose depth bound is at most this are composed by libyaml (C, recursive);
# above it PyYAML's composer (Python, depth-checked) runs instead.
_C_COMPOSER_BOUND = 256

_BLANK_OR_BREAK = frozenset(" \t\r\n\x85\u2028\u2029")
_RUN = re.compile(r"[ \t?:-]*")
_RUNS = re.compile(r"\n([ \t?:-]+)")
_RUNS_ANY = re.compile(r"[\n\r\x85\u2028\u2029]([ \t?:-]+)")
_EXOTIC_BREAK = re.compile(r"[\x85\u2028\u2029]|\r(?!\n)")
_SMALL = 1 << 16
# An anchor as libyaml scans it (`&` and an alphanumeric, `-` or `_`): a document
# without one cannot use aliases. (`&&` in a CEL condition is not one.)
_ANCHOR = re.compile(r"&[0-9A-Za-z_-]")


@functools.lru_cache(maxsize=256)
def _run_at_line_start(length: int, breaks: str) -> re.Pattern[str]:
    return re.compile(f"[{breaks}][ \\t?:-]{{{length}}}")


def load_stream(text: str, *, limits: LoadLimits = DEFAULT_LOAD_LIMITS
                ) -> Iterator[tuple[int, Any]]:
    """(position from 1, value) of every document of `text`, empty ones as None.

    Raises `LoadError` (one line) for anything over the limits or not valid YAML.
    """
    starts, bounds, anchored = _chunks(text, limits)
    loader = (FastLoader if max(bounds) <= _C_COMPOSER_BOUND and CParser is not None
              else CheckedLoader)(text, limits)
    # a merge key is written `<<`, `!!merge`, or with a tag spelled out or made by %TAG
    loader.merges = "<<" in text or "!!merge" in text or "tag:yaml.org,2002:" in text
    index = 0
    try:
        while loader.check_node():
            index += 1
            node: Any = loader.get_node()
            chunk = bisect.bisect_right(starts, node.start_mark.index) - 1
            value = loader.construct_document(node)
            loader.forget()
            if anchored[chunk] or bounds[chunk] > limits.max_depth:
                _measure(value, limits)
            yield index, value
    except LoadError as exc:
        exc.index = exc.index or index or None
        raise
    except ConstructorError as exc:
        raise LoadError(_describe(exc), index=index or None) from None
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):
            # PyYAML >= 6.0.4 scans ahead through flow collections and stops at its own
            # bound (1,000) before the composer reaches ours: the same finding
            mark = exc.problem_mark
            raise LoadError(f"mappings and lists nest deeper than the limit of "
                            f"{limits.max_depth}", index=index or None,
                            line=mark.line + 1 if mark else None) from None
        raise LoadError(_describe(exc), index=index or None) from None
    except yaml.YAMLError as exc:
        raise LoadError(f"not valid YAML: {' '.join(str(exc).split())}",
                        index=index or None) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise LoadError(f"cannot read a value: {' '.join(str(exc).split())}",
                        index=index or None) from None
    finally:
        loader.dispose()


def _chunks(text: str, limits: LoadLimits) -> tuple[list[int], list[int], list[bool]]:
    """Where each document's text starts, a bound on its depth, and whether it has an
    anchor; refuses a document text over the limit before anything parses it."""
    starts = _document_starts(text)
    ends = [*starts[1:], len(text)]
    block = 2 * (_longest_run(text) + 1)
    bounds, anchored = [], []
    for number, (start, end) in enumerate(zip(starts, ends, strict=True), start=1):
        if end - start > limits.max_document_chars:
            raise LoadError(f"the document text is {end - start} characters long, over the "
                            f"limit of {limits.max_document_chars}",
                            line=text.count("\n", 0, start) + 1 if number > 1 else None)
        bounds.append(text.count("[", start, end) + text.count("{", start, end) + block)
        anchored.append(_ANCHOR.search(text, start, end) is not None)
    return starts, bounds, anchored


def _document_starts(text: str) -> list[int]:
    """Offsets of ``---`` and ``...`` at the start of a line (and 0): every document of
    the stream lies between two of them. (libyaml also starts lines after other breaks;
    missing those only makes a piece larger, and its bounds looser.)"""
    starts = [0]
    for marker in ("\n---", "\n..."):
        at = text.find(marker)
        while at >= 0:
            follower = text[at + 4:at + 5]
            if not follower or follower in _BLANK_OR_BREAK:
                starts.append(at + 1)
            at = text.find(marker, at + 4)
    return sorted(starts)


def _longest_run(text: str) -> int:
    """The longest run of indentation and block indicators a line of `text` starts with.

    A flow collection opens with ``[`` or ``{`` (counted per document). A block
    collection starts within that run on its first line, and a nested block collection
    starts further right than its parent, except a sequence that is a mapping's value,
    which may share the mapping's column: so block nesting is at most twice the longest
    run, plus one. Block collections hold flow ones, never the other way round, so the
    two bounds add up. Aliases cannot deepen a document without an anchor, and a
    document with one is measured exactly once loaded. Found with one pass of a regular
    expression looking only for runs longer than the longest so far.
    """
    exotic = _EXOTIC_BREAK.search(text) is not None
    breaks = "\\n\\r\x85\u2028\u2029" if exotic else "\\n"
    match = _RUN.match(text)
    best = match.end() if match else 0
    if len(text) <= _SMALL:  # one pass that lists every run is cheaper for a small text
        runs = (_RUNS_ANY if exotic else _RUNS).findall(text)
        return max(best, max(map(len, runs), default=0))
    at = 0
    while True:
        found = _run_at_line_start(best + 1, breaks).search(text, at)
        if found is None:
            return best
        start = found.start() + 1
        run = _RUN.match(text, start)
        best = run.end() - start if run else best + 1
        at = start


def _measure(value: Any, limits: LoadLimits) -> None:
    """Depth, shared references and growth of `value` as if every alias were expanded,
    computed once per distinct mapping or list; raises `LoadError` over the limits."""
    done: dict[int, tuple[int, int]] = {}  # id -> (expanded size, depth)
    open_: set[int] = set()
    references = compact = 0
    stack = [value]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in done:
            stack.pop()
            continue
        children = list(node.values()) if isinstance(node, dict) else (
            node if isinstance(node, list) else None)
        if children is None:
            stack.pop()
            continue
        if key not in open_:
            open_.add(key)
            for child in children:
                if isinstance(child, dict | list):
                    if id(child) in open_:
                        raise LoadError("an alias refers to a mapping or list that holds "
                                        "it (a recursive alias)")
                    if id(child) not in done:
                        stack.append(child)
            continue
        own = 1 + (sum(len(k) + 1 for k in node) if isinstance(node, dict) else 0)
        size, depth = own, 1
        for child in children:
            if isinstance(child, dict | list):
                references += 1
                child_size, child_depth = done[id(child)]
                size += child_size
                depth = max(depth, child_depth + 1)
            else:
                scalar = len(child) + 1 if isinstance(child, str) else 1
                size += scalar
                own += scalar
        done[key] = (size, depth)
        compact += own
        open_.discard(key)
        stack.pop()
        if depth > limits.max_depth:
            raise LoadError(f"mappings and lists nest {depth} deep, over the limit of "
                            f"{limits.max_depth}")
        if size - compact > limits.max_alias_expansion:
            raise LoadError(f"its aliases would make the document {size - compact} units "
                            f"larger once expanded, over the limit of "
                            f"{limits.max_alias_expansion}")
    shared = references - (len(done) - 1)
    if shared > limits.max_aliases:
        raise LoadError(f"{shared} aliases of mappings or lists, over the limit of "
                        f"{limits.max_aliases}")


def _describe(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    text = "not valid YAML: " + ("; ".join(" ".join(str(p).split()) for p in parts)
                                 or "cannot parse")
    mark = exc.problem_mark or exc.context_mark
    if mark is not None:
        text += f" (line {mark.line + 1}, column {mark.column + 1})"
    return text
