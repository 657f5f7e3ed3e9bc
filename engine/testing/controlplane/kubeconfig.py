"""Kubeconfig files and a tiny HTTPS probe for the test control plane.

The kubeconfig is written as JSON (kubectl and the kubernetes client read it like
YAML) and points at certificate files rather than embedding them, so a reader can
inspect them with openssl. The probe uses only ``ssl``/``http.client``: nothing under
``engine/testing`` may import the kubernetes client.

Called by :mod:`.plane` (admin and per-user kubeconfigs) and :mod:`.processes`
(readiness checks).
"""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from .certs import KeyPair


def write_kubeconfig(path: Path, *, server: str, ca: Path, client: KeyPair,
                     user: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "edict-test", "cluster": {
            "server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": user, "context": {"cluster": "edict-test", "user": user}}],
        "current-context": user,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def tls_context(*, ca: Path | None, client: KeyPair | None = None) -> ssl.SSLContext:
    """Verify against ``ca``, or not at all when ``ca`` is None (self-signed health ports)."""
    if ca is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def get_status(url: str, *, context: ssl.SSLContext | None = None,
               timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; return status and body. Connection errors propagate as OSError."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
