"""Config loading: the defaults, and an error naming file, line and key for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
UDP = '[[listen]]\ntransport = "udp"\nhost = "127.0.0.1"\nport = 5060\n'


def test_embedded_default_is_etc_b2bua_toml() -> None:
    embedded = (ROOT / "b2bua" / "data" / "b2bua.toml").read_text()
    assert embedded == (ROOT / "etc" / "b2bua.toml").read_text()
    config = load_config(None)
    assert [(lc.transport, lc.host, lc.port) for lc in config.listen] == [
        ("udp", "127.0.0.1", 5060),
        ("tcp", "127.0.0.1", 5060),
    ]
    assert config.timers.t1 == 0.5 and config.timers.t2 == 4.0 and config.timers.t4 == 5.0


def test_every_example_config_loads() -> None:
    for path in sorted((ROOT / "etc").rglob("*.toml")):
        load_config(str(path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (UDP.replace("5060", "70000"), "f.toml:4: listen[0].port: must be between 0 and 65535"),
        (UDP.replace('"127.0.0.1"', '"localhost"'), "f.toml:3: listen[0].host: 'localhost' is not"),
        (UDP.replace('"udp"', '"sctp"'), "f.toml:2: listen[0].transport: must be one of udp"),
        (UDP.replace("5060", '"5060"'), "f.toml:4: listen[0].port: must be an integer"),
        (UDP + '[timers]\nt1 = "x"\n', "f.toml:6: timers.t1: must be a number, not 'x'"),
        (UDP + "[timers]\nt1 = 0\n", "f.toml:6: timers.t1: must be positive"),
        (UDP + "[timers]\nt1 = 5.0\nt2 = 4.0\n", "timers.t2: must not be smaller than t1"),
        (UDP + "[server]\nfoo = 1\n", "f.toml:6: server.foo: unknown key"),
        ("colour = 1\n" + UDP, "f.toml:1: colour: unknown key"),
        (UDP + "colour = 1\n", "f.toml:5: listen[0].colour: unknown key"),
        (UDP + '[logging]\nlevel = "loud"\n', "f.toml:6: logging.level: must be one of"),
        ("", "f.toml: listen: at least one [[listen]] table is required"),
        ("x = [", "f.toml: not valid TOML"),
        (UDP + UDP, "listen[1]: 127.0.0.1 port 5060 is configured twice"),
        (UDP.replace('"udp"', '"tls"'), "listen[0]: a tls listener needs 'certificate'"),
        (UDP + 'certificate = "x.pem"\n', "listen[0].certificate: file"),
    ],
)
def test_errors_name_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.toml")
    assert str(info.value).startswith(expected) or expected in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(str(tmp_path / "nope.toml"))


def test_udp_and_tcp_may_share_a_port_and_ints_are_numbers() -> None:
    text = UDP + UDP.replace('"udp"', '"tcp"') + "[timers]\nt1 = 1\nt2 = 4\n"
    config = parse_config(text, "f.toml")
    assert len(config.listen) == 2
    assert config.timers.t1 == 1.0


def test_tls_files_resolved_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    text = UDP.replace('"udp"', '"tls"') + 'certificate = "c.pem"\nprivate_key = "k.pem"\n'
    path = tmp_path / "b2bua.toml"
    path.write_text(text)
    config = load_config(str(path))
    assert config.listen[0].certificate == str(tmp_path / "c.pem")


def test_timer_resolution_is_bounded_and_defaults_to_ten_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.toml"
    path.write_text(UDP)
    assert load_config(str(path)).timers.resolution == 0.01
    path.write_text(UDP + "[timers]\nresolution = 0.5\n")
    with pytest.raises(ConfigError, match=r"timers\.resolution: must be between 0 and 0\.1"):
        load_config(str(path))
