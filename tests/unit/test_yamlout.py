"""`engine.cli.yamlout`: libyaml's emitter where it writes PyYAML's bytes, PyYAML's elsewhere.

The property: for any documents, `dump_all` writes exactly what
`yaml.safe_dump_all(..., sort_keys=False, explicit_start=True)` writes. Strings are drawn
from printable ASCII with line breaks and spaces (where the two emitters agree and the
fast one is used) plus tabs, backslashes and characters outside ASCII (where they do
not, and the document must go the slow way).
"""

from __future__ import annotations

import io
import string
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import yamlout

ORDINARY = string.ascii_letters + string.digits + "-_./:=,#{}[]&*!|>%@`?\"'~^$()+;< \n"
TRICKY = ORDINARY + "\t\\\r\x85\u2028é中😀\ufeff"


def _documents(alphabet: str) -> Any:
    text = st.text(alphabet, max_size=120)
    scalars = st.one_of(text, st.integers(), st.booleans(), st.none(),
                        st.floats(allow_nan=False), st.sampled_from(["true", "1", "~", "- a"]))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(alphabet, max_size=12), inner,
                                                     max_size=4)), max_leaves=25)
    return st.lists(st.dictionaries(st.text(alphabet, max_size=12), values, min_size=1,
                                    max_size=5), min_size=1, max_size=4)


def _expected(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)


def _written(docs: list[Any]) -> str:
    out = io.StringIO()
    yamlout.dump_all(docs, out)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(_documents(ORDINARY))
def test_ordinary_documents_are_written_as_pyyaml_writes_them(docs: list[Any]) -> None:
    assert _written(docs) == _expected(docs)


@settings(max_examples=400, deadline=None)
@given(_documents(TRICKY))
def test_tricky_documents_are_written_as_pyyaml_writes_them(docs: list[Any]) -> None:
    assert _written(docs) == _expected(docs)


def test_a_kubernetes_object_goes_the_fast_way_and_a_tab_the_slow_way() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "labels": {"app": "web"}},
                  "data": {"config": "a: 1\nb: 2\n", "long": "x " * 80}}
    assert yamlout._fast_is_same(deployment)
    assert not yamlout._fast_is_same({"data": {"x": "a\tb"}})
    assert not yamlout._fast_is_same({"": {"x": 1}})
    assert not yamlout._fast_is_same({"x": "line \nbreak"})


def test_shared_values_are_anchored_as_pyyaml_anchors_them() -> None:
    shared = {"a": [1, 2]}
    docs = [{"p": shared, "q": shared}, {"r": "\t"}, {"s": shared, "t": shared}]
    assert _written(docs) == _expected(docs)
