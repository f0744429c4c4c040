"""[registrar] in the configuration (errors name file, line and key) and its wiring in the
service: the REGISTER handler, the location service as a child service, runtime.location."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from b2bua.config import ConfigError, RegistrarConfig, load_config, parse_config
from b2bua.plugin import load_plugins
from b2bua.registrar import LocationService
from b2bua.service import B2BUAService
from b2bua_plugins.local_users import LocalUsers

UDP = '[[listen]]\ntransport = "udp"\nhost = "127.0.0.1"\nport = 5060\n'


def test_defaults_keep_the_registrar_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tmp_path.chmod(0o500)  # an unwritable working directory is fine while the registrar is off
    try:
        config = parse_config(UDP, "f.toml")
    finally:
        tmp_path.chmod(0o700)
    assert config.registrar.database == str(tmp_path / RegistrarConfig().database)
    assert not config.registrar.enabled and config.registrar.domains == ()
    assert (config.registrar.min_expires, config.registrar.max_expires) == (60, 7200)
    assert config.registrar.default_expires == 3600


def test_domains_are_canonical_and_the_database_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = UDP + (
        '[registrar]\nenabled = true\ndomains = ["Example.COM.", "[::0001]", "example.com"]\n'
        'database = "state/regs.sqlite"\n'
    )
    config = parse_config(text, "/somewhere/else/f.toml")
    assert config.registrar.domains == ("example.com", "::1")
    assert config.registrar.database == str(tmp_path / "state" / "regs.sqlite")
    memory = parse_config(UDP + '[registrar]\nenabled = true\ndomains = ["x"]\ndatabase = ""\n')
    assert memory.registrar.database == ""


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("enabled = true\n", "f.toml:6: registrar.enabled: an enabled registrar needs at least"),
        ("enabled = 1\n", "f.toml:6: registrar.enabled: must be true or false"),
        ('domains = ["a b"]\n', "f.toml:6: registrar.domains: 'a b' (domains[0]) is not a host"),
        ("domains = [1]\n", "f.toml:6: registrar.domains: 1 (domains[0]) is not a host"),
        ("min_expires = 0\n", "f.toml:6: registrar.min_expires: must be a positive number"),
        ("min_expires = 3601\n", "f.toml:6: registrar.min_expires: must not exceed 3600"),
        ("max_expires = 30\n", "f.toml:6: registrar.max_expires: must not be smaller than min"),
        ("default_expires = 10\n", "f.toml:6: registrar.default_expires: must be between"),
        ("default_expires = 9000\n", "f.toml:6: registrar.default_expires: must be between"),
        ('default_expires = "1h"\n', "f.toml:6: registrar.default_expires: must be an integer"),
        ("database = 5\n", "f.toml:6: registrar.database: must be a string"),
        ("realm = 1\n", "f.toml:6: registrar.realm: unknown key (known keys: database,"),
    ],
)
def test_errors_name_file_line_and_key(table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(UDP + "[registrar]\n" + table, "f.toml")
    assert str(info.value).startswith(expected), str(info.value)


def test_a_database_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    on = '[registrar]\nenabled = true\ndomains = ["127.0.0.1"]\n'
    with pytest.raises(ConfigError, match=r"f.toml:8: registrar\.database: .* is not a file"):
        parse_config(UDP + on + f'database = "{tmp_path / "dir.sqlite"}"\n', "f.toml")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"registrar\.database: .* is not a directory"):
        parse_config(UDP + on + f'database = "{tmp_path / "file" / "r.sqlite"}"\n')
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="is not writable"):
            parse_config(UDP + on + f'database = "{locked / "r.sqlite"}"\n')


def service(tmp_path: Path, registrar: str) -> B2BUAService:
    path = tmp_path / "b2bua.toml"
    path.write_text(UDP + registrar + '\n[[plugin]]\nmodule = "local_users"\n', encoding="utf-8")
    config = load_config(str(path))
    return B2BUAService(config, reactor=MemoryReactorClock(), plugins=load_plugins(config))


def test_the_service_wires_the_registrar_when_enabled(tmp_path: Path) -> None:
    svc = service(tmp_path, '[registrar]\nenabled = true\ndomains = ["127.0.0.1"]\ndatabase = ""\n')
    assert isinstance(svc.location, LocationService)
    assert svc.location in list(svc)  # a child service: started and stopped with the server
    assert "REGISTER" in svc.core.allow
    assert "path" in svc.core.settings.supported
    svc.transport.startService = lambda: None  # type: ignore[method-assign]  # no sockets here
    previous = signal.getsignal(signal.SIGHUP)
    svc.startService()
    try:
        [router] = svc.plugins.routers if svc.plugins is not None else []
        assert isinstance(router, LocalUsers)
        assert router.location is svc.location
        assert router.domains == frozenset({"127.0.0.1"})
    finally:
        signal.signal(signal.SIGHUP, previous)
        svc._stats.stop()
        svc.location.stopService()


def test_without_the_registrar_register_is_not_handled(tmp_path: Path) -> None:
    svc = service(tmp_path, "")
    assert svc.location is None
    assert "REGISTER" not in svc.core.allow
