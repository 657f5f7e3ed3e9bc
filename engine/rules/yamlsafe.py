"""Parsing YAML text that anyone may have written, into plain JSON values, within limits.

`engine.rules.documents` calls `load_stream` for every file, standard input and test
case; the template filter ``from_yaml`` calls it through `documents.parse_value`.
Everything YAML can do to the program reading it is bounded or refused here:

- **aliases**: a document whose anchors are used is measured as if every alias were
  expanded (without expanding it): too large (`LoadLimits.max_document_size`), too many
  shared references (`max_aliases`) or a recursive alias is an error. Merge keys
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

_CParser: Any = getattr(yaml, "CParser", None)

STR = "tag:yaml.org,2002:str"
MERGE = "tag:yaml.org,2002:merge"
VALUE = "tag:yaml.org,2002:value"
TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """Limits on what reading one file may cost; defaults in docs/security.md."""

    max_file_bytes: int = 64 * 1024 * 1024
    """The largest file (or standard input) read, in bytes."""
    max_document_chars: int = 4 * 1024 * 1024
    """The longest text of one document (with its comments), in characters."""
    max_document_size: int = 4 * 1024 * 1024
    """One document's size with every alias expanded: characters of its strings and keys
    plus one per value."""
    max_depth: int = 100
    """The deepest nesting of mappings and lists in one document."""
    max_aliases: int = 1000
    """References to an already used mapping or list (aliases) in one document."""


DEFAULT_LOAD_LIMITS: Final = LoadLimits()

# Documents whose depth bound is at most this are composed by libyaml (C, recursive);
# above it PyYAML's composer (Python, depth-checked) runs instead.
_C_COMPOSER_BOUND = 256

_DOCUMENT_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n\x85\u2028\u2029]|\Z)", re.M)
# The run of indentation and block indicators a line starts with (after any line break
# libyaml knows): a block collection starts within it.
_LEADING = re.compile(r"(?:^|[\r\x85\u2028\u2029])([ \t?:-]*)", re.M)


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
    index = 0
    try:
        while loader.check_node():
            index += 1
            node: Any = loader.get_node()
            chunk = bisect.bisect_right(starts, node.start_mark.index) - 1
            value = loader.construct_document(node)
            if anchored[chunk] or bounds[chunk] > limits.max_depth:
                _measure(value, limits)
            yield index, value
    except LoadError as exc:
        exc.index = exc.index or index or None
        raise
    except yaml.MarkedYAMLError as exc:
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
    starts = [0] + [m.start() for m in _DOCUMENT_MARKER.finditer(text) if m.start() > 0]
    ends = [*starts[1:], len(text)]
    bounds, anchored = [], []
    for number, (start, end) in enumerate(zip(starts, ends, strict=True), start=1):
        if end - start > limits.max_document_chars:
            raise LoadError(f"the document text is {end - start} characters long, over the "
                            f"limit of {limits.max_document_chars}",
                            line=text.count("\n", 0, start) + 1 if number > 1 else None)
        chunk = text[start:end]
        bounds.append(_depth_bound(chunk))
        anchored.append("&" in chunk)
    return starts, bounds, anchored


def _depth_bound(chunk: str) -> int:
    """An upper bound of the nesting depth of the document in `chunk`, cheaply.

    A flow collection opens with ``[`` or ``{``. A block collection starts within the
    run of indentation and indicators (``-``, ``?``, ``:``) its first line begins with,
    and a nested block collection starts further right than its parent, except a
    sequence that is a mapping's value, which may share the mapping's column: so block
    nesting is at most twice that longest run. Aliases cannot deepen a document without
    an anchor, and a document with one is measured exactly after loading anyway.
    """
    flow = chunk.count("[") + chunk.count("{")
    longest = max(map(len, _LEADING.findall(chunk)), default=0)
    return flow + 2 * (longest + 1)


def _measure(value: Any, limits: LoadLimits) -> None:
    """Size, depth and shared references of `value` as if every alias were expanded,
    computed once per distinct mapping or list; raises `LoadError` over the limits."""
    done: dict[int, tuple[int, int]] = {}  # id -> (expanded size, depth)
    open_: set[int] = set()
    references = 0
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
        size, depth = 1, 1
        for child in children:
            if isinstance(child, dict | list):
                references += 1
                child_size, child_depth = done[id(child)]
                size += child_size
                depth = max(depth, child_depth + 1)
            else:
                size += len(child) + 1 if isinstance(child, str) else 1
        if isinstance(node, dict):
            size += sum(len(k) + 1 for k in node)
        done[key] = (size, depth)
        open_.discard(key)
        stack.pop()
        if depth > limits.max_depth:
            raise LoadError(f"mappings and lists nest {depth} deep, over the limit of "
                            f"{limits.max_depth}")
        if size > limits.max_document_size:
            raise LoadError(f"the document would be {size} units large once its aliases "
                            f"are expanded, over the limit of {limits.max_document_size}")
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

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[Node, int] = {}  # flattened mapping -> its merged pairs

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[str, Any]:  # type: ignore[override]
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        merged = self._flatten(node)
        mapping: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for number, (key_node, value_node) in enumerate(node.value):
            key = self._key(key_node, deep)
            if number >= merged:
                line = key_node.start_mark.line + 1
                if key in first_line:
                    raise ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line "
                        f"{first_line[key]}): YAML keys must be unique", key_node.start_mark)
                first_line[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def _key(self, key_node: Node, deep: bool) -> str:
        key = self.construct_object(key_node, deep=deep)
        if type(key) is str:
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
