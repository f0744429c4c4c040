"""b2bua.plugin: finding, building and checking plugins; asking the routers in order."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.logger import LogEvent, Logger
from zope.interface import implementer

import b2bua.plugin as plugin_module
from b2bua.config import ConfigError, PluginConfig, load_config
from b2bua.interfaces import IRouter
from b2bua.plugin import (
    NOT_FOUND,
    ROUTING_ERROR,
    LoadedPlugin,
    PluginContext,
    Plugins,
    load_plugins,
    plugin_interfaces,
)
from b2bua.routing import Decision, Reject, RequestContext, Routes, Target
from b2bua.sip import Request
from b2bua_plugins.static_routes import StaticRoutes
from tests.unit.plugins.conftest import LoadPlugins, WriteConfig
from tests.unit.plugins.helpers import LISTEN, context, invite

#: A plugin module that routes everything to the target given in its options.
ROUTER_MODULE = """
from zope.interface import implementer

from b2bua.interfaces import IRouter, Routes, Target


@implementer(IRouter)
class Router:
    def __init__(self, target):
        self.target = target

    def route(self, request, context):
        return Routes((Target.of(self.target),))


def make_plugin(options, context):
    unknown = set(options) - {"target"}
    if unknown:
        raise context.error(sorted(unknown)[0], "unknown key")
    if not isinstance(options.get("target"), str):
        raise context.error("target", "must be a SIP URI")
    return Router(options["target"])
