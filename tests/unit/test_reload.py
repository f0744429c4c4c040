"""Reloading the configuration file and its plugins (b2bua.reload; what SIGHUP does).

The reload is driven directly (no signals): write a changed file, call
``reload()``, look at what was installed, started, stopped and logged.
"""

from __future__ import annotations

import importlib
import signal
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, Logger, formatEvent
from zope.interface import implementer

import b2bua.reload as reload_module
from b2bua.bridge.hooks import Hooks
from b2bua.config import PluginConfig, load_config, parse_config
from b2bua.features import CallFeature
from b2bua.interfaces import ICallFeature, IRouter
from b2bua.plugin import LoadedPlugin, PluginRuntime, Plugins, load_plugins
from b2bua.reload import Reloader, fresh_plugin_dir_modules, restart_needed
from b2bua.routing import CallInfo, Decision, RequestContext, Routes, Target
from b2bua.service import B2BUAService, install_plugins
from b2bua.sip import Request
from tests.unit.bridge.harness import CALLEE, Callee, Caller, Harness, establish
from tests.unit.plugins.helpers import context, invite

LISTEN = '[[listen]]\ntransport = "udp"\nhost = "127.0.0.1"\nport = 5060\n'


def static(target: str, extra: str = "") -> str:
    """A configuration routing every call to ``target`` with static_routes."""
    return (
        f'{LISTEN}{extra}\n[[plugin]]\nmodule = "static_routes"\n'
        f'[[plugin.route]]\ntargets = ["{target}"]\n'
    )


def routed_to(plugins: Plugins | None) -> str:
    """Where the plugins send a call to sip:1001@127.0.0.1 (the first target)."""
    assert plugins is not None
    results: list[Decision] = []
    plugins.route(invite("sip:1001@127.0.0.1"), context()).addCallback(results.append)
    [decision] = results
    assert isinstance(decision, Routes)
    return str(decision.targets[0].uri)


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[LogEvent]:
    events: list[LogEvent] = []
    monkeypatch.setattr(reload_module, "_log", Logger("b2bua.reload", observer=events.append))
    return events


def messages(events: list[LogEvent]) -> list[str]:
    return [formatEvent(e) for e in events]


class Setup:
    """A configuration file, its running plugins and a Reloader over them."""

    def __init__(self, tmp_path: Path, text: str) -> None:
        self.path = tmp_path / "b2bua.toml"
        self.write(text)
        self.clock = Clock()
        self.installed: list[Plugins] = []
        config = load_config(str(self.path))
        self.reloader = Reloader(config, load_plugins(config), self.installed.append, self.clock)

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")

    def reload(self) -> bool | None:
        """Reload; the outcome, or None while it is still running."""
        results: list[bool] = []
        self.reloader.reload().addCallback(results.append)
        return results[0] if results else None


# -- what needs a restart --------------------------------------------------------------


