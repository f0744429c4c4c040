"""Loading the plugins the configuration names, and asking the routers among them.

Each ``[[plugin]]`` table names a module; the module provides
``make_plugin(options, context)`` returning an object that provides one or more
of the interfaces in :mod:`b2bua.interfaces` (checked with ``verifyObject``).
Where a module is looked for (:func:`find_plugin_module`):

- a bare name (``static_routes``): the bundled package ``b2bua_plugins``, then a
  module file ``NAME.py`` (or package ``NAME/``) in each ``plugin_dirs`` entry,
  then the entry point ``NAME`` of the ``b2bua.plugins`` group (installed
  distributions declare ``NAME = package.module``);
- a dotted name (``mycompany.b2bua.routing``): a normal import.

:func:`discover_plugins` lists every plugin found that way (``twistd b2bua
--list-plugins``).

Every mistake is a :class:`~b2bua.config.ConfigError` naming the file, the line and
the key, so a bad plugin stops the server at start-up with a readable message.
At run time :meth:`Plugins.route` never fails: a router that raises is logged and
the call gets 500.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from inspect import iscoroutine
from types import MappingProxyType, ModuleType
from typing import Any, cast

from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.python.failure import Failure
from zope.interface.exceptions import Invalid
from zope.interface.interface import InterfaceClass
from zope.interface.verify import verifyObject

from . import interfaces
from .config import Config, ConfigError, PluginConfig
from .interfaces import ICallFeature, ILocationService, IPluginService, IRouter
from .logs import Logger
from .routing import Decision, Reject, RequestContext, Routes
from .sip import URI, Request, Response

__all__ = [
    "BUNDLED_PACKAGE",
    "ENTRY_POINT_GROUP",
    "FACTORY_NAME",
    "FoundPlugin",
    "LoadedPlugin",
    "PluginContext",
    "Plugins",
    "describe_plugin",
    "discover_plugins",
    "find_plugin_module",
    "format_plugin_list",
    "load_plugins",
    "plugin_entry_points",
    "plugin_interfaces",
]

#: The package bare module names are looked up in first (the repository's plugins/).
BUNDLED_PACKAGE = "b2bua_plugins"
#: The function every plugin module provides.
FACTORY_NAME = "make_plugin"
#: Package names plugin_dirs entries are imported under: this prefix + a hash of the path.
DIR_PACKAGE_PREFIX = "b2bua_plugin_dir_"
#: The entry-point group installed distributions declare plugins in (name = module).
ENTRY_POINT_GROUP = "b2bua.plugins"

#: The answer when no router has an opinion, and when a router fails.
NOT_FOUND = Reject(404)
ROUTING_ERROR = Reject(500, "Routing Error")

_log = Logger(namespace="b2bua.plugin")


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plugin's ``make_plugin`` gets besides its options.

    ``config_path`` is the configuration file, ``base_dir`` the directory relative
    paths in the plugin's options are relative to (the file's directory), and
    ``plugin`` the ``[[plugin]]`` table being loaded.  Raise ``context.error(key,
    reason)`` for any option that is wrong.
    """

    config_path: str
    base_dir: str
    plugin: PluginConfig

    @property
    def key(self) -> str:
        """The plugin table's key in error messages, e.g. ``plugin[0]``."""
        return self.plugin.key

    @property
    def module(self) -> str:
        """The module name as configured."""
        return self.plugin.module

    def full_key(self, key: str) -> str:
        """``route[1].targets`` -> ``plugin[0].route[1].targets`` ("" -> ``plugin[0]``)."""
        own = self.plugin.key
        if not key or key == own:
            return own
        if key.startswith((own + ".", own + "[")):
            return key
        return f"{own}{key}" if key.startswith("[") else f"{own}.{key}"

    def error(self, key: str, reason: str) -> ConfigError:
        """A ConfigError for an option of this plugin, naming file, line and key.

        ``key`` is relative to the plugin's table (``"route[1].targets"``, or ""
        for the table itself); the full key (``plugin[0].route[1].targets``) is
        accepted too.  The line is the key's, else its nearest enclosing table's.
        """
        full = self.full_key(key)
        return ConfigError(self.config_path, full, reason, self.plugin.line_of(full))


