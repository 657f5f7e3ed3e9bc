"""engine.cel.source: the two-variable ``exists_one`` renamed before parsing, nothing else.

The rename must never touch a string literal or a comment, nor a one-variable
``exists_one`` (the standard macro), nor an identifier that only contains the name.
"""

from __future__ import annotations

import pytest

from engine.cel import compile_expression
from engine.cel.source import prepare
from engine.errors import Where


@pytest.mark.parametrize(("source", "expected"), [
    ("m.exists_one(k, v, v > 1)", "m.existsOne(k, v, v > 1)"),
    ("m . exists_one (k, v, f(k, v))", "m . existsOne (k, v, f(k, v))"),
    ("m.exists_one(k, v, [1, 2].exists(y, y > k))", "m.existsOne(k, v, [1, 2].exists(y, y > k))"),
    ("l.exists_one(x, x > 1)", "l.exists_one(x, x > 1)"),
    ("'m.exists_one(a, b, c)' + m.exists_one(a, b, c)",
     "'m.exists_one(a, b, c)' + m.existsOne(a, b, c)"),
    ('"""m.exists_one(a, b, c)""" == r"\\"', '"""m.exists_one(a, b, c)""" == r"\\"'),
    ("// m.exists_one(a, b, c)\nm.exists_one(i, v, true)",
     "// m.exists_one(a, b, c)\nm.existsOne(i, v, true)"),
    ("my_exists_one(a, b, c)", "my_exists_one(a, b, c)"),
    ("m.exists_one_(a, b, c)", "m.exists_one_(a, b, c)"),
])
def test_prepare(source: str, expected: str) -> None:
    assert prepare(source) == expected


def test_both_spellings_mean_the_same() -> None:
    where = Where()
    data = {"object": {"m": {"a": 1, "b": 2}}}
    for name in ("exists_one", "existsOne"):
        program = compile_expression(f"object.m.{name}(k, v, v == 2)", where=where)
        assert program.evaluate(data) is True
