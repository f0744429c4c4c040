"""The composition root: ``twistd -n b2bua --config PATH`` builds the server here.

:func:`makeService` wires the layers together, each given its dependencies
explicitly: the transport (sockets) feeds the transaction layer, whose user is the
UAS core.  Nothing here is a module-level singleton.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.logger import ILogObserver
from twisted.python import usage
from twisted.python.components import Componentized

from .auth.service import from_config as auth_from_config
from .bridge import BridgeSettings, CallManager, HeaderPolicy
from .bridge.manager import Router
from .bridge.requester import Requester
from .bridge.tu import ServerUser
from .config import Config, ConfigError, load_config
from .logs import Logger, make_observer, set_floor
from .plugin import PluginRuntime, Plugins, discover_plugins, format_plugin_list, load_plugins
from .registrar import LocationService, build_registrar
from .reload import Reloader
from .routing import Reject, RequestContext
from .sip import URI, Address, Limits, Origin, Request, Response, SIPParseError
from .transaction import TimerConfig, TransactionLayer
from .transport import ListenerConfig, Resolver, TLSConfig, TransportConfigError, TransportManager
from .transport.routing import stamp_received
from .ua.core import CoreSettings, UACore


class Options(usage.Options):
    """Command line of ``twistd b2bua``."""

    optParameters = [
        ["config", "c", None, "TOML configuration file (default: the embedded etc/b2bua.toml)."],
    ]
    optFlags = [
        ["check", None, "Check the configuration, print a summary and exit."],
        [
            "list-plugins",
            None,
            "List the plugins found (bundled, plugin_dirs of the configuration, entry points)"
            " and exit.",
        ],
    ]

    def postOptions(self) -> None:
        """Load and validate the configuration now, so errors stop the start cleanly."""
        try:
            config = load_config(self["config"])
            self["b2bua_config"] = config
            if self["list-plugins"]:
                print(format_plugin_list(discover_plugins(config.plugin_dirs)))
                raise SystemExit(0)
            self["b2bua_plugins"] = load_plugins(config)
        except ConfigError as error:
            raise usage.UsageError(str(error)) from None
        if self["check"]:
            listen = ", ".join(f"{lc.transport}:{lc.host}:{lc.port}" for lc in config.listen)
            print(f"{config.path}: OK (listening on {listen})")
            raise SystemExit(0)


def listener_configs(config: Config) -> list[ListenerConfig]:
    """The transport layer's view of the [[listen]] tables."""
    out = []
    for lc in config.listen:
        tls = None
        if lc.transport == "tls":
            tls = TLSConfig(
                lc.certificate, lc.private_key, lc.ca_certificates, lc.require_client_certificate
            )
        out.append(ListenerConfig(lc.transport, lc.host, lc.port, tls))
    return out


class _Edge:
    """What the transport calls: messages to the transaction layer, junk to the core."""

    def __init__(self) -> None:
        self.layer: TransactionLayer | None = None
        self.core: UACore | None = None
        #: sources whose requests are dropped before any transaction ([auth] bans)
        self.blocked: Callable[[str], bool] | None = None

    def message_received(self, message: Request | Response, origin: Origin) -> None:
        assert self.layer is not None
        blocked = self.blocked
        if blocked is not None and isinstance(message, Request) and blocked(origin.peer.host):
            return
        self.layer.message_received(message, origin)

    def parse_error(self, error: SIPParseError, data: bytes, origin: Origin) -> None:
        assert self.core is not None
        self.core.parse_error(error, data, origin)

    def transport_error(
        self, message: Request | Response, destination: Address, reason: str
    ) -> None:
        assert self.layer is not None
        self.layer.transport_error(message, destination, reason)


class _Network:
    """The bridge's view of the network: RFC 3263 resolution and our local addresses."""

    def __init__(self, transport: TransportManager, resolver: Resolver) -> None:
        self._transport = transport
        self._resolver = resolver

    def resolve(self, uri: URI) -> defer.Deferred[list[Address]]:
        return self._resolver.resolve(uri)

    def local_address(self, destination: Address) -> Address:
        return self._transport.local_address_for(destination)


def _no_router(request: Request, context: RequestContext) -> defer.Deferred[object]:
    return defer.succeed(Reject(404, "No Route Configured"))


