"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

`edict run` starts one `LeaderElector`; only the leader reconciles (every replica may
keep its informers warm). The lease records `holderIdentity`, `leaseDurationSeconds`,
`acquireTime`, `renewTime` and `leaseTransitions`. Every `retry_period` a candidate
reads the lease and takes it when it is absent, released (empty holder) or expired;
the leader renews it. Expiry is judged on our own monotonic clock — a lease is expired
when its record has not changed for `leaseDurationSeconds` since *we observed* it — so
clock skew between replicas does not matter. A leader that cannot renew for
`renew_deadline` steps down (before its lease can expire for the others), and steps
down at once if it sees another holder. `release()` on graceful shutdown empties the
holder so another replica takes over at its next try instead of after expiry.

`holds_lease()` is the write fence (`Cluster.fence_writes`): true only while we lead
*and* renewed less than `renew_deadline` ago by our own monotonic clock, which keeps
running while the process is paused. A leader stopped (SIGSTOP, a long GC, a frozen VM)
past its lease therefore sends no write when it wakes, even before its elector thread
gets to notice that another instance took over: the others wait `lease_duration`
(longer) from their own observation of our last renewal before they take over.

Every write is an update carrying the lease's resourceVersion, so two candidates
racing for one lease cannot both win: the loser gets `Conflict`. Callbacks run on the
elector's thread and should return quickly. The clock is injected; tests call
`tick()` directly with a fake lease API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.kube.errors import ApiError, NotFound
from engine.objects import Obj, meta

from .clock import Clock, Stop

log = logging.getLogger(__name__)


class LeaseApi(Protocol):
    """Lease reads and writes; `engine.kube.Cluster` provides them."""

    def get_lease(self, namespace: str, name: str) -> Obj: ...  # raises NotFound

    def create_lease(self, lease: Obj) -> Obj: ...  # raises AlreadyExists

    def update_lease(self, lease: Obj) -> Obj: ...  # raises Conflict if it changed


@dataclass(frozen=True, kw_only=True)
class LeaderSettings:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")


def micro_time(clock: Clock) -> str:
    return clock.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, *, api: LeaseApi, settings: LeaderSettings, clock: Clock,
                 on_started_leading: Callable[[], None] | None = None,
                 on_stopped_leading: Callable[[], None] | None = None) -> None:
        self._api = api
        self._settings = settings
        self._clock = clock
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._leading = False
        self._last_renew = 0.0
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._stop = Stop(clock)
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading

    def holds_lease(self) -> bool:
        """True while leading and the last renewal is younger than `renew_deadline`."""
        return self._leading and (self._clock.now() - self._last_renew
                                  < self._settings.renew_deadline)

    @property
    def observed_holder(self) -> str:
        """The holder of the lease as last read ("" when free or never read)."""
        return str(self._observed[0]) if self._observed else ""

    # -- one step -----------------------------------------------------------------------

    def tick(self) -> float:
        """Try to acquire or renew once; return the seconds until the next try."""
        now = self._clock.now()
        held_by_other, ok = self._try_acquire_or_renew(now)
        if self._leading:
            if ok:
                self._last_renew = now
            elif held_by_other:
                self._step_down(f"the lease is now held by {self.observed_holder!r}")
            elif now - self._last_renew >= self._settings.renew_deadline:
                self._step_down(f"could not renew the lease for "
                                f"{self._settings.renew_deadline:g}s")
        elif ok:
            self._leading = True
            self._last_renew = now
            log.info("%s: became leader (lease %s/%s)", self._settings.identity,
                     self._settings.namespace, self._settings.name)
            self._notify(self._on_started)
        return self._settings.retry_period

    def release(self) -> bool:
        """Give the lease up (empty holder) if we lead; step down either way."""
        if not self._leading:
            return False
        released = False
        try:
            lease = self._api.get_lease(self._settings.namespace, self._settings.name)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") == self._settings.identity:
                stamp = micro_time(self._clock)
                spec.update(holderIdentity="", leaseDurationSeconds=1,
                            acquireTime=stamp, renewTime=stamp)
                self._api.update_lease({"metadata": meta(lease), "spec": spec})
                released = True
        except ApiError as error:
            log.warning("%s: could not release the lease: %s", self._settings.identity, error)
        self._step_down("released the lease" if released else "shutting down")
        return released

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        """Tick until `stop()`."""
        while not self._stop.is_set():
            delay = self.tick()
            if self._stop.sleep(delay):
                break

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True, timeout: float | None = 10.0) -> None:
        """End the loop; then release the lease (or merely step down)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if release:
            self.release()
        elif self._leading:
            self._step_down("stopped")

    # -- internals ----------------------------------------------------------------------

    def _try_acquire_or_renew(self, now: float) -> tuple[bool, bool]:
        """(held by someone else, acquired-or-renewed)."""
        s = self._settings
        stamp = micro_time(self._clock)
        try:
            lease = self._api.get_lease(s.namespace, s.name)
        except NotFound:
            fresh = {"holderIdentity": s.identity,
                     "leaseDurationSeconds": int(s.lease_duration),
                     "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}
            return False, self._write(now, self._api.create_lease,
                                      {"metadata": {"namespace": s.namespace, "name": s.name},
                                       "spec": fresh})
        except ApiError as error:
            log.warning("%s: could not read the lease: %s", s.identity, error)
            return False, False
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        self._observe(spec, now)
        holder = str(spec.get("holderIdentity") or "")
        duration = spec.get("leaseDurationSeconds") or s.lease_duration
        if holder and holder != s.identity and now < self._observed_at + float(duration):
            return True, False
        if holder != s.identity:
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=s.identity, leaseDurationSeconds=int(s.lease_duration),
                    renewTime=stamp)
        return False, self._write(now, self._api.update_lease,
                                  {"metadata": meta(lease), "spec": spec})

    def _write(self, now: float, call: Callable[[Obj], Obj], lease: Obj) -> bool:
        try:
            written = call(lease)
        except ApiError as error:  # Conflict/AlreadyExists: another candidate was faster
            log.info("%s: lease write failed: %s", self._settings.identity, error)
            return False
        self._observe(dict(written.get("spec") or {}), now)
        return True

    def _observe(self, spec: dict[str, Any], now: float) -> None:
        record = (spec.get("holderIdentity") or "", spec.get("renewTime"),
                  spec.get("acquireTime"), spec.get("leaseTransitions"),
                  spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed = record
            self._observed_at = now

    def _step_down(self, why: str) -> None:
        if not self._leading:
            return
        self._leading = False
        log.warning("%s: stopped leading: %s", self._settings.identity, why)
        self._notify(self._on_stopped)

    def _notify(self, callback: Callable[[], None] | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("%s: leader election callback failed", self._settings.identity)
