"""The filters Edict's templates get, beyond Jinja2's built-in ones.

`environment.py` registers `FILTERS` on the one shared sandboxed environment; templates
reach the filters through Jinja2 only. The list, with what each filter does, is in the
package docstring. Every filter that builds a string or parses a text checks its size
against the rendering's limits first (`limits.py`); regular expressions are RE2,
compiled and cached by `engine.regex` as CEL's are: linear in the text, whatever the
pattern, with RE2's (Go's, Kubernetes') syntax — ``\\d``, ``\\w`` and ``\\b`` are ASCII,
``\\pL`` and ``\\z`` work, no backreferences or lookaround; replacements use ``\\1``
and ``\\g<name>`` as in Python. The pattern's length and the text it runs on are bounded
by the rendering's `TemplateLimits`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    ValuesView,
)
from typing import Any

import yaml
from jinja2 import Undefined
from jinja2.exceptions import FilterArgumentError, UndefinedError

from engine import regex
from engine.errors import InputError
from engine.rules.documents import parse_value
from engine.templating import limits
from engine.templating.limits import (
    DEFAULT_LIMITS,
    LimitExceeded,
    check_items,
    check_join,
    check_length,
    check_percent_format,
    check_replace,
    check_size,
)

__all__ = ["FILTERS", "MAX_ITEMS", "MAX_STRING", "SizeLimitExceeded", "check_items",
           "check_join", "check_length", "check_percent_format", "check_replace",
           "check_size"]

MAX_STRING = DEFAULT_LIMITS.max_string
"""The default longest string (in characters) a template may build: 1 MiB."""

MAX_ITEMS = DEFAULT_LIMITS.max_items
"""The default longest list a repetition may build, and the longest ``range``."""

SizeLimitExceeded = LimitExceeded
"""A template tried to build a string or list over the limits (the older name)."""

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_HASHES = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512"})
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")




def _data(value: Any) -> Any:
    """Plain JSON/YAML data from what a Jinja2 expression produced (tuples, generators)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping):
        return {_data(key): _data(item) for key, item in value.items()}
    if isinstance(value, list | tuple | range | Iterator | KeysView | ValuesView | ItemsView):
        return [_data(item) for item in value]
    raise TypeError(f"cannot serialise {value!r} ({type(value).__name__})")


def to_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    data = _data(value)
    check_size(data, "to_json's result")
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=False,
                      allow_nan=False)
    check_length(len(text), "to_json's result")
    return text


def to_yaml(value: Any, indent: int = 2, sort_keys: bool = False) -> str:
    data = _data(value)
    check_size(data, "to_yaml's result")
    text: str = yaml.dump(data, Dumper=_Dumper, default_flow_style=False, indent=indent,
                          sort_keys=sort_keys, allow_unicode=True, width=2**30)
    # A scalar document ends with an explicit "..." line that nobody wants to embed.
    text = text.removesuffix("\n...\n") + "\n" if text.endswith("\n...\n") else text
    check_length(len(text), "to_yaml's result")
    return text


def from_json(value: str) -> Any:
    return json.loads(value)


def from_yaml(value: str) -> Any:
    """One YAML document, loaded the hardened way (`engine.rules.documents`): aliases,
    nesting and size bounded, duplicate keys refused, JSON values only."""
    text = str(value)
    check_length(len(text), "from_yaml's input")
    try:
        data = parse_value(text, source="from_yaml")
    except InputError as exc:
        raise FilterArgumentError(f"from_yaml: {exc.message}") from None
    check_size(data, "from_yaml's result")
    return data


