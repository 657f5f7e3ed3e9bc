"""Faults of the engine itself while it converges 1,000 objects: `edict run` killed with
SIGKILL in the middle of writing and started again; and with two instances under
leader election, the leader killed (the standby takes over once the Lease expires) or
paused past its Lease (it must not write once the other one has started: no two
writers).

The two instances run as different users, so the audit log tells whose each write was.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.support import eventually

from .conftest import Scenario
from .harness import Edict, Writes, lease_holder

pytestmark = pytest.mark.faults

RECOVERY = 90.0
"""Seconds from the fault to convergence and a Ready status, at most (a new leader
waits for the Lease to expire: 15 s)."""
WORKERS = 4


def check(writes: Writes) -> None:
    """No write repeated, none beyond one guarded retry, nothing deleted."""
    assert writes.applied_twice() == {}, "an object was written successfully twice"
    assert writes.decided_thrice() == {}, "more than one guarded retry"
    assert writes.deletes() == [], "nothing may be pruned"


def test_edict_killed_while_writing_and_started_again(scenario: type[Scenario]) -> None:
    scene = scenario()
    scene.prepare()
    scene.load()
    first = scene.start_edict(workers=WORKERS)
    scene.mid_way(first)
    first.kill()
    scene.start_edict(workers=WORKERS)
    back = time.monotonic()
    recovery = scene.recover(back, within=RECOVERY)
    writes = scene.writes()
    check(writes)
    scene.measured("edict kill -9 while writing, started again", recovery, writes)


def leader_and_standby(scene: Scenario) -> tuple[Edict, Edict]:
    leader = scene.start_edict(user="edict-a", leader_elect=True, workers=WORKERS)
    eventually(lambda: lease_holder(scene.admin, scene.namespace) == leader.identity,
               timeout=60, what="the first instance to lead", detail=leader.tail)
    standby = scene.start_edict(user="edict-b", leader_elect=True, workers=WORKERS)
    eventually(lambda: standby.metrics(), timeout=60, what="the standby to serve /metrics",
               detail=standby.tail)
    return leader, standby


def test_the_leader_killed_the_standby_takes_over(scenario: type[Scenario]) -> None:
    scene = scenario()
    scene.prepare()
    leader, standby = leader_and_standby(scene)
    scene.load()
    scene.mid_way(leader)
    killed = time.monotonic()
    leader.kill()
    eventually(lambda: lease_holder(scene.admin, scene.namespace) == standby.identity,
               timeout=60, what="the standby to take the Lease", detail=standby.tail)
    took_over = time.monotonic() - killed
    recovery = scene.recover(killed, within=RECOVERY)
    a, b = scene.writes("edict-a"), scene.writes("edict-b")
    check(scene.writes("edict-a", "edict-b"))
    assert b.all()[0].received > a.all()[-1].received, "the standby wrote while the leader led"
    scene.measured("leader kill -9, standby takes over", recovery,
                   scene.writes("edict-a", "edict-b"),
                   note=f"Lease taken over after {took_over:.1f}s")


def test_a_leader_paused_past_its_lease_writes_nothing_once_another_leads(
        scenario: type[Scenario]) -> None:
    scene = scenario()
    scene.prepare()
    leader, standby = leader_and_standby(scene)
    scene.load()
    scene.mid_way(leader)
    paused = time.monotonic()
    leader.signal(signal.SIGSTOP)
    try:
        eventually(lambda: lease_holder(scene.admin, scene.namespace) == standby.identity,
                   timeout=60, what="the standby to take the Lease", detail=standby.tail)
        took_over = time.monotonic() - paused
        recovery = scene.recover(paused, within=RECOVERY)
    finally:
        leader.signal(signal.SIGCONT)
    # woken, it finds the Lease gone and stops (exit code 1: lost), writing nothing
    eventually(lambda: leader.process.poll() is not None, timeout=60,
               what="the old leader to stop", detail=leader.tail)
    assert leader.process.returncode == 1, leader.tail()
    a, b = scene.writes("edict-a"), scene.writes("edict-b")
    check(scene.writes("edict-a", "edict-b"))
    new_leader_started = b.all()[0].received
    late = [w for w in a.all() if w.received >= new_leader_started]
    # A request already past the fence when the process stopped may still go out when it
    # wakes (one per worker at most); the new leader has rewritten everything by then,
    # so the server refuses it as stale. Nothing of the old leader may be applied.
    assert [w for w in late if w.applied] == [], "two writers"
    assert len(late) <= WORKERS, late
    assert "not sent: this instance does not hold the leader lease" in leader.log.read_text()\
        or not late
    scene.measured("leader paused (SIGSTOP) past its Lease", recovery,
                   scene.writes("edict-a", "edict-b"),
                   note=f"Lease taken over after {took_over:.1f}s; "
                        f"{len(late)} late request(s) of the old leader, none applied")
