"""IPv6: a UDP listener on ::1 answers an OPTIONS sent from ::1.

The machine (and CI) must have IPv6 loopback; without it the test fails, saying so.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.harness import running_server, udp_exchange


def ipv6_udp_port() -> int:
    """A free UDP port on ::1; fails the test when ::1 cannot be used."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
            return int(sock.getsockname()[1])
    except OSError as error:
        pytest.fail(
            f"IPv6 loopback ::1 is not available on this machine ({error}); the IPv6 "
            "tests need it (check `ip -6 addr show lo` and net.ipv6.conf.lo.disable_ipv6)",
            pytrace=False,
        )


def options_v6(port: int) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    return (
        f"OPTIONS sip:ping@[::1]:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP [::1];branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:probe@[::1]>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:ping@[::1]>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@[::1]\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def test_udp_listener_on_ipv6_loopback(tmp_path: Path) -> None:
    port = ipv6_udp_port()
    config = (
        f'[[listen]]\ntransport = "udp"\nhost = "::1"\nport = {port}\n\n'
        "[server]\ndrain_time = 2.0\n"
    )
    with running_server(tmp_path, config) as server:
        deadline = time.monotonic() + 15
        answers: list[bytes] = []
        while not answers and time.monotonic() < deadline:
            assert server.alive(), f"server exited:\n{server.log}"
            answers = udp_exchange(options_v6(port), port, host="::1", timeout=0.3)
        assert answers, f"no answer on [::1]:{port}:\n{server.log}"
        answer = answers[0]
        assert answer.startswith(b"SIP/2.0 200 "), answer
        # The response came back to our source port (rport) and names ::1 as received.
        via = re.search(rb"\r\nVia: ([^\r]*)", answer)
        assert via and b"received=::1" in via.group(1).replace(b"[", b"").replace(b"]", b""), answer
        assert re.search(rb";rport=\d+", via.group(1)), answer
    assert "Traceback" not in server.log, server.log