"""


def write_module(directory: Path, name: str, source: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def plugin_table(module: str, extra: str = "") -> str:
    return f'\n[[plugin]]\nmodule = "{module}"\n{extra}'


def config_with_dirs(tmp_path: Path, dirs: list[str], text: str) -> str:
    """Write tmp_path/b2bua.toml with plugin_dirs (a top-level key: before any table)."""
    path = tmp_path / "b2bua.toml"
    listed = ", ".join(f'"{d}"' for d in dirs)
    path.write_text(f"plugin_dirs = [{listed}]\n" + LISTEN + text, encoding="utf-8")
    return str(path)


def load_error(load: LoadPlugins, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(text)
    return str(info.value)


# -- finding the module ----------------------------------------------------------------


def test_a_bare_name_is_a_bundled_plugin(load: LoadPlugins) -> None:
    plugins = load(plugin_table("static_routes", '[[plugin.route]]\ntargets = ["sip:pbx"]\n'))
    [loaded] = plugins.loaded
    assert isinstance(loaded.plugin, StaticRoutes)
    assert type(loaded.plugin).__module__ == "b2bua_plugins.static_routes"
    assert loaded.interfaces == (IRouter,)
    assert loaded.label == "plugin[0] (static_routes)"
    assert plugins.routers == [loaded.plugin]


def test_a_bare_name_is_found_in_plugin_dirs(tmp_path: Path) -> None:
    write_module(tmp_path / "first", "unrelated", "")
    write_module(tmp_path / "more", "myrouter", ROUTER_MODULE)
    path = config_with_dirs(
        tmp_path, ["first", "more"], plugin_table("myrouter", 'target = "sip:pbx@127.0.0.1:5070"\n')
    )
    config = load_config(path)
    assert config.plugin_dirs == (str(tmp_path / "first"), str(tmp_path / "more"))
    plugins = load_plugins(config)
    [router] = plugins.routers
    module = type(router).__module__
    assert module.startswith("b2bua_plugin_dir_") and module.endswith(".myrouter")
    assert "myrouter" not in sys.modules  # not imported as a top-level module
    decision = router.route(invite(), context())
    assert decision == Routes((Target.of("sip:pbx@127.0.0.1:5070"),))


def test_modules_in_a_plugin_dir_can_import_each_other(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    write_module(directory, "shared_bits", "TARGET = 'sip:shared@127.0.0.1'\n")
    write_module(
        directory,
        "uses_shared",
        ROUTER_MODULE.replace(
            'return Router(options["target"])',
            "from .shared_bits import TARGET\n    return Router(TARGET)",
        ).replace('if not isinstance(options.get("target"), str):', "if False:"),
    )
    path = config_with_dirs(tmp_path, ["dir"], plugin_table("uses_shared"))
    [router] = load_plugins(load_config(path)).routers
    assert router.route(invite(), context()) == Routes((Target.of("sip:shared@127.0.0.1"),))


def test_bundled_plugins_come_before_plugin_dirs(tmp_path: Path) -> None:
    write_module(tmp_path / "dir", "static_routes", "raise RuntimeError('not me')\n")
    table = plugin_table("static_routes", '[[plugin.route]]\ntargets = ["sip:pbx"]\n')
    [router] = load_plugins(load_config(config_with_dirs(tmp_path, ["dir"], table))).routers
    assert isinstance(router, StaticRoutes)


def test_a_dotted_name_is_a_normal_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins
) -> None:
    package = tmp_path / "site" / "acme_b2bua_dotted"
    write_module(package, "__init__", "")
    write_module(package, "routing", ROUTER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugins = load(plugin_table("acme_b2bua_dotted.routing", 'target = "sip:x@127.0.0.1"\n'))
    [router] = plugins.routers
    assert type(router).__module__ == "acme_b2bua_dotted.routing"


def test_two_plugins_load_in_order(load: LoadPlugins) -> None:
    plugins = load(
        plugin_table("static_routes", '[[plugin.route]]\nuser_prefix = "1"\ntargets = ["sip:a"]\n')
        + plugin_table("static_routes", '[[plugin.route]]\ntargets = ["sip:b"]\n')
    )
    assert [p.config.key for p in plugins.loaded] == ["plugin[0]", "plugin[1]"]
    assert plugins.routers == [p.plugin for p in plugins.loaded]


def test_no_plugins_no_routers(load: LoadPlugins) -> None:
    plugins = load("")
    assert plugins.loaded == [] and plugins.routers == []


# -- errors ------------------------------------------------------------------------------


def test_an_unknown_bare_name_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    path = config_with_dirs(tmp_path, ["dir"], plugin_table("nosuchplugin"))
    with pytest.raises(ConfigError) as info:
        load_plugins(load_config(path))
    assert str(info.value) == (
        f"{path}:8: plugin[0].module: no plugin named 'nosuchplugin'"
        f" (looked in b2bua_plugins, {tmp_path / 'dir'}, entry points b2bua.plugins)"
    )


def test_an_unknown_dotted_name(load: LoadPlugins) -> None:
    message = load_error(load, plugin_table("acme_nowhere.routing"))
    assert message.endswith(":7: plugin[0].module: no module named 'acme_nowhere.routing'")


def test_private_names_are_not_plugins(load: LoadPlugins) -> None:
    assert "plugin[0].module: must be a module name" in load_error(load, plugin_table("__init__"))


def test_a_module_that_fails_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins
) -> None:
    package = tmp_path / "site" / "acme_b2bua_broken"
    write_module(package, "__init__", "")
    write_module(package, "syntax", "def broken(:\n")
    write_module(package, "needs", "import acme_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    message = load_error(load, plugin_table("acme_b2bua_broken.syntax"))
    assert "plugin[0].module: cannot import acme_b2bua_broken.syntax: SyntaxError" in message
    message = load_error(load, plugin_table("acme_b2bua_broken.needs"))
    assert "plugin[0].module: cannot import acme_b2bua_broken.needs:" in message
    assert "acme_missing_dependency" in message


def test_a_module_without_make_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins
) -> None:
    write_module(tmp_path / "site" / "acme_nf", "__init__", "")
    write_module(tmp_path / "site" / "acme_nf", "mod", "make_plugin = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    message = load_error(load, plugin_table("acme_nf.mod"))
    assert message.endswith(
        ":7: plugin[0].module: acme_nf.mod has no make_plugin(options, context) function"
    )


def test_make_plugin_raising_a_config_error_names_the_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins
) -> None:
    write_module(tmp_path / "site" / "acme_cfg", "__init__", "")
    write_module(tmp_path / "site" / "acme_cfg", "routing", ROUTER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    message = load_error(load, plugin_table("acme_cfg.routing", "# a comment\ntarget = 5\n"))
    assert message.endswith("b2bua.toml:9: plugin[0].target: must be a SIP URI")
    message = load_error(load, plugin_table("acme_cfg.routing", 'target = "sip:x"\ncolour = 1\n'))
    assert message.endswith("b2bua.toml:9: plugin[0].colour: unknown key")


def test_make_plugin_raising_anything_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins
) -> None:
    write_module(tmp_path / "site" / "acme_raise", "__init__", "")
    write_module(
        tmp_path / "site" / "acme_raise",
        "routing",
        "def make_plugin(options, context):\n    raise ValueError('boom')\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    message = load_error(load, plugin_table("acme_raise.routing"))
    assert message.endswith(
        ":6: plugin[0]: acme_raise.routing: make_plugin failed: ValueError: boom"
    )


def test_an_object_that_provides_no_plugin_interface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins
) -> None:
    write_module(tmp_path / "site" / "acme_plain", "__init__", "")
    write_module(
        tmp_path / "site" / "acme_plain",
        "routing",
        """
        class Router:
            def route(self, request, context):
                return None

        def make_plugin(options, context):
            return Router()
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    message = load_error(load, plugin_table("acme_plain.routing"))
    assert ":6: plugin[0]: acme_plain.routing: make_plugin returned <" in message
    assert "which provides none of the plugin interfaces (IRouter, ICallFeature" in message


