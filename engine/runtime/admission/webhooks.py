"""Admission on one replica: the certificate, the HTTPS server and (leader) the configurations.

The manager builds one `Webhooks` when `edict run` has a webhook address, starts it with
the rest and asks it `sync()` after each recompilation while it leads. `Webhooks` owns:

- the certificate source (`webhook_certs.py`: a directory, or Edict's own CA in a
  Secret), refreshed every `resync` seconds on its own thread — the leader renews what
  is due, every replica serves what the Secret holds;
- the `WebhookServer` (`webhook_server.py`), started once the first certificate is
  there; it answers with an `AdmissionHandler` (`admission.py`) over the manager's
  current engine and caches, on every replica;
- the `WebhookConfigs` (`webhook_config.py`), synced by the leader after every rule-set
  change, every `resync` seconds (drift) and when the CA bundle changed. A sync whose
  write failed (a conflict, the API server away) is tried again after 1 s, then 2 s,
  4 s… up to `resync`, rather than only at the next resync.

It never deletes the configurations: a replica shutting down must not ungate the
others (docs/admission.md says how to switch admission off).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from engine.evaluate.world import World
from engine.kube.client import Cluster

from ..current import Current
from ..metrics import EngineMetrics
from .admission import AdmissionHandler
from .memo import AdmissionMemo
from .webhook_certs import Certificates, FileCertificates, SecretCertificates
from .webhook_config import Endpoint, WebhookConfigs, WebhookSettings
from .webhook_server import WebhookServer

log = logging.getLogger(__name__)

RETRY_FIRST = 1.0  # seconds after a failed configuration write; doubles up to `resync`


@dataclass(frozen=True, kw_only=True)
class WebhookOptions:
    address: tuple[str, int]
    endpoint: Endpoint
    own_namespace: str
    cert_dir: str | None = None
    timeout_seconds: int = 3
    resync: float = 30.0


class Webhooks:
    def __init__(self, cluster: Cluster, options: WebhookOptions, *,
                 current: Callable[[], Current], world: World, metrics: EngineMetrics,
                 loaded: Callable[[], bool], leading: Callable[[], bool],
                 memo: AdmissionMemo | None = None) -> None:
        self._options = options
        self._current = current
        self._leading = leading
        self._loaded = loaded
        self.certificates: Certificates = (
            FileCertificates(options.cert_dir) if options.cert_dir else SecretCertificates(
                cluster, namespace=options.own_namespace, hosts=hosts(options.endpoint),
                now=lambda: datetime.now(UTC)))
        handler = AdmissionHandler(current=current, world=world, metrics=metrics,
                                   ready=loaded, memo=memo)
        self.server = WebhookServer(host=options.address[0], port=options.address[1],
                                    handler=handler, tls=self.certificates.context)
        self.configs = WebhookConfigs(
            cluster, WebhookSettings(endpoint=options.endpoint,
                                     own_namespace=options.own_namespace,
                                     timeout_seconds=options.timeout_seconds),
            ca_bundle=self.certificates.ca_bundle)
        self._sync_lock = threading.Lock()
        self._started = threading.Event()  # the server serves
        self._stop = threading.Event()
        self._wake = threading.Event()  # a sync failed: the loop tries again now
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._started.is_set():
            self.server.stop()

    def sync(self) -> None:
        """Leader: write the two configurations if the rule sets need other ones; if a
        write fails, the loop tries again at once, then backing off."""
        if not self._started.is_set():
            return  # no certificate yet: the loop syncs as soon as there is one
        if not self._write():
            self._wake.set()

    def _write(self) -> bool:
        with self._sync_lock:
            return self.configs.sync(self._current().engine)

    @property
    def serving(self) -> bool:
        return self._started.is_set() and self.server.serving

    def ready(self) -> tuple[bool, str]:
        if not self.serving:
            return False, "the admission webhook is not serving yet (its certificate?)"
        return True, "ok"

    def alive(self) -> tuple[bool, str]:
        if self._started.is_set() and not self.server.serving and not self._stop.is_set():
            return False, "the admission webhook stopped serving"
        return True, "ok"

    def _loop(self) -> None:
        """Load the certificate and start serving; then, every `resync` seconds, re-read
        it (the leader renews it when due) and check the configurations."""
        interval = 1.0  # until the first certificate is there
        backoff = RETRY_FIRST
        while True:
            settled = True
            try:
                changed = self.certificates.refresh(leader=self._leading())
                if not self._started.is_set():
                    self.server.start()
                    self._started.set()
                    interval = self._options.resync
                    log.info("serving admission webhooks on %s:%d", *self.server.address)
                if self._leading() and self._loaded():
                    if changed:
                        log.info("webhook certificate or CA bundle changed")
                    settled = self._write()
            except Exception:  # RBAC, the API server away: try again
                log.exception("webhook certificates or configurations")
                settled = not self._started.is_set()  # before serving: every second
            if settled:
                wait, backoff = interval, RETRY_FIRST
            else:  # a configuration left behind: soon, then less and less often
                wait, backoff = min(backoff, interval), min(backoff * 2, interval)
            self._wake.clear()  # a failed sync elsewhere meanwhile is retried from here
            if not self._stop.is_set():  # `stop` may have set the wake just cleared
                self._wake.wait(wait)
            if self._stop.is_set():
                return


def hosts(endpoint: Endpoint) -> list[str]:
    """The names the serving certificate must cover: the URL's host, or the Service's
    DNS names."""
    if endpoint.url:
        host = urlsplit(endpoint.url).hostname
        return [host] if host else []
    name, namespace = endpoint.service_name, endpoint.service_namespace
    return [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local",
            f"{name}.{namespace}"]
