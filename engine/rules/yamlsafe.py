"""Parsing YAML text that anyone may have written, into plain JSON values, within limits.

`engine.rules.documents` calls `load_stream` for every file, standard input and test
case; the template filter ``from_yaml`` calls it through `documents.parse_value`.
Everything YAML can do to the program reading it is bounded or refused here:

- **aliases**: a document whose anchors are used is measured as if every alias were
  expanded (without expanding it): growing by more than `LoadLimits.max_alias_expansion`
  that way, too many shared references (`max_aliases`) or a recursive alias is an
  error. Merge keys
  (``<<: *base``) are flattened without copying repeated keys, so they cannot multiply;
- **nesting** deeper than `max_depth` is an error, found before libyaml's recursive
  composer could overflow the C stack (see `_depth_bound`);
- **size**: one document's text over `max_document_chars` is refused before parsing;
- **duplicate keys** are an error naming both lines (YAML says keys are unique; the
  silent "last one wins" hides mistakes and lets a second ``condition:`` slip by);
- **values are JSON values**: keys are strings (``1:``, ``true:`` and ``null:`` become
  ``"1"``, ``"true"``, ``"null"``, as Kubernetes' YAML decoder makes them); unquoted
  dates stay strings; NaN and infinities, ``!!binary``, ``!!set``, ``!!omap``,
  ``!!pairs`` and every Python tag are errors.

Speed: libyaml (`CParser`) scans, parses and composes as before; only documents whose
cheap depth bound is high or that use anchors pay for an extra walk. A document whose
bound is very high is composed by PyYAML's Python composer instead, with a depth check.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

_CParser: Any
try:
    from yaml._yaml import CParser as _CParser  # libyaml
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CParser = None

STR = "tag:yaml.org,2002:str"
MERGE = "tag:yaml.org,2002:merge"
VALUE = "tag:yaml.org,2002:value"
TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """Limits on what reading one file may cost; defaults in docs/security.md."""

    max_file_bytes: int = 64 * 1024 * 1024
    """The largest file (or standard input) read, in bytes."""
    max_document_chars: int = 32 * 1024 * 1024
    """The longest text of one document (with its comments), in characters."""
    max_alias_expansion: int = 1024 * 1024
    """How much larger expanding its aliases may make one document: characters of the
    strings and keys plus one per value, beyond what the document holds without them."""
    max_depth: int = 100
    """The deepest nesting of mappings and lists in one document."""
    max_aliases: int = 1000
    """References to an already used mapping or list (aliases) in one document."""


DEFAULT_LOAD_LIMITS: Final = LoadLimits()

# Documents whose depth bound is at most this are composed by libyaml (C, recursive);
# above it PyYAML's composer (Python, depth-checked) runs instead.
_C_COMPOSER_BOUND = 256

_BLANK_OR_BREAK = frozenset(" \t\r\n\x85\u2028\u2029")
_RUN = re.compile(r"[ \t?:-]*")
# An anchor as libyaml scans it (`&` and an alphanumeric, `-` or `_`): a document
# without one cannot use aliases. (`&&` in a CEL condition is not one.)
_ANCHOR = re.compile(r"&[0-9A-Za-z_-]")


@functools.lru_cache(maxsize=256)
def _run_at_line_start(length: int, breaks: str) -> re.Pattern[str]:
    return re.compile(f"[{breaks}][ \\t?:-]{{{length}}}")


class LoadError(Exception):
    """A document cannot be used; `index` is its position in the stream (from 1) when
    known, `line` the line (from 1) the problem is at."""

    def __init__(self, message: str, *, index: int | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.line = line

    def __str__(self) -> str:
        where = [f"document {self.index}"] if self.index else []
        if self.line:
            where.append(f"line {self.line}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


def load_stream(text: str, *, limits: LoadLimits = DEFAULT_LOAD_LIMITS
                ) -> Iterator[tuple[int, Any]]:
    """(position from 1, value) of every document of `text`, empty ones as None.

    Raises `LoadError` (one line) for anything over the limits or not valid YAML.
    """
    starts, bounds, anchored = _chunks(text, limits)
    loader = (_FastLoader if max(bounds) <= _C_COMPOSER_BOUND and _CParser is not None
              else _CheckedLoader)(text, limits)
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
        raise LoadError(f"not valid YAML: {_describe(exc)}", index=index or None) from None
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
    breaks = "\\n"
    if any(c in text for c in "\x85\u2028\u2029") or text.count("\r") != text.count("\r\n"):
        breaks = "\\n\\r\x85\u2028\u2029"
    match = _RUN.match(text)
    best = match.end() if match else 0
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


class _Resolver(Resolver):
    """YAML 1.1 resolution as PyYAML does it, except that a date stays a string (as
    Kubernetes' decoder keeps it) and ``=`` is a string, not a special value."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (TIMESTAMP, VALUE)]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


class _Constructor(SafeConstructor):
    """Safe construction of JSON values only, with unique keys and merges that cannot
    multiply."""

    merges = True  # False when the text cannot hold a merge key: no need to look

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[Node, int] = {}  # flattened mapping -> its merged pairs

    def forget(self) -> None:
        """Drop what was kept about the last document's nodes."""
        self._merged.clear()

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[str, Any]:  # type: ignore[override]
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        merged = self._flatten(node) if self.merges else 0
        mapping: dict[str, Any] = {}
        explicit: set[str] = set()
        construct = self.construct_object
        for number, (key_node, value_node) in enumerate(node.value):
            key = construct(key_node, deep=deep)
            if type(key) is not str:
                key = self._text(key, key_node)
            if number >= merged:
                if key in explicit:
                    raise self._duplicate(node, key, key_node, deep)
                explicit.add(key)
            mapping[key] = construct(value_node, deep=deep)
        return mapping

    def _duplicate(self, node: MappingNode, key: str, key_node: Node,
                   deep: bool) -> ConstructorError:
        lines = [k.start_mark.line + 1 for k, _ in node.value
                 if k is not key_node and self._text(self.construct_object(k, deep=deep), k)
                 == key]
        first = f" (first at line {lines[0]})" if lines else ""
        return ConstructorError(None, None, f"duplicate key {key!r}{first}: YAML keys must "
                                "be unique", key_node.start_mark)

    def _text(self, key: Any, key_node: Node) -> str:
        """A key as text: one that is not a string as Kubernetes' YAML decoder spells it."""
        if isinstance(key, str):
            return key
        if isinstance(key, bool):
            return "true" if key else "false"
        if key is None:
            return "null"
        if isinstance(key, int | float):
            return repr(key)
        raise ConstructorError(None, None, f"a mapping key must be a string, not a "
                               f"{type(key).__name__}", key_node.start_mark)

    def _flatten(self, node: MappingNode) -> int:
        """Resolve ``<<`` merge keys in place, like PyYAML, but keep each merged key once
        (the first source wins, explicit keys win over merged ones); returns how many of
        the pairs now at the front came from merges."""
        if node in self._merged:
            return self._merged[node]
        self._merged[node] = 0  # a merge that comes back here finds nothing more
        merged: dict[Any, tuple[Node, Node]] = {}
        explicit: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == VALUE:
                key_node.tag = STR
            if key_node.tag != MERGE:
                explicit.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"a merge key (<<) takes mappings, found {source.id}",
                        source.start_mark)
                self._flatten(source)
                effective: dict[Any, tuple[Node, Node]] = {}
                for pair in source.value:
                    effective[_identity(pair[0])] = pair
                for identity, pair in effective.items():
                    merged.setdefault(identity, pair)
        if merged:
            node.value = [*merged.values(), *explicit]
        self._merged[node] = len(merged)
        return len(merged)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(None, None, f"{node.value!r} is not a JSON number (NaN and "
                                   "infinities cannot be in a Kubernetes object)",
                                   node.start_mark)
        return value

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:
            raise ConstructorError(None, None, "the integer has too many digits",
                                   node.start_mark) from None
        return value

    def construct_yaml_timestamp(self, node: ScalarNode) -> str:  # type: ignore[override]
        return str(self.construct_scalar(node))

    def _unsupported(self, node: Node) -> Any:
        raise ConstructorError(None, None, f"the tag {node.tag!r} is not supported: a "
                               "Kubernetes object holds JSON values only", node.start_mark)


_Constructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    **{f"tag:yaml.org,2002:{name}": _Constructor._unsupported
       for name in ("binary", "set", "omap", "pairs")},
    VALUE: _Constructor._unsupported,
    MERGE: _Constructor._unsupported,
    TIMESTAMP: _Constructor.construct_yaml_timestamp,
    "tag:yaml.org,2002:float": _Constructor.construct_yaml_float,
    "tag:yaml.org,2002:int": _Constructor.construct_yaml_int,
}


def _identity(key_node: Node) -> Any:
    return (key_node.tag, key_node.value) if isinstance(key_node, ScalarNode) else key_node


class _DepthComposer(Composer):
    """PyYAML's composer, refusing to nest deeper than the limit (before it recurses)."""

    _limits: LoadLimits
    _depth = 0
    # provided by the parser this composer is mixed with
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self._limits.max_depth:
                event = self.peek_event()
                raise LoadError(f"mappings and lists nest deeper than the limit of "
                                f"{self._limits.max_depth}", line=event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


if _CParser is not None:
    class _FastLoader(_CParser, _Constructor, _Resolver):  # type: ignore[misc]
        """libyaml scans, parses and composes; only documents within the C bound."""

        def __init__(self, text: str, limits: LoadLimits) -> None:
            _CParser.__init__(self, text)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

    class _CheckedLoader(_DepthComposer, _CParser, _Constructor, _Resolver):  # type: ignore[misc]
        """libyaml scans and parses; PyYAML's composer, depth-checked, composes."""

        def __init__(self, text: str, limits: LoadLimits) -> None:
            _CParser.__init__(self, text)
            _DepthComposer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
            self._limits = limits
else:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _CheckedLoader(Reader, Scanner, Parser, _DepthComposer,  # type: ignore[no-redef]
                         _Constructor, _Resolver):
        def __init__(self, text: str, limits: LoadLimits) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)
            _DepthComposer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
            self._limits = limits

    _FastLoader = _CheckedLoader  # type: ignore[misc]
