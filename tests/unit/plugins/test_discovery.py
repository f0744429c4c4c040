"""Finding plugins: bundled, plugin_dirs, the b2bua.plugins entry points; --list-plugins.

Entry points come from real (tiny) distributions: a ``NAME-VERSION.dist-info``
directory with ``METADATA`` and ``entry_points.txt`` in a directory put on
``sys.path``, which is all ``importlib.metadata`` looks for.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from twisted.python import usage

from b2bua.config import ConfigError, load_config
from b2bua.interfaces import ICallFeature, IRouter
from b2bua.plugin import (
    ENTRY_POINT_GROUP,
    FoundPlugin,
    describe_plugin,
    discover_plugins,
    format_plugin_list,
    load_plugins,
    plugin_entry_points,
)
from b2bua.routing import Routes, Target
from b2bua.service import Options
from b2bua_plugins.static_routes import StaticRoutes
from tests.unit.plugins.helpers import LISTEN, context, invite

#: A plugin module routing everything to its ``target`` option.
ROUTER_MODULE = '''
"""Routes every call to one target (a test plugin)."""

from zope.interface import implementer

from b2bua.interfaces import IRouter, Routes, Target


@implementer(IRouter)
class Router:
    def __init__(self, target):
        self.target = target

    def route(self, request, context):
        return Routes((Target.of(self.target),))


def make_plugin(options, context) -> Router:
    return Router(options.get("target", "sip:default@127.0.0.1"))
'''


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


class Site:
    """A directory on sys.path holding packages and their distributions' metadata."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.package = f"acme_b2bua_{uuid.uuid4().hex[:8]}"  # unique: sys.modules is global

    def module(self, name: str, source: str = ROUTER_MODULE) -> str:
        """Write PACKAGE/NAME.py; return its dotted name."""
        write(self.root / self.package / "__init__.py", "")
        write(self.root / self.package / f"{name}.py", source)
        return f"{self.package}.{name}"

    def distribution(self, name: str, entry_points: dict[str, str], version: str = "1.0") -> None:
        """Declare a distribution with these b2bua.plugins entry points (name -> value)."""
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        write(info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        write(info / "entry_points.txt", f"[{ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A fresh site directory on sys.path; its modules are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    made = Site(root)
    yield made
    for name in [n for n in sys.modules if n.split(".")[0] == made.package]:
        del sys.modules[name]


def config(tmp_path: Path, module: str, extra: str = "", dirs: tuple[str, ...] = ()) -> str:
    top = f"plugin_dirs = [{', '.join(repr(d) for d in dirs)}]\n" if dirs else ""
    path = tmp_path / "b2bua.toml"
    path.write_text(f'{top}{LISTEN}\n[[plugin]]\nmodule = "{module}"\n{extra}', encoding="utf-8")
    return str(path)


def load(path: str) -> list[object]:
    return [p.plugin for p in load_plugins(load_config(path)).loaded]


def load_error(path: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_plugins(load_config(path))
    return str(info.value)


# -- loading by entry point ------------------------------------------------------------


def test_a_bare_name_finds_an_entry_point(site: Site, tmp_path: Path) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"acme_route": module})
    [router] = load(config(tmp_path, "acme_route", 'target = "sip:ep@127.0.0.1"\n'))
    assert type(router).__module__ == module
    assert IRouter.providedBy(router)
    assert router.route(invite(), context()) == Routes((Target.of("sip:ep@127.0.0.1"),))  # type: ignore[attr-defined]


def test_an_entry_point_may_name_make_plugin(site: Site, tmp_path: Path) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"acme_route": f"{module}:make_plugin"})
    [router] = load(config(tmp_path, "acme_route"))
    assert type(router).__module__ == module


def test_an_entry_point_naming_anything_else_is_an_error(site: Site, tmp_path: Path) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"acme_route": f"{module}:Router"})
    message = load_error(config(tmp_path, "acme_route"))
    assert ":7: plugin[0].module: entry point 'acme_route' of acme-b2bua 1.0 is" in message
    assert "not a module name (b2bua.plugins entries are NAME = package.module)" in message


