"""Reloading the configuration file and its plugins while calls go on (SIGHUP).

A reload re-reads the file the server was started with and builds its plugins,
importing the modules of ``plugin_dirs`` afresh (bundled, installed and
entry-point plugins are imported once per process: upgrading them needs a
restart).  Only when everything validates does it take effect:

1. the running plugin services are stopped (``IPluginService.stop_plugin``,
   waited for up to ``stop_timeout`` seconds);
2. the new ones are started, and the new routers and call features are
   installed for **new** calls; calls in progress keep the features they started
   with, so no call is dropped or changes behaviour halfway;
3. ``Reloaded configuration from FILE`` is logged.

Only the ``[[plugin]]`` tables and ``plugin_dirs`` are reloaded.  Every other
setting (listeners, limits, timers, transport, TLS, logging, ``[server]`` and
``[bridge]``) is compared with the running one, and a change is logged as
``FILE: KEY changed: needs a restart`` and otherwise ignored.  A file that does
not validate (TOML syntax, unknown key, a plugin that cannot be loaded) is
refused with the usual ``FILE:LINE: KEY: reason`` and the running configuration
stays.  Reloads never overlap: a reload asked for while one runs is done once
that one has finished.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.python.failure import Failure

from .config import Config, ConfigError, load_config
from .logs import Logger
from .plugin import DIR_PACKAGE_PREFIX, PluginRuntime, Plugins, load_plugins

__all__ = [
    "RELOADABLE",
    "Reloader",
    "fresh_plugin_dir_modules",
    "load_for_reload",
    "restart_needed",
]

#: The parts of :class:`~b2bua.config.Config` a reload changes; the rest needs a restart.
RELOADABLE = ("plugins", "plugin_dirs")

_log = Logger(namespace="b2bua.reload")


def restart_needed(running: Config, new: Config) -> list[str]:
    """The settings that differ and take effect only after a restart.

    Keys as in error messages: ``listen`` for any change to the listeners, else
    ``section.key`` (``timers.t1``, ``bridge.max_duration``).
    """
    changed: list[str] = []
    for section in fields(Config):
        name = section.name
        if name == "path" or name in RELOADABLE:
            continue
        old_value, new_value = getattr(running, name), getattr(new, name)
        if old_value == new_value:
            continue
        if is_dataclass(old_value) and type(old_value) is type(new_value):
            changed += [
                f"{name}.{f.name}"
                for f in fields(old_value)
                if getattr(old_value, f.name) != getattr(new_value, f.name)
            ]
        else:
            changed.append(name)
    return changed


@contextmanager
def fresh_plugin_dir_modules() -> Iterator[None]:
    """Inside, modules from ``plugin_dirs`` are imported afresh from their files.

    Their ``sys.modules`` entries are removed on entry; when the block raises, the
    ones it imported are dropped and the previous ones put back, so a failed
    reload leaves the running plugins' modules where they were.
    """
    saved = {name: module for name, module in sys.modules.items() if _from_dir(name)}
    for name in saved:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:
        yield
    except BaseException:
        for name in [name for name in sys.modules if _from_dir(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        raise


def _from_dir(module_name: str) -> bool:
    return module_name.startswith(DIR_PACKAGE_PREFIX)


def load_for_reload(path: str | None) -> tuple[Config, Plugins]:
    """Read ``path`` (None: the embedded default) and build its plugins afresh.

    Raises ConfigError when the file or a plugin is unusable; nothing running is
    touched.
    """
    config = load_config(path)
    with fresh_plugin_dir_modules():
        plugins = load_plugins(config)
    return config, plugins


class Reloader:
    """Owns the running plugins and replaces them on :meth:`reload`.

    ``install(plugins)`` puts the new routers and call features in place for new
    calls (the service swaps the call manager's); ``clock`` times the stop of the
    old plugin services.  :meth:`start` and :meth:`stop` start and stop the
    current plugins with the server.
    """

    def __init__(
        self,
        config: Config,
        plugins: Plugins,
        install: Callable[[Plugins], None],
        clock: Any,
        stop_timeout: float = 10.0,
    ) -> None:
        #: The running configuration: the start-up one with the reloaded plugin tables.
        self.config = config
        #: The running plugins (None only while a reload swaps them, or after stop).
        self.plugins: Plugins | None = plugins
        self.stop_timeout = stop_timeout
        self.reloads = 0
        embedded = config.path.startswith("<")
        # absolute now: twistd may change directory (--rundir) after start-up
        self._path = None if embedded else os.path.abspath(config.path)
        self._install = install
        self._clock = clock
        self._runtime: PluginRuntime | None = None
        self._busy = False
        self._queued: list[Deferred[bool]] = []
        self._idle: list[Deferred[None]] = []
        self._stopping = False

    @property
    def path(self) -> str | None:
        """The file a reload reads, absolute (None: the embedded default)."""
        return self._path

    def start(self, runtime: PluginRuntime) -> None:
        """Start the current plugins' services; later reloads start theirs with ``runtime``."""
        self._runtime = runtime
        if self.plugins is not None:
            self.plugins.start(runtime)

    @inlineCallbacks
    def stop(self) -> Generator[Deferred[Any], Any, None]:
        """No more reloads: wait for one in progress, then stop the current plugins."""
        self._stopping = True
        if self._busy:
            idle: Deferred[None] = Deferred()
            self._idle.append(idle)
            yield idle
        plugins, self.plugins = self.plugins, None
        if plugins is not None:
            yield plugins.stop()

    def reload(self) -> Deferred[bool]:
        """Reload now (or after the reload in progress); fires True when applied.

        Never fails: a configuration that is refused is logged and gives False.
        """
        if self._stopping:
            _log.info("Stopping: configuration not reloaded")
            return succeed(False)
        if self._busy:
            waiter: Deferred[bool] = Deferred()
            self._queued.append(waiter)
            return waiter
        self._busy = True
        result: Deferred[bool] = Deferred()
        self._run().addBoth(self._finished, result)
        return result

    def _finished(self, outcome: object, result: Deferred[bool]) -> None:
        if isinstance(outcome, Failure):
            _log.failure("Reloading the configuration failed", outcome)
        self._busy = False
        queued, self._queued = self._queued, []
        idle, self._idle = self._idle, []
        for waiter in idle:
            waiter.callback(None)
        if queued:
            again = self.reload()
            for q in queued:
                again.addCallback(_fire, q)
        result.callback(outcome is True)

    @inlineCallbacks
    def _run(self) -> Generator[Deferred[Any], Any, bool]:
        shown = self._path or self.config.path
        try:
            new, plugins = load_for_reload(self.path)
        except ConfigError as error:
            _log.error(
                "Configuration not reloaded, the running one stays: {error}", error=str(error)
            )
            return False
        except Exception:
            _log.failure(
                "Configuration not reloaded from {path}, the running one stays", path=shown
            )
            return False
        for key in restart_needed(self.config, new):
            _log.warn(
                "{path}: {key} changed: needs a restart (ignored until then)", path=shown, key=key
            )
        old, self.plugins = self.plugins, None
        if old is not None:
            yield self._stop_old(old)
        if self._stopping:  # the server began to stop meanwhile: start nothing new
            return False
        if self._runtime is not None:
            plugins.start(self._runtime)
        self._install(plugins)
        self.plugins = plugins
        self.config = replace(self.config, **{name: getattr(new, name) for name in RELOADABLE})
        self.reloads += 1
        names = ", ".join(p.config.module for p in plugins.loaded) or "none"
        _log.info("Reloaded configuration from {path} (plugins: {names})", path=shown, names=names)
        return True

    def _stop_old(self, old: Plugins) -> Deferred[None]:
        """Fires when the old plugins have stopped, or after ``stop_timeout`` seconds."""
        done: Deferred[None] = Deferred()

        def late() -> None:
            _log.warn(
                "The previous plugins did not stop within {timeout} s; starting the new ones",
                timeout=self.stop_timeout,
            )
            done.callback(None)

        timer = self._clock.callLater(self.stop_timeout, late)

        def stopped(result: object) -> None:
            if timer.active():
                timer.cancel()
                done.callback(None)

        old.stop().addBoth(stopped)
        return done


def _fire(outcome: bool, waiter: Deferred[bool]) -> bool:
    waiter.callback(outcome)
    return outcome
