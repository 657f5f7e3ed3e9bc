"""Leader election against an in-memory Lease API and a fake clock, tick by tick."""

from __future__ import annotations

import pytest
from runtime_fakes import FakeLeases

from engine.kube.errors import ServerError
from engine.runtime.clock import FakeClock
from engine.runtime.leader import LeaderElector, LeaderSettings
from tests.support import eventually


class Candidate:
    def __init__(self, identity: str, api: FakeLeases, clock: FakeClock) -> None:
        self.events: list[str] = []
        self.elector = LeaderElector(
            api=api, clock=clock,
            settings=LeaderSettings(namespace="edict-system", name="edict", identity=identity),
            on_started_leading=lambda: self.events.append("started"),
            on_stopped_leading=lambda: self.events.append("stopped"))

    @property
    def leads(self) -> bool:
        return self.elector.is_leader


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api() -> FakeLeases:
    return FakeLeases()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderSettings(namespace="n", name="l", identity="a", renew_deadline=20)
    defaults = LeaderSettings(namespace="n", name="l", identity="a")
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (
        15.0, 10.0, 2.0)


def test_first_candidate_creates_the_lease_and_only_it_leads(
        api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    assert a.elector.tick() == 2.0
    b.elector.tick()
    assert a.leads and not b.leads
    assert a.events == ["started"] and b.events == []
    spec = api.spec()
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == "2025-01-01T00:00:00.000000Z"
    assert b.elector.observed_holder == "a"


def test_the_leader_renews_and_keeps_others_out(api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    a.elector.tick()
    for _ in range(20):  # 40s, far beyond the lease duration, but renewed all along
        clock.advance(2)
        a.elector.tick()
        b.elector.tick()
    assert a.leads and not b.leads
    assert api.spec()["renewTime"] == "2025-01-01T00:00:40.000000Z"
    assert api.spec()["acquireTime"] == "2025-01-01T00:00:00.000000Z"


def test_an_expired_lease_is_taken_over(api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    a.elector.tick()
    b.elector.tick()  # b observes a's record now...
    clock.advance(14.9)
    b.elector.tick()
    assert not b.leads, "...and waits a full lease duration from that observation"
    clock.advance(0.1)
    b.elector.tick()
    assert b.leads and b.events == ["started"]
    assert api.spec()["holderIdentity"] == "b" and api.spec()["leaseTransitions"] == 1
    a.elector.tick()
    assert not a.leads and a.events == ["started", "stopped"], (
        "a leader that sees another holder steps down at once")


def test_a_leader_that_cannot_renew_steps_down_at_the_deadline(
        api: FakeLeases, clock: FakeClock) -> None:
    a = Candidate("a", api, clock)
    a.elector.tick()
    api.fail_with = ServerError("etcdserver: request timed out", status=500)
    for _ in range(4):  # 8s of failed renewals: still within the 10s deadline
        clock.advance(2)
        a.elector.tick()
    assert a.leads
    clock.advance(2)
    a.elector.tick()
    assert not a.leads and a.events == ["started", "stopped"]
    api.fail_with = None
    clock.advance(2)
    a.elector.tick()  # the lease is still ours: take it again
    assert a.leads and a.events == ["started", "stopped", "started"]


def test_a_paused_leader_stops_holding_the_lease_before_anyone_else_takes_it(
        api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    a.elector.tick()
    b.elector.tick()
    assert a.elector.holds_lease() and not b.elector.holds_lease()
    holders = []
    for step in range(1, 41):  # a is paused: its elector never ticks; b ticks every 2 s
        clock.advance(0.5)
        if step % 4 == 0:
            b.elector.tick()
        both = a.elector.holds_lease() and b.elector.holds_lease()
        assert not both, f"two writers {step * 0.5}s into the pause"
        holders.append((a.elector.holds_lease(), b.elector.holds_lease()))
    assert a.leads, "a's elector has not run yet: only the fence knows"
    assert holders.index((False, False)) == 19, "a stops holding at the renew deadline (10 s)"
    assert holders.index((False, True)) == 31, "b takes over a lease duration after it saw a"
    a.elector.tick()  # a wakes up
    assert not a.leads and not a.elector.holds_lease()


def test_release_lets_another_candidate_take_over_at_once(
        api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    a.elector.tick()
    b.elector.tick()
    assert a.elector.release()
    assert not a.leads and a.events == ["started", "stopped"]
    assert api.spec()["holderIdentity"] == ""
    b.elector.tick()  # no waiting for expiry
    assert b.leads
    assert api.spec()["leaseTransitions"] == 1
    assert not a.elector.release(), "nothing to release when not leading"


def test_two_candidates_racing_for_a_free_lease_cannot_both_win(
        api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    a.elector.tick()
    a.elector.release()
    # b reads the free lease; before b writes, c takes it: b's update is stale.
    c = Candidate("c", api, clock)
    api.after_get = c.elector.tick
    b.elector.tick()
    assert c.leads and not b.leads
    assert api.spec()["holderIdentity"] == "c"


def test_run_in_a_thread_and_stop_releases(api: FakeLeases, clock: FakeClock) -> None:
    a, b = Candidate("a", api, clock), Candidate("b", api, clock)
    a.elector.start()
    eventually(lambda: a.leads, what="a to lead")
    b.elector.start()
    eventually(lambda: b.elector.observed_holder == "a", what="b to see a")
    a.elector.stop()
    assert api.spec()["holderIdentity"] == ""
    assert a.events == ["started", "stopped"]
    eventually(lambda: clock.waiters > 0, what="b to sleep")
    clock.advance(2)
    eventually(lambda: b.leads, what="b to take over after one retry period")
    b.elector.stop(release=False)
    assert not b.leads and b.events == ["started", "stopped"]
    assert api.spec()["holderIdentity"] == "b", "stepping down without release keeps it"
