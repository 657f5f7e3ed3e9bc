"""The filters Edict's templates get, and the size limits every string must respect.

`environment.py` registers `FILTERS` on the one shared sandboxed environment and uses
the limits below to guard operators and string methods; templates reach the filters
through Jinja2 only. The list, with what each filter does, is in the package docstring.

Every string a template builds is bounded by `MAX_STRING` characters. The checks run
*before* the big value is allocated wherever the growth comes from an argument (a
width, a repeat count, a replacement); constant-factor growth is caught afterwards.
Jinja2's built-in filters that take such an argument are replaced by checked versions.
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

MAX_STRING = 1024 * 1024
"""The longest string (in characters) a template may build: 1 MiB."""

MAX_ITEMS = 100_000
"""The longest list a repetition may build; the same bound as Jinja2's sandboxed range."""

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HASHES = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512"})
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


class SizeLimitExceeded(Exception):
    """A template tried to build a string or list over the limits of this module."""


def check_length(length: int, what: str) -> None:
    """Refuse to build a string of `length` characters when that is over the limit."""
    if length > MAX_STRING:
        raise SizeLimitExceeded(
            f"{what} would be {length} characters long, over the limit of {MAX_STRING}"
        )


def check_size(value: Any, what: str) -> None:
    """Refuse to turn `value` into text when even a lower bound of its length is too big.

    Counts the characters of every string and one per item, stopping as soon as the
    bound is passed, so shared references (a list holding one long string many times,
    YAML aliases) cannot make the walk itself expensive.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item) + 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | KeysView | ValuesView | ItemsView):
            total += len(item) + 1
            stack.extend(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 1
        if total > MAX_STRING:
            check_length(total, what)


def check_items(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        raise SizeLimitExceeded(f"{what} would have {count} items, over the limit of {MAX_ITEMS}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


def check_percent_format(template: str, args: Any) -> None:
    """Refuse ``%`` formats whose widths or precisions would build a huge string."""
    for width, precision in _PERCENT_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise SizeLimitExceeded("a '*' width or precision is not allowed")
            if number and int(number) > MAX_STRING:
                check_length(int(number), "a formatted field")
    check_size(args, "the formatted values")


def check_join(separator: str, items: list[Any]) -> None:
    check_size(items, "join's result")
    check_length(len(separator) * len(items), "join's result")


def check_replace(text: str, old: str, new: str, *, count: int | None) -> None:
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    check_length(len(text) + found * (len(new) - len(old)), "replace's result")


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
    data = yaml.load(value, Loader=_Loader)
    check_size(data, "from_yaml's result")  # aliases can make a small text a huge value
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


def _flags(ignorecase: bool, multiline: bool) -> int:
    return (re.IGNORECASE if ignorecase else 0) | (re.MULTILINE if multiline else 0)


def regex_replace(value: Any, pattern: str, replacement: str = "", ignorecase: bool = False,
                  multiline: bool = False, count: int = 0) -> str:
    text = str(value)
    regex = re.compile(pattern, _flags(ignorecase, multiline))
    # Each match adds the replacement, whose group references may each add the whole text.
    per_match = len(replacement) + replacement.count("\\") * len(text)
    if per_match * (len(text) + 1) + len(text) > MAX_STRING:
        limit = range(count or len(text) + 1)
        matches = sum(1 for _ in zip(regex.finditer(text), limit, strict=False))
        check_length(len(text) + matches * per_match, "regex_replace's result")
    return regex.sub(replacement, text, count=count)


def regex_search(value: Any, pattern: str, *groups: str, ignorecase: bool = False,
                 multiline: bool = False) -> str | list[str] | None:
    """The match, or the groups asked for (``'\\1'``, ``'\\g<name>'``); None if none."""
    match = re.search(pattern, str(value), _flags(ignorecase, multiline))
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
