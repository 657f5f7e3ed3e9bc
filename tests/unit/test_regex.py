"""engine.regex: RE2 for every regex a rule can run, compiled once, bounded.

Go's ``FindAllString`` semantics are pinned by cases (an empty match right after a
match is skipped); RE2's syntax (what it has and what backtracking engines have and it
does not) by accepted and refused patterns; the bounds by patterns that would be slow.
No timing assertions: the pathological cases are shown to stop, not how fast. CEL and
the template filters are shown to go through this one module: the same compiled
pattern, the same syntax, the same message.
"""

from __future__ import annotations

import pytest

from engine import regex
from engine.cel import compile_expression
from engine.errors import CompileError, TemplateError, Where
from engine.templating import compile_template, render_string


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("[0-9]+", "abc 123", "123"),
    ("xyz", "abc 123", ""),
    ("^w.", "web", "we"),
    (r"\pL+", "12héllo", "héllo"),
    ("c$", "abc\n", ""),          # $ is the very end without (?m)
    ("(?m)c$", "abc\n", "c"),
    (r"c\z", "abc", "c"),
    ("(a+)+$", "a" * 40 + "!", ""),  # the backtracking disaster, linear here
])
def test_find(pattern: str, text: str, expected: str) -> None:
    assert regex.compile(pattern).find(text) == expected


@pytest.mark.parametrize(("pattern", "text", "limit", "expected"), [
    ("[0-9]+", "123 abc 456", -1, ["123", "456"]),
    ("[0-9]+", "123 abc 456", 1, ["123"]),
    ("[0-9]+", "123 abc 456", 0, []),
    ("xyz", "123 abc 456", -1, []),
    ("[0-9]*", "123 abc 456", -1, ["123", "", "", "", "", "456"]),
    ("a*", "baaab", -1, ["", "aaa", ""]),  # the empty match right after "aaa" is skipped
    ("", "ab", -1, ["", "", ""]),
    (".", "hé", -1, ["h", "é"]),
])
def test_find_all_is_gos(pattern: str, text: str, limit: int, expected: list[str]) -> None:
    assert regex.compile(pattern).find_all(text, limit) == expected


@pytest.mark.parametrize("pattern", [
    "(?<=a)b", "(?=a)", r"(a)\1", "(", "[", "a{1001}", r"\Z",
])
def test_what_re2_refuses_is_an_error_naming_the_pattern(pattern: str) -> None:
    with pytest.raises(regex.RegexError, match="invalid regular expression") as raised:
        regex.compile(pattern)
    assert repr(pattern) in str(raised.value)
    assert "(RE2 syntax)" in str(raised.value)


def test_patterns_are_compiled_once() -> None:
    assert regex.compile("a+b") is regex.compile("a+b")
    assert regex.compile("a+b", ignorecase=True) is not regex.compile("a+b")


def test_flags_sub_and_groups() -> None:
    assert regex.compile("ABC", ignorecase=True).fullmatch("abc") is not None
    assert regex.compile("^b", multiline=True).find("a\nb") == "b"
    assert regex.compile("a.b", dotall=True).find("a\nb") == "a\nb"
    pattern = regex.compile(r"(?P<key>\w+)=(\w+)")
    assert pattern.groups == 2 and pattern.groupindex == {"key": 1}
    assert pattern.sub(r"\2=\g<key>", "a=1 b=2") == "1=a 2=b"
    match = pattern.search("x: k=v")
    assert match is not None and match.span() == (3, 6) and match.groupdict() == {"key": "k"}
    assert [m.group() for m in pattern.finditer("a=1,b=2")] == ["a=1", "b=2"]


@pytest.mark.parametrize(("pattern", "refused"), [
    ("a{1,1000}", False),
    ("a{1,1000}" * 3, False),
    ("a{1,1000}" * 4, True),
    (r"\pL{1,30}", False),
    (r"\pL{1,1000}", True),
    ("((ab){1,30}){1,30}", False),
    ("((abcd){1,30}){1,30}", True),
    ("x" * 100_000, False),  # long but plain: linear to compile
])
def test_patterns_that_expand_too_far_are_refused(pattern: str, refused: bool) -> None:
    if refused:
        with pytest.raises(regex.RegexError, match="too complex"):
            regex.compile(pattern)
    else:
        assert regex.compile(pattern).pattern == pattern


def test_find_all_stops_when_out_of_time() -> None:
    pattern = regex.compile("a")
    assert len(pattern.find_all("a" * 200)) == 200
    with pytest.raises(regex.RegexWorkExceeded, match="stopped after 0 s"):
        pattern.find_all("a" * 200, seconds=0)


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    regex._compile.cache_clear()
    first = regex.compile("kept-0")
    for number in range(1, regex.CACHE_SIZE + 1):
        regex.compile(f"kept-{number}")
        regex.compile("kept-0")  # used again: stays
    assert regex._compile.cache_info().currsize == regex.CACHE_SIZE
    assert regex.compile("kept-0") is first
    misses = regex._compile.cache_info().misses
    regex.compile("kept-1")  # the least recently used: dropped when the cache filled
    assert regex._compile.cache_info().misses == misses + 1


def test_cel_and_templates_share_one_compiled_pattern() -> None:
    regex._compile.cache_clear()
    program = compile_expression("object.x.find('[0-9]+x')", where=Where())
    assert program.evaluate({"object": {"x": "ab12xy"}}) == "12x"
    shared = regex.compile("[0-9]+x")
    misses = regex._compile.cache_info().misses
    assert render_string("{{ 'ab12xy' | regex_search('[0-9]+x') }}", {},
                         where=Where()) == "12x"
    assert regex._compile.cache_info().misses == misses  # the template reused CEL's
    assert regex.compile("[0-9]+x") is shared


@pytest.mark.parametrize("pattern", ["(?<=a)b", r"(a)\1", "a{1,1000}a{1,1000}a{1,1000}a{1,1000}"])
def test_cel_and_templates_refuse_the_same_patterns_with_the_same_message(
        pattern: str) -> None:
    with pytest.raises(regex.RegexError) as direct:
        regex.compile(pattern)
    with pytest.raises(CompileError) as cel:
        compile_expression(f"object.x.find({pattern!r})", where=Where())
    template = compile_template({"v": "{{ object.x | regex_search(object.p) }}"},
                                where=Where())
    with pytest.raises(TemplateError) as rendered:
        template.render({"object": {"x": "ab", "p": pattern}})
    assert str(direct.value) in str(cel.value)
    assert str(direct.value) in str(rendered.value)
