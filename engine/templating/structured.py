"""The tree a structured template compiles to, and how each templated string runs.

`engine.templating.compile_template` calls `compile_node` once, when a rule set loads:
it walks the parsed YAML value and compiles each templated string (and key) with the
shared sandbox `environment.ENV`. `Template.render` only walks the tree: a subtree
without Jinja2 comes back as fresh containers unpickled from bytes made at compile
time; a lone ``{{ expression }}`` is evaluated as an expression (never printed and
re-parsed) and copied into plain values by `to_plain`; other strings are printed as
text with a size bound. Errors name the path in the template and the failing string.

Each distinct string is compiled once (`compiled.py`): its Jinja2 template, the runner of
`fast.py` when the string is only paths, filters and text (tried first at render time;
Jinja2 runs when it cannot), and what the string reads, which `reads_of` gathers for a
whole template.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jinja2
from jinja2 import TemplateSyntaxError

from engine.errors import CompileError, TemplateError, Where
from engine.templating import reads
from engine.templating.compiled import Compiled, compile_string
from engine.templating.environment import ENV, OMIT, MissingVariable
from engine.templating.filters import check_length
from engine.templating.limits import LimitExceeded, TemplateLimitExceeded, current
from engine.templating.plain import to_plain

_MARKERS = ("{{", "{%", "{#")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
Reads = tuple[frozenset[reads.Path] | None, frozenset[str]]


class Node(Protocol):
    """A compiled part of a template; `scope` is what `scope()` built for this render."""

    def render(self, scope: dict[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Const:
    value: Any

    def render(self, scope: dict[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class _Frozen:
    """A static container: unpickling our own bytes is the fastest deep copy."""

    blob: bytes | None
    value: Any = None  # only for something the YAML loader made that pickle refuses

    def render(self, scope: dict[str, Any]) -> Any:
        return pickle.loads(self.blob) if self.blob is not None else copy.deepcopy(self.value)


_STATIC = (_Const, _Frozen)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Leaf:
    """One templated string: evaluated natively or printed as text, by the string's fast
    runner when it has one and that succeeds, else by Jinja2 (which then words any error)."""

    compiled: Compiled
    source: str
    path: str
    where: Where
    fast: bool = True  # False: always Jinja2 (tests compare the two)

    @property
    def template(self) -> jinja2.Template:
        return self.compiled.template

    def render(self, scope: dict[str, Any]) -> Any:
        try:
            return self._run(scope)
        except Exception as exc:
            raise self._error(exc, scope) from exc

    def render_key(self, scope: dict[str, Any]) -> Any:
        """A templated key: its text, or `OMIT` for a lone ``{{ omit }}``."""
        try:
            key = self._run(scope)
            if key is not OMIT:
                if key is None or isinstance(key, dict | list):
                    raise TypeError(f"a key must render to text, not {type(key).__name__}")
                key = str(key)
                if not key:
                    raise ValueError("the key renders to an empty string")
            return key
        except Exception as exc:
            raise self._error(exc, scope) from exc

    def _run(self, scope: dict[str, Any]) -> Any:
        runner = self.compiled.runner
        if runner is not None and self.fast:
            try:
                return runner(scope)
            except Exception:
                pass  # Jinja2 decides, and words the error
        if self.compiled.native:
            return to_plain(self._evaluate(scope))
        return self._print(scope)

    def _evaluate(self, scope: dict[str, Any]) -> Any:
        context = self.template.new_context(scope, shared=True)
        for _ in self.template.root_render_func(context):
            pass
        return context.vars["result"]

    def _print(self, scope: dict[str, Any]) -> str:
        parts: list[str] = []
        size = 0
        limit = current().max_string
        for chunk in self.template.root_render_func(self.template.new_context(scope, shared=True)):
            size += len(chunk)
            if size > limit:
                check_length(size, "the rendered text")
            parts.append(chunk)
        return "".join(parts)

    def _error(self, exc: Exception, scope: Mapping[str, Any]) -> TemplateError:
        known = isinstance(exc, jinja2.TemplateError | LimitExceeded)
        reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, MissingVariable):
            names = sorted(name for name in scope if name not in ENV.globals)
            reason += f" (variables: {', '.join(names)})" if names else " (no variables)"
        line = _template_line(exc, self.template) if "\n" in self.source.strip() else None
        where = f", line {line}" if line else ""
        message = f"{_at(self.path)} {_snippet(self.source)}{where}: {reason}"
        limit = _limit_of(exc)
        if limit is not None:
            return TemplateLimitExceeded(f"{message} (limit templates.{limit})", limit=limit,
                                         where=self.where)
        return TemplateError(message, where=self.where)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Map:
    entries: tuple[tuple[Any, _Leaf | None, Node], ...]
    path: str
    where: Where

    def render(self, scope: dict[str, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, key_leaf, node in self.entries:
            if key_leaf is not None:
                key = key_leaf.render_key(scope)
                if key is OMIT:
                    continue
            value = node.render(scope)
            if value is OMIT:
                continue
            if key in out:
                raise TemplateError(
                    f"{_at(self.path)}: key {_snippet(key_leaf.source if key_leaf else key)} "
                    f"renders to {key!r}, which another key of this mapping already has",
                    where=self.where,
                )
            out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class _List:
    items: tuple[Node, ...]

    def render(self, scope: dict[str, Any]) -> list[Any]:
        return [value for value in (node.render(scope) for node in self.items)
                if value is not OMIT]


def compile_node(value: Any, *, where: Where, fast: bool = True) -> Node:
    """The tree for a parsed YAML value; `CompileError` names the path that failed.

    ``fast=False`` renders every string with Jinja2, never with `fast.py` (for tests).
    """
    return _compile(value, "", where=where, fast=fast)


def compile_text(source: str, *, where: Where, fast: bool = True) -> Node:
    """A node that always renders `source` as text, even a lone ``{{ expression }}``."""
    if not _is_templated(source):
        return _Const(source)
    return _compile_string(source, "", where=where, text=True, fast=fast)


def reads_of(node: Node) -> Reads:
    """What rendering `node` can read: the paths under ``object`` (None: any of it) and the
    top-level variable names, over every templated value and key."""
    paths: set[reads.Path] | None = set()
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, _Map):
            for _, key_leaf, child in current.entries:
                if key_leaf is not None:
                    stack.append(key_leaf)
                stack.append(child)
        elif isinstance(current, _List):
            stack.extend(current.items)
        elif isinstance(current, _Leaf):
            names |= current.compiled.variables
            leaf_paths = current.compiled.reads
            paths = None if paths is None or leaf_paths is None else paths | leaf_paths
    return (None if paths is None else frozenset(paths)), frozenset(names)


Leaf = _Leaf
Constant = _Const
# (key, child) pairs; a child is a scalar `Constant`, a `Leaf` or a Shape beneath
Shape = tuple[tuple[str, Any], ...]


def static_keys(node: Node) -> Shape | None:
    """`node` as literal keys over scalar constants and templated strings (see
    `Template.shape`), or None when it holds anything else."""
    if isinstance(node, _Frozen):
        value = pickle.loads(node.blob) if node.blob is not None else node.value
        return _static_shape(value)
    if not isinstance(node, _Map) or not node.entries:
        return None
    out: list[tuple[str, Any]] = []
    for key, key_leaf, child in node.entries:
        if key_leaf is not None or not isinstance(key, str):
            return None
        if isinstance(child, _Leaf):
            out.append((key, child))
            continue
        if isinstance(child, _Const):
            if not _is_scalar(child.value):
                return None
            out.append((key, child))
            continue
        inner = static_keys(child)
        if inner is None:
            return None
        out.append((key, inner))
    return tuple(out)


def list_item_shape(node: Node) -> tuple[tuple[str, ...], Shape] | None:
    """`node` as a chain of one-key maps (literal keys) down to a list of one item that
    is a shape (`static_keys`): the chain's keys and the item's shape; None otherwise."""
    path: list[str] = []
    while isinstance(node, _Map) and len(node.entries) == 1:
        key, key_leaf, child = node.entries[0]
        if key_leaf is not None or not isinstance(key, str):
            return None
        path.append(key)
        node = child
    if not path or not isinstance(node, _List) or len(node.items) != 1:
        return None
    shape = static_keys(node.items[0])
    return None if shape is None else (tuple(path), shape)


def _static_shape(value: Any) -> Shape | None:
    if not isinstance(value, dict) or not value:
        return None
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        if not isinstance(key, str):
            return None
        if _is_scalar(item):
            out.append((key, _Const(item)))
            continue
        inner = _static_shape(item)
        if inner is None:
            return None
        out.append((key, inner))
    return tuple(out)


def _is_scalar(value: Any) -> bool:
    return type(value) in (str, int, float, bool)


def is_static(node: Node) -> bool:
    """True when the node holds no Jinja2 at all."""
    return isinstance(node, _STATIC)


def scope(variables: Mapping[str, Any]) -> dict[str, Any]:
    """What every node of one render reads: the variables over the environment's globals."""
    return {**ENV.globals, **variables}


