"""TimerConfig: RFC 3261 table 4 values from T1, T2, T4, per transport kind."""

from __future__ import annotations

import dataclasses

import pytest

from b2bua.transaction import TimerConfig


def test_defaults_are_rfc3261_values() -> None:
    config = TimerConfig()
    assert (config.t1, config.t2, config.t4, config.trying_delay) == (0.5, 4.0, 5.0, 0.0)
    assert config.timer_a == 0.5
    assert config.timer_b == 32.0
    assert config.timer_d == 32.0
    assert config.timer_e == 0.5
    assert config.timer_f == 32.0
    assert config.timer_g == 0.5
    assert config.timer_h == 32.0
    assert config.timer_i == 5.0
    assert config.timer_j == 32.0
    assert config.timer_k == 5.0
    assert config.timer_l == 32.0
    assert config.timer_m == 32.0


def test_timers_derive_from_t1_t2_t4() -> None:
    config = TimerConfig(t1=0.1, t2=2.0, t4=3.0)
    assert config.timer_a == config.timer_e == config.timer_g == 0.1
    assert config.timer_b == config.timer_f == config.timer_h == config.timer_j == 6.4
    assert config.timer_l == config.timer_m == 6.4
    assert config.timer_i == config.timer_k == 3.0
    assert config.timer_d == 32.0  # "at least 32 s" whatever T1


def test_timer_d_covers_timer_h_when_t1_is_large() -> None:
    assert TimerConfig(t1=1.0, t2=4.0).timer_d == 64.0


def test_unreliable_transport_values() -> None:
    timers = TimerConfig().for_transport(reliable=False)
    assert not timers.reliable
    assert (timers.a, timers.e, timers.g) == (0.5, 0.5, 0.5)
    assert (timers.b, timers.f, timers.h, timers.l, timers.m) == (32.0,) * 5
    assert timers.d == 32.0
    assert timers.j == 32.0
    assert (timers.i, timers.k) == (5.0, 5.0)
    assert timers.t2 == 4.0


def test_reliable_transport_values() -> None:
    timers = TimerConfig().for_transport(reliable=True)
    assert timers.reliable
    # No retransmissions over TCP/TLS...
    assert (timers.a, timers.e, timers.g) == (None, None, None)
    # ...no waiting for retransmissions...
    assert (timers.d, timers.i, timers.j, timers.k) == (0.0, 0.0, 0.0, 0.0)
    # ...but the transaction timeouts stay.
    assert (timers.b, timers.f, timers.h, timers.l, timers.m) == (32.0,) * 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"t1": 0},
        {"t1": -0.5},
        {"t1": 0.5, "t2": 0.4},
        {"t4": 0},
        {"trying_delay": -0.1},
        {"trying_delay": 0.25},
        {"resolution": -0.01},
        {"resolution": 0.2},
    ],
)
def test_invalid_values_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TimerConfig(**kwargs)


def test_config_is_frozen() -> None:
    config = TimerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.t1 = 1.0  # type: ignore[misc]
