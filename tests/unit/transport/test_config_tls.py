"""ListenerConfig / TLSConfig validation and loading TLS material (clear start-up errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.transport import ListenerConfig, TLSConfig, TransportConfigError, TransportManager
from b2bua.transport.tls import ClientTLS, server_options
from tests.unit.transport.certs import PKI, make_pki
from tests.unit.transport.helpers import FakeReactor, Receiver


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_listener_config_normalizes() -> None:
    c = ListenerConfig("udp", "[::1]", 5060)
    assert (c.transport, c.host, c.port, c.is_ipv6) == ("UDP", "::1", 5060, True)
    assert ListenerConfig("tcp", "0:0::0", 0).host == "::"
    assert not ListenerConfig("TCP", "127.0.0.1", 0).is_ipv6


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"transport": "SCTP", "host": "127.0.0.1", "port": 5060}, "transport must be"),
        ({"transport": "UDP", "host": "localhost", "port": 5060}, "not an IPv4 or IPv6 address"),
        ({"transport": "UDP", "host": "127.0.0.1", "port": 70000}, "port must be"),
        ({"transport": "UDP", "host": "127.0.0.1", "port": 5060, "advertised_port": 0}, "advertised_port"),
        ({"transport": "TLS", "host": "127.0.0.1", "port": 5061}, "needs a [tls] section"),
        ({"transport": "TLS", "host": "127.0.0.1", "port": 5061, "tls": TLSConfig(certificate="x.pem")}, "both certificate and private_key"),
    ],
)
def test_listener_config_errors(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(TransportConfigError) as info:
        ListenerConfig(**kwargs)  # type: ignore[arg-type]
    assert words in info.value.message


def test_server_options_loads_chain_and_key(pki: PKI) -> None:
    options = server_options(TLSConfig(certificate=pki.server_chain, private_key=pki.server_key))
    assert options.getContext() is not None


def test_server_options_with_client_verification(pki: PKI) -> None:
    options = server_options(
        TLSConfig(certificate=pki.server_cert, private_key=pki.server_key, ca_bundle=pki.ca, verify_client=True)
    )
    assert options.getContext() is not None


def _error(tls: TLSConfig) -> str:
    with pytest.raises(TransportConfigError) as info:
        server_options(tls)
    return info.value.message


def test_missing_certificate_file(pki: PKI, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    message = _error(TLSConfig(certificate=missing, private_key=pki.server_key))
    assert missing in message and "no such file" in message


def test_missing_key_file(pki: PKI, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.key")
    message = _error(TLSConfig(certificate=pki.server_cert, private_key=missing))
    assert missing in message and "private key" in message


def test_certificate_is_a_directory(pki: PKI, tmp_path: Path) -> None:
    message = _error(TLSConfig(certificate=str(tmp_path), private_key=pki.server_key))
    assert "is a directory" in message


def test_unreadable_key(pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    import b2bua.transport.tls as tls_module

    real_open = open

    def guarded(path: str, *args: object, **kwargs: object) -> object:
        if path == pki.server_key:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(tls_module, "open", guarded, raising=False)
    message = _error(TLSConfig(certificate=pki.server_cert, private_key=pki.server_key))
    assert "permission denied" in message and pki.server_key in message


def test_not_pem(pki: PKI, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    assert "no valid PEM certificate" in _error(TLSConfig(certificate=str(junk), private_key=pki.server_key))
    assert "not a valid PEM private key" in _error(TLSConfig(certificate=pki.server_cert, private_key=str(junk)))


def test_key_does_not_match_certificate(pki: PKI) -> None:
    message = _error(TLSConfig(certificate=pki.server_cert, private_key=pki.client_key))
    assert "does not match" in message and pki.client_key in message


def test_encrypted_key_is_refused_without_prompting(pki: PKI) -> None:
    assert "encrypted" in _error(TLSConfig(certificate=pki.server_cert, private_key=pki.encrypted_key))


def test_bad_ca_bundle(pki: PKI, tmp_path: Path) -> None:
    missing = str(tmp_path / "ca.pem")
    message = _error(TLSConfig(certificate=pki.server_cert, private_key=pki.server_key, ca_bundle=missing, verify_client=True))
    assert "CA bundle" in message and missing in message


def test_client_tls_needs_key_with_certificate(pki: PKI) -> None:
    with pytest.raises(TransportConfigError):
        ClientTLS(TLSConfig(certificate=pki.client_cert))
    client = ClientTLS(TLSConfig(certificate=pki.client_cert, private_key=pki.client_key, ca_bundle=pki.ca))
    first = client.creator_for("localhost")
    assert client.creator_for("localhost") is first
    assert client.creator_for("127.0.0.1") is not first


def test_manager_reports_bad_tls_at_construction(tmp_path: Path) -> None:
    listener = ListenerConfig("TLS", "127.0.0.1", 0, TLSConfig(certificate=str(tmp_path / "c.pem"), private_key=str(tmp_path / "k.pem")))
    with pytest.raises(TransportConfigError) as info:
        TransportManager(FakeReactor(), Receiver(), [listener])
    assert "c.pem" in info.value.message