def _compile(value: Any, path: str, *, where: Where, fast: bool) -> Node:
    if isinstance(value, str):
        if _is_templated(value):
            return _compile_string(value, path, where=where, fast=fast)
        return _Const(value)
    if isinstance(value, Mapping):
        entries = []
        for key, item in value.items():
            child = _child_path(path, key)
            key_leaf = None
            if isinstance(key, str) and _is_templated(key):
                key_leaf = _compile_string(key, child, where=where, fast=fast)
            entries.append((key, key_leaf, _compile(item, child, where=where, fast=fast)))
        if all(leaf is None and isinstance(node, _STATIC) for _, leaf, node in entries):
            return _static(value)
        return _Map(entries=tuple(entries), path=path, where=where)
    if isinstance(value, list | tuple):
        items = tuple(_compile(item, f"{path}[{i}]", where=where, fast=fast)
                      for i, item in enumerate(value))
        if all(isinstance(node, _STATIC) for node in items):
            return _static(value)
        return _List(items)
    return _static(value)


def _static(value: Any) -> Node:
    if value is None or isinstance(value, str | bool | int | float):
        return _Const(value)
    try:
        return _Frozen(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        return _Frozen(None, copy.deepcopy(value))


def _compile_string(source: str, path: str, *, where: Where, fast: bool,
                    text: bool = False) -> _Leaf:
    try:
        compiled = compile_string(source, text=text)
    except Exception as exc:
        reason = (f"{exc.message} (line {exc.lineno})" if isinstance(exc, TemplateSyntaxError)
                  else f"{type(exc).__name__}: {exc}")
        raise CompileError(f"{_at(path)} {_snippet(source)}: {reason}", where=where) from exc
    return _Leaf(compiled=compiled, source=source, path=path, where=where, fast=fast)


def _is_templated(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, str) and _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


def _at(path: str) -> str:
    return f"at {path}" if path else "at the top level"


def _snippet(source: Any) -> str:
    text = repr(source)
    return text if len(text) <= 80 else text[:76] + "...'"


def _limit_of(exc: BaseException) -> str | None:
    """The limit a failure went over, also when Jinja2 or a filter wrapped the error."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, LimitExceeded):
            return seen.limit
        seen = seen.__cause__ or seen.__context__
    return None


def _template_line(exc: BaseException, template: jinja2.Template) -> int | None:
    """The template line an exception came from, read off Jinja2's generated code."""
    lines = [template.get_corresponding_lineno(lineno)
             for frame, lineno in traceback.walk_tb(exc.__traceback__)
             if frame.f_globals.get("__jinja_template__") is template]
    return lines[-1] if lines else None
