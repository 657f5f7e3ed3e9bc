"""Would one thread pipelining W writes beat W threads each blocked on one? Measured.

    python -m bench.live.pipelining --objects 10000 --workers 16 --repeat 3

The engine's workers are threads: each evaluates an object, sends its PATCH and waits
for the answer, so W writes in flight take W threads taking turns at the interpreter.
The other design (kopf's, and the "async writes with a bounded number in flight" of
issue 14) is one thread that keeps W requests in flight on W connections and works
while they are out. This script measures what that design could save before anyone
rewrites the engine's writer for it, on its own control plane (or `--kubeconfig`),
with one namespace of N ConfigMaps that every round labels anew
(`round: <variant>-<n>`), one variant after the other, the order rotating:

* `threads`: W threads, each reading the object from the engine's `Informer`, running
  a stand-in for a reconcile, then sending the guarded JSON patch through the engine's
  client (`Cluster.patch_json`: its request path, hooks and answers);
* `lean`: the same W threads, each on a connection of its own, sending the same request
  bytes with this file's minimal HTTP/1.1 code (no hooks, headers made once);
* `pipelined`: one thread, W non-blocking connections, one request in flight on each,
  with the same minimal code: when an answer comes, the next object is read,
  "reconciled" and sent on that connection.

Each variant has a new client and a new engine `Informer` over every ConfigMap (as the
engine watches), its answers remembered so that the echoes are taken from them, not
decoded. The stand-in reconcile is a loop of ~3,900 bytecodes (`--work`), what
`python -m bench.live.reconcile --bytecodes` counts for the engine's. The clock runs
from the first write until the informer's cache holds all N labelled. Checked first:
N writes, every answer 200 with the round's label, the cache converged.

lean/threads is what the engine's request path costs over minimal HTTP code (the plain
loop pays it too); pipelined/lean is what W blocked threads cost over one thread
pipelining: the saving that redesign could bring.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import selectors
import socket
import ssl
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from kubernetes.client import ApiClient

from engine.kube import Cluster
from engine.kube.answers import Answers
from engine.kube.client import FIELD_MANAGER
from engine.kube.jsontext import loads
from engine.kube.transport import load_configuration, new_connection
from engine.objects import Obj, meta
from engine.runtime.clock import RealClock
from engine.runtime.source.informer import Informer

from . import cluster as setup
from .cluster import CONFIGMAP, fill_namespace
from .cpu import Meter

VARIANTS = ("threads", "lean", "pipelined")
NAMESPACE = "edict-pipelining"
LABEL = "round"


def stand_in(work: int) -> int:
    """Python work standing in for a reconcile: ~8.6 bytecodes per step."""
    total = 0
    for step in range(work):
        total = total + step * 2
    return total


def label_ops(resource_version: str, value: str) -> list[Obj]:
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            {"op": "add", "path": f"/metadata/labels/{LABEL}", "value": value}]


# -- minimal HTTP/1.1 ------------------------------------------------------------------


class Http:
    """The request bytes and connections of the `lean` and `pipelined` variants: the
    kubeconfig's server, credentials and TLS, as the engine's client has them."""

    def __init__(self, kubeconfig: str) -> None:
        configuration = load_configuration(kubeconfig)
        self._api = ApiClient(configuration)
        self._pool = self._api.rest_client.pool_manager.connection_from_url(
            configuration.host)
        headers = {"Host": f"{self._pool.host}:{self._pool.port}",
                   "Accept": "application/json",
                   "Content-Type": "application/json-patch+json",
                   "User-Agent": "edict-bench/pipelining"}
        token = configuration.auth_settings().get("BearerToken")
        if token and token.get("value"):
            headers[token["key"]] = token["value"]
        self._head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._query = "?" + "&".join(f"{k}={quote(v)}" for k, v in FIELD_MANAGER)

    def connect(self) -> socket.socket:
        return new_connection(self._pool, 30.0)

    def request(self, namespace: str, name: str, body: bytes) -> bytes:
        target = f"/api/v1/namespaces/{namespace}/configmaps/{name}{self._query}"
        return (f"PATCH {target} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}"
                "\r\n\r\n").encode("latin-1") + body

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]


def parse_answer(buffer: bytearray) -> tuple[int, bytes] | None:
    """(status, body) of the whole answer at the start of `buffer` (removed from it), or
    None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    start = end + 4
    if "content-length" in fields:
        stop = start + int(fields["content-length"])
        if len(buffer) < stop:
            return None
        body = bytes(buffer[start:stop])
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        pieces, at = [], start
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(buffer[at:line_end], 16)
            if size == 0:
                stop = line_end + 4  # no trailers
                if len(buffer) < stop:
                    return None
                break
            if len(buffer) < line_end + 2 + size + 2:
                return None
            pieces.append(bytes(buffer[line_end + 2:line_end + 2 + size]))
            at = line_end + 2 + size + 2
        body = b"".join(pieces)
    else:
        raise ValueError(f"an answer without framing: {lines[0]}")
    del buffer[:stop]
    return status, body


