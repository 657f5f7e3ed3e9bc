"""How YAML nodes become plain JSON values: PyYAML's resolver, constructor and composer,
adjusted for input anyone may have written, and the limits of reading one file.

`engine.rules.yamlsafe.load_stream` drives these loaders; nothing else uses them.

- `Resolver`: YAML 1.1 as PyYAML resolves it, except that a date stays a string (as
  Kubernetes' decoder keeps it) and ``=`` is a string;
- `Constructor`: keys are unique (a duplicate is an error naming both lines) and become
  strings as Kubernetes spells them; merge keys (``<<``) are flattened without copying
  repeated keys, so they cannot multiply; NaN, infinities, integers too long to print,
  ``!!binary``, ``!!set``, ``!!omap``, ``!!pairs`` and every Python tag are errors;
- `DepthComposer`: PyYAML's composer, refusing to nest deeper than the limit before it
  recurses;
- `FastLoader` (libyaml scans, parses and composes) and `CheckedLoader` (libyaml scans and
  parses, the depth-checked composer composes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver as _PyYAMLResolver

CParser: Any
try:
    from yaml._yaml import CParser as CParser  # libyaml
except ImportError:  # pragma: no cover - PyYAML without libyaml
    CParser = None

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


class Resolver(_PyYAMLResolver):
    """YAML 1.1 resolution as PyYAML does it, except that a date stays a string (as
    Kubernetes' decoder keeps it) and ``=`` is a string, not a special value."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (TIMESTAMP, VALUE)]
        for first, resolvers in _PyYAMLResolver.yaml_implicit_resolvers.items()
    }


class Constructor(SafeConstructor):
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


Constructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    **{f"tag:yaml.org,2002:{name}": Constructor._unsupported
       for name in ("binary", "set", "omap", "pairs")},
    VALUE: Constructor._unsupported,
    MERGE: Constructor._unsupported,
    TIMESTAMP: Constructor.construct_yaml_timestamp,
    "tag:yaml.org,2002:float": Constructor.construct_yaml_float,
    "tag:yaml.org,2002:int": Constructor.construct_yaml_int,
}


def _identity(key_node: Node) -> Any:
    return (key_node.tag, key_node.value) if isinstance(key_node, ScalarNode) else key_node


class DepthComposer(Composer):
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


if CParser is not None:
    class FastLoader(CParser, Constructor, Resolver):  # type: ignore[misc]
        """libyaml scans, parses and composes; only documents within the C bound."""

        def __init__(self, text: str, limits: LoadLimits) -> None:
            CParser.__init__(self, text)
            Constructor.__init__(self)
            Resolver.__init__(self)

    class CheckedLoader(DepthComposer, CParser, Constructor, Resolver):  # type: ignore[misc]
        """libyaml scans and parses; PyYAML's composer, depth-checked, composes."""

        def __init__(self, text: str, limits: LoadLimits) -> None:
            CParser.__init__(self, text)
            DepthComposer.__init__(self)
            Constructor.__init__(self)
            Resolver.__init__(self)
            self._limits = limits
else:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class CheckedLoader(Reader, Scanner, Parser, DepthComposer,  # type: ignore[no-redef]
                         Constructor, Resolver):
        def __init__(self, text: str, limits: LoadLimits) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)
            DepthComposer.__init__(self)
            Constructor.__init__(self)
            Resolver.__init__(self)
            self._limits = limits

    FastLoader = CheckedLoader  # type: ignore[misc]
