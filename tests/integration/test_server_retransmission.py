"""Server transactions of the real server over UDP, seen from a raw socket.

- A retransmitted OPTIONS (same branch) gets the very response the first copy got
  (same To tag): the non-INVITE server transaction re-sends its last response
  instead of creating a new transaction (RFC 3261 17.2.2).
- An INVITE answered with a final error response (the core's 405 before the bridge
  existed; the bridge's 404 "No Route Configured" now that no route is configured:
  any 3xx-6xx will do) retransmitted gets the same response; the INVITE server
  transaction retransmits that response by itself with Timer G (T1 = 0.5 s, then
  1 s, ...) until the ACK; after the ACK (same branch, CSeq INVITE -> ACK, To tag of
  the response) nothing more arrives (RFC 3261 17.2.1).

Everything names 127.0.0.1 only, so no network namespace is needed.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import free_port
from tests.integration.harness import ServerProcess, config_text, running_server


@dataclass(frozen=True)
class Server:
    process: ServerProcess
    port: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("server-retransmission")
    port = free_port("udp")
    config = config_text(udp=port, extra="[server]\ndrain_time = 2.0\n")
    with running_server(workdir, config, ready_udp=port) as process:
        yield Server(process, port)
        assert process.alive(), f"server died:\n{process.log}"
        assert "Traceback" not in process.log, process.log


class Client:
    """A UDP socket on 127.0.0.1 talking to the server."""

    def __init__(self, port: int) -> None:
        self.server = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv(self, timeout: float) -> bytes | None:
        """The next datagram within ``timeout`` seconds, or None."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None

    def recv_final(self, timeout: float) -> bytes | None:
        """The next final (non-1xx) response within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            data = self.recv(left)
            if data is None:
                return None
            if not re.match(rb"SIP/2\.0 1\d\d ", data):
                return data
        return None

    def collect(self, seconds: float) -> list[bytes]:
        """Every datagram that arrives within ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            data = self.recv(left)
            if data is None:
                break
            out.append(data)
        return out


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    c = Client(server.port)
    yield c
    c.close()


def request(client: Client, method: str, branch: str, call_id: str, *, to_tag: str = "") -> bytes:
    to = "<sip:ping@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:ping@127.0.0.1:{client.server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.port};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=fromtag{call_id[:6]}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:probe@127.0.0.1:{client.port}>\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def new_ids() -> tuple[str, str]:
    return "z9hG4bK" + uuid.uuid4().hex[:16], uuid.uuid4().hex + "@127.0.0.1"


def to_tag(response: bytes) -> str:
    m = re.search(rb"\r\nTo:[^\r]*;tag=([^;\s]+)", response)
    assert m, response
    return m.group(1).decode()


def status(response: bytes | None) -> int | None:
    if response is None:
        return None
    m = re.match(rb"SIP/2\.0 (\d{3}) ", response)
    return int(m.group(1)) if m else None


def test_options_retransmission_gets_the_same_response(server: Server, client: Client) -> None:
    branch, call_id = new_ids()
    options = request(client, "OPTIONS", branch, call_id)
    client.send(options)
    first = client.recv_final(2.0)
    assert status(first) == 200, first
    assert first is not None
    client.send(options)
    second = client.recv_final(2.0)
    assert second == first, f"retransmission answered differently:\n{first!r}\n{second!r}"
    # A new transaction (new branch) gets a new To tag: the equality above is meaningful.
    client.send(request(client, "OPTIONS", *new_ids()))
    other = client.recv_final(2.0)
    assert status(other) == 200 and other is not None
    assert to_tag(other) != to_tag(first)
    # Nothing else: over UDP a non-INVITE final response is not retransmitted unasked.
    assert client.collect(0.7) == []


def test_invite_error_retransmitted_until_ack(server: Server, client: Client) -> None:
    branch, call_id = new_ids()
    invite = request(client, "INVITE", branch, call_id)
    client.send(invite)
    first = client.recv_final(2.0)
    code = status(first)
    assert code is not None and 300 <= code < 700, first
    assert first is not None
    tag = to_tag(first)

    # Our retransmission of the INVITE: the same response again.
    client.send(invite)
    again = client.recv_final(2.0)
    assert again == first

    # Timer G: the server retransmits the response by itself (first after T1 = 0.5 s).
    timer_g = client.recv_final(2.0)
    assert timer_g == first, f"expected a Timer G retransmission of {code}, got {timer_g!r}"

    ack = request(client, "ACK", branch, call_id, to_tag=tag)
    client.send(ack)
    late = client.collect(2.0)
    assert late == [], f"the server kept sending after the ACK: {late!r}"


def test_server_log_clean(server: Server) -> None:
    assert server.process.alive()
    assert "Traceback" not in server.process.log, server.process.log