# -- one round ----------------------------------------------------------------------------


@dataclass
class Round:
    variant: str
    seconds: float = 0.0
    writes: int = 0
    process_cpu: float = 0.0  # this process, first write → converged
    writers_cpu: float = 0.0  # the threads (or the one thread) that wrote
    all_cpu: float = 0.0  # every process the meter knows (kube-apiserver, etcd, this)


class Checked:
    """Counts writes; fails the round on an answer that is not the round's label."""

    def __init__(self, value: str, answers: Answers) -> None:
        self._value = value
        self._answers = answers
        self._lock = threading.Lock()
        self.writes = 0

    def answered(self, status: int, body: bytes) -> None:
        if status != 200:
            raise RuntimeError(f"PATCH answered {status}: {body[:300]!r}")
        obj = loads(body)
        self.written(obj)
        self._answers.remember(body, obj)

    def written(self, obj: Obj) -> None:
        """An answer decoded (and remembered) by the engine's client."""
        if (meta(obj).get("labels") or {}).get(LABEL) != self._value:
            raise RuntimeError(f"the answer lacks {LABEL}={self._value}")
        with self._lock:
            self.writes += 1


def _on_threads(names: list[str], workers: int,
                start: Callable[[], Callable[[str], None]]) -> float:
    """Write every name from `workers` threads, each writing with what `start()` gives
    it; return the threads' CPU seconds (the first failure is raised)."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in names:
        todo.put(name)
    cpu: dict[str, float] = {}
    failures: list[BaseException] = []

    def run() -> None:
        try:
            write = start()
            while True:
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    break
                write(name)
        except BaseException as error:  # reported below
            failures.append(error)
        cpu[threading.current_thread().name] = time.thread_time()

    threads = [threading.Thread(target=run, name=f"writer-{n}", daemon=True)
               for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return sum(cpu.values())


def _request_body(informer: Informer, name: str, value: str, work: int) -> bytes:
    """Read `name` from the cache, "reconcile" it, and give the patch to send."""
    obj = informer.store.get(NAMESPACE, name)
    assert obj is not None
    stand_in(work)
    return json.dumps(label_ops(str(meta(obj)["resourceVersion"]), value),
                      separators=(",", ":")).encode()


def _threads(client: Cluster, http: Http, informer: Informer, names: list[str], value: str,
             checked: Checked, workers: int, work: int) -> float:
    def start() -> Callable[[str], None]:
        def write(name: str) -> None:
            obj = informer.store.get(NAMESPACE, name)
            assert obj is not None
            stand_in(work)
            checked.written(client.patch_json(CONFIGMAP, NAMESPACE, name, label_ops(
                str(meta(obj)["resourceVersion"]), value)))
        return write

    return _on_threads(names, workers, start)


def _lean(client: Cluster, http: Http, informer: Informer, names: list[str], value: str,
          checked: Checked, workers: int, work: int) -> float:
    sockets: list[socket.socket] = []

    def start() -> Callable[[str], None]:
        sock = http.connect()
        sockets.append(sock)
        buffer = bytearray()

        def write(name: str) -> None:
            sock.sendall(http.request(NAMESPACE, name,
                                      _request_body(informer, name, value, work)))
            while (answer := parse_answer(buffer)) is None:
                data = sock.recv(1 << 18)
                if not data:
                    raise ConnectionError("the server closed the connection")
                buffer.extend(data)
            checked.answered(*answer)
        return write

    try:
        return _on_threads(names, workers, start)
    finally:
        for sock in sockets:
            sock.close()


def _pipelined(client: Cluster, http: Http, informer: Informer, names: list[str],
               value: str, checked: Checked, workers: int, work: int) -> float:
    started = time.thread_time()
    todo = list(reversed(names))
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}

    def send(sock: socket.socket) -> None:
        name = todo.pop()
        body = _request_body(informer, name, value, work)
        sock.setblocking(True)  # a request is a few hundred bytes: one write
        sock.sendall(http.request(NAMESPACE, name, body))
        sock.setblocking(False)

    in_flight = 0
    for _ in range(min(workers, len(todo))):
        sock = http.connect()
        buffers[sock] = bytearray()
        selector.register(sock, selectors.EVENT_READ)
        send(sock)
        in_flight += 1
    while in_flight:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, ssl.SSLSocket)
            buffer = buffers[sock]
            try:
                while True:  # everything the TLS layer holds
                    data = sock.recv(1 << 18)
                    if not data:
                        raise ConnectionError("the server closed the connection")
                    buffer += data
                    if not sock.pending():
                        break
            except ssl.SSLWantReadError:
                pass
            answer = parse_answer(buffer)
            if answer is None:
                continue
            checked.answered(*answer)
            if todo:
                send(sock)
            else:
                in_flight -= 1
    for sock in buffers:
        selector.unregister(sock)
        sock.close()
    return time.thread_time() - started


WRITERS = {"threads": _threads, "lean": _lean, "pipelined": _pipelined}


def run_round(kubeconfig: str, http: Http, variant: str, value: str, *, objects: int,
              workers: int, work: int, meter: Meter, timeout: float) -> Round:
    client = Cluster.connect(kubeconfig)
    answers = Answers()
    client.remember_answers(answers)
    informer = Informer(CONFIGMAP, source=client, clock=RealClock())
    informer.start()
    try:
        if not informer.wait_synced(timeout):
            raise TimeoutError("the informer did not list in time")
        names = sorted(name for (namespace, name), _ in informer.store.versions(NAMESPACE)
                       if namespace == NAMESPACE)
        if len(names) != objects:
            raise RuntimeError(f"{len(names)} objects cached, {objects} expected")
        checked = Checked(value, answers)
        before_all, before = meter.sample(), time.process_time()
        start = time.perf_counter()
        writers_cpu = WRITERS[variant](client, http, informer, names, value, checked,
                                       workers, work)
        deadline = start + timeout
        while sum(1 for obj in informer.store.list(NAMESPACE)
                  if (meta(obj).get("labels") or {}).get(LABEL) == value) < objects:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{variant}: the cache did not converge in time")
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        process_cpu = time.process_time() - before
        used = meter.used(before_all, meter.sample())
        if checked.writes != objects:
            raise RuntimeError(f"{variant}: {checked.writes} writes, {objects} expected")
        return Round(variant, seconds, checked.writes, process_cpu, writers_cpu,
                     sum(used.values()))
    finally:
        informer.stop()
        client.close()


def _median(rounds: list[Round], variant: str, field: str) -> float:
    return statistics.median(getattr(r, field) for r in rounds if r.variant == variant)


def _ratios(rounds: list[Round], upper: str, lower: str, field: str) -> list[float]:
    """`upper`/`lower` of `field` within each repetition (the rounds run one after the
    other, so the pair shares the server's state of that moment)."""
    per_rep: dict[int, dict[str, float]] = {}
    for index, r in enumerate(rounds):
        per_rep.setdefault(index // len(VARIANTS), {})[r.variant] = getattr(r, field)
    return [rep[upper] / rep[lower] for rep in per_rep.values()
            if upper in rep and lower in rep and rep[lower] > 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.pipelining",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=16, help="writes in flight (W)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=int, default=450,
                        help="steps of the stand-in reconcile (~8.6 bytecodes each)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting one")
    args = parser.parse_args(argv)
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
          file=sys.stderr)
    rounds: list[Round] = []
    with setup.control_plane(args.kubeconfig) as (kubeconfig, run_dir):
        admin = Cluster.connect(kubeconfig)
        meter = Meter.for_run_dir(run_dir)
        fill_namespace(admin, NAMESPACE, args.objects, threads=8)
        http = Http(kubeconfig)
        try:
            for rep in range(args.repeat + 1):  # the first repetition warms up
                order = VARIANTS[rep % 3:] + VARIANTS[:rep % 3]
                for variant in order:
                    done = run_round(kubeconfig, http, variant, f"{variant}-{rep}",
                                     objects=args.objects, workers=args.workers,
                                     work=args.work, meter=meter, timeout=args.timeout)
                    tag = "warm-up" if rep == 0 else f"run {rep}"
                    print(f"  {tag} {variant:9s} {done.seconds:6.2f}s  writes "
                          f"{done.writes}  process CPU {done.process_cpu:5.2f}s  writers "
                          f"{done.writers_cpu:5.2f}s  all processes {done.all_cpu:6.2f}s",
                          file=sys.stderr, flush=True)
                    if rep:
                        rounds.append(done)
        finally:
            http.close()
            admin.close()
    print(f"N = {args.objects}, W = {args.workers}, {args.repeat} repetitions "
          "(medians; every round wrote N, every answer checked, the cache converged)")
    print(f"{'variant':10s} {'seconds':>8s} {'process CPU':>12s} {'writers CPU':>12s} "
          f"{'all CPU':>8s}")
    for variant in VARIANTS:
        print(f"{variant:10s} {_median(rounds, variant, 'seconds'):8.2f} "
              f"{_median(rounds, variant, 'process_cpu'):12.2f} "
              f"{_median(rounds, variant, 'writers_cpu'):12.2f} "
              f"{_median(rounds, variant, 'all_cpu'):8.2f}")
    for upper, lower in (("lean", "threads"), ("pipelined", "lean"),
                         ("pipelined", "threads")):
        parts = []
        for field in ("seconds", "process_cpu", "writers_cpu"):
            ratios = _ratios(rounds, upper, lower, field)
            parts.append(f"{field} {statistics.median(ratios):.2f} "
                         f"({min(ratios):.2f}-{max(ratios):.2f})")
        print(f"{upper}/{lower}: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
