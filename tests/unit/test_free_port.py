"""The tests' ``free_port`` helper: ports asked for together never collide."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests import conftest


class _FakeSocket:
    """A bound socket double whose ``getsockname`` reports a chosen port."""

    def __init__(self, port: int) -> None:
        self.port = port

    def getsockname(self) -> tuple[str, int]:
        return (conftest.LOOPBACK, self.port)

    def __enter__(self) -> _FakeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def kernel_ports(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Make the kernel hand out these ports, in order, for ``bind(port 0)``."""
    ports: list[int] = []

    def bind(kind: int, port: int) -> _FakeSocket:
        return _FakeSocket(port if port else ports.pop(0))

    monkeypatch.setattr(conftest, "_bind", bind)
    monkeypatch.setattr(conftest, "_handed_out", set())
    yield ports


@pytest.mark.parametrize("transport", ["udp", "tcp", "both"])
def test_a_port_is_never_handed_out_twice(kernel_ports: list[int], transport: str) -> None:
    kernel_ports += [40000, 40000, 40000, 40001]
    first = conftest.free_port(transport)  # type: ignore[arg-type]
    second = conftest.free_port(transport)  # type: ignore[arg-type]
    assert (first, second) == (40000, 40001)


def test_it_gives_up_with_a_clear_error(kernel_ports: list[int]) -> None:
    kernel_ports += [40000] * 4
    assert conftest.free_port("udp", attempts=3) == 40000
    with pytest.raises(RuntimeError, match="no new port free for udp"):
        conftest.free_port("udp", attempts=3)


def test_real_ports_are_distinct_and_bindable() -> None:
    ports = [conftest.free_port("both") for _ in range(20)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((conftest.LOOPBACK, ports[-1]))


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be"):
        conftest.free_port("sctp")  # type: ignore[arg-type]
