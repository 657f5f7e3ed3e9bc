"""The change log that lets a confirmation pass skip rules whose inputs did not change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.evaluate.changes import ChangeLog, prefixes, prefixes_of

CASES = [
    # (written, read, changed?)
    (("metadata", "labels", "a"), ("metadata", "labels", "a"), True),
    (("metadata", "labels", "a"), ("metadata", "labels"), True),  # beneath a read
    (("metadata", "labels"), ("metadata", "labels", "a"), True),  # above a read
    (("metadata", "labels", "a"), ("metadata", "labels", "b"), False),
    (("metadata", "labels", "a"), ("spec",), False),
    (("spec", "containers", "name=web", "image"), ("spec", "containers"), True),
    (("spec", "replicas"), ("spec", "template", "spec"), False),
    (("status",), ("status", "ready"), True),
]


@pytest.mark.parametrize(("written", "read", "changed"), CASES)
def test_overlap_is_above_at_or_beneath(written: tuple[str, ...], read: tuple[str, ...],
                                        changed: bool) -> None:
    log = ChangeLog()
    log.wrote([written])
    assert log.changed_since(0, [read]) is changed


def test_only_writes_after_the_given_point_count() -> None:
    log = ChangeLog()
    log.wrote([("a",)])
    seen = log.seq
    assert not log.changed_since(seen, [("a",)])
    log.wrote([("b", "c")])
    assert not log.changed_since(seen, [("a",)])
    assert log.changed_since(seen, [("b",)])
    assert log.changed_since(0, [("a",)])


PATHS = st.lists(st.sampled_from("abc"), max_size=3).map(tuple)
WRITES = st.lists(st.tuples(st.lists(PATHS, max_size=3), st.lists(PATHS, max_size=2),
                            st.booleans()), max_size=6)


@given(WRITES, st.lists(PATHS, max_size=4), st.integers(0, 6))
def test_the_given_prefixes_and_many_paths_at_once_answer_as_one_at_a_time(
        writes: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]], bool]],
        paths: list[tuple[str, ...]], since: int) -> None:
    """A step's writes logged with their prefixes given, writes of a set of paths (whose
    prefixes the log finds once per set), and checks given the prefixes above the paths,
    say what the log says path by path."""
    given_, one_by_one, sets = ChangeLog(), ChangeLog(), ChangeLog()
    for written, made, whole in writes:
        if whole:
            given_.wrote(written, made, under=[p for w in written for p in prefixes(w)])
        else:
            given_.wrote(written, made)
        one_by_one.wrote(written, made)
        sets.wrote(frozenset(written), made)
        sets.wrote(frozenset(written[:1]), ())  # a set met before, and its own seq
        one_by_one.wrote(written[:1], ())
        given_.wrote(written[:1], ())
    above = [p for path in paths for p in prefixes(path)[1:-1]]
    expected = one_by_one.changed_since(since, paths)
    assert given_.changed_since(since, paths, above=above) is expected
    assert given_.changed_since(since, paths) is expected
    assert sets.changed_since(since, paths) is expected
    assert sets.changed_since(since, paths, above=above) is expected


def test_the_prefixes_of_a_set_of_paths_are_each_of_theirs_once() -> None:
    paths = frozenset({("a", "b", "c"), ("a", "b", "d"), ("e",)})
    assert sorted(prefixes_of(paths)) == sorted({(), ("a",), ("a", "b"), ("a", "b", "c"),
                                                 ("a", "b", "d"), ("e",)})
    assert len(prefixes_of(paths)) == 6
    assert prefixes_of(frozenset()) == ()
