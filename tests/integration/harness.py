"""Running the real server (``twistd -n b2bua``) and SIPp for integration tests.

Everything talks over loopback.  Tests that feed input naming foreign hosts run
the server and the client inside a network namespace that has only loopback
(:func:`netns`), so a routing bug cannot send a packet off the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TWISTD = str(Path(sys.executable).with_name("twistd"))


def options_request(port: int, *, transport: str = "UDP", branch: str | None = None) -> bytes:
    """A minimal well-formed OPTIONS from 127.0.0.1:``port``."""
    branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
    return (
        f"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def udp_exchange(
    data: bytes, port: int, *, host: str = "127.0.0.1", timeout: float = 2.0, wait_all: float = 0
) -> list[bytes]:
    """Send one datagram and return the datagrams received within ``timeout``.

    Returns after the first answer unless ``wait_all`` seconds are given, in which
    case it keeps collecting until that much time passed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.sendto(data, (host, port))
        answers: list[bytes] = []
        deadline = time.monotonic() + (wait_all or timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return answers
            sock.settimeout(left)
            try:
                answers.append(sock.recv(65535))
            except TimeoutError:
                return answers
            if not wait_all:
                return answers


@dataclass
class ServerProcess:
    """A running ``twistd -n b2bua`` process with its configuration and output."""

    config_path: Path
    workdir: Path
    netns: str | None = None
    extra_args: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "server.log"

    def command(self) -> list[str]:
        cmd = [TWISTD, "-n", "--pidfile=", "b2bua", "--config", str(self.config_path)]
        cmd += list(self.extra_args)
        return (["ip", "netns", "exec", self.netns, *cmd]) if self.netns else cmd

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_default_sigint,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 10.0) -> None:
        """Wait until a line matching ``pattern`` (a regular expression) is logged: what
        the server logs after it answers its first OPTIONS (e.g. from a thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log):
                return
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the server log:\n{self.log[-4000:]}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_udp_ready(self, port: int, timeout: float = 15.0) -> None:
        """Wait until the server answers an OPTIONS on UDP ``port``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"server exited early:\n{self.log}")
            if udp_exchange(options_request(0), port, timeout=0.3):
                return
        raise AssertionError(f"server did not answer on UDP {port}:\n{self.log}")

    def wait_tcp_ready(self, port: int, timeout: float = 15.0) -> None:
        """Wait until the server accepts TCP connections on ``port``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"server exited early:\n{self.log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.3):
                return
            time.sleep(0.05)
        raise AssertionError(f"server did not listen on TCP {port}:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Signal the server and return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server ignored signal {sig}:\n{self.log}") from None
        return self.proc.returncode


def _default_sigint() -> None:
    """Give the server SIGINT's default disposition, as a terminal would.

    A test run started in the background of a non-interactive shell inherits an
    ignored SIGINT, which Python (and so twistd) then keeps ignoring.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def config_text(udp: int | None = None, tcp: int | None = None, extra: str = "") -> str:
    """A configuration listening on 127.0.0.1 on the given UDP and TCP ports."""
    out = []
    for transport, port in (("udp", udp), ("tcp", tcp)):
        if port is not None:
            out.append(
                f'[[listen]]\ntransport = "{transport}"\nhost = "127.0.0.1"\nport = {port}\n'
            )
    return "\n".join(out) + "\n" + extra


@contextlib.contextmanager
def running_server(
    workdir: Path,
    config: str,
    *,
    netns: str | None = None,
    ready_udp: int | None = None,
    ready_tcp: int | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """Start the server with ``config``, wait until it answers, stop it afterwards."""
    path = workdir / "b2bua.toml"
    path.write_text(config)
    server = ServerProcess(path, workdir, netns, extra_args)
    server.start()
    try:
        if ready_udp is not None and netns is None:
            server.wait_udp_ready(ready_udp)
        if ready_tcp is not None and netns is None:
            server.wait_tcp_ready(ready_tcp)
        yield server
    finally:
        if server.alive():
            server.stop()


def sipp_command(
    sipp: str,
    scenario: str,
    port: int,
    *args: str,
    transport: str = "u1",
    calls: int = 10,
    rate: int = 10,
    timeout: int = 30,
) -> list[str]:
    """A bounded SIPp client command against 127.0.0.1:``port``."""
    sf = ["-sf", str(SCENARIOS / scenario)] if scenario.endswith(".xml") else ["-sn", scenario]
    return [
        sipp, "-cp", str(free_port("udp")), *sf, f"127.0.0.1:{port}", "-i", "127.0.0.1",
        "-t", transport,
        "-m", str(calls), "-r", str(rate), "-timeout", f"{timeout}s", "-timeout_error",
        "-nostdin", "-trace_err", "-max_recv_loops", "1000", *args,
    ]  # fmt: skip


def run_sipp(
    cmd: list[str], cwd: Path, *, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run SIPp to completion (bounded by ``timeout``) and return its result."""
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@contextlib.contextmanager
def netns() -> Iterator[str]:
    """A fresh network namespace with only loopback up; deleted afterwards."""
    if shutil.which("ip") is None:
        raise AssertionError("iproute2 ('ip') is required for network-namespace tests")
    name = f"b2bua-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