def test_only_the_plugin_tables_and_plugin_dirs_reload(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    base = parse_config(static("sip:a"), str(tmp_path / "f.toml"))
    other = parse_config('plugin_dirs = ["d"]\n' + static("sip:b"), str(tmp_path / "f.toml"))
    assert restart_needed(base, other) == []


@pytest.mark.parametrize(
    ("extra", "keys"),
    [
        ("[timers]\nt1 = 0.25\n", ["timers.t1"]),
        ("[limits]\nmax_headers = 10\n[server]\nuser_agent = 'x'\n", ["server.user_agent", "limits.max_headers"]),
        ("[bridge]\nmax_duration = 60.0\n", ["bridge.max_duration"]),
        ("[logging]\nsip_trace = true\n", ["logging.sip_trace"]),
        ('[[listen]]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = 5060\n', ["listen"]),
    ],
)  # fmt: skip
def test_other_changes_need_a_restart(extra: str, keys: list[str]) -> None:
    base = parse_config(static("sip:a"), "f.toml")
    assert restart_needed(base, parse_config(static("sip:a", extra), "f.toml")) == keys


# -- a good reload ---------------------------------------------------------------------


def test_a_changed_file_replaces_the_routers(tmp_path: Path, logged: list[LogEvent]) -> None:
    s = Setup(tmp_path, static("sip:a@127.0.0.1"))
    old = s.reloader.plugins
    s.write(static("sip:b@127.0.0.1"))
    assert s.reload() is True
    assert s.installed == [s.reloader.plugins] and s.reloader.plugins is not old
    assert routed_to(s.reloader.plugins) == "sip:b@127.0.0.1"
    assert routed_to(old) == "sip:a@127.0.0.1"  # the old one, untouched
    assert s.reloader.config.plugins == load_config(str(s.path)).plugins
    assert s.reloader.reloads == 1
    assert messages(logged) == [f"Reloaded configuration from {s.path} (plugins: static_routes)"]


def test_a_relative_path_is_read_from_where_it_was_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b2bua.toml").write_text(static("sip:a"), encoding="utf-8")
    config = load_config("b2bua.toml")
    reloader = Reloader(config, load_plugins(config), lambda plugins: None, Clock())
    monkeypatch.chdir("/")  # twistd --rundir
    (tmp_path / "b2bua.toml").write_text(static("sip:b"), encoding="utf-8")
    results: list[bool] = []
    reloader.reload().addCallback(results.append)
    assert results == [True] and reloader.path == str(tmp_path / "b2bua.toml")
    assert routed_to(reloader.plugins) == "sip:1001@b"


def test_the_embedded_default_reloads_too(logged: list[LogEvent]) -> None:
    config = load_config(None)
    reloader = Reloader(config, load_plugins(config), lambda plugins: None, Clock())
    results: list[bool] = []
    reloader.reload().addCallback(results.append)
    assert results == [True] and reloader.path is None
    names = ", ".join(p.module for p in config.plugins) or "none"
    assert messages(logged) == [
        f"Reloaded configuration from <embedded b2bua.toml> (plugins: {names})"
    ]


def test_changes_that_need_a_restart_are_logged_and_ignored(
    tmp_path: Path, logged: list[LogEvent]
) -> None:
    s = Setup(tmp_path, static("sip:a"))
    before = s.reloader.config
    s.write(static("sip:b", "[timers]\nt1 = 0.25\n").replace("5060", "5062"))
    assert s.reload() is True
    assert messages(logged) == [
        f"{s.path}: listen changed: needs a restart (ignored until then)",
        f"{s.path}: timers.t1 changed: needs a restart (ignored until then)",
        f"{s.path} ".join(["Reloaded configuration from ", "(plugins: static_routes)"]),
    ]
    running = s.reloader.config
    assert running.listen == before.listen and running.timers == before.timers
    assert routed_to(s.reloader.plugins) == "sip:1001@b"
    # still different from the file: said again on the next reload
    logged.clear()
    assert s.reload() is True
    assert len(messages(logged)) == 3


# -- refused reloads -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (static("sip:b") + "[[plugin.route\n", ":10: not valid TOML"),
        ("bogus = 1\n" + static("sip:b"), ":1: bogus: unknown key"),
        (static("sip:"), ":9: plugin[0].route[0].targets[0]: 'sip:' is not a valid URI"),
        (static("sip:b").replace("static_routes", "no_such_plugin"), ":7: plugin[0].module: no plugin named"),
        (static("sip:b").replace('"127.0.0.1"', '"localhost"'), ":3: listen[0].host:"),
    ],
    ids=["toml", "unknown-key", "plugin-option", "plugin-module", "listen"],
)  # fmt: skip
def test_a_bad_file_is_refused_and_the_running_plugins_stay(
    tmp_path: Path, logged: list[LogEvent], text: str, error: str
) -> None:
    s = Setup(tmp_path, static("sip:a"))
    running, config = s.reloader.plugins, s.reloader.config
    s.write(text)
    assert s.reload() is False
    assert s.installed == [] and s.reloader.plugins is running and s.reloader.config is config
    assert routed_to(s.reloader.plugins) == "sip:1001@a"
    [line] = messages(logged)
    assert line.startswith(f"Configuration not reloaded, the running one stays: {s.path}{error}")
    assert [e["log_level"].name for e in logged] == ["error"]
    # fixed: the next reload works
    s.write(static("sip:c"))
    assert s.reload() is True
    assert routed_to(s.reloader.plugins) == "sip:1001@c"


# -- plugin_dirs modules are imported afresh -------------------------------------------

RECORDER = "reload_recorder_" + uuid.uuid4().hex[:8]

