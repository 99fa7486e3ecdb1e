"""The lab's PKI: serving CA, client CA, front-proxy CA, their certificates and the service-account keys.

Why three CAs: the API server trusts the client CA for ordinary client certificates (admin, responder) and the
front-proxy CA only for the request-header authenticator. Keeping them apart means a responder certificate
can never assert an identity through X-Remote-* headers, just as on a real cluster. ECDSA P-256 keys keep
generation fast (milliseconds), so every lab start gets fresh keys. Private keys are written mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FRONT_PROXY_CLIENT_NAME = "eksir-front-proxy"
SERVICE_IP = "10.96.0.1"
_VALIDITY = datetime.timedelta(days=365)
_SKEW = datetime.timedelta(hours=1)
_SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_SERVING_IPS = ("127.0.0.1", "::1", SERVICE_IP)


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its PEM private key on disk."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LabPki:
    """Every file the API server and its clients need for TLS and authentication."""

    ca: Path
    serving: CertPair
    client_ca: Path
    admin: CertPair
    responder: CertPair
    front_proxy_ca: Path
    front_proxy_client: CertPair
    sa_public_key: Path
    sa_private_key: Path


@dataclass(frozen=True)
class _Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def generate_pki(directory: Path) -> LabPki:
    """Create fresh CAs, certificates and service-account keys under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    server_ca = _new_ca("eksir-lab-ca")
    client_ca = _new_ca("eksir-lab-client-ca")
    proxy_ca = _new_ca("eksir-lab-front-proxy-ca")
    serving = _issue(server_ca, "kube-apiserver", (), ExtendedKeyUsageOID.SERVER_AUTH, serving=True)
    admin = _issue(client_ca, "eksir-admin", ("system:masters",), ExtendedKeyUsageOID.CLIENT_AUTH)
    responder = _issue(client_ca, "eksir-responder", (), ExtendedKeyUsageOID.CLIENT_AUTH)
    proxy = _issue(proxy_ca, FRONT_PROXY_CLIENT_NAME, (), ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = ec.generate_private_key(ec.SECP256R1())
    sa_public = directory / "sa.pub"
    sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return LabPki(
        ca=_write_cert(directory / "ca.crt", server_ca.cert),
        serving=_write_pair(directory, "apiserver", serving),
        client_ca=_write_cert(directory / "client-ca.crt", client_ca.cert),
        admin=_write_pair(directory, "admin", admin),
        responder=_write_pair(directory, "responder", responder),
        front_proxy_ca=_write_cert(directory / "front-proxy-ca.crt", proxy_ca.cert),
        front_proxy_client=_write_pair(directory, "front-proxy-client", proxy),
        sa_public_key=sa_public,
        sa_private_key=_write_key(directory / "sa.key", sa_key),
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _VALIDITY)
    )


def _new_ca(common_name: str) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Authority(cert=cert, key=key)


def _issue(
    ca: _Authority,
    common_name: str,
    organizations: tuple[str, ...],
    usage: x509.ObjectIdentifier,
    *,
    serving: bool = False,
) -> _Authority:
    """Issue a leaf certificate (server or client) signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(common_name, organizations), ca.cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if serving:
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in _SERVING_DNS]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _SERVING_IPS]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _Authority(cert=builder.sign(ca.key, hashes.SHA256()), key=key)


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def _write_pair(directory: Path, stem: str, leaf: _Authority) -> CertPair:
    return CertPair(
        cert=_write_cert(directory / f"{stem}.crt", leaf.cert),
        key=_write_key(directory / f"{stem}.key", leaf.key),
    )