@dataclass(frozen=True, slots=True)
class PluginRuntime:
    """What a running plugin service may use (IPluginService.start_plugin gets it).

    ``clock`` has ``callLater`` and ``seconds`` (the reactor); ``request(method,
    uri)`` sends an out-of-dialog request (e.g. an OPTIONS probe) and fires with
    its final response (408 when unanswered, 503 when unreachable).
    ``location`` is the registrar's location service (an
    :class:`~b2bua.interfaces.ILocationService`), None when ``[registrar]`` is off.
    """

    clock: Any
    request: Callable[[str, URI], Deferred[Response]]
    location: ILocationService | None = None


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    """A plugin object with the table it came from and the interfaces it provides."""

    config: PluginConfig
    plugin: object
    interfaces: tuple[InterfaceClass, ...]

    @property
    def label(self) -> str:
        """``plugin[0] (static_routes)``, for logs."""
        return f"{self.config.key} ({self.config.module})"


def plugin_interfaces() -> tuple[InterfaceClass, ...]:
    """Every interface :mod:`b2bua.interfaces` declares, in declaration order."""
    return tuple(
        value
        for value in vars(interfaces).values()
        if isinstance(value, InterfaceClass) and value.__module__ == interfaces.__name__
    )


class Plugins:
    """The loaded plugins, and the routers among them in configuration order.

    :meth:`route` is the router the call manager is given.
    """

    def __init__(
        self, routers: Iterable[IRouter] = (), loaded: Sequence[LoadedPlugin] = ()
    ) -> None:
        self.loaded: list[LoadedPlugin] = list(loaded)
        self.routers: list[IRouter] = list(routers)
        self._labels = {id(p.plugin): p.label for p in self.loaded}

    @property
    def features(self) -> list[ICallFeature]:
        """The plugins that provide ICallFeature, in configuration order."""
        return [cast(ICallFeature, p.plugin) for p in self.loaded if ICallFeature in p.interfaces]

    @property
    def services(self) -> list[IPluginService]:
        """The plugins that provide IPluginService, in configuration order."""
        return [
            cast(IPluginService, p.plugin) for p in self.loaded if IPluginService in p.interfaces
        ]

    def start(self, runtime: PluginRuntime) -> None:
        """Start every plugin service (a failing one is logged, the others start)."""
        for plugin in self.services:
            try:
                plugin.start_plugin(runtime)
            except Exception:
                _log.failure("Plugin {plugin} failed to start", plugin=self._label(plugin))

    def stop(self) -> Deferred[None]:
        """Stop every plugin service; fires when all have stopped."""
        waits = []
        for plugin in self.services:
            try:
                result = plugin.stop_plugin()
            except Exception:
                _log.failure("Plugin {plugin} failed to stop", plugin=self._label(plugin))
                continue
            if isinstance(result, Deferred):
                waits.append(result)
        done: Deferred[None] = DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)
        return done

    @classmethod
    def from_loaded(cls, loaded: Sequence[LoadedPlugin]) -> Plugins:
        """The plugins, with every one that provides IRouter a router."""
        routers = [cast(IRouter, p.plugin) for p in loaded if IRouter in p.interfaces]
        return cls(routers, loaded)

    def route(self, request: Request, context: RequestContext) -> Deferred[Decision]:
        """Ask each router in order; the first decision that is not None wins.

        When every router says None the decision is ``Reject(404)``.  A router
        that raises, fails its Deferred or returns something that is not a
        decision is logged and the decision is ``Reject(500, "Routing Error")``.
        A router may also be a coroutine function (``async def route``).
        Cancelling the returned Deferred cancels a router's pending Deferred.
        """
        return self._ask(0, request, context)

    def _ask(self, start: int, request: Request, context: RequestContext) -> Deferred[Decision]:
        routers = self.routers
        for index in range(start, len(routers)):
            router = routers[index]
            try:
                result: Any = router.route(request, context)
            except Exception:
                _log.failure("Router {router} failed; answering 500", router=self._label(router))
                return succeed(ROUTING_ERROR)
            if iscoroutine(result):  # async def route(...)
                result = Deferred.fromCoroutine(result)
            if isinstance(result, Deferred):
                asked: Deferred[Decision] = result.addCallbacks(
                    self._answered,
                    self._failed,
                    callbackArgs=(router, index, request, context),
                    errbackArgs=(router,),
                )
                return asked
            if result is not None:
                return succeed(self._checked(result, router))
        return succeed(NOT_FOUND)

    def _answered(
        self,
        result: object,
        router: IRouter,
        index: int,
        request: Request,
        context: RequestContext,
    ) -> Decision | Deferred[Decision]:
        if result is None:
            return self._ask(index + 1, request, context)
        return self._checked(result, router)

    def _checked(self, result: object, router: IRouter) -> Decision:
        if isinstance(result, Reject) or (isinstance(result, Routes) and result.targets):
            return result
        _log.error(
            "Router {router} returned {result!r}, not Routes (with targets), Reject or None;"
            " answering 500",
            router=self._label(router),
            result=result,
        )
        return ROUTING_ERROR

    def _failed(self, failure: Failure, router: IRouter) -> Decision | Failure:
        if isinstance(failure.value, CancelledError):
            return failure
        _log.failure("Router {router} failed; answering 500", failure, router=self._label(router))
        return ROUTING_ERROR

    def _label(self, router: object) -> str:
        return self._labels.get(id(router)) or repr(router)