class B2BUAService(service.MultiService):
    """The whole server: transport, transaction layer and core, with graceful shutdown.

    On stop (SIGTERM or SIGINT) the core refuses new requests with 503, the
    transactions in flight get up to ``server.drain_time`` seconds to finish, and
    then the sockets close.  SIGHUP (or :meth:`reload`) reloads the configuration
    file's plugins for new calls (:mod:`b2bua.reload`).
    """

    _log = Logger(namespace="b2bua.service")

    def __init__(
        self,
        config: Config,
        reactor: Any = None,
        router: Router | None = None,
        plugins: Plugins | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.reactor = reactor
        edge = _Edge()
        limits = Limits(**{f: getattr(config.limits, f) for f in Limits.__dataclass_fields__})
        client_tls = None
        if config.tls_client != type(config.tls_client)():
            tc = config.tls_client
            client_tls = TLSConfig(tc.certificate, tc.private_key, tc.ca_certificates)
        self.transport = TransportManager(
            reactor,
            edge,
            listener_configs(config),
            limits=limits,
            idle_timeout=config.transport.tcp_idle_timeout,
            connect_timeout=config.transport.connect_timeout,
            path_mtu=config.transport.udp_mtu,
            client_tls=client_tls,
            sip_trace=config.logging.sip_trace,
            udp_receive_buffer=config.transport.udp_receive_buffer,
        )
        self.transport.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.core = UACore(
            CoreSettings(user_agent=config.server.user_agent),
            self._send_stateless,
            stamp=stamp_received,
        )
        # Digest authentication ([auth]): the core challenges, the edge drops banned sources.
        self.auth = auth_from_config(config.auth, reactor)
        if self.auth is not None:
            self.core.authenticator = self.auth
            if config.auth.ban_answer == "drop":
                edge.blocked = self.auth.blocked
        t = config.timers
        timers = TimerConfig(t1=t.t1, t2=t.t2, t4=t.t4, resolution=t.resolution)
        tu = ServerUser(self.core)
        self.layer = TransactionLayer(reactor, self.transport, tu, timers)
        edge.layer = self.layer
        edge.core = self.core
        bridge = config.bridge
        self.calls = CallManager(
            reactor,
            self.layer,
            _Network(self.transport, Resolver(reactor)),
            router if router is not None else plugins.route if plugins else _no_router,
            BridgeSettings(
                max_duration=bridge.max_duration,
                answer_timeout=bridge.answer_timeout,
                ring_timeout=bridge.ring_timeout,
                failover_statuses=frozenset(bridge.failover_statuses),
            ),
            timers,
            HeaderPolicy(bridge.pass_headers),
            self.core.decorate,
            plugins.features if plugins is not None else (),
            scheduler=self.layer.scheduler,
        )
        self._fixed_router = router is not None
        self.reloader = Reloader(config, plugins or Plugins(), self._install_plugins, reactor)
        self._previous_hup: Any = None
        self.requester = Requester(self.calls.network, self.layer, config.server.user_agent)
        tu.calls = self.calls
        self.core.register("INVITE", self.calls.invite_received)
        self.core.register_dialog_handler(self.calls.in_dialog_request)
        # Registrar (RFC 3261 10): the REGISTER handler and its location service, a child
        # service (loads its bindings on start, closes its store on stop); plugins get it
        # as runtime.location.
        self.location: LocationService | None = None
        if config.registrar.enabled:
            decorate = self.core.decorate
            self.location, registrar = build_registrar(config.registrar, reactor, decorate)
            self.location.setServiceParent(self)  # type: ignore[no-untyped-call]
            self.core.register("REGISTER", registrar.register_received)
            self.core.settings.supported = self.core.settings.supported | {"path"}
        self._stats = task.LoopingCall(self.log_stats)
        self._stats.clock = reactor

    def _send_stateless(self, response: Response, origin: Origin) -> None:
        self.transport.send_response(response, origin)

    def setServiceParent(self, parent: Any) -> None:
        """Also give twistd our log observer (twistd asks the application for one), and
        drop events below its level where they are emitted (``logs.set_floor``)."""
        super().setServiceParent(parent)  # type: ignore[no-untyped-call]
        if isinstance(parent, Componentized):
            parent.setComponent(  # type: ignore[no-untyped-call]
                ILogObserver, make_observer(self.config.logging)
            )
            set_floor(self.config.logging.level)

    def privilegedStartService(self) -> None:
        """Bind the sockets; a port that cannot be bound is a clean start-up error."""
        try:
            super().privilegedStartService()  # type: ignore[no-untyped-call]
        except CannotListenError as error:
            _cannot_listen(error)

    def startService(self) -> None:
        """Start listening (if not yet) and logging statistics."""
        try:
            super().startService()  # type: ignore[no-untyped-call]
        except CannotListenError as error:
            _cannot_listen(error)
        self.reloader.start(PluginRuntime(self.reactor, self.requester.request, self.location))
        self._handle_sighup()
        # After the reactor installed its own handlers (it does so as it starts).
        self.reactor.callWhenRunning(self._stop_once_on_signals)
        listening = ", ".join(str(a) for a in self.transport.listening_addresses)
        self._log.info("b2bua listening on {listening}", listening=listening)
        self._stats.start(self.config.server.stats_interval, now=False)
        freeze_startup_objects()

    @property
    def plugins(self) -> Plugins | None:
        """The running plugins (they change on reload)."""
        return self.reloader.plugins

    def reload(self) -> defer.Deferred[bool]:
        """Reload the configuration file's plugins (what SIGHUP does); True when applied."""
        if self.core.draining:
            self._log.info("Stopping: configuration not reloaded")
            return defer.succeed(False)
        return self.reloader.reload()

    def _install_plugins(self, plugins: Plugins) -> None:
        install_plugins(self.calls, plugins, routers=not self._fixed_router)

    def _handle_sighup(self) -> None:
        """SIGHUP reloads, on the reactor thread (signal handlers only hop over)."""

        def hup(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self.reload)

        with contextlib.suppress(ValueError, AttributeError):  # not the main thread; no SIGHUP
            self._previous_hup = signal.signal(signal.SIGHUP, hup)

    def log_stats(self) -> None:
        """One line with the counts of live transactions (and later dialogs and calls)."""
        self._log.info(
            "live: {calls} calls, {dialogs} dialogs, {clients} client and {servers} server "
            "transactions; {total} calls and {requests} requests so far",
            calls=len(self.calls.calls),
            dialogs=len(self.calls.dialogs),
            total=self.calls.calls_total,
            clients=self.layer.client_count,
            servers=self.layer.server_count,
            requests=self.core.stats.requests,
        )

    def _stop_once_on_signals(self) -> None:
        """The first SIGTERM or SIGINT stops the reactor through Twisted's handler; any
        later one is only noted, also one that arrives before the reactor has begun to
        stop (two at once, e.g. to a process and its group, ran reactor.stop() twice:
        a ReactorNotRunning traceback).  A signal without a Python handler (SIGINT
        ignored in the background) is left as it is."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue

            def first(signum: int, frame: Any, previous: Any = previous) -> None:
                self._ignore_further_signals()
                previous(signum, frame)

            with contextlib.suppress(ValueError):  # not the main thread (tests)
                signal.signal(signum, first)

    def _ignore_further_signals(self) -> None:
        """A second SIGTERM or SIGINT while draining is noted, not a second reactor.stop()."""

        def note(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(
                self._log.info, "Already stopping (signal {signum}); draining", signum=signum
            )

        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                signal.signal(signum, note)

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        """Drain: refuse new requests, wait for transactions in flight, then close."""
        self.core.draining = True
        self._ignore_further_signals()
        if self._stats.running:
            self._stats.stop()
        deadline = self.reactor.seconds() + self.config.server.drain_time
        while self.layer.pending_count and self.reactor.seconds() < deadline:
            yield task.deferLater(self.reactor, 0.1, lambda: None)
        if self.layer.pending_count:
            self._log.warn(
                "Drain time over with {n} transactions in flight", n=self.layer.pending_count
            )
        else:
            self._log.info("Drained; stopping")
        yield self.reloader.stop()
        yield super().stopService()  # type: ignore[no-untyped-call]
        # A drained stop is a clean exit: twistd would otherwise re-raise the signal
        # that stopped it and exit with status 128+N.  Documented: exit status 0.
        if hasattr(self.reactor, "_exitSignal"):
            self.reactor._exitSignal = None
        if self._previous_hup is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGHUP, self._previous_hup)
        set_floor(None)


def install_plugins(calls: CallManager, plugins: Plugins, *, routers: bool = True) -> None:
    """New calls use these plugins' routers (unless ``routers`` is false) and features.

    Calls in progress keep theirs: a call takes the manager's hooks when it is
    created and asks the router once, at its start.
    """
    calls.use_plugins(plugins.route if routers else calls.router, plugins.features)


#: Collector thresholds once serving (CPython's default is 700, 10, 10).  A call
#: allocates a few hundred GC-tracked objects and frees nearly all of them by
#: reference counting within its lifetime (it forms no cycles, and finished
#: transactions linger as untracked atoms), so young collections rarely find
#: garbage: running one per 20,000 net allocations instead of 700 cuts the
#: collector's CPU per call by about 4 while each collection stays short.
GC_THRESHOLDS = (20_000, 10, 10)


def freeze_startup_objects() -> None:
    """Keep the garbage collector off what start-up built, and collect less often.

    A full collection scans every tracked object; frozen ones are skipped
    (``gc.freeze``), so collections look only at what calls allocate and stay
    short instead of stalling the reactor (the pauses sippy suffers from).
    Then :data:`GC_THRESHOLDS` apply.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _cannot_listen(error: CannotListenError) -> None:
    where = f"{error.interface or '*'}:{error.port}"
    print(f"b2bua: cannot listen on {where}: {error.socketError}", file=sys.stderr)
    raise SystemExit(1)


def makeService(options: Options) -> service.IService:
    """Build the server from parsed command-line options (twistd calls this)."""
    config: Config = options["b2bua_config"]
    plugins: Plugins = options["b2bua_plugins"]
    try:
        return B2BUAService(config, plugins=plugins)
    except TransportConfigError as error:
        raise SystemExit(f"b2bua: {config.path}: {error.message}") from None


__all__ = ["B2BUAService", "Options", "makeService"]
