"""The change log that lets a confirmation pass skip rules whose inputs did not change."""

from __future__ import annotations

import pytest

from engine.evaluate.changes import ChangeLog

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