def load_plugins(config: Config) -> Plugins:
    """Import, build and check every ``[[plugin]]`` of ``config``, in order.

    Raises ConfigError for an unknown module, a module without ``make_plugin``, a
    ``make_plugin`` that raises, and an object that provides no interface of
    :mod:`b2bua.interfaces` or does not implement one it claims.
    """
    base_dir = _base_dir(config.path)
    known = plugin_interfaces()
    loaded: list[LoadedPlugin] = []
    for plugin_config in config.plugins:
        context = PluginContext(config.path, base_dir, plugin_config)
        module = find_plugin_module(plugin_config.module, config.plugin_dirs, context)
        factory = getattr(module, FACTORY_NAME, None)
        if not callable(factory):
            raise context.error(
                "module",
                f"{module.__name__} has no {FACTORY_NAME}(options, context) function",
            )
        plugin = _make(factory, plugin_config.options, context)
        loaded.append(LoadedPlugin(plugin_config, plugin, _verified(plugin, known, context)))
    return Plugins.from_loaded(loaded)


def find_plugin_module(name: str, dirs: Sequence[str], context: PluginContext) -> ModuleType:
    """Import the module a ``[[plugin]]`` table names (see the module docstring).

    ``dirs`` are absolute directory paths (``Config.plugin_dirs``).  Raises
    ConfigError (key ``plugin[N].module``) when there is no such module or it
    fails to import.
    """
    if "." in name:
        return _import(name, context, missing=f"no module named {name!r}")
    if not name.startswith("_"):  # never b2bua_plugins.__init__ and the like
        bundled = f"{BUNDLED_PACKAGE}.{name}"
        if _exists(bundled):
            return _import(bundled, context)
        for directory in dirs:
            spec = importlib.machinery.PathFinder.find_spec(name, [directory])
            if spec is not None and spec.loader is not None:  # not a namespace directory
                return _import(f"{_dir_package(directory)}.{name}", context)
        declared = plugin_entry_points().get(name)
        if declared:
            return _import(_entry_point_module(name, declared, context), context)
    places = ", ".join([BUNDLED_PACKAGE, *dirs, f"entry points {ENTRY_POINT_GROUP}"])
    raise context.error("module", f"no plugin named {name!r} (looked in {places})")


