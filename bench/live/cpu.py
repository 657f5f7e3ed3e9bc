"""Where the time goes: CPU seconds of this process and of the control plane's processes.

On a 2-core machine the engine, the baseline, kube-apiserver and etcd all share the same
cores, so a phase's wall time is bounded below by (total CPU seconds) / cores. `Meter`
reads utime+stime from /proc for this Python process ("python": the engine's threads
or the baseline's, plus the benchmark's own watch) and for every control plane process
whose pid file it was given, and `threads()` splits this process by thread (workers,
informers, the event recorder, the benchmark's watch); `__main__` prints the per-phase
differences.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str) -> float | None:
    """utime + stime of `pid` (or "self"); None when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the ")" that closes comm: state is field 0, utime 11, stime 12
    return (int(fields[11]) + int(fields[12])) / TICKS


class Meter:
    def __init__(self, pids: dict[str, int]) -> None:
        self._pids: dict[str, int | str] = {"python": "self", **pids}

    @classmethod
    def for_run_dir(cls, run_dir: Path | None) -> Meter:
        """Pids from a control plane run directory's pids/ (none for an outside cluster)."""
        pids: dict[str, int] = {}
        if run_dir is not None:
            for path in sorted((run_dir / "pids").glob("*.pid")):
                try:
                    pids[path.stem] = int(path.read_text().strip())
                except (OSError, ValueError):
                    continue
        return cls(pids)

    def with_pid(self, name: str, pid: int) -> Meter:
        """This meter plus one more process (an operator the benchmark started)."""
        meter = Meter({})
        meter._pids = {**self._pids, name: pid}
        return meter

    def sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self._pids.items():
            value = cpu_seconds(pid)
            if value is not None:
                out[name] = value
        return out

    @staticmethod
    def threads() -> dict[str, float]:
        """CPU seconds of this process's live Python threads, summed by name family
        (`worker-0`..`worker-3` → `worker`): which part of the engine burns the CPU."""
        return _by_family(lambda tid: cpu_seconds(f"self/task/{tid}"))

    @staticmethod
    def thread_system() -> dict[str, float]:
        """System CPU seconds (stime) of the same threads, by family: the kernel's
        share of each part's CPU."""
        return _by_family(_system_seconds)

    @staticmethod
    def thread_waits() -> dict[str, float]:
        """Voluntary context switches of the same threads, by family: how often each
        part of the engine blocked (on I/O, a lock, or the interpreter's lock)."""
        return _by_family(_voluntary_switches)

    @staticmethod
    def process() -> dict[str, float]:
        """This process's own split, ended threads included (getrusage): user and system
        CPU seconds, and context switches — voluntary (a thread waited: I/O, a lock,
        the GIL) and involuntary (the kernel preempted it)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"user": usage.ru_utime, "sys": usage.ru_stime,
                "waits": float(usage.ru_nvcsw), "preempted": float(usage.ru_nivcsw)}

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """The difference; a name that appeared in between (a thread started) counts from
        zero, one that vanished (a thread ended) is left out."""
        return {name: value - before.get(name, 0.0) for name, value in after.items()}


def _by_family(read: Callable[[int], float | None]) -> dict[str, float]:
    """`read(native thread id)` of every live Python thread of this process, summed by
    name family; a thread whose value cannot be read (it just ended) is left out."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        value = read(thread.native_id)
        if value is not None:
            family = thread.name.rstrip("0123456789").rstrip("-_ ") or thread.name
            out[family] = out.get(family, 0.0) + value
    return out


def _system_seconds(tid: int) -> float | None:
    try:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[12]) / TICKS
    except (OSError, IndexError):
        return None


def _voluntary_switches(tid: int) -> float | None:
    try:
        text = Path(f"/proc/self/task/{tid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return float(line.split()[1])
    return None
