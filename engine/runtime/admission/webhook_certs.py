"""The webhook's serving certificate: from files, or made and rotated by Edict itself.

`edict run --webhook-cert-dir DIR` serves ``DIR/tls.crt`` and ``DIR/tls.key`` (for
example from cert-manager) and reloads them when they change; the CA bundle written into
the webhook configurations is ``DIR/ca.crt``, else the certificate itself.

Without a directory, Edict is its own CA (`SecretCertificates`): an ECDSA P-256 CA and a
serving certificate for the webhook's host names live in one Secret of Edict's
namespace, so every replica serves the same certificate. Whoever starts first and finds
no Secret creates it (a replica that loses that race reads the winner's). The leader
rotates, well before expiry:

- the serving certificate when less than `CertPolicy.renew_serving` of it is left, or
  when it does not cover the host names (`--webhook-url` changed);
- the CA when less than `CertPolicy.renew_ca` is left: the new CA first joins the CA
  bundle beside the old one, and only after `CertPolicy.ca_grace` — time for the leader
  to write the bundle into the webhook configurations — does a serving certificate
  signed by it replace the old one. The old CA leaves the bundle when it expires.

Every replica re-reads the Secret on `refresh` and serves what it holds from the next
connection on (`context`). The Secret is the only state; losing it (deleted by hand)
just makes a new CA.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.kube.client import Cluster
from engine.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from engine.objects import GVK, Obj, meta

log = logging.getLogger(__name__)


class Certificates(Protocol):
    """What the webhook server and the configuration sync need of a certificate source."""

    def refresh(self, *, leader: bool) -> bool:
        """Load what changed (the leader also renews what is due); True if it changed."""

    def context(self) -> ssl.SSLContext:
        """The TLS server context to serve now."""

    def ca_bundle(self) -> bytes:
        """PEM of the CAs the API server must trust (the configurations' caBundle)."""


SECRET = GVK("", "v1", "Secret")
SECRET_NAME = "edict-webhook-certs"
CA_ADDED = "edict.dev/ca-added"  # annotation: when the signing CA joined the bundle
Now = Callable[[], datetime.datetime]


@dataclass(frozen=True)
class CertPolicy:
    ca_validity: datetime.timedelta = datetime.timedelta(days=3650)
    serving_validity: datetime.timedelta = datetime.timedelta(days=365)
    renew_ca: datetime.timedelta = datetime.timedelta(days=365)
    renew_serving: datetime.timedelta = datetime.timedelta(days=30)
    ca_grace: datetime.timedelta = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Material:
    """What the Secret holds (PEM): the signing CA, the serving pair, trusted CAs."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes
    bundle: bytes
    ca_added: datetime.datetime

    def data(self) -> dict[str, str]:
        def b64(value: bytes) -> str:
            return base64.b64encode(value).decode()

        return {"ca.crt": b64(self.ca_cert), "ca.key": b64(self.ca_key),
                "tls.crt": b64(self.cert), "tls.key": b64(self.key),
                "ca-bundle.crt": b64(self.bundle)}

    @classmethod
    def of_secret(cls, secret: Obj) -> Material | None:
        data = secret.get("data") or {}
        try:
            parts = {k: base64.b64decode(data[k]) for k in
                     ("ca.crt", "ca.key", "tls.crt", "tls.key", "ca-bundle.crt")}
            added = datetime.datetime.fromisoformat(
                str((meta(secret).get("annotations") or {})[CA_ADDED]))
        except (KeyError, ValueError, TypeError):
            return None
        return cls(parts["ca.crt"], parts["ca.key"], parts["tls.crt"], parts["tls.key"],
                   parts["ca-bundle.crt"], added)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                         decipher_only=False)


def make_ca(now: datetime.datetime, validity: datetime.timedelta) -> tuple[bytes, bytes]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"edict-webhook-ca-{now:%Y%m%d%H%M%S}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return _pem(cert), _pem_key(key)


def issue(ca_cert: bytes, ca_key: bytes, hosts: Sequence[str], now: datetime.datetime,
          validity: datetime.timedelta) -> tuple[bytes, bytes]:
    """A serving certificate for `hosts` (DNS names or IP addresses), signed by the CA."""
    authority = x509.load_pem_x509_certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key, password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = _key()
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    not_after = min(now + validity, authority.not_valid_after_utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(authority.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer.public_key()), critical=False)
            .sign(signer, hashes.SHA256()))
    return _pem(cert), _pem_key(key)


def covers(cert_pem: bytes, hosts: Sequence[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}
    have |= set(alt.get_values_for_type(x509.DNSName))
    return all(str(_normal(h)) in have for h in hosts)


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _split(bundle: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(bundle) if bundle.strip() else []


def fresh(hosts: Sequence[str], now: datetime.datetime, policy: CertPolicy) -> Material:
    ca_cert, ca_key = make_ca(now, policy.ca_validity)
    cert, key = issue(ca_cert, ca_key, hosts, now, policy.serving_validity)
    return Material(ca_cert, ca_key, cert, key, ca_cert, now)


def renewed(current: Material | None, hosts: Sequence[str], now: datetime.datetime,
            policy: CertPolicy) -> tuple[Material, str] | None:
    """What the Secret should hold next, and why; None when it is fine as it is."""
    if current is None:
        return fresh(hosts, now, policy), "no certificate yet"
    ca = x509.load_pem_x509_certificate(current.ca_cert)
    serving = x509.load_pem_x509_certificate(current.cert)
    # CAs past their end leave the bundle
    trusted = [c for c in _split(current.bundle) if c.not_valid_after_utc > now]
    if ca.not_valid_after_utc - now < policy.renew_ca:
        ca_cert, ca_key = make_ca(now, policy.ca_validity)
        bundle = ca_cert + b"".join(_pem(c) for c in trusted)
        return Material(ca_cert, ca_key, current.cert, current.key, bundle, now), (
            "the CA expires soon: a new CA joins the bundle")
    why = None
    if serving.not_valid_after_utc - now < policy.renew_serving:
        why = "the serving certificate expires soon"
    elif not covers(current.cert, hosts):
        why = f"the serving certificate does not cover {', '.join(hosts)}"
    elif serving.issuer != ca.subject and now - current.ca_added >= policy.ca_grace:
        why = "the new CA is in the bundle: serve a certificate it signed"
    if why is not None and (serving.issuer == ca.subject
                            or now - current.ca_added >= policy.ca_grace):
        cert, key = issue(current.ca_cert, current.ca_key, hosts, now,
                          policy.serving_validity)
        bundle = b"".join(_pem(c) for c in trusted)
        return Material(current.ca_cert, current.ca_key, cert, key, bundle,
                        current.ca_added), why
    if len(trusted) != len(_split(current.bundle)):
        return Material(current.ca_cert, current.ca_key, current.cert, current.key,
                        b"".join(_pem(c) for c in trusted), current.ca_added), (
            "an expired CA leaves the bundle")
    return None


def ssl_context(cert: bytes, key: bytes) -> ssl.SSLContext:
    """A server context for this pair (the ssl module reads keys from files only: they
    go through a private temporary directory, removed at once)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="edict-tls-") as directory:
        cert_file, key_file = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert_file.write_bytes(cert)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key)
        context.load_cert_chain(cert_file, key_file)
    return context


