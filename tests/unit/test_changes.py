"""The change log that lets a confirmation pass skip rules whose inputs did not change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.evaluate.changes import ChangeLog, above_of, prefixes, prefixes_of

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


def _touched(writes: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]],
             since: int, paths: list[tuple[str, ...]]) -> bool:
    """What the log must answer, from its definition: a write after `since` at or beneath
    a path, or exactly at (or making) a map strictly between the whole object and it."""
    for written, made in writes[since:]:
        for path in paths:
            if any(w[:len(path)] == path for w in written):
                return True
            if any(w == path[:cut] for w in (*written, *made) for cut in range(1, len(path))):
                return True
    return False


@given(WRITES, st.lists(PATHS, max_size=4), st.integers(0, 6))
def test_the_log_answers_what_the_writes_after_the_point_touched(
        writes: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]], bool]],
        paths: list[tuple[str, ...]], since: int) -> None:
    """Writes given as lists or as sets (whose prefixes the log finds once per set, one
    set met again), checks given the paths as a list or a set, with the prefixes above
    them or without: each answer is the definition's."""
    lists, sets = ChangeLog(), ChangeLog()
    done: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = []
    for written, made, _ in writes:
        lists.wrote(written, made)
        sets.wrote(frozenset(written), made)
        done.append((written, made))
        lists.wrote(written[:1])  # a set met before, at its own seq
        sets.wrote(frozenset(written[:1]))
        done.append((written[:1], []))
    assert lists.seq == sets.seq == len(done)
    above = [p for path in paths for p in prefixes(path)[1:-1]]
    expected = _touched(done, since, paths)
    for log in (lists, sets):
        assert log.changed_since(since, paths) is expected
        assert log.changed_since(since, frozenset(paths)) is expected
        assert log.changed_since(since, paths, above=above) is expected
        assert log.changed_since(since, tuple(paths), above=tuple(above)) is expected


def test_the_prefixes_of_a_set_of_paths_are_each_of_theirs_once() -> None:
    paths = frozenset({("a", "b", "c"), ("a", "b", "d"), ("e",)})
    assert prefixes_of(paths) == {(), ("a",), ("a", "b"), ("a", "b", "c"), ("a", "b", "d"),
                                  ("e",)}
    assert above_of(paths) == {("a",), ("a", "b")}
    assert prefixes_of(frozenset()) == above_of(frozenset()) == frozenset()
