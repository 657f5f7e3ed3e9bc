"""Certificates and keys for the test control plane, made with ``cryptography``.

A control plane needs a serving CA and the apiserver's serving certificate, a
service-account signing key pair, and a client CA that signs one certificate per
user (CN = user name, O = groups: that is how the apiserver's x509 authenticator reads
them). Everything is ECDSA P-256. CA certificates carry BasicConstraints(ca) and
KeyUsage(keyCertSign), leaf certificates SubjectKeyIdentifier/AuthorityKeyIdentifier:
Python's strict TLS verification (3.13+) rejects certificates without them.

Called by :mod:`.plane` when a control plane starts and for ``add_user``.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
SERVING_NAMES = ("localhost",)
SERVING_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files on disk."""

    cert: Path
    key: Path

    def load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self.key} does not hold an ECDSA key")
        return cert, key


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _write(pair: KeyPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    pair.cert.parent.mkdir(parents=True, exist_ok=True)
    pair.key.touch(mode=0o600)
    pair.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _builder(subject: x509.Name, issuer: x509.Name,
             public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def make_ca(common_name: str, pair: KeyPair) -> KeyPair:
    """Write a self-signed CA certificate and key to ``pair``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(common_name), _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _write(pair, cert, key)


def _issue(ca: KeyPair, pair: KeyPair, subject: x509.Name, *, usage: x509.ObjectIdentifier,
           names: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> KeyPair:
    ca_cert, ca_key = ca.load()
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names or ips:
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return _write(pair, builder.sign(ca_key, hashes.SHA256()), key)


def issue_serving(ca: KeyPair, pair: KeyPair) -> KeyPair:
    """The apiserver's serving certificate: localhost, 127.0.0.1 and ::1."""
    return _issue(ca, pair, _name("localhost"), usage=ExtendedKeyUsageOID.SERVER_AUTH,
                  names=SERVING_NAMES, ips=SERVING_IPS)


def issue_client(ca: KeyPair, pair: KeyPair, user: str, groups: tuple[str, ...]) -> KeyPair:
    """A client certificate the apiserver reads as ``user`` in ``groups``."""
    return _issue(ca, pair, _name(user, groups), usage=ExtendedKeyUsageOID.CLIENT_AUTH)


def make_signing_key(pair: KeyPair) -> KeyPair:
    """The service-account token signing key and a self-signed certificate for its public half.

    ``--service-account-key-file`` accepts a certificate; the apiserver only reads its
    public key to verify tokens.
    """
    return make_ca("service-account-signer", pair)
