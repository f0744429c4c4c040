"""The real server (``twistd -n b2bua``) under SIPp OPTIONS load over UDP, TCP and TLS.

One server per module listens on UDP and TCP (same port) and on TLS, with a
throw-away CA and server certificate for 127.0.0.1 generated into a temporary
directory.  Each SIPp run sends 50 OPTIONS at 50 per second and must exit 0 (every
call got its 200 with Allow and Accept, see scenarios/options.xml).

The Debian SIPp package is built without OpenSSL ("To use a TLS transport you must
compile SIPp with OpenSSL"), so the TLS listener is also driven by a Python TLS
client that verifies the server certificate against the test CA; the SIPp TLS test
runs when the SIPp binary has TLS (its version banner names it) and is skipped,
saying why, when it does not.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import (
    ServerProcess,
    config_text,
    run_sipp,
    running_server,
    sipp_command,
)
from tests.unit.transport.certs import PKI, make_pki

CALLS = 50
RATE = 50


@dataclass(frozen=True)
class Server:
    process: ServerProcess
    port: int  # UDP and TCP
    tls_port: int
    pki: PKI


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("server-sipp")
    pki = make_pki(workdir / "pki")
    port = free_port("both")
    tls_port = free_port("tcp")
    extra = (
        f'[[listen]]\ntransport = "tls"\nhost = "127.0.0.1"\nport = {tls_port}\n'
        f'certificate = "{pki.server_cert}"\nprivate_key = "{pki.server_key}"\n\n'
        "[server]\ndrain_time = 2.0\n"
    )
    with running_server(
        workdir, config_text(udp=port, tcp=port, extra=extra), ready_udp=port, ready_tcp=tls_port
    ) as process:
        yield Server(process, port, tls_port, pki)
        assert process.alive(), f"server died:\n{process.log}"
        assert "Traceback" not in process.log, process.log


def _sipp_ok(result: subprocess.CompletedProcess[str], server: Server) -> None:
    assert result.returncode == 0, (
        f"SIPp exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}\nserver log:\n{server.process.log[-3000:]}"
    )


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_options_udp_tcp(sipp: str, server: Server, tmp_path: Path, transport: str) -> None:
    cmd = sipp_command(
        sipp, "options.xml", server.port, transport=transport, calls=CALLS, rate=RATE, timeout=20
    )
    _sipp_ok(run_sipp(cmd, tmp_path, timeout=40), server)


def sipp_has_tls(sipp: str) -> bool:
    """Whether this SIPp binary was built with OpenSSL (its banner says "TLS")."""
    banner = subprocess.run(
        [sipp, "-cp", str(free_port("udp")), "-v"],
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )
    return re.search(r"SIPp v\S*TLS", banner.stdout + banner.stderr) is not None


def test_sipp_options_tls(sipp: str, server: Server, tmp_path: Path) -> None:
    if not sipp_has_tls(sipp):
        pytest.skip(
            f"{sipp} is built without TLS (Debian's sip-tester has no OpenSSL); "
            "TLS is covered by test_python_tls_client_options"
        )
    cmd = sipp_command(
        sipp, "options.xml", server.tls_port, "-tls_cert", server.pki.client_cert,
        "-tls_key", server.pki.client_key,
        transport="l1", calls=CALLS, rate=RATE, timeout=20,
    )  # fmt: skip
    _sipp_ok(run_sipp(cmd, tmp_path, timeout=40), server)


def _tls_options(local: tuple[str, int], port: int) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    return (
        f"OPTIONS sips:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sips:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sips:ping@127.0.0.1>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def read_stream_messages(sock: socket.socket, count: int, timeout: float) -> list[bytes]:
    """Read ``count`` SIP messages from a stream socket (bounded by ``timeout``)."""
    buf = b""
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"\r\n(?:Content-Length|l)\s*:\s*(\d+)", buf[:end], re.IGNORECASE)
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) >= total:
                out.append(buf[:total])
                buf = buf[total:]
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (TimeoutError, ssl.SSLError, OSError):
            break
        if not data:
            break
        buf += data
    return out


def call_id(message: bytes) -> bytes:
    m = re.search(rb"\r\nCall-ID: (\S+)", message)
    assert m, message
    return m.group(1)


def test_python_tls_client_options(server: Server) -> None:
    """50 OPTIONS at about 50/s on one verified TLS connection: 50 answers 200."""
    context = ssl.create_default_context(cafile=server.pki.ca)
    with (
        socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        local = sock.getsockname()
        sent_call_ids = []
        for _ in range(CALLS):
            request = _tls_options(local, server.tls_port)
            sent_call_ids.append(call_id(request))
            sock.sendall(request)
            time.sleep(1 / RATE)
        answers = read_stream_messages(sock, CALLS, timeout=10)
    assert len(answers) == CALLS, f"{len(answers)} answers:\n{server.process.log[-3000:]}"
    for answer in answers:
        assert answer.startswith(b"SIP/2.0 200 "), answer
        assert re.search(rb"\r\nAllow:[^\r]*OPTIONS", answer), answer
    assert sorted(call_id(a) for a in answers) == sorted(sent_call_ids)
