"""TLS contexts from PEM files (pyOpenSSL through Twisted's own helpers).

Server side: :func:`server_options` builds a ``CertificateOptions`` with our
certificate chain and, for mutual TLS, a trust root that client certificates
must chain to.  Client side: :class:`ClientTLS` makes one connection creator per
expected server name with :func:`twisted.internet.ssl.optionsForClientTLS`, which
verifies the peer's chain and its name (DNS or IP) with service_identity.

Every problem with a file (missing, unreadable, not PEM, key not matching the
certificate, encrypted key) is a :class:`TransportConfigError` naming the file.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL, crypto
from twisted.internet import ssl

from .config import TLSConfig, TransportConfigError

#: How many client connection creators (one per server name) are kept.
CLIENT_CREATOR_CACHE_SIZE = 256


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise TransportConfigError(f"TLS {what} file {path!r}: no such file") from None
    except IsADirectoryError:
        raise TransportConfigError(f"TLS {what} file {path!r}: is a directory") from None
    except PermissionError:
        raise TransportConfigError(
            f"TLS {what} file {path!r}: not readable (permission denied)"
        ) from None
    except OSError as e:
        raise TransportConfigError(f"TLS {what} file {path!r}: {e.strerror or e}") from None


def load_certificates(path: str, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate in a PEM file, in file order (leaf first for a chain)."""
    data = _read(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise TransportConfigError(
            f"TLS {what} file {path!r}: no valid PEM certificate ({e})"
        ) from None
    if not certs:  # pragma: no cover - cryptography raises instead
        raise TransportConfigError(f"TLS {what} file {path!r}: no PEM certificate")
    return certs


def load_private_key(path: str) -> PrivateKeyTypes:
    """The unencrypted private key in a PEM file."""
    data = _read(path, "private key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TransportConfigError(
            f"TLS private key file {path!r}: the key is encrypted; "
            "give an unencrypted key (protect it with file permissions)"
        ) from None
    except (ValueError, crypto.Error) as e:
        raise TransportConfigError(
            f"TLS private key file {path!r}: not a valid PEM private key ({e})"
        ) from None
    except Exception as e:  # cryptography raises UnsupportedAlgorithm and others
        raise TransportConfigError(f"TLS private key file {path!r}: {e}") from None


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_key_and_chain(certificate: str, private_key: str) -> tuple[Any, Any, list[Any]]:
    """Our key, our certificate and the rest of its chain, checked to belong together.

    Returned as ``cryptography`` objects, which pyOpenSSL takes directly (its
    own ``X509``/``PKey`` wrappers are deprecated) through Twisted's options.
    """
    chain = load_certificates(certificate)
    key = load_private_key(private_key)
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | dsa.DSAPrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise TransportConfigError(
            f"TLS private key file {private_key!r}: unsupported key type {type(key).__name__}"
        )
    if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
        raise TransportConfigError(
            f"TLS private key file {private_key!r} does not match the certificate "
            f"in {certificate!r}"
        )
    return key, chain[0], chain[1:]


def trust_root(tls: TLSConfig | None) -> Any:
    """The trust root for peers: the configured CA bundle, else the system store."""
    if tls is None or tls.ca_bundle is None:
        return ssl.platformTrust()  # type: ignore[no-untyped-call]
    cas = load_certificates(tls.ca_bundle, "CA bundle")
    certs = [ssl.Certificate(crypto.X509.from_cryptography(c)) for c in cas]  # type: ignore[no-untyped-call]
    return ssl.trustRootFromCertificates(certs)  # type: ignore[no-untyped-call]


def _check_context(options: Any, what: str) -> None:
    try:
        options.getContext()
    except SSL.Error as e:
        raise TransportConfigError(f"{what}: OpenSSL refused the settings: {e}") from None


def server_options(tls: TLSConfig, what: str = "TLS listener") -> ssl.CertificateOptions:
    """A server context factory for a TLS listener.

    With ``verify_client`` the handshake requires a client certificate that
    chains to ``ca_bundle`` (or the system store when no bundle is given).
    The OpenSSL context is built now, so bad settings fail at start-up.
    """
    if not tls.certificate or not tls.private_key:
        raise TransportConfigError(f"{what}: needs both certificate and private_key")
    pkey, cert, chain = load_key_and_chain(tls.certificate, tls.private_key)
    if tls.verify_client:
        options = ssl.CertificateOptions(
            privateKey=pkey,
            certificate=cert,
            extraCertChain=chain,
            trustRoot=trust_root(tls),  # implies requiring a verified client certificate
        )
    else:
        options = ssl.CertificateOptions(privateKey=pkey, certificate=cert, extraCertChain=chain)
    _check_context(options, what)
    return options


class ClientTLS:
    """Client-side TLS: trust root, optional client certificate, per-name creators.

    ``creator_for(server_name)`` returns an ``IOpenSSLClientConnectionCreator``
    for ``reactor.connectSSL`` that verifies the server's chain against the trust
    root and its identity against ``server_name`` (a DNS name, or an IP address
    checked against the certificate's IP subjectAltNames).  Creators are cached
    per name, so the OpenSSL context (and the trust store) is loaded once.
    """

    def __init__(self, tls: TLSConfig | None = None) -> None:
        self._trust = trust_root(tls)
        self._extra: dict[str, Any] = {}
        if tls is not None and (tls.certificate or tls.private_key):
            if not tls.certificate or not tls.private_key:
                raise TransportConfigError(
                    "client TLS: a client certificate needs both certificate and private_key"
                )
            pkey, cert, chain = load_key_and_chain(tls.certificate, tls.private_key)
            self._extra = {"privateKey": pkey, "certificate": cert, "extraCertChain": chain}
        self._creators: OrderedDict[str, Any] = OrderedDict()

    def creator_for(self, server_name: str) -> Any:
        """The connection creator verifying ``server_name`` (cached)."""
        creator = self._creators.get(server_name)
        if creator is None:
            creator = ssl.optionsForClientTLS(
                server_name, self._trust, extraCertificateOptions=dict(self._extra)
            )
            self._creators[server_name] = creator
            if len(self._creators) > CLIENT_CREATOR_CACHE_SIZE:
                self._creators.popitem(last=False)
        else:
            self._creators.move_to_end(server_name)
        return creator
