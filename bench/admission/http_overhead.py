"""The webhook server's own cost per review: `http.server` against a minimal HTTP/1.1 loop.

    python -m bench.admission.http_overhead [--requests 3000]

Both serve the same TLS (a certificate from `webhook_certs.fresh`) to one kept-alive
client in another process, which POSTs a 1.6 KB AdmissionReview N times; the review
itself is a stub that returns a fixed answer, so what is measured is TLS, HTTP parsing
and writing only. Reported: the server process's CPU per request and the round trip.
The minimal loop (request line, headers split by hand, Content-Length only, no limits
or error handling) is the floor a leaner server could reach; the difference is what
replacing `http.server` could save per review (bench/README.md, "admission").
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time

from engine.evaluate.request import Phase
from engine.runtime.admission.admission import AdmissionHandler
from engine.runtime.admission.webhook_certs import CertPolicy, fresh, ssl_context
from engine.runtime.admission.webhook_server import WebhookServer

BODY = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"uid": "u", "object": {"metadata": {"name": "x" * 1500}}}}
                  ).encode()
ANSWER = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "response": {"uid": "u", "allowed": True}}).encode()

CLIENT = """
import http.client, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
connection = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=context)
body = sys.stdin.buffer.read()
for _ in range(int(sys.argv[2])):
    connection.request("POST", "/mutate?timeout=3s", body, {
        "Content-Type": "application/json", "Accept": "application/json, */*",
        "User-Agent": "kube-apiserver-admission"})
    connection.getresponse().read()
"""


class StubReview(AdmissionHandler):
    """Answers every review with the same bytes (no engine)."""

    def __init__(self) -> None:  # no engine, world or metrics
        pass

    def review(self, raw: bytes, phase: Phase) -> bytes:
        return ANSWER


def minimal_server(context: ssl.SSLContext) -> int:
    """The floor: one thread per connection, HTTP/1.1 keep-alive, nothing checked."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(raw: socket.socket) -> None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = context.wrap_socket(raw, server_side=True)
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += tls.recv(65536)
            body, buffer = buffer[:length], buffer[length:]
            out = StubReview().review(body, Phase.MUTATE)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)

    def accept() -> None:
        while True:
            raw, _ = listener.accept()
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def measure(port: int, requests: int) -> tuple[float, float]:
    """(server CPU µs per request, round trip µs per request), after one warm-up pass."""
    command = [sys.executable, "-c", CLIENT, str(port), str(requests)]
    subprocess.run(command, input=BODY, check=True)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    subprocess.run(command, input=BODY, check=True)
    after, ended = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return 1e6 * cpu / requests, 1e6 * (ended - started) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admission.http_overhead")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    material = fresh(["127.0.0.1"], datetime.datetime.now(datetime.UTC), CertPolicy())
    context = ssl_context(material.cert, material.key)
    server = WebhookServer(host="127.0.0.1", port=0, handler=StubReview(),
                           tls=lambda: context)
    server.start()
    try:
        stdlib = measure(server.address[1], args.requests)
    finally:
        server.stop()
    floor = measure(minimal_server(context), args.requests)
    for name, (cpu, wall) in (("http.server", stdlib), ("minimal loop", floor)):
        print(f"{name:<13} server CPU {cpu:6.0f} µs/request, round trip {wall:6.0f} µs")
    print(f"what a leaner server could save: {stdlib[0] - floor[0]:.0f} µs of CPU per review")
    return 0


if __name__ == "__main__":
    sys.exit(main())
