"""What an informer keeps of an object: what rules can read, repeated strings shared once.

Every `Informer` passes each object it is about to cache through `slim` (the default
`InformerSettings.transform`, as client-go's informers take a transform). Decoded JSON
is several times larger than its text in Python (a dict per map, an object per string),
so a cache of 100,000 objects is mostly this; two things make it smaller:

* `metadata.managedFields` is dropped. It is the API server's record of who set which
  field, often half of an object's JSON; rules cannot use it (Edict records what it
  owns in its own annotation, see `engine.patching.owned`), and the reconciler compares
  what the server stored with what it asked for without it.
* Keys and short string values are shared: one `str` per distinct text, process-wide,
  instead of one per object per occurrence (`apiVersion`, `kind`, namespaces, label
  keys and values, container fields, `IfNotPresent`...). `json.loads` shares keys only
  within one call, so each watch event would otherwise bring its own copy of every key.

The result is a new, equal object (the input is left alone): `slim(obj) == obj` but for
`managedFields`. Like every cached object it is read-only; sharing strings makes no
difference there, strings are immutable. The table only grows, up to `MAX_STRINGS`
distinct texts (then strings not yet in it are kept as they are): strings unique to one
object (uids, names, versions) cost one entry each, which is less than a repeated
string saves.
"""

from __future__ import annotations

from typing import Any

from engine.objects import Obj

MAX_LENGTH = 64
"""Longer strings are rarely repeated (certificates, scripts, JSON in annotations)."""

MAX_STRINGS = 1_000_000

_strings: dict[str, str] = {}


def slim(obj: Obj) -> Obj:
    """`obj` without `metadata.managedFields`, its keys and short strings shared."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return _shared(obj)  # type: ignore[no-any-return]


def _shared(value: Any) -> Any:
    strings = _strings
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is str:
                key = strings.get(key) or _add(key)
            kind = type(item)
            if kind is str:
                if len(item) <= MAX_LENGTH:
                    item = strings.get(item) or _add(item)
            elif kind is dict or kind is list:
                item = _shared(item)
            out[key] = item
        return out
    if kind is list:
        return [_shared(item) if type(item) in (dict, list, str) else item for item in value]
    if kind is str and len(value) <= MAX_LENGTH:
        return strings.get(value) or _add(value)
    return value


def _add(text: str) -> str:
    if len(_strings) >= MAX_STRINGS or not text:
        return text
    return _strings.setdefault(text, text)


def shared_strings() -> int:
    """How many distinct strings are shared (for tests and diagnosis)."""
    return len(_strings)
