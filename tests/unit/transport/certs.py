"""Throw-away test PKI generated with `cryptography` (nothing secret is committed).

``make_pki(directory)`` writes a CA, a server certificate for ``localhost`` /
127.0.0.1 / ::1, a client certificate, and a second CA's server certificate,
all as PEM files, and returns their paths.
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


@dataclass(frozen=True)
class PKI:
    """Paths of the generated PEM files."""

    ca: str
    server_cert: str
    server_key: str
    server_chain: str  # server certificate followed by the CA (a chain file)
    client_cert: str
    client_key: str
    other_ca: str
    other_cert: str
    other_key: str
    encrypted_key: str


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    usage: tuple[x509.ObjectIdentifier, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def make_pki(directory: str | Path) -> PKI:
    """Generate the PKI into ``directory`` (created if needed)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, other_ca_key = _key(), _key()
    ca = _cert("Test CA", ca_key, "Test CA", ca_key, ca=True)
    other_ca = _cert("Other CA", other_ca_key, "Other CA", other_ca_key, ca=True)
    server_key, client_key, other_key = _key(), _key(), _key()
    server = _cert(
        "localhost", server_key, "Test CA", ca_key,
        dns=("localhost",), ips=("127.0.0.1", "::1"), usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    client = _cert(
        "client.test", client_key, "Test CA", ca_key,
        dns=("client.test",), usage=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    )
    other = _cert(
        "localhost", other_key, "Other CA", other_ca_key,
        dns=("localhost",), ips=("127.0.0.1",), usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    files = {
        "ca.pem": _pem(ca),
        "server.pem": _pem(server),
        "server.key": _key_pem(server_key),
        "server-chain.pem": _pem(server) + _pem(ca),
        "client.pem": _pem(client),
        "client.key": _key_pem(client_key),
        "other-ca.pem": _pem(other_ca),
        "other.pem": _pem(other),
        "other.key": _key_pem(other_key),
        "encrypted.key": _key_pem(server_key, b"secret"),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    p = {name: str(d / name) for name in files}
    return PKI(
        ca=p["ca.pem"], server_cert=p["server.pem"], server_key=p["server.key"],
        server_chain=p["server-chain.pem"], client_cert=p["client.pem"], client_key=p["client.key"],
        other_ca=p["other-ca.pem"], other_cert=p["other.pem"], other_key=p["other.key"],
        encrypted_key=p["encrypted.key"],
    )