def test_an_entry_point_whose_module_is_missing(site: Site, tmp_path: Path) -> None:
    site.distribution("acme-b2bua", {"acme_route": f"{site.package}.gone"})
    message = load_error(config(tmp_path, "acme_route"))
    assert f"plugin[0].module: cannot import {site.package}.gone" in message


def test_a_name_two_distributions_declare_is_refused(site: Site, tmp_path: Path) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"route": module})
    site.distribution("other-b2bua", {"route": module}, version="2.1")
    message = load_error(config(tmp_path, "route"))
    assert "entry point 'route' (b2bua.plugins) is declared by several distributions" in message
    assert "acme-b2bua 1.0" in message and "other-b2bua 2.1" in message
    assert "name the module with its dotted name instead" in message
    # the dotted name still works
    [router] = load(config(tmp_path, module))
    assert type(router).__module__ == module


def test_bundled_plugins_come_before_entry_points(site: Site, tmp_path: Path) -> None:
    site.distribution("acme-b2bua", {"static_routes": site.module("routing")})
    table = '[[plugin.route]]\ntargets = ["sip:pbx"]\n'
    [router] = load(config(tmp_path, "static_routes", table))
    assert isinstance(router, StaticRoutes)


def test_plugin_dirs_come_before_entry_points(site: Site, tmp_path: Path) -> None:
    site.distribution("acme-b2bua", {"myrouter": site.module("routing")})
    write(tmp_path / "dir" / "myrouter.py", ROUTER_MODULE)
    [router] = load(config(tmp_path, "myrouter", dirs=("dir",)))
    assert type(router).__module__.startswith("b2bua_plugin_dir_")


def test_a_dotted_name_is_never_an_entry_point(site: Site, tmp_path: Path) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"x.y": module})
    assert "no module named 'x.y'" in load_error(config(tmp_path, "x.y"))


def test_an_unknown_name_says_entry_points_were_searched(tmp_path: Path) -> None:
    message = load_error(config(tmp_path, "nosuchplugin_anywhere"))
    assert message.endswith(
        "plugin[0].module: no plugin named 'nosuchplugin_anywhere'"
        " (looked in b2bua_plugins, entry points b2bua.plugins)"
    )


def test_plugin_entry_points_groups_by_name(site: Site) -> None:
    site.distribution("acme-b2bua", {"one": "a.b", "two": "c.d"})
    found = plugin_entry_points()
    assert [e.value for e in found["one"]] == ["a.b"]
    assert [e.value for e in found["two"]] == ["c.d"]


# -- discovery and --list-plugins ------------------------------------------------------


def test_discover_lists_bundled_dirs_and_entry_points_in_lookup_order(
    site: Site, tmp_path: Path
) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"acme_route": module, "static_routes": module})
    write(tmp_path / "dir" / "myrouter.py", ROUTER_MODULE)
    write(tmp_path / "dir" / "_private.py", "")
    write(tmp_path / "dir" / "static_routes.py", "")
    found = discover_plugins([str(tmp_path / "dir")])
    by_source = [(f.name, f.source) for f in found]
    assert ("static_routes", "bundled") in by_source
    assert by_source.index(("static_routes", "bundled")) < by_source.index(
        ("myrouter", "plugin_dirs")
    )
    assert by_source.index(("myrouter", "plugin_dirs")) < by_source.index(
        ("acme_route", "entry point")
    )
    assert "_private" not in {f.name for f in found}
    [bundled] = [f for f in found if f.name == "static_routes" and f.source == "bundled"]
    assert bundled == FoundPlugin(
        "static_routes", "bundled", "b2bua_plugins", "b2bua_plugins.static_routes"
    )
    shadowed = [f for f in found if f.name == "static_routes" and f.source != "bundled"]
    assert {f.source for f in shadowed} == {"plugin_dirs", "entry point"}
    assert all(f.shadowed_by == "bundled" for f in shadowed)
    [entry] = [f for f in found if f.name == "acme_route"]
    assert (entry.where, entry.module, entry.shadowed_by) == ("acme-b2bua 1.0", module, None)