@pytest.mark.parametrize(
    "body",
    [
        "pass",  # no route at all
        "def route(self): return None",  # wrong signature
        "route = 42",  # not a method
    ],
)
def test_an_object_that_does_not_implement_what_it_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: LoadPlugins, body: str
) -> None:
    name = f"acme_broken_{abs(hash(body))}"
    write_module(tmp_path / "site" / name, "__init__", "")
    write_module(
        tmp_path / "site" / name,
        "routing",
        f"""
        from zope.interface import implementer
        from b2bua.interfaces import IRouter

        @implementer(IRouter)
        class Router:
            {body}

        def make_plugin(options, context):
            return Router()
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    message = load_error(load, plugin_table(f"{name}.routing"))
    assert f":6: plugin[0]: {name}.routing: does not implement IRouter:" in message


def test_plugin_interfaces_are_those_of_b2bua_interfaces() -> None:
    assert IRouter in plugin_interfaces()


# -- the context handed to make_plugin ---------------------------------------------------


def test_context_error_names_file_line_and_full_key() -> None:
    config = PluginConfig(
        "static_routes",
        {},
        "plugin[2]",
        10,
        {"plugin[2]": 10, "plugin[2].route[0]": 12, "plugin[2].route[0].targets": 14},
    )
    ctx = PluginContext("/etc/b2bua.toml", "/etc", config)
    assert ctx.key == "plugin[2]" and ctx.module == "static_routes"
    assert (
        str(ctx.error("route[0].targets", "bad"))
        == "/etc/b2bua.toml:14: plugin[2].route[0].targets: bad"
    )
    # Keys without a line of their own get the nearest enclosing table's.
    assert (
        str(ctx.error("route[0].targets[3]", "bad"))
        == "/etc/b2bua.toml:14: plugin[2].route[0].targets[3]: bad"
    )
    assert (
        str(ctx.error("route[0].domain", "bad"))
        == "/etc/b2bua.toml:12: plugin[2].route[0].domain: bad"
    )
    assert str(ctx.error("colour", "bad")) == "/etc/b2bua.toml:10: plugin[2].colour: bad"
    assert str(ctx.error("", "bad")) == "/etc/b2bua.toml:10: plugin[2]: bad"
    # The full key is accepted too.
    assert ctx.error("plugin[2].route[0].targets", "bad").key == "plugin[2].route[0].targets"
    error = ctx.error("route", "bad")
    assert (error.path, error.key, error.reason, error.line) == (
        "/etc/b2bua.toml",
        "plugin[2].route",
        "bad",
        10,
    )


def test_context_base_dir_is_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    write_module(tmp_path / "site" / "acme_ctx", "__init__", "")
    write_module(
        tmp_path / "site" / "acme_ctx",
        "routing",
        """
        from zope.interface import implementer
        from b2bua.interfaces import IRouter

        SEEN = []

        @implementer(IRouter)
        class Router:
            def route(self, request, context):
                return None

        def make_plugin(options, context):
            SEEN.append((dict(options), context))
            return Router()
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = write_config(plugin_table("acme_ctx.routing", "answer = 42\n[plugin.sub]\nx = 1\n"))
    load_plugins(load_config(path))
    import acme_ctx.routing  # type: ignore[import-not-found]

    [(options, ctx)] = acme_ctx.routing.SEEN
    assert options == {"answer": 42, "sub": {"x": 1}}
    assert ctx.config_path == path and ctx.base_dir == str(tmp_path)


# -- asking the routers --------------------------------------------------------------------


@implementer(IRouter)
class FakeRouter:
    """Answers with ``result`` (or raises it), counting the questions."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.asked: list[tuple[Request, RequestContext]] = []

    def route(self, request: Request, context: RequestContext) -> Any:
        self.asked.append((request, context))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


ROUTES = Routes((Target.of("sip:pbx@127.0.0.1:5070"),))


def decide(plugins: Plugins, request: Request | None = None) -> Decision:
    results: list[Any] = []
    plugins.route(request or invite(), context()).addBoth(results.append)
    [result] = results
    return result  # type: ignore[no-any-return]


@pytest.fixture
def log_events(monkeypatch: pytest.MonkeyPatch) -> list[LogEvent]:
    events: list[LogEvent] = []
    monkeypatch.setattr(
        plugin_module, "_log", Logger(namespace="b2bua.plugin", observer=events.append)
    )
    return events


def test_routers_are_asked_in_order_until_one_decides() -> None:
    first, second, third = FakeRouter(None), FakeRouter(ROUTES), FakeRouter(Reject(403))
    request = invite()
    assert decide(Plugins([first, second, third]), request) is ROUTES
    assert first.asked == [(request, context())] and second.asked == first.asked
    assert third.asked == []


def test_a_reject_decides_too() -> None:
    assert decide(Plugins([FakeRouter(None), FakeRouter(Reject(403, "Nope"))])) == Reject(
        403, "Nope"
    )


def test_no_opinion_anywhere_is_404() -> None:
    assert decide(Plugins([FakeRouter(None), FakeRouter(None)])) == NOT_FOUND == Reject(404)
    assert decide(Plugins()) == Reject(404)


def test_a_router_that_raises_gives_500_and_is_logged(log_events: list[LogEvent]) -> None:
    broken, after = FakeRouter(RuntimeError("oops")), FakeRouter(ROUTES)
    assert decide(Plugins([broken, after])) == ROUTING_ERROR == Reject(500, "Routing Error")
    assert after.asked == []
    [event] = log_events
    assert event["log_failure"].check(RuntimeError)
    assert "FakeRouter" in event["router"]


def test_the_log_names_the_plugin(log_events: list[LogEvent], load: LoadPlugins) -> None:
    plugins = load(
        plugin_table("static_routes", '[[plugin.route]]\ndomain = "x"\ntargets = ["sip:a"]\n')
    )
    [router] = plugins.routers
    assert isinstance(router, StaticRoutes)
    router.routes = ()  # break it: route() now raises
    router.route = None  # type: ignore[assignment,method-assign]
    assert decide(plugins) == ROUTING_ERROR
    [event] = log_events
    assert event["router"] == "plugin[0] (static_routes)"


@pytest.mark.parametrize("junk", ["sip:pbx", 42, Routes(())])
def test_a_router_that_returns_junk_gives_500(log_events: list[LogEvent], junk: object) -> None:
    assert decide(Plugins([FakeRouter(junk), FakeRouter(ROUTES)])) == ROUTING_ERROR
    assert "not Routes" in log_events[0]["log_format"]


def test_a_deferred_decision() -> None:
    pending: Deferred[Decision] = Deferred()
    slow, after = FakeRouter(pending), FakeRouter(ROUTES)
    results: list[object] = []
    Plugins([slow, after]).route(invite(), context()).addBoth(results.append)
    assert results == [] and after.asked == []
    pending.callback(Reject(486))
    assert results == [Reject(486)] and after.asked == []


def test_a_deferred_none_asks_the_next_router() -> None:
    pending: Deferred[Decision] = Deferred()
    later: Deferred[Decision] = Deferred()
    routers = [FakeRouter(pending), FakeRouter(succeed(None)), FakeRouter(later), FakeRouter(None)]
    results: list[object] = []
    Plugins(routers).route(invite(), context()).addBoth(results.append)
    assert [len(r.asked) for r in routers] == [1, 0, 0, 0]
    pending.callback(None)
    assert [len(r.asked) for r in routers] == [1, 1, 1, 0] and results == []
    later.callback(ROUTES)
    assert results == [ROUTES] and routers[3].asked == []


def test_a_deferred_none_from_the_last_router_is_404() -> None:
    assert decide(Plugins([FakeRouter(succeed(None))])) == Reject(404)


def test_a_failed_deferred_gives_500(log_events: list[LogEvent]) -> None:
    assert decide(Plugins([FakeRouter(fail(KeyError("k"))), FakeRouter(ROUTES)])) == ROUTING_ERROR
    assert log_events[0]["log_failure"].check(KeyError)


def test_cancelling_cancels_the_pending_router(log_events: list[LogEvent]) -> None:
    cancelled: list[object] = []
    pending: Deferred[Decision] = Deferred(cancelled.append)
    results: list[Any] = []
    d = Plugins([FakeRouter(pending)]).route(invite(), context())
    d.addBoth(results.append)
    d.cancel()
    assert cancelled == [pending]
    [failure] = results
    assert failure.check(CancelledError)
    assert log_events == []


def test_cancelling_reaches_a_later_router(log_events: list[LogEvent]) -> None:
    first: Deferred[Decision] = Deferred()
    cancelled: list[object] = []
    second: Deferred[Decision] = Deferred(cancelled.append)
    results: list[Any] = []
    d = Plugins([FakeRouter(first), FakeRouter(second)]).route(invite(), context())
    d.addBoth(results.append)
    first.callback(None)
    d.cancel()
    assert cancelled == [second]
    assert results[0].check(CancelledError) and log_events == []


def test_a_coroutine_router() -> None:
    @implementer(IRouter)
    class AsyncRouter:
        def __init__(self, pending: Deferred[Decision]) -> None:
            self.pending = pending

        async def route(self, request: Request, context: RequestContext) -> Decision:
            return await self.pending

    pending: Deferred[Decision] = Deferred()
    results: list[object] = []
    Plugins([AsyncRouter(pending)]).route(invite(), context()).addBoth(results.append)
    assert results == []
    pending.callback(ROUTES)
    assert results == [ROUTES]
    assert decide(Plugins([AsyncRouter(succeed(None)), FakeRouter(Reject(486))])) == Reject(486)


def test_from_loaded_keeps_routers_only() -> None:
    router = FakeRouter(None)
    config = PluginConfig("x", {}, "plugin[0]")
    plugins = Plugins.from_loaded(
        [LoadedPlugin(config, router, (IRouter,)), LoadedPlugin(config, object(), ())]
    )
    assert plugins.routers == [router] and len(plugins.loaded) == 2
