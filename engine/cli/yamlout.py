"""YAML output of the offline commands: libyaml's emitter where it writes the same bytes.

`edict apply` prints every object it was given and every child it made, so on large
inputs writing YAML is most of its time: PyYAML's own emitter costs ~4x libyaml's
(`yaml.CSafeDumper`). The two agree byte for byte except in two places, found by
fuzzing both on random documents (`tests/unit/test_yamlout.py` keeps checking): how a
long double-quoted scalar is wrapped (a string holding an escape, a tab, a character
outside ASCII, or a line break next to a space), and an empty mapping key (PyYAML's
emitter writes `? ''`). A document that could hold either is written by PyYAML's
emitter; the others, in runs, by libyaml's. The output is the same with or without
libyaml; only the time differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

_FAST: Any = getattr(yaml, "CSafeDumper", None)
_PYTHON: Any = yaml.SafeDumper

# In a document's JSON text: an escape other than \n \" \\ \/, a line break next to a
# space, or an empty key. Conservative: it may send a document the slow way needlessly
# (a key ending in a quote, a backslash), never the fast way wrongly.
_EMITTERS_DIFFER = re.compile(r'\\[^n"\\/]| \\n|\\n |"":')


def _fast_is_same(doc: Any) -> bool:
    text = json.dumps(doc, default=str, check_circular=False)
    return _EMITTERS_DIFFER.search(text) is None


def dump_all(docs: Iterable[Any], stream: Any) -> None:
    """`yaml.safe_dump_all(docs, stream, sort_keys=False, explicit_start=True)`, sooner."""
    run: list[Any] = []
    fast = False
    for doc in docs:
        this = _FAST is not None and _fast_is_same(doc)
        if run and this is not fast:
            _write(run, stream, fast=fast)
            run = []
        run.append(doc)
        fast = this
    if run:
        _write(run, stream, fast=fast)


def _write(docs: list[Any], stream: Any, *, fast: bool) -> None:
    yaml.dump_all(docs, stream, Dumper=_FAST if fast else _PYTHON, sort_keys=False,
                  explicit_start=True)
