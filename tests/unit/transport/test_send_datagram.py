"""send_datagram: sendto on the listener's socket, with Twisted's error handling."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest
from twisted.internet.error import MessageLengthError

from b2bua.transport.manager import send_datagram


class _Port:
    def __init__(self, sock: Any) -> None:
        self.socket = sock
        self.written: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.written.append((data, addr))


class _FailingSocket:
    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if self.errors:
            code = self.errors.pop(0)
            raise OSError(code, errno.errorcode[code])
        self.sent.append(data)
        return len(data)


def test_a_datagram_reaches_the_address_over_the_ports_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            port = _Port(sender)
            send_datagram(port, b"OPTIONS", receiver.getsockname())
            assert receiver.recvfrom(100)[0] == b"OPTIONS"
            assert port.written == []


def test_interrupted_sends_are_retried_and_refusals_ignored() -> None:
    sock = _FailingSocket(errno.EINTR, errno.EINTR)
    send_datagram(_Port(sock), b"x", ("127.0.0.1", 9))
    assert sock.sent == [b"x"]
    refused = _FailingSocket(errno.ECONNREFUSED)
    send_datagram(_Port(refused), b"y", ("127.0.0.1", 9))
    assert refused.sent == []


def test_too_big_and_other_errors_are_raised() -> None:
    with pytest.raises(MessageLengthError):
        send_datagram(_Port(_FailingSocket(errno.EMSGSIZE)), b"x", ("127.0.0.1", 9))
    with pytest.raises(OSError):
        send_datagram(_Port(_FailingSocket(errno.EAGAIN)), b"x", ("127.0.0.1", 9))


def test_a_port_without_a_socket_is_written_to() -> None:
    port = _Port(None)
    send_datagram(port, b"z", ("127.0.0.1", 9))
    assert port.written == [(b"z", ("127.0.0.1", 9))]
