"""Fixtures and helpers shared by every test.

- ``sipp``: absolute path of the SIPp binary. Tests that need SIPp FAIL when it is
  missing instead of being skipped: ``make test`` installs it, so a missing SIPp is
  a broken environment, not a reason to pass quietly.
- ``free_port(transport)`` / the ``free_port`` fixture: a port on 127.0.0.1 that is
  free for UDP, TCP or both at the time of the call.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from typing import Literal

import pytest

Transport = Literal["udp", "tcp", "both"]

LOOPBACK = "127.0.0.1"


def _bind(kind: int, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # Match what a listening server does, so a port in TIME_WAIT counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


# Every port free_port has handed out in this test session. The port is released
# before it is returned, and a test often asks for several before its processes bind
# them: without this, the kernel could give the same free port twice.
_handed_out: set[int] = set()


def free_port(transport: Transport = "both", *, attempts: int = 50) -> int:
    """Return a loopback port that is free for ``transport`` ("udp", "tcp" or "both").

    The port is released before returning, so another process could take it in the
    meantime; callers that bind it right away are fine in practice. It is never one
    this session was given before, so ports asked for together are distinct.
    """
    if transport not in ("udp", "tcp", "both"):
        raise ValueError(f"transport must be 'udp', 'tcp' or 'both', not {transport!r}")
    for _ in range(attempts):
        port = _free_now(transport)
        if port is not None and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no new port free for {transport} on {LOOPBACK} in {attempts} tries")


def _free_now(transport: Transport) -> int | None:
    """A port the kernel calls free for ``transport`` now, or None (TCP's was taken
    for UDP)."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with _bind(kind, 0) as sock:
        port = int(sock.getsockname()[1])
        if transport != "both":
            return port
        try:
            with _bind(socket.SOCK_DGRAM, port):
                return port
        except OSError:
            return None


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[..., int]:
    """The :func:`free_port` helper, as a fixture: ``port = free_port("udp")``."""
    return free_port


@pytest.fixture(scope="session")
def sipp() -> str:
    """Absolute path of the ``sipp`` binary ($SIPP, else the one on $PATH).

    Fails the test (never skips it) when SIPp cannot be found.
    """
    path = os.environ.get("SIPP") or shutil.which("sipp")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            "SIPp not found (set $SIPP or put sipp on $PATH; `make test` installs "
            "it with apt-get install sip-tester)",
            pytrace=False,
        )
    return os.path.abspath(path)
