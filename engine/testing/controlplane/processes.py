"""Start, watch and stop the control plane's child processes.

Each process logs to ``<run dir>/logs/<name>.log`` and leaves its pid in
``<run dir>/pids/<name>.pid``, so ``python -m engine.testing.controlplane down`` in
another process can stop what ``up`` started. Ports are picked free on loopback just
before a start; a start that loses the race for its port (another process bound it
in between) is reported as :class:`PortRaceError` so the caller can retry.

Called by :mod:`.components` (spawn and wait) and :mod:`.plane` (stop).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
PORT_IN_USE = "address already in use"


class StartError(RuntimeError):
    """A component exited or did not become ready in time; the message has its log tail."""


class PortRaceError(StartError):
    """A component could not bind a port picked for it: pick new ports and retry."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_path(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def pid_path(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.pid"


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGKILL if the parent (the test run) dies.

    SIGKILL, not SIGTERM: all components get the signal at once, and an apiserver
    shutting down gracefully while etcd disappears under it hangs until killed.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(name: str, argv: Sequence[str], *, run_dir: Path,
          die_with_parent: bool) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, logging to the run dir, and record its pid."""
    log = log_path(run_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_path(run_dir, name).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest must not kill etcd first
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    pid_path(run_dir, name).write_text(f"{process.pid}\n")
    return process


def wait_ready(name: str, process: subprocess.Popen[bytes], ready: Callable[[], bool], *,
               run_dir: Path, timeout: float, interval: float = 0.25) -> float:
    """Poll ``ready`` until it holds; return the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        code = process.poll()
        if code is not None:
            tail = log_tail(log_path(run_dir, name))
            error = PortRaceError if PORT_IN_USE in tail else StartError
            raise error(f"{name} exited with code {code} while starting; "
                        f"last lines of {log_path(run_dir, name)}:\n{tail}")
        with contextlib.suppress(OSError):
            if ready():
                return time.monotonic() - started
        if time.monotonic() > deadline:
            raise StartError(f"{name} not ready after {timeout:.0f}s; last lines of "
                             f"{log_path(run_dir, name)}:\n{log_tail(log_path(run_dir, name))}")
        time.sleep(interval)


def _alive(pid: int, name: str) -> bool:
    """True if ``pid`` is still a running ``name`` (not a zombie, not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and name.encode() in cmdline.split(b"\0")[0]


def recorded_alive(name: str, *, run_dir: Path) -> bool:
    """True if the pid file of ``name`` in ``run_dir`` names a live process."""
    try:
        return _alive(int(pid_path(run_dir, name).read_text().strip()), name)
    except (FileNotFoundError, ValueError):
        return False


def _wait_gone(pid: int, name: str, process: subprocess.Popen[bytes] | None,
               timeout: float) -> bool:
    if process is not None:
        try:
            process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while _alive(pid, name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop(name: str, *, run_dir: Path, process: subprocess.Popen[bytes] | None = None,
         grace: float = 20.0) -> None:
    """SIGTERM the process recorded for ``name``, SIGKILL it after ``grace`` seconds."""
    pid_file = pid_path(run_dir, name)
    if process is not None:
        pid = process.pid
    else:
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
    if process is not None or _alive(pid, name):
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                os.kill(pid, signal.SIGCONT)  # a paused process handles SIGTERM only now
            if _wait_gone(pid, name, process, wait):
                break
        else:
            raise RuntimeError(f"{name} (pid {pid}) survived SIGKILL")
    pid_file.unlink(missing_ok=True)
