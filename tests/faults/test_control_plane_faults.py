"""Faults of the control plane while `edict run` converges 1,000 objects: the API server
or etcd killed with SIGKILL and started again, the API server paused, and a watch that
resumes from a compacted resourceVersion (a real 410 Gone).

Each test asserts, from the server's state and its audit log: every object converged,
every child exists exactly once, nothing was deleted, no object was written successfully
twice nor judged by the server more than twice (one guarded retry), the RuleSet's status
is Ready and current again, and all of it within the stated recovery time.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.support import eventually

from .conftest import Scenario
from .harness import CONFIGMAP, SEEN, Writes, create_all, state, trigger

pytestmark = pytest.mark.faults

RECOVERY = 90.0
"""Seconds from the end of a fault to convergence and a Ready status, at most."""
DOWN = 30.0
"""Seconds the killed API server stays down before it is started again."""


def check(writes: Writes) -> None:
    """No write repeated, none beyond one guarded retry, nothing deleted."""
    assert writes.applied_twice() == {}, "an object was written successfully twice"
    assert writes.decided_thrice() == {}, "more than one guarded retry"
    assert writes.deletes() == [], "nothing may be pruned"


def test_api_server_killed_and_restarted(scenario: type[Scenario]) -> None:
    scene = scenario()
    scene.prepare()
    scene.load()
    engine = scene.start_edict()
    scene.mid_way(engine)
    scene.plane.kill("kube-apiserver")
    before = engine.requests()
    time.sleep(DOWN)  # the fault itself: no API server for this long
    during = engine.requests() - before
    scene.plane.restart("kube-apiserver")
    back = time.monotonic()
    recovery = scene.recover(back, within=RECOVERY)
    writes = scene.writes()
    check(writes)
    # four informers, four workers and a status writer, all backing off: a few dozen
    assert during <= 120, f"{during:.0f} requests to a server that was down for {DOWN}s"
    scene.measured(f"kube-apiserver kill -9, down {DOWN:g} s, restarted", recovery, writes,
                   note=f"{during:.0f} requests while it was down")


def test_etcd_killed_and_restarted(scenario: type[Scenario]) -> None:
    scene = scenario()
    scene.prepare()
    scene.load()
    engine = scene.start_edict()
    scene.mid_way(engine)
    scene.plane.kill("etcd")
    scene.plane.restart("etcd")
    back = time.monotonic()
    recovery = scene.recover(back, within=RECOVERY)
    writes = scene.writes()
    check(writes)
    scene.measured("etcd kill -9, restarted", recovery, writes,
                   note=f"{engine.requests():.0f} requests in all")


def test_api_server_paused_for_20_seconds(scenario: type[Scenario]) -> None:
    scene = scenario()
    scene.prepare()
    scene.load()
    engine = scene.start_edict()
    scene.mid_way(engine)
    scene.plane.pause("kube-apiserver")
    try:
        time.sleep(20)  # the fault itself: the API server answers nothing for 20 s
    finally:
        scene.plane.resume("kube-apiserver")
    back = time.monotonic()
    recovery = scene.recover(back, within=RECOVERY)
    writes = scene.writes()
    check(writes)
    scene.measured("kube-apiserver paused (SIGSTOP) 20 s", recovery, writes)


def test_a_watch_resuming_from_a_compacted_version_lists_again(
        scenario: type[Scenario]) -> None:
    """The engine is paused mid-way; meanwhile objects change, etcd compacts its history
    and the API server restarts (every watch breaks). Resuming, each watch asks for a
    version etcd no longer has: 410 Gone, a fresh list, and the changes are reconciled."""
    scene = scenario()
    scene.prepare()
    scene.load()
    engine = scene.start_edict()
    scene.mid_way(engine, writes=800)
    engine.signal(signal.SIGSTOP)
    before = state(scene.admin, scene.namespace)
    marked = sorted(n for n, o in before.triggers.items()
                    if (o["metadata"].get("labels") or {}).get(SEEN))
    assert len(marked) >= 200, len(marked)
    for name in marked[:100]:  # someone takes the engine's label off again
        scene.admin.patch_json(CONFIGMAP, scene.namespace, name, [
            {"op": "remove", "path": "/metadata/labels/edict.dev~1seen"}])
    gone = scene.names[-100:]
    written_before = sum(n in before.triggers and (
        before.triggers[n]["metadata"].get("labels") or {}).get(SEEN) == "yes" for n in gone)
    written_before += sum(f"{n}-child" in before.children for n in gone)
    for name in gone:  # triggers deleted: their children must go
        scene.admin.delete(CONFIGMAP, scene.namespace, name)
    added = [f"late-{i:03d}" for i in range(100)]
    create_all(scene.admin, (trigger(scene.namespace, name) for name in added))
    compacted = scene.plane.compact_etcd()
    scene.plane.kill("kube-apiserver")
    scene.plane.restart("kube-apiserver")
    engine.signal(signal.SIGCONT)
    back = time.monotonic()
    recovery = scene.recover(back, within=RECOVERY)
    final = state(scene.admin, scene.namespace)
    assert set(final.triggers) == set(scene.names[:-100]) | set(added)
    eventually(lambda: "expired, listing again" in engine.log.read_text(), timeout=10,
               what="the engine's log of the 410 Gone", detail=engine.tail)
    writes = scene.writes()
    assert writes.applied_twice().keys() <= set(marked[:100]), \
        "only the objects someone else changed were written twice"
    assert writes.decided_thrice() == {}
    assert {w.name for w in writes.deletes()} <= {f"{n}-child" for n in gone}, \
        "only children of deleted triggers may be pruned"
    # the 900 triggers left and 100 new ones, 100 marked again, what the deleted ones got
    needed = 2 * len(final.triggers) + 100 + written_before
    scene.measured("watch from a compacted version (410 Gone)", recovery, writes,
                   note=f"compacted at revision {compacted}", needed=needed)