def test_describe_reads_the_return_annotation_and_the_docstring(site: Site) -> None:
    found = FoundPlugin("acme_route", "entry point", "acme-b2bua 1.0", site.module("routing"))
    assert describe_plugin(found) == ("IRouter", "Routes every call to one target (a test plugin).")


def test_describe_falls_back_to_the_classes_the_module_defines(site: Site) -> None:
    source = '''
    """Two hats."""
    from zope.interface import implementer
    from b2bua.features import CallFeature
    from b2bua.interfaces import IRouter

    @implementer(IRouter)
    class Both(CallFeature):
        def route(self, request, context):
            return None

    def make_plugin(options, context):
        return Both()
    '''
    found = FoundPlugin("both", "entry point", "x 1", site.module("both", source))
    assert describe_plugin(found) == (f"{IRouter.__name__}, {ICallFeature.__name__}", "Two hats.")


@pytest.mark.parametrize(
    ("source", "summary"),
    [
        ("raise RuntimeError('broken')\n", "cannot import {module}: RuntimeError: broken"),
        ('"""No factory."""\n', "no make_plugin(options, context) function: cannot be loaded"),
    ],
)
def test_describe_a_module_that_cannot_be_a_plugin(site: Site, source: str, summary: str) -> None:
    module = site.module("bad", source)
    found = FoundPlugin("bad", "entry point", "x 1", module)
    assert describe_plugin(found) == ("", summary.format(module=module))


def test_the_list_has_one_line_per_plugin(site: Site, tmp_path: Path) -> None:
    module = site.module("routing")
    site.distribution("acme-b2bua", {"acme_route": module})
    lines = format_plugin_list(discover_plugins()).splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "PROVIDES", "DESCRIPTION"]
    [static] = [line for line in lines if line.startswith("static_routes ")]
    assert "bundled (b2bua_plugins.static_routes)" in static and " IRouter " in static
    [acme] = [line for line in lines if line.startswith("acme_route ")]
    assert f"entry point (acme-b2bua 1.0: {module})" in acme
    assert acme.split()[-10:] == [
        "IRouter",
        *"Routes every call to one target (a test plugin).".split(),
    ]


def test_nothing_found() -> None:
    assert format_plugin_list([]) == "no plugins found"


RunOptions = Callable[..., str]


@pytest.fixture
def run_options(capsys: pytest.CaptureFixture[str]) -> RunOptions:
    def run(*argv: str) -> str:
        with pytest.raises(SystemExit) as info:
            Options().parseOptions(list(argv))
        assert info.value.code == 0
        return capsys.readouterr().out

    return run


def test_list_plugins_option_lists_the_configured_plugin_dirs(
    tmp_path: Path, run_options: RunOptions
) -> None:
    write(tmp_path / "dir" / "myrouter.py", ROUTER_MODULE)
    # the [[plugin]] itself is broken: listing does not load the configured plugins
    path = config(tmp_path, "nosuchplugin_anywhere", dirs=("dir",))
    out = run_options("--config", path, "--list-plugins")
    [line] = [line for line in out.splitlines() if line.startswith("myrouter ")]
    assert f"plugin_dirs ({tmp_path / 'dir'})" in line and "IRouter" in line


def test_list_plugins_without_a_config_file(run_options: RunOptions) -> None:
    assert "static_routes" in run_options("--list-plugins")


def test_list_plugins_with_a_broken_config_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.toml"
    path.write_text("[[listen]\n", encoding="utf-8")
    with pytest.raises(usage.UsageError, match="not valid TOML"):
        Options().parseOptions(["--config", str(path), "--list-plugins"])