def plugin_entry_points() -> dict[str, list[importlib.metadata.EntryPoint]]:
    """The ``b2bua.plugins`` entry points of the installed distributions, by name."""
    out: dict[str, list[importlib.metadata.EntryPoint]] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(entry.name, []).append(entry)
    return out


def _entry_point_module(
    name: str, declared: Sequence[importlib.metadata.EntryPoint], context: PluginContext
) -> str:
    """The module an entry point names; ConfigError when it is ambiguous or not a module."""
    if len(declared) > 1:
        owners = ", ".join(_distribution(entry) for entry in declared)
        raise context.error(
            "module",
            f"entry point {name!r} ({ENTRY_POINT_GROUP}) is declared by several"
            f" distributions ({owners}); name the module with its dotted name instead",
        )
    [entry] = declared
    module = _entry_point_target(entry)
    if module is None:
        raise context.error(
            "module",
            f"entry point {name!r} of {_distribution(entry)} is {entry.value!r}, not a module"
            f" name ({ENTRY_POINT_GROUP} entries are NAME = package.module)",
        )
    return module


def _entry_point_target(entry: importlib.metadata.EntryPoint) -> str | None:
    """``package.module`` for ``package.module`` (or ``package.module:make_plugin``)."""
    match = _ENTRY_VALUE_RE.fullmatch(entry.value.strip())
    if match is None or match.group("attr") not in (None, FACTORY_NAME):
        return None
    module: str = match.group("module")
    return module


_ENTRY_VALUE_RE = re.compile(
    r"(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"(?:\s*:\s*(?P<attr>[A-Za-z_][A-Za-z0-9_]*))?"
)