#: A router and plugin service in a plugin directory; it records into RECORDER (a
#: module outside the plugin directory, so it survives reloads).
SERVICE_PLUGIN = f"""
from zope.interface import implementer

from b2bua.interfaces import IPluginService, IRouter, Routes, Target
import {RECORDER} as recorder

VERSION = "v1"


@implementer(IRouter, IPluginService)
class Plugin:
    def route(self, request, context):
        return Routes((Target.of(f"sip:{{VERSION}}@127.0.0.1"),))

    def start_plugin(self, runtime):
        recorder.events.append(("start", VERSION))

    def stop_plugin(self):
        recorder.events.append(("stop", VERSION))
        return recorder.stop_result


def make_plugin(options, context):
    return Plugin()
"""


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / f"{RECORDER}.py").write_text("events = []\nstop_result = None\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = importlib.import_module(RECORDER)
    yield module
    del sys.modules[RECORDER]


def dir_setup(tmp_path: Path, version: str = "v1") -> Setup:
    write_plugin(tmp_path, version)
    setup = Setup(tmp_path, f'plugin_dirs = ["plugins.d"]\n{LISTEN}\n[[plugin]]\nmodule = "svc"\n')
    setup.reloader.start(PluginRuntime(setup.clock, lambda method, uri: Deferred()))
    return setup


def write_plugin(tmp_path: Path, version: str, source: str = SERVICE_PLUGIN) -> None:
    directory = tmp_path / "plugins.d"
    directory.mkdir(exist_ok=True)
    text = textwrap.dedent(source).replace('VERSION = "v1"', f'VERSION = "{version}"')
    (directory / "svc.py").write_text(text, encoding="utf-8")


def test_plugin_dir_modules_are_imported_afresh(tmp_path: Path, recorder: ModuleType) -> None:
    s = dir_setup(tmp_path)
    old = s.reloader.plugins
    write_plugin(tmp_path, "v2-longer")
    assert s.reload() is True
    assert routed_to(s.reloader.plugins) == "sip:v2-longer@127.0.0.1"
    assert routed_to(old) == "sip:v1@127.0.0.1"


def test_old_services_stop_before_the_new_start_then_new_calls_use_them(
    tmp_path: Path, recorder: ModuleType
) -> None:
    s = dir_setup(tmp_path)
    seen_at_install: list[list[Any]] = []
    s.reloader._install = lambda plugins: seen_at_install.append(list(recorder.events))
    write_plugin(tmp_path, "v2-longer")
    assert s.reload() is True
    expected = [("start", "v1"), ("stop", "v1"), ("start", "v2-longer")]
    assert recorder.events == expected
    assert seen_at_install == [expected]  # installed once the new ones run


def test_a_plugin_that_fails_to_import_leaves_the_old_modules(
    tmp_path: Path, recorder: ModuleType, logged: list[LogEvent]
) -> None:
    s = dir_setup(tmp_path)
    running = s.reloader.plugins
    assert running is not None
    module_name = type(running.loaded[0].plugin).__module__
    module = sys.modules[module_name]
    write_plugin(tmp_path, "v2", source=SERVICE_PLUGIN + "\ndef broken(:\n")
    assert s.reload() is False
    assert sys.modules[module_name] is module
    assert "plugin[0].module: cannot import" in messages(logged)[0]
    assert "SyntaxError" in messages(logged)[0]
    assert recorder.events == [("start", "v1")]  # nothing stopped


def test_fresh_imports_put_the_old_modules_back_on_error(tmp_path: Path) -> None:
    fake = ModuleType("b2bua_plugin_dir_0000.x")
    sys.modules["b2bua_plugin_dir_0000.x"] = fake
    try:
        with pytest.raises(RuntimeError), fresh_plugin_dir_modules():
            assert "b2bua_plugin_dir_0000.x" not in sys.modules
            sys.modules["b2bua_plugin_dir_0000.y"] = ModuleType("y")
            raise RuntimeError
        assert sys.modules["b2bua_plugin_dir_0000.x"] is fake
        assert "b2bua_plugin_dir_0000.y" not in sys.modules
    finally:
        sys.modules.pop("b2bua_plugin_dir_0000.x", None)


# -- slow stops, overlapping reloads, shutdown -----------------------------------------


def test_old_plugins_that_do_not_stop_are_waited_for_up_to_a_limit(
    tmp_path: Path, recorder: ModuleType, logged: list[LogEvent]
) -> None:
    s = dir_setup(tmp_path)
    recorder.stop_result = Deferred()
    write_plugin(tmp_path, "v2-longer")
    assert s.reload() is None  # waiting for the old service
    assert s.installed == [] and recorder.events == [("start", "v1"), ("stop", "v1")]
    s.clock.advance(s.reloader.stop_timeout)
    assert recorder.events[-1] == ("start", "v2-longer") and len(s.installed) == 1
    assert "did not stop within 10.0 s" in messages(logged)[0]
    assert routed_to(s.reloader.plugins) == "sip:v2-longer@127.0.0.1"


def test_a_reload_asked_for_during_a_reload_runs_after_it(
    tmp_path: Path, recorder: ModuleType
) -> None:
    s = dir_setup(tmp_path)
    pending: Deferred[None] = Deferred()
    recorder.stop_result = pending
    write_plugin(tmp_path, "v2-longer")
    first, second = [], []
    s.reloader.reload().addCallback(first.append)
    s.reloader.reload().addCallback(second.append)
    assert first == second == []
    recorder.stop_result = None
    write_plugin(tmp_path, "v3-longer-still")
    pending.callback(None)
    assert first == [True] and second == [True]
    assert recorder.events == [
        ("start", "v1"), ("stop", "v1"),  # the first reload read v2 when asked
        ("start", "v2-longer"), ("stop", "v2-longer"),
        ("start", "v3-longer-still"),
    ]  # fmt: skip
    assert len(s.installed) == 2


def test_stopping_during_a_reload_starts_nothing_new(tmp_path: Path, recorder: ModuleType) -> None:
    s = dir_setup(tmp_path)
    pending: Deferred[None] = Deferred()
    recorder.stop_result = pending
    write_plugin(tmp_path, "v2-longer")
    outcome: list[bool] = []
    s.reloader.reload().addCallback(outcome.append)
    stopped: list[None] = []
    s.reloader.stop().addCallback(stopped.append)
    assert stopped == []
    pending.callback(None)
    assert outcome == [False] and stopped == [None]
    assert recorder.events == [("start", "v1"), ("stop", "v1")]  # stopped once, nothing new
    assert s.installed == [] and s.reloader.plugins is None
    assert s.reload() is False  # and no more reloads


# -- the service -----------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[B2BUAService]:
    path = tmp_path / "b2bua.toml"
    path.write_text(static("sip:a"), encoding="utf-8")
    config = load_config(str(path))
    yield B2BUAService(config, reactor=MemoryReactorClock(), plugins=load_plugins(config))


def test_the_service_reload_swaps_router_and_features_for_new_calls(
    service: B2BUAService, tmp_path: Path
) -> None:
    hooks = service.calls.hooks
    (tmp_path / "b2bua.toml").write_text(static("sip:b"), encoding="utf-8")
    results: list[bool] = []
    service.reload().addCallback(results.append)
    assert results == [True]
    assert service.plugins is service.reloader.plugins
    assert service.calls.hooks is not hooks
    routed: list[Decision] = []
    service.calls.route(invite(), context()).addCallback(routed.append)
    assert routed == [Routes((Target.of("sip:1001@b"),))]


def test_the_service_does_not_reload_while_stopping(service: B2BUAService) -> None:
    service.core.draining = True
    results: list[bool] = []
    service.reload().addCallback(results.append)
    assert results == [False]


def test_sighup_hops_to_the_reactor_thread(service: B2BUAService) -> None:
    hopped: list[Any] = []
    service.reactor = type("R", (), {"callFromThread": lambda self, f: hopped.append(f)})()
    previous = signal.getsignal(signal.SIGHUP)
    try:
        service._handle_sighup()
        handler = signal.getsignal(signal.SIGHUP)
        assert callable(handler)
        handler(signal.SIGHUP, None)
        assert hopped == [service.reload]
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- calls in progress keep their features ----------------------------------------------


class Named(CallFeature):
    def __init__(self, name: str, seen: list[tuple[str, str]]) -> None:
        self.name, self.seen = name, seen

    def call_ended(self, call: CallInfo, reason: str) -> None:
        self.seen.append((self.name, call.call_id))


@implementer(IRouter, ICallFeature)
class RoutingFeature(Named):
    def route(self, request: Request, ctx: RequestContext) -> Decision:
        self.seen.append((self.name, "routed"))
        return Routes((Target.of(f"sip:{CALLEE.host}:{CALLEE.port}"),))


def test_a_call_in_progress_keeps_its_features_and_new_calls_get_the_new_ones() -> None:
    seen: list[tuple[str, str]] = []
    h = Harness(features=[Named("old", seen)])
    first_caller, callee = Caller(h), Callee(h, CALLEE)
    establish(h, first_caller, callee)
    new = RoutingFeature("new", seen)
    table = PluginConfig("x", {}, "plugin[0]")
    install_plugins(
        h.manager, Plugins.from_loaded([LoadedPlugin(table, new, (IRouter, ICallFeature))])
    )
    assert isinstance(h.manager.hooks, Hooks) and h.manager.hooks.features == (new,)
    first_caller.request("BYE")
    [(name, _)] = seen
    assert name == "old"  # the first call ended with the features it started with
    second = Caller(h, call_id="second@127.0.0.1", tag="secondtag")
    second.send_invite()
    assert ("new", "routed") in seen and len(h.route_calls) == 1  # the harness router: first only
