"""The webhook's own CA and serving certificate: made once, shared through a Secret,
rotated before expiry with the new CA trusted before it signs anything served."""

from __future__ import annotations

import base64
import copy
import datetime
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from engine.kube.errors import AlreadyExists, Conflict, NotFound
from engine.objects import GVK
from engine.runtime.admission.webhook_certs import (
    CertPolicy,
    FileCertificates,
    Material,
    SecretCertificates,
    covers,
    fresh,
    issue,
    renewed,
    ssl_context,
)

HOSTS = ["127.0.0.1", "edict-webhook.edict-system.svc"]
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
POLICY = CertPolicy(ca_validity=datetime.timedelta(days=100),
                    serving_validity=datetime.timedelta(days=10),
                    renew_ca=datetime.timedelta(days=20),
                    renew_serving=datetime.timedelta(days=3),
                    ca_grace=datetime.timedelta(minutes=10))
DAY = datetime.timedelta(days=1)


def cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def bundle(material: Material) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(material.bundle)


def test_a_fresh_ca_signs_a_serving_certificate_for_the_hosts() -> None:
    made = fresh(HOSTS, START, POLICY)
    assert cert(made.cert).issuer == cert(made.ca_cert).subject
    assert covers(made.cert, HOSTS) and not covers(made.cert, ["other.example"])
    assert [c.subject for c in bundle(made)] == [cert(made.ca_cert).subject]
    assert isinstance(ssl_context(made.cert, made.key), ssl.SSLContext)
    assert renewed(made, HOSTS, START + DAY, POLICY) is None


def test_the_serving_certificate_is_renewed_before_it_expires_and_for_new_hosts() -> None:
    made = fresh(HOSTS, START, POLICY)
    assert renewed(made, HOSTS, START + 6 * DAY, POLICY) is None
    due = renewed(made, HOSTS, START + 8 * DAY, POLICY)
    assert due is not None and "expires soon" in due[1]
    again, _ = due
    assert again.ca_cert == made.ca_cert and again.cert != made.cert
    assert cert(again.cert).not_valid_after_utc > START + 17 * DAY
    moved = renewed(made, ["10.0.0.7"], START + DAY, POLICY)
    assert moved is not None and "does not cover 10.0.0.7" in moved[1]
    assert covers(moved[0].cert, ["10.0.0.7"])


def test_a_new_ca_is_trusted_first_and_serves_only_after_the_grace_period() -> None:
    renewal = renewed(fresh(HOSTS, START, POLICY), HOSTS, START + 79 * DAY, POLICY)
    assert renewal is not None
    made = renewal[0]  # the serving certificate as the leader keeps it: recent
    now = START + 85 * DAY
    step = renewed(made, HOSTS, now, POLICY)
    assert step is not None and "new CA joins the bundle" in step[1]
    trusted = step[0]
    assert trusted.cert == made.cert, "still serving what the API server trusts"
    assert [c.subject for c in bundle(trusted)] == [cert(trusted.ca_cert).subject,
                                                   cert(made.ca_cert).subject]
    assert renewed(trusted, HOSTS, now + datetime.timedelta(minutes=5), POLICY) is None
    step = renewed(trusted, HOSTS, now + datetime.timedelta(minutes=11), POLICY)
    assert step is not None and "serve a certificate it signed" in step[1]
    serving = step[0]
    assert cert(serving.cert).issuer == cert(serving.ca_cert).subject
    assert len(bundle(serving)) == 2, "the old CA stays trusted while it is valid"
    step = renewed(serving, HOSTS, START + 90 * DAY, POLICY)
    assert step is None
    serving = replace(serving, cert=issue(serving.ca_cert, serving.ca_key, HOSTS,
                                          START + 100 * DAY, POLICY.serving_validity)[0])
    step = renewed(serving, HOSTS, START + 101 * DAY, POLICY)
    assert step is not None and step[1] == "an expired CA leaves the bundle"
    assert [c.subject for c in bundle(step[0])] == [cert(serving.ca_cert).subject]


class SecretStore:
    """The Secret API of one namespace; anything else is a bug. Writes are recorded."""

    SECRET = GVK("", "v1", "Secret")

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.version = 0
        self.race: dict[str, Any] | None = None  # a Secret another replica creates first

    def get(self, gvk: GVK, namespace: str, name: str) -> dict[str, Any]:
        assert (gvk, namespace) == (self.SECRET, "edict-system")
        if name not in self.secrets:
            raise NotFound("not found")
        return copy.deepcopy(self.secrets[name])

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if self.race is not None:
            self.secrets[name], self.race = self.race, None
        if name in self.secrets:
            raise AlreadyExists("exists")
        return self._store(obj, "create")

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        current = self.secrets[obj["metadata"]["name"]]
        if obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise Conflict("changed")
        return self._store(obj, "replace")

    def _store(self, obj: dict[str, Any], verb: str) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.secrets[obj["metadata"]["name"]] = stored
        self.writes.append(verb)
        return stored

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to Cluster.{name}")


def replica(store: SecretStore, clock: list[datetime.datetime]) -> SecretCertificates:
    return SecretCertificates(store, namespace="edict-system",  # type: ignore[arg-type]
                              hosts=HOSTS, now=lambda: clock[0], policy=POLICY)


def test_every_replica_serves_the_one_secret_and_only_the_leader_renews() -> None:
    store, clock = SecretStore(), [START]
    first, second = replica(store, clock), replica(store, clock)
    assert first.refresh(leader=False) is True and store.writes == ["create"]
    assert second.refresh(leader=False) is True and store.writes == ["create"]
    assert first.ca_bundle() == second.ca_bundle() != b""
    assert first.refresh(leader=True) is False, "nothing due: nothing written or reloaded"
    clock[0] = START + 8 * DAY
    assert second.refresh(leader=False) is False and store.writes == ["create"]
    assert first.refresh(leader=True) is True and store.writes == ["create", "replace"]
    assert second.refresh(leader=False) is True
    served = base64.b64decode(store.secrets["edict-webhook-certs"]["data"]["tls.crt"])
    assert cert(served).not_valid_after_utc > START + 17 * DAY


def test_a_replica_that_loses_the_race_to_create_serves_the_winners() -> None:
    store, clock = SecretStore(), [START]
    winner = fresh(HOSTS, START, POLICY)
    store.race = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "edict-webhook-certs", "namespace": "edict-system",
                               "resourceVersion": "1",
                               "annotations": {"edict.dev/ca-added": START.isoformat()}},
                  "data": winner.data()}
    late = replica(store, clock)
    assert late.refresh(leader=False) is True
    assert late.ca_bundle() == winner.bundle and store.writes == []


def test_certificates_from_a_directory_are_reloaded_when_they_change(tmp_path: Path) -> None:
    made = fresh(HOSTS, START, POLICY)
    (tmp_path / "tls.crt").write_bytes(made.cert)
    (tmp_path / "tls.key").write_bytes(made.key)
    files = FileCertificates(str(tmp_path))
    assert files.ca_bundle() == made.cert  # no ca.crt: the certificate itself
    assert files.refresh(leader=True) is False
    (tmp_path / "ca.crt").write_bytes(made.ca_cert)
    assert files.refresh(leader=False) is True and files.ca_bundle() == made.ca_cert
    with pytest.raises(FileNotFoundError):
        FileCertificates(str(tmp_path / "missing"))