class FileCertificates:
    """`--webhook-cert-dir`: tls.crt/tls.key (and ca.crt) from a directory, reloaded
    when they change."""

    def __init__(self, directory: str) -> None:
        self._dir = Path(directory)
        self._lock = threading.Lock()
        self._stamp: tuple[float, ...] = ()
        self._context: ssl.SSLContext | None = None
        self._bundle = b""
        self.refresh(leader=False)

    def _files(self) -> tuple[Path, Path, Path]:
        return self._dir / "tls.crt", self._dir / "tls.key", self._dir / "ca.crt"

    def refresh(self, *, leader: bool) -> bool:
        cert, key, ca = self._files()
        stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in (cert, key, ca))
        if stamp == self._stamp:
            return False
        context = ssl_context(cert.read_bytes(), key.read_bytes())
        bundle = ca.read_bytes() if ca.exists() else cert.read_bytes()
        with self._lock:
            self._stamp, self._context, self._bundle = stamp, context, bundle
        log.info("webhook certificate loaded from %s", self._dir)
        return True

    def context(self) -> ssl.SSLContext:
        assert self._context is not None
        return self._context

    def ca_bundle(self) -> bytes:
        return self._bundle


class SecretCertificates:
    """Edict as its own CA, kept in the Secret `SECRET_NAME` of Edict's namespace."""

    def __init__(self, cluster: Cluster, *, namespace: str, hosts: Sequence[str],
                 now: Now, policy: CertPolicy | None = None,
                 name: str = SECRET_NAME) -> None:
        self._cluster = cluster
        self._namespace = namespace
        self._name = name
        self._hosts = tuple(hosts)
        self._now = now
        self._policy = policy or CertPolicy()
        self._lock = threading.Lock()
        self._material: Material | None = None
        self._context: ssl.SSLContext | None = None

    def refresh(self, *, leader: bool) -> bool:
        """Read the Secret; create it when there is none (any replica), renew what is
        due (only the leader). True when what is served changed."""
        secret = self._read()
        current = Material.of_secret(secret) if secret is not None else None
        if secret is None or leader or current is None:
            due = renewed(current, self._hosts, self._now(), self._policy)
            if due is not None:
                material, why = due
                log.info("webhook certificates: %s", why)
                written = self._write(secret, material)
                current = material if written else Material.of_secret(self._read() or {})
        if current is None:
            raise RuntimeError(f"Secret {self._namespace}/{self._name} holds no usable "
                               "webhook certificate and none could be written")
        return self._use(current)

    def _use(self, material: Material) -> bool:
        with self._lock:
            if self._material is not None and (self._material.cert, self._material.bundle) == (
                    material.cert, material.bundle):
                return False
        context = ssl_context(material.cert, material.key)
        with self._lock:
            self._material, self._context = material, context
        return True

    def _read(self) -> Obj | None:
        try:
            return self._cluster.get(SECRET, self._namespace, self._name)
        except NotFound:
            return None

    def _write(self, existing: Obj | None, material: Material) -> bool:
        body: Obj = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": self._name, "namespace": self._namespace,
                                  "labels": {"app.kubernetes.io/managed-by": "edict"},
                                  "annotations": {CA_ADDED: material.ca_added.isoformat()}},
                     "data": material.data()}
        try:
            if existing is None:
                self._cluster.create(body)
            else:
                body["metadata"]["resourceVersion"] = meta(existing).get("resourceVersion")
                self._cluster.replace(body)
        except (AlreadyExists, Conflict):
            return False  # another replica wrote first: use what it wrote
        except ApiError as error:
            log.warning("could not write the webhook certificate Secret %s/%s: %s",
                        self._namespace, self._name, error)
            return False
        return True

    def context(self) -> ssl.SSLContext:
        with self._lock:
            assert self._context is not None, "refresh() first"
            return self._context

    def ca_bundle(self) -> bytes:
        with self._lock:
            return self._material.bundle if self._material is not None else b""

    @property
    def loaded(self) -> bool:
        return self._context is not None