def _distribution(entry: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    if dist is None:
        return "an unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


# -- discovery ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundPlugin:
    """A plugin module :func:`find_plugin_module` can load, and where it comes from.

    ``name`` is what ``module =`` takes; ``source`` is ``"bundled"``,
    ``"plugin_dirs"`` or ``"entry point"``; ``where`` the package, directory or
    distribution; ``module`` the module imported (None when an entry point does
    not name one).  ``shadowed_by`` is the source of an earlier plugin of the
    same name, which is the one a bare name loads.
    """

    name: str
    source: str
    where: str
    module: str | None
    shadowed_by: str | None = None


def discover_plugins(dirs: Sequence[str] = ()) -> list[FoundPlugin]:
    """Every plugin a bare name can reach, in lookup order: bundled, dirs, entry points."""
    found: list[FoundPlugin] = []
    seen: dict[str, str] = {}

    def add(name: str, source: str, where: str, module: str | None) -> None:
        found.append(FoundPlugin(name, source, where, module, seen.get(name)))
        seen.setdefault(name, source)

    bundled = _bundled_path()
    for name in _module_names(bundled):
        add(name, "bundled", BUNDLED_PACKAGE, f"{BUNDLED_PACKAGE}.{name}")
    for directory in dirs:
        for name in _module_names([directory]):
            add(name, "plugin_dirs", directory, f"{_dir_package(directory)}.{name}")
    for name, entries in sorted(plugin_entry_points().items()):
        for entry in entries:
            add(name, "entry point", _distribution(entry), _entry_point_target(entry))
    return found


def _bundled_path() -> list[str]:
    try:
        package = importlib.import_module(BUNDLED_PACKAGE)
    except ImportError:
        return []
    return list(getattr(package, "__path__", []))


def _module_names(path: Sequence[str]) -> list[str]:
    names = {
        info.name
        for info in pkgutil.iter_modules(list(path))
        if info.name.isidentifier() and not info.name.startswith("_")
    }
    return sorted(names)


def describe_plugin(found: FoundPlugin) -> tuple[str, str]:
    """(interfaces, summary) of a found plugin, importing its module.

    The interfaces are those of the class ``make_plugin`` is annotated to return,
    else of the plugin classes the module defines ("" when neither says); the
    summary is the first line of the module's docstring, or why it cannot be loaded.
    """
    if found.module is None:
        return "", "not a module name: cannot be loaded"
    try:
        module = importlib.import_module(found.module)
    except Exception as e:
        return "", f"cannot import {found.module}: {_describe(e)}"
    doc = (module.__doc__ or "").strip()
    summary = doc.splitlines()[0].strip() if doc else ""
    factory = getattr(module, FACTORY_NAME, None)
    if not callable(factory):
        return "", f"no {FACTORY_NAME}(options, context) function: cannot be loaded"
    provided = _declared_interfaces(module, factory)
    return ", ".join(iface.__name__ for iface in provided), summary


def _declared_interfaces(
    module: ModuleType, factory: Callable[..., object]
) -> list[InterfaceClass]:
    known = plugin_interfaces()
    candidates: list[type] = []
    returned = getattr(factory, "__annotations__", {}).get("return")
    if isinstance(returned, str):
        try:
            returned = eval(returned, vars(module))  # the module's own annotation
        except Exception:
            returned = None
    if isinstance(returned, type):
        candidates = [returned]
    else:
        candidates = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
    provided: list[InterfaceClass] = []
    for iface in known:
        if any(iface.implementedBy(cls) for cls in candidates):
            provided.append(iface)
    return provided


def format_plugin_list(found: Sequence[FoundPlugin]) -> str:
    """The table ``twistd b2bua --list-plugins`` prints."""
    rows = [("NAME", "SOURCE", "PROVIDES", "DESCRIPTION")]
    for plugin in found:
        provides, summary = describe_plugin(plugin)
        if plugin.source == "bundled":
            source = f"bundled ({plugin.module})"
        elif plugin.source == "entry point":
            source = f"entry point ({plugin.where}: {plugin.module or '?'})"
        else:
            source = f"{plugin.source} ({plugin.where})"
        if plugin.shadowed_by is not None:
            summary = f"(hidden by the {plugin.shadowed_by} plugin of this name) {summary}"
        rows.append((plugin.name, source, provides or "-", summary))
    if len(rows) == 1:
        return "no plugins found"
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


def _exists(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ImportError:  # the parent package itself is missing
        return False


def _import(module_name: str, context: PluginContext, missing: str | None = None) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        gone = e.name or ""
        if missing is not None and (module_name == gone or module_name.startswith(gone + ".")):
            raise context.error("module", missing) from None
        raise context.error("module", f"cannot import {module_name}: {e}") from e
    except Exception as e:
        raise context.error("module", f"cannot import {module_name}: {_describe(e)}") from e


def _dir_package(directory: str) -> str:
    """The package a plugin directory's modules are imported under, created on first use.

    Its name is derived from the path, so the same directory always gives the
    same package and different directories never collide; its ``__path__`` is
    the directory, so modules there can import each other relatively.
    """
    digest = hashlib.sha1(directory.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = DIR_PACKAGE_PREFIX + digest
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [directory]
        package = importlib.util.module_from_spec(spec)
        package.__doc__ = f"b2bua plugins from {directory}"
        sys.modules[name] = package
    return name


def _make(
    factory: Callable[..., object], options: Mapping[str, Any], context: PluginContext
) -> object:
    try:
        return factory(MappingProxyType(options), context)
    except ConfigError:
        raise
    except Exception as e:
        reason = f"{context.module}: {FACTORY_NAME} failed: {_describe(e)}"
        raise context.error("", reason) from e


def _verified(
    plugin: object, known: Sequence[InterfaceClass], context: PluginContext
) -> tuple[InterfaceClass, ...]:
    provided = tuple(iface for iface in known if iface.providedBy(plugin))
    if not provided:
        names = ", ".join(iface.__name__ for iface in known)
        raise context.error(
            "",
            f"{context.module}: {FACTORY_NAME} returned {plugin!r}, which provides none of"
            f" the plugin interfaces ({names})",
        )
    for iface in provided:
        try:
            verifyObject(iface, plugin)
        except Invalid as e:
            raise context.error(
                "", f"{context.module}: does not implement {iface.__name__}: {e}"
            ) from e
    return provided


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _base_dir(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) if not path.startswith("<") else os.getcwd()