def b64encode(value: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(str(value).encode(encoding)).decode("ascii")


def b64decode(value: str, encoding: str = "utf-8") -> str:
    return base64.b64decode(str(value), validate=True).decode(encoding)


def _text(value: Any, name: str) -> str:
    if isinstance(value, Mapping | list | tuple):
        raise FilterArgumentError(f"{name} expects a string, not a {type(value).__name__}: "
                                  f"serialise it first, e.g. `| to_json | {name}`")
    return str(value)


def sha256(value: Any) -> str:
    return hashlib.sha256(_text(value, "sha256").encode()).hexdigest()


def hash_(value: Any, algorithm: str = "sha1") -> str:
    if algorithm not in _HASHES:
        raise FilterArgumentError(f"hash: unknown algorithm {algorithm!r}, use one of "
                                  + ", ".join(sorted(_HASHES)))
    return hashlib.new(algorithm, _text(value, "hash").encode()).hexdigest()


def quote(value: Any) -> str:
    return shlex.quote(str(value))


class RegexError(FilterArgumentError):
    """A pattern RE2 does not accept, as a template error."""


def compile_regex(pattern: str, *, ignorecase: bool = False, multiline: bool = False
                  ) -> regex.Pattern:
    """The shared compiled pattern (`engine.regex`), after the rendering's length limit."""
    size = limits.current().max_regex_pattern
    if len(pattern) > size:
        raise LimitExceeded(f"the regular expression is {len(pattern)} characters long, over "
                            f"the limit of {size}", limit="max_regex_pattern")
    try:
        return regex.compile(pattern, ignorecase=ignorecase, multiline=multiline)
    except regex.RegexError as error:
        raise RegexError(str(error)) from None


def check_input(text: str) -> None:
    """Refuse to run a pattern on a text over the rendering's limit."""
    size = limits.current().max_regex_input
    if len(text) > size:
        raise LimitExceeded(f"the text a regular expression runs on is {len(text)} "
                            f"characters long, over the limit of {size}",
                            limit="max_regex_input")


def regex_replace(value: Any, pattern: str, replacement: str = "", ignorecase: bool = False,
                  multiline: bool = False, count: int = 0) -> str:
    """Replace matches of `pattern` (RE2), at most `count` of them when not 0.

    Each match is charged to the budget (a match is a step of Python code), and the
    result is checked as it grows, against a bound taken before a replacement with group
    references is expanded.
    """
    text = str(value)
    check_input(text)
    compiled = compile_regex(pattern, ignorecase=ignorecase, multiline=multiline)
    references = replacement.count("\\")
    limit = limits.current().max_string
    pieces: list[str] = []
    size = end = 0
    for replaced, match in enumerate(compiled.finditer(text)):
        if count and replaced >= count:
            break
        limits.spend(limits.MATCH_COST)
        start, stop = match.span()
        size += start - end
        if size + len(replacement) + references * (stop - start) > limit:
            check_length(size + len(replacement) + references * (stop - start),
                         "regex_replace's result")
        piece: str = match.expand(replacement)
        size += len(piece)
        pieces += (text[end:start], piece)
        end = stop
    pieces.append(text[end:])
    check_length(size + len(text) - end, "regex_replace's result")
    return "".join(pieces)


def regex_search(value: Any, pattern: str, *groups: str, ignorecase: bool = False,
                 multiline: bool = False) -> str | list[str] | None:
    """The match, or the groups asked for (``'\\1'``, ``'\\g<name>'``); None if none."""
    text = str(value)
    check_input(text)
    match = compile_regex(pattern, ignorecase=ignorecase, multiline=multiline).search(text)
    if match is None:
        return None
    return [match.expand(group) for group in groups] if groups else match.group(0)


def dict2items(value: Mapping[Any, Any], key_name: str = "key",
               value_name: str = "value") -> list[dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise FilterArgumentError(f"dict2items expects a mapping, not {type(value).__name__}")
    return [{key_name: key, value_name: item} for key, item in value.items()]


def items2dict(value: Iterable[Mapping[str, Any]], key_name: str = "key",
               value_name: str = "value") -> dict[Any, Any]:
    try:
        return {entry[key_name]: entry[value_name] for entry in value}
    except (KeyError, TypeError) as exc:
        raise FilterArgumentError(f"items2dict expects a list of mappings with keys "
                                  f"{key_name!r} and {value_name!r}") from exc


def _merge(base: Mapping[Any, Any], extra: Mapping[Any, Any], *, recursive: bool,
           list_merge: str) -> dict[Any, Any]:
    merged = dict(base)
    for key, value in extra.items():
        old = merged.get(key)
        if recursive and isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value, recursive=True, list_merge=list_merge)
        elif isinstance(old, list) and isinstance(value, list) and list_merge != "replace":
            merged[key] = {"keep": old, "append": old + value,
                           "prepend": value + old}[list_merge]
        else:
            merged[key] = value
    return merged


def combine(value: Any, *others: Mapping[Any, Any], recursive: bool = False,
            list_merge: str = "replace") -> dict[Any, Any]:
    """Later mappings win, like Ansible's ``combine``; ``recursive=True`` merges deeply."""
    if list_merge not in ("replace", "keep", "append", "prepend"):
        raise FilterArgumentError(f"combine: list_merge must be replace, keep, append or "
                                  f"prepend, not {list_merge!r}")
    layers = [*value, *others] if isinstance(value, list) else [value, *others]
    merged: dict[Any, Any] = {}
    for layer in layers:
        if not isinstance(layer, Mapping):
            raise FilterArgumentError(f"combine expects mappings, not {type(layer).__name__}")
        merged = _merge(merged, layer, recursive=recursive, list_merge=list_merge)
    return merged


def mandatory(value: Any, msg: str | None = None) -> Any:
    if isinstance(value, Undefined):
        raise UndefinedError(msg or f"mandatory value {value._undefined_name!r} is undefined")
    return value


def dns_label(value: Any, max_length: int = 63) -> str:
    """A valid DNS-1123 label made from `value`: lower case, runs of other characters
    become one ``-``, no ``-`` at either end, cut to `max_length` (at most 63)."""
    if not 1 <= max_length <= 63:
        raise FilterArgumentError(f"dns_label: max_length must be 1..63, not {max_length}")
    label = _DASHES.sub("-", _NOT_DNS.sub("-", str(value).lower())).strip("-")
    label = label[:max_length].rstrip("-")
    if not label:
        raise FilterArgumentError(f"dns_label: {value!r} has no letter or digit to keep")
    return label


FILTERS: Mapping[str, Callable[..., Any]] = {
    "to_json": to_json, "to_yaml": to_yaml,
    "from_json": from_json, "from_yaml": from_yaml,
    "b64encode": b64encode, "b64decode": b64decode,
    "sha256": sha256, "hash": hash_, "quote": quote,
    "regex_replace": regex_replace, "regex_search": regex_search,
    "dict2items": dict2items, "items2dict": items2dict, "combine": combine,
    "mandatory": mandatory, "dns_label": dns_label,
}
"""Edict's own filters, added to Jinja2's built-in ones."""
