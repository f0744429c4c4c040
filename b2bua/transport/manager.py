"""The transport manager: listeners, the connection table, sending and receiving.

:class:`TransportManager` implements the :class:`~b2bua.transport.contract.Transport`
protocol for the transaction layer and calls a
:class:`~b2bua.transport.contract.Receiver` with what arrives.  It is a Twisted
``Service``: ``startService()`` binds the listeners, ``stopService()`` closes
them and every connection and returns a Deferred.

Connections (TCP and TLS) are indexed by the address they reach, whoever opened
them: outbound ones by (destination, TLS server name), inbound ones by the
peer's address, and all by their connection id (``Origin.connection``).  Each
closes after ``idle_timeout`` seconds without traffic either way (CRLF
keep-alives count as traffic).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError, MessageLengthError
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from b2bua.sip import (
    DEFAULT_LIMITS,
    Address,
    Limits,
    Origin,
    Request,
    Response,
    SIPParseError,
    parse_message,
)
from b2bua.sip.address import is_ip_literal

from ..logs import Logger, trace
from .config import ListenerConfig, TLSConfig
from .contract import Receiver
from .protocols import (
    MAX_UNCONFIRMED,
    ConnState,
    DelayedCall,
    InboundFactory,
    OutboundFactory,
    Pending,
    SIPDatagramProtocol,
    SIPStreamProtocol,
)
from .routing import (
    is_crlf_keepalive,
    is_ipv6,
    needs_congestion_control,
    normalize_ip,
    response_destination,
    stamp_received,
    strip_brackets,
    switch_to_stream,
    tls_server_name,
)
from .stun import binding_response, is_stun
from .tls import ClientTLS, server_options

log = Logger()

#: Seconds a TCP/TLS connection may stay without traffic before we close it.
#: Ten minutes outlives INVITE transactions and typical registration refreshes
#: behind NAT; UAs that must stay reachable send CRLF keep-alives (RFC 5626).
DEFAULT_IDLE_TIMEOUT = 600.0
#: Seconds allowed to connect and finish the TLS handshake.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds a closing connection may take to flush before it is aborted.
CLOSE_GRACE = 5.0
#: Largest UDP payload read from a socket (bigger than any SIP limit, so oversized
#: datagrams reach parse_message whole and get its 413).
MAX_DATAGRAM = 65536
#: How many UDP source addresses a listener remembers the Origin of (then it starts over).
MAX_REMEMBERED_ORIGINS = 4096
#: How many UDP destinations the manager remembers the listener and address of.
MAX_REMEMBERED_ROUTES = 4096

_WILDCARDS = frozenset({"0.0.0.0", "::"})
#: listen() backlog of TCP/TLS listeners (Twisted's default).
LISTEN_BACKLOG = 50


class _Reactor(Protocol):
    """What the manager uses of the reactor (IReactorTime, UDP, TCP, SSL, resolve)."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> DelayedCall: ...

    def listenUDP(
        self, port: int, protocol: Any, interface: str = ..., maxPacketSize: int = ...
    ) -> Any: ...

    def listenTCP(
        self, port: int, factory: Any, backlog: int = ..., interface: str = ...
    ) -> Any: ...

    def listenSSL(
        self,
        port: int,
        factory: Any,
        contextFactory: Any,
        backlog: int = ...,
        interface: str = ...,
    ) -> Any: ...

    def connectTCP(
        self, host: str, port: int, factory: Any, timeout: float = ..., bindAddress: Any = ...
    ) -> Any: ...

    def connectSSL(
        self,
        host: str,
        port: int,
        factory: Any,
        contextFactory: Any,
        timeout: float = ...,
        bindAddress: Any = ...,
    ) -> Any: ...

    def resolve(self, name: str, timeout: Sequence[int] = ...) -> defer.Deferred[str]: ...


@dataclass(slots=True)
class _Listener:
    """A listening socket: its config, Twisted port and addresses."""

    config: ListenerConfig
    family: int
    port: Any = None
    bound: Address | None = None
    advertised: Address | None = None
    tls_options: Any = None
    #: UDP: the Origin of datagrams by source address (see TransportManager._udp_origin)
    origins: dict[Any, Origin] = field(default_factory=dict)


def primary_address(family: int = socket.AF_INET) -> str:
    """The address this host uses to reach the Internet, or the loopback address.

    Found by "connecting" a UDP socket (no packet is sent); used to advertise a
    listener bound to a wildcard address that has no ``advertised_host``.
    """
    probe = ("192.0.2.1", 9) if family == socket.AF_INET else ("2001:db8::1", 9)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(probe)
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1" if family == socket.AF_INET else "::1"


def family_of(host: str) -> int:
    """``AF_INET6`` for an IPv6 literal (with or without brackets), else ``AF_INET``
    (names resolve to IPv4)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def send_datagram(port: Any, data: bytes, addr: tuple[str, int]) -> None:
    """``port.write(data, addr)`` without its per-datagram address checks.

    Twisted's ``udp.Port.write`` parses the host as IPv4 and IPv6 on every call;
    our callers pass a normalized IP literal of the listener's family, so this
    goes to ``sendto`` directly and handles errors as Twisted does: EINTR is
    retried, ECONNREFUSED (an earlier ICMP error, meaningless unconnected) is
    ignored, EMSGSIZE becomes ``MessageLengthError``, anything else is raised.
    Ports without a socket (test doubles) get ``write``.
    """
    sock = getattr(port, "socket", None)
    if sock is None:
        port.write(data, addr)
        return
    while True:
        try:
            sock.sendto(data, addr)
            return
        except OSError as error:
            if error.errno == errno.EINTR:
                continue
            if error.errno == errno.ECONNREFUSED:
                return
            if error.errno == errno.EMSGSIZE:
                raise MessageLengthError("message too long") from None
            raise


def describe_failure(reason: Failure) -> str:
    """A short human reason for a connection failure (TLS errors spelled out)."""
    value = reason.value
    if isinstance(value, VerificationError):
        return f"TLS certificate verification failed: {value}"
    if isinstance(value, SSL.Error):
        errors = value.args[0] if value.args and isinstance(value.args[0], list) else []
        texts = [str(e[2]) for e in errors if isinstance(e, tuple) and len(e) == 3]
        return "TLS handshake failed: " + ("; ".join(texts) or str(value))
    return str(reason.getErrorMessage())


def _is_tls_failure(reason: Failure) -> bool:
    return isinstance(reason.value, SSL.Error | VerificationError)


class TransportManager(service.Service):
    """UDP, TCP and TLS listeners and connections; implements ``Transport``.

    :param reactor: provides IReactorTime, IReactorUDP, IReactorTCP, IReactorSSL
        and IReactorPluggableNameResolver (``resolve``); tests pass a
        ``MemoryReactorClock``.
    :param receiver: gets messages, parse errors and asynchronous send failures.
    :param listeners: the sockets to bind on ``startService()``.
    :param limits: parser limits for every message received.
    :param idle_timeout: seconds without traffic before a TCP/TLS connection is
        closed (default 600).
    :param connect_timeout: seconds allowed to connect and finish a TLS handshake.
    :param path_mtu: the path MTU for the RFC 3261 18.1.1 UDP size rule
        (``None``: unknown, requests over 1300 bytes switch to TCP).
    :param udp_to_tcp: set False to never switch big UDP requests to TCP.
    :param client_tls: trust root (``ca_bundle``, else the system store) and
        optional client certificate for TLS connections we open; defaults to the
        first TLS listener's settings.
    :param sip_trace: log every message sent and received, in full, at debug
        level in the ``b2bua.trace`` namespace (off: no cost per message).

    TLS contexts and PEM files are loaded here, so a bad certificate or key
    raises :class:`~b2bua.transport.config.TransportConfigError` at construction.
    """

    def __init__(
        self,
        reactor: Any,
        receiver: Receiver,
        listeners: Sequence[ListenerConfig] = (),
        *,
        limits: Limits | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        path_mtu: int | None = None,
        udp_to_tcp: bool = True,
        client_tls: TLSConfig | None = None,
        sip_trace: bool = False,
        udp_receive_buffer: int = 0,
    ) -> None:
        self._reactor = cast(_Reactor, reactor)
        self.udp_receive_buffer = udp_receive_buffer
        self._receiver = receiver
        self.limits = DEFAULT_LIMITS if limits is None else limits
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.path_mtu = path_mtu
        self.udp_to_tcp = udp_to_tcp
        self.sip_trace = sip_trace
        self._listeners: list[_Listener] = []
        for config in listeners:
            family = socket.AF_INET6 if config.is_ipv6 else socket.AF_INET
            listener = _Listener(config, family)
            if config.transport == "TLS":
                assert config.tls is not None  # checked by ListenerConfig
                what = f"TLS listener {config.host}:{config.port}"
                listener.tls_options = server_options(config.tls, what)
            self._listeners.append(listener)
        if client_tls is None:
            client_tls = next((ls.config.tls for ls in self._listeners if ls.config.tls), None)
        self._client_tls = ClientTLS(client_tls)
        self._udp_by_local: dict[Address, _Listener] = {}
        #: local_address() answers by (transport as asked, address family)
        self._local: dict[tuple[str, int], Address] = {}
        #: UDP sends: (destination IP as given, local address) -> (listener, IP for sendto)
        self._udp_routes: dict[tuple[str, Address | None], tuple[_Listener, str]] = {}
        self._connections: dict[int, SIPStreamProtocol] = {}
        self._index: dict[tuple[Address, str | None], SIPStreamProtocol] = {}
        self._ids = itertools.count(1)
        self._later: set[DelayedCall] = set()

    # -- service ---------------------------------------------------------------
    def startService(self) -> None:
        """Bind every listener (raises ``CannotListenError`` if a port is taken).

        A listener on ``::`` is IPv6-only (``IPV6_V6ONLY``), so it can be
        combined with one on ``0.0.0.0`` and the same port; list both for dual
        stack.
        """
        started: list[_Listener] = []
        try:
            for listener in self._listeners:
                config = listener.config
                if config.transport == "UDP":
                    handler: Any = SIPDatagramProtocol(self, listener)
                else:
                    handler = InboundFactory(self, listener)
                if config.host == "::":
                    listener.port = self._listen_ipv6_only(listener, handler)
                else:
                    listener.port = self._listen(listener, handler)
                if config.transport == "UDP" and self.udp_receive_buffer:
                    self._grow_receive_buffer(listener)
                started.append(listener)
                self._set_addresses(listener)
        except BaseException:
            for listener in started:
                listener.port.stopListening()
                listener.port = None
            raise
        service.Service.startService(self)  # type: ignore[no-untyped-call]

    def _grow_receive_buffer(self, listener: _Listener) -> None:
        """Ask for a UDP receive buffer of ``udp_receive_buffer`` bytes (bursts, pauses).

        SO_RCVBUFFORCE (root) may exceed the system's ``net.core.rmem_max``;
        otherwise SO_RCVBUF is capped by it.  The size granted is logged.
        """
        sock = getattr(listener.port, "socket", None)
        if sock is None:
            return
        size = self.udp_receive_buffer
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        try:
            if force is None:
                raise PermissionError
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        log.info(
            "UDP {host}:{port} receive buffer {granted} bytes (asked {size})",
            host=listener.config.host,
            port=listener.config.port,
            granted=granted,
            size=size,
        )

    def _listen(self, listener: _Listener, handler: Any) -> Any:
        config, reactor = listener.config, self._reactor
        if config.transport == "UDP":
            return reactor.listenUDP(
                config.port, handler, interface=config.host, maxPacketSize=MAX_DATAGRAM
            )
        if config.transport == "TCP":
            return reactor.listenTCP(config.port, handler, interface=config.host)
        return reactor.listenSSL(config.port, handler, listener.tls_options, interface=config.host)

    def _listen_ipv6_only(self, listener: _Listener, handler: Any) -> Any:
        """Bind ``[::]:port`` with IPV6_V6ONLY set and hand the socket to the reactor."""
        config = listener.config
        kind = socket.SOCK_DGRAM if config.transport == "UDP" else socket.SOCK_STREAM
        sock = socket.socket(socket.AF_INET6, kind)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("::", config.port))
            except OSError as e:
                raise CannotListenError("::", config.port, e) from None  # type: ignore[no-untyped-call]
            sock.setblocking(False)
            reactor = cast(Any, self._reactor)
            if kind == socket.SOCK_DGRAM:
                return reactor.adoptDatagramPort(
                    sock.fileno(), socket.AF_INET6, handler, MAX_DATAGRAM
                )
            sock.listen(LISTEN_BACKLOG)
            if config.transport == "TLS":
                handler = TLSMemoryBIOFactory(listener.tls_options, False, handler)
            return reactor.adoptStreamPort(sock.fileno(), socket.AF_INET6, handler)
        finally:
            sock.close()  # the reactor keeps its own duplicate of the descriptor

    def _set_addresses(self, listener: _Listener) -> None:
        config = listener.config
        host_addr = listener.port.getHost()
        bound = Address(config.transport, normalize_ip(host_addr.host), int(host_addr.port))
        listener.bound = bound
        host = config.advertised_host
        if host is None:
            host = primary_address(listener.family) if bound.host in _WILDCARDS else bound.host
        listener.advertised = Address(config.transport, host, config.advertised_port or bound.port)
        listener.origins.clear()  # they name the advertised address
        self._local.clear()
        self._udp_routes.clear()
        if config.transport == "UDP":
            self._udp_by_local.setdefault(listener.advertised, listener)
            self._udp_by_local.setdefault(bound, listener)

    def stopService(self) -> defer.Deferred[None]:
        """Stop listening and close every connection.

        Messages still queued on connections being opened are reported as
        transport errors.  The Deferred fires once every socket is closed.
        """
        service.Service.stopService(self)  # type: ignore[no-untyped-call]
        waits: list[defer.Deferred[Any]] = []
        for listener in self._listeners:
            if listener.port is not None:
                waits.append(defer.maybeDeferred(listener.port.stopListening))
                listener.port = None
        self._udp_by_local.clear()
        self._udp_routes.clear()
        for conn in list(self._connections.values()):
            waits.append(self._close(conn, "transport stopped", abort=False))
        for call in self._later:
            if call.active():
                call.cancel()
        self._later.clear()
        return defer.gatherResults(waits).addCallback(lambda _: None)

    # -- addresses ---------------------------------------------------------------
    @property
    def listening_addresses(self) -> list[Address]:
        """Every bound listener's actual address (after ``startService``)."""
        return [ls.bound for ls in self._listeners if ls.bound is not None and ls.port]

    def local_address(self, transport: str, family: int = socket.AF_INET) -> Address:
        """Our advertised address for ``transport`` and address family.

        What the core puts in Via sent-by and Contact: the first listener of that
        transport and family (``socket.AF_INET`` or ``socket.AF_INET6``), with its
        ``advertised_host``/``advertised_port`` if configured.  Raises
        ``LookupError`` when there is no such listener (or before startService).
        """
        key = (transport, family)
        found = self._local.get(key)
        if found is not None:
            return found
        transport = transport.upper()
        for listener in self._listeners:
            if (
                listener.config.transport == transport
                and listener.family == family
                and listener.advertised is not None
            ):
                # Asked for every request the bridge sends: remembered until the
                # listeners' addresses change (startService).
                self._local[key] = listener.advertised
                return listener.advertised
        name = "IPv6" if family == socket.AF_INET6 else "IPv4"
        raise LookupError(f"no {transport} listener for {name}")

    def local_address_for(self, destination: Address) -> Address:
        """``local_address`` for the transport and address family of ``destination``."""
        return self.local_address(destination.transport, family_of(destination.host))

    def _udp_listener(self, host: str, local: Address | None) -> _Listener | None:
        family = family_of(host)
        if local is not None:
            listener = self._udp_by_local.get(local)
            if listener is not None and listener.family == family and listener.port:
                return listener
        for listener in self._listeners:
            if listener.config.transport == "UDP" and listener.family == family and listener.port:
                return listener
        return None

    # -- sending -----------------------------------------------------------------
    def prepare_request(self, request: Request, destination: Address) -> tuple[Address, bytes]:
        """Apply the RFC 3261 18.1.1 size rule; return the destination and the bytes.

        A UDP request within 200 bytes of the path MTU (over 1300 bytes when it is
        unknown) goes over TCP instead: its top Via transport is rewritten to TCP
        (and a sent-by naming our UDP listener becomes our TCP listener), and the
        destination becomes TCP to the same host and port.  Idempotent.  The
        caller may look at ``request.top_via.transport`` afterwards to know.
        """
        data = request.to_bytes()
        if (
            destination.transport != "UDP"
            or not self.udp_to_tcp
            or not needs_congestion_control(len(data), self.path_mtu)
        ):
            return destination, data
        family = family_of(destination.host)
        sent_by: tuple[Address, Address] | None = None
        try:
            sent_by = (self.local_address("UDP", family), self.local_address("TCP", family))
        except LookupError:
            pass
        switch_to_stream(request, "TCP", sent_by)
        return Address("TCP", destination.host, destination.port), request.to_bytes()

    def send_request(
        self, request: Request, destination: Address, *, server_name: str | None = None
    ) -> None:
        """Send a request (``Transport`` protocol).

        The caller has set the top Via; over UDP a big request may be switched to
        TCP and its Via transport rewritten (see :meth:`prepare_request`).  TCP and
        TLS reuse an open connection to ``destination`` (one we opened, or one the
        peer opened from exactly that address), else open one; messages wait
        while it connects.  For TLS the server's certificate must match
        ``server_name``, by default the host of the first Route (else the
        Request-URI) per RFC 5922.  Failures are reported asynchronously to
        ``receiver.transport_error(request, destination, reason)``.
        """
        try:
            target, data = self.prepare_request(request, destination)
            if target.transport == "TLS" and server_name is None:
                server_name = tls_server_name(request)
        except SIPParseError as error:
            self._fail_later(request, destination, f"cannot send malformed request: {error}")
            return
        self._send(data, request, target, destination, server_name, None)

    def send_response(self, response: Response, origin: Origin) -> None:
        """Send a response per RFC 3261 18.2.2 and RFC 3581 (``Transport`` protocol).

        Over the request's connection when it is still open; otherwise to
        :func:`~b2bua.transport.routing.response_destination` (a new connection
        for TCP/TLS, checking a TLS certificate against the Via sent-by host).
        UDP responses leave from the listener the request arrived on
        (``origin.local``).
        """
        data = response.to_bytes()
        if origin.connection is not None:
            conn = self._connections.get(origin.connection)
            if conn is not None and conn.state is ConnState.READY:
                assert conn.peer is not None
                self._write(conn, (data, response, conn.peer))
                return
        try:
            target = response_destination(response, origin)
            if target.transport == "UDP":
                server_name = None  # a TLS server name is only needed for a connection
            else:
                server_name = strip_brackets(response.top_via.host)
        except SIPParseError as error:
            self._fail_later(response, origin.peer, f"cannot route response: {error}")
            return
        self._send(data, response, target, target, server_name, origin.local)

    def _send(
        self,
        data: bytes,
        message: Request | Response,
        target: Address,
        reported: Address,
        server_name: str | None,
        local: Address | None,
    ) -> None:
        transport = target.transport
        if transport == "UDP":
            self._send_udp(data, message, target, reported, local)
        elif transport in ("TCP", "TLS"):
            self._send_stream((data, message, reported), target, server_name)
        else:
            self._fail_later(message, reported, f"transport {transport} is not supported")

    def _send_udp(
        self,
        data: bytes,
        message: Request | Response,
        target: Address,
        reported: Address,
        local: Address | None,
        *,
        later: bool = True,
    ) -> None:
        fail = self._fail_later if later else self._report
        route_key = (target.host, local)
        route = self._udp_routes.get(route_key)
        if route is None or not route[0].port:
            host = strip_brackets(target.host)
            if not is_ip_literal(host):
                self._resolve_and_send_udp(data, message, target, reported, local)
                return
            listener = self._udp_listener(host, local)
            if listener is None:
                name = "IPv6" if is_ipv6(host) else "IPv4"
                fail(message, reported, f"no UDP listener for {name}")
                return
            route = (listener, normalize_ip(host))
            routes = self._udp_routes
            if len(routes) >= MAX_REMEMBERED_ROUTES:
                routes.clear()  # bounded: many destinations only cost the memory
            routes[route_key] = route
        listener, ip = route
        try:
            send_datagram(listener.port, data, (ip, target.port))
            if self.sip_trace:
                peer = Address("UDP", strip_brackets(target.host), target.port)
                self._trace("sent to", peer, listener.advertised, data)
        except Exception as error:
            fail(message, reported, f"UDP send to {target} failed: {error}")

    def _resolve_and_send_udp(
        self,
        data: bytes,
        message: Request | Response,
        target: Address,
        reported: Address,
        local: Address | None,
    ) -> None:
        """Resolve a host name (RFC 3263 stops at the address here), then send to it."""
        host = strip_brackets(target.host)

        def resolved(ip: str) -> None:
            resolved_target = Address("UDP", ip, target.port)
            self._send_udp(data, message, resolved_target, reported, local, later=False)

        def failed(reason: Failure) -> None:
            why = describe_failure(reason)
            self._report(message, reported, f"cannot resolve {host}: {why}")

        self._reactor.resolve(host).addCallbacks(resolved, failed)

    def _send_stream(self, item: Pending, target: Address, server_name: str | None) -> None:
        key_address = Address(target.transport, normalize_ip(target.host).lower(), target.port)
        if target.transport == "TCP":
            server_name = None
        elif server_name is None:
            server_name = strip_brackets(target.host)
        conn = self._index.get((key_address, server_name))
        if conn is None and server_name is not None:
            conn = self._index.get((key_address, None))  # a connection the peer opened
        if conn is None:
            conn = self._open(key_address, server_name, item)
            if conn is None:
                return
        if conn.state is ConnState.READY:
            self._write(conn, item)
        else:
            conn.queue.append(item)

    def _write(self, conn: SIPStreamProtocol, item: Pending) -> None:
        conn.stream.write(item[0])
        if self.sip_trace and conn.origin is not None:
            self._trace("sent to", conn.origin.peer, conn.origin.local, item[0])
        if conn.unconfirmed is not None and len(conn.unconfirmed) < MAX_UNCONFIRMED:
            conn.unconfirmed.append(item)
        self._touch(conn)

    def _open(
        self, target: Address, server_name: str | None, item: Pending
    ) -> SIPStreamProtocol | None:
        conn = SIPStreamProtocol(
            self,
            target.transport,
            self.next_connection_id(),
            outbound=True,
            destination=target,
            server_name=server_name,
        )
        factory = OutboundFactory(conn)
        host = strip_brackets(target.host)
        try:
            if target.transport == "TCP":
                connector = self._reactor.connectTCP(
                    host, target.port, factory, timeout=self.connect_timeout
                )
            else:
                assert server_name is not None
                creator = self._client_tls.creator_for(server_name)
                connector = self._reactor.connectSSL(
                    host, target.port, factory, creator, timeout=self.connect_timeout
                )
        except Exception as error:
            self._fail_later(item[1], item[2], f"cannot connect to {target}: {error}")
            return None
        conn.connector = connector
        self._connections[conn.id] = conn
        self._register(conn, (target, server_name))
        conn.timer = self._reactor.callLater(self.connect_timeout, self._timed_out, conn)
        return conn

    def _report(self, message: Request | Response, destination: Address, reason: str) -> None:
        try:
            self._receiver.transport_error(message, destination, reason)
        except Exception:
            log.failure("receiver.transport_error raised")

    def _fail_later(self, message: Request | Response, destination: Address, reason: str) -> None:
        """Report a failure found while sending on the next reactor turn (never re-entrant)."""

        def fire() -> None:
            self._later.discard(call)
            self._report(message, destination, reason)

        call = self._reactor.callLater(0, fire)
        self._later.add(call)

    # -- connection table ------------------------------------------------------------
    def next_connection_id(self) -> int:
        """A new connection id (``Origin.connection``)."""
        return next(self._ids)

    @property
    def connections(self) -> list[SIPStreamProtocol]:
        """Every TCP/TLS connection the manager knows (open, opening or closing)."""
        return list(self._connections.values())

    def connection(self, connection_id: int) -> SIPStreamProtocol | None:
        """The connection with this id, if it still exists."""
        return self._connections.get(connection_id)

    def _register(self, conn: SIPStreamProtocol, key: tuple[Address, str | None]) -> None:
        if key not in conn.keys:
            conn.keys.append(key)
        self._index[key] = conn

    def _unregister(self, conn: SIPStreamProtocol) -> None:
        for key in conn.keys:
            if self._index.get(key) is conn:
                del self._index[key]
        conn.keys.clear()

    def _touch(self, conn: SIPStreamProtocol) -> None:
        timer = conn.timer
        if timer is not None and timer.active() and conn.state is ConnState.READY:
            timer.reset(self.idle_timeout)

    def _default_local(self, transport: str, peer: Address, stream: Any) -> Address:
        try:
            return self.local_address(transport, family_of(peer.host))
        except LookupError:
            host = stream.getHost()
            return Address(transport, normalize_ip(host.host), int(host.port))

    def connection_made(self, conn: SIPStreamProtocol) -> None:
        """A TCP connection is up (for TLS the handshake follows)."""
        stream = conn.stream
        peer = stream.getPeer()
        conn.peer = Address(conn.transport_name, normalize_ip(peer.host), int(peer.port))
        if conn.listener is not None and conn.listener.advertised is not None:
            local = conn.listener.advertised
        else:
            local = self._default_local(conn.transport_name, conn.peer, stream)
        conn.origin = Origin(conn.peer, local, conn.id)
        if conn.outbound:
            if conn.peer != conn.destination:
                self._register(conn, (conn.peer, conn.server_name))
        else:
            self._connections[conn.id] = conn
            self._register(conn, (conn.peer, None))
            conn.timer = self._reactor.callLater(self.idle_timeout, self._timed_out, conn)
            if conn.transport_name == "TLS":
                # The listener's CertificateOptions does the handshake; an
                # inbound connection has nothing queued, so it is ready now.
                conn.unconfirmed = None
        if conn.transport_name == "TCP" or not conn.outbound:
            self.connection_ready(conn)

    def connection_ready(self, conn: SIPStreamProtocol) -> None:
        """Connected (and TLS handshake done): send what was queued."""
        conn.state = ConnState.READY
        if conn.timer is not None and conn.timer.active():
            conn.timer.reset(self.idle_timeout)
        queue, conn.queue = conn.queue, []
        for item in queue:
            self._write(conn, item)

    def _timed_out(self, conn: SIPStreamProtocol) -> None:
        conn.timer = None
        if conn.state is ConnState.READY:
            self._close(conn, "closed after idle timeout", abort=False)
        elif conn.state is ConnState.CONNECTING:
            stage = "TLS handshake" if conn.transport is not None else "connect"
            reason = f"{stage} to {conn.destination} timed out after {self.connect_timeout:g} s"
            self._close(conn, reason, abort=True)

    def _close(self, conn: SIPStreamProtocol, reason: str, *, abort: bool) -> defer.Deferred[None]:
        """Close a connection; the Deferred fires once it is gone."""
        if conn.state is ConnState.CLOSED:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        conn.closed_waiters.append(waiter)
        conn.close_reason = conn.close_reason or reason
        self._unregister(conn)
        if conn.transport is None:  # still connecting: no protocol yet
            if conn.connector is not None:
                try:
                    conn.connector.stopConnecting()
                except Exception:  # already connected or failed: nothing to stop
                    pass
            aborted = Failure(ConnectionAbortedError(reason))  # type: ignore[no-untyped-call]
            self.connect_failed(conn, aborted)
        else:
            conn.state = ConnState.CLOSING
            if conn.timer is not None and conn.timer.active():
                conn.timer.cancel()
            conn.timer = None
            if abort:
                conn.stream.abortConnection()
            else:
                conn.stream.loseConnection()
                if conn.state is ConnState.CLOSING:  # a dead peer must not keep it open
                    conn.timer = self._reactor.callLater(CLOSE_GRACE, conn.stream.abortConnection)
        return waiter

    def connect_failed(self, conn: SIPStreamProtocol, reason: Failure) -> None:
        """An outbound connection attempt failed (refused, unreachable, timeout)."""
        self._forget(conn, reason, conn.queue)

    def connection_lost(self, conn: SIPStreamProtocol, reason: Failure) -> None:
        """A connection closed: forget it and report the messages it never sent."""
        pending = list(conn.queue)
        if conn.unconfirmed and _is_tls_failure(reason):
            pending = conn.unconfirmed + pending
        self._forget(conn, reason, pending)

    def _forget(self, conn: SIPStreamProtocol, reason: Failure, pending: list[Pending]) -> None:
        if conn.state is ConnState.CLOSED:
            return
        conn.state = ConnState.CLOSED
        self._unregister(conn)
        self._connections.pop(conn.id, None)
        if conn.timer is not None and conn.timer.active():
            conn.timer.cancel()
        conn.timer = None
        conn.queue = []
        conn.unconfirmed = None
        conn.connector = None
        text = describe_failure(reason) if _is_tls_failure(reason) else None
        text = text or conn.close_reason or describe_failure(reason)
        where = conn.destination or conn.peer
        if pending or _is_tls_failure(reason):
            log.info(
                "{kind} connection #{id} to {where} failed: {text}",
                kind=conn.transport_name,
                id=conn.id,
                where=str(where),
                text=text,
            )
        for _data, message, destination in pending:
            self._report(message, destination, f"{where}: {text}")
        waiters, conn.closed_waiters = conn.closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- receiving ---------------------------------------------------------------
    def datagram_received(self, listener: _Listener, datagram: bytes, addr: Any) -> None:
        """A UDP datagram: keep-alive, STUN Binding request, or a SIP message.

        A SIP message starts with a letter (a method or ``SIP/2.0``); keep-alives
        (CR, LF) and STUN (first byte below 0x40) do not, so only a datagram that
        does not start with a letter is looked at for those.
        """
        if not datagram or datagram[0] < 0x41:
            if is_crlf_keepalive(datagram):
                return  # RFC 5626 3.5.1: CRLF pings are for streams; ignore on UDP
            if is_stun(datagram):
                self._stun_received(listener, datagram, addr)
                return
        origin = listener.origins.get(addr)
        if origin is None:
            origin = self._udp_origin(listener, addr)
        if self.sip_trace:
            self._trace("received from", origin.peer, origin.local, datagram)
        try:
            message = parse_message(datagram, self.limits)
        except SIPParseError as error:
            self._parse_error(error, datagram, origin)
            return
        self._deliver(message, origin, datagram)

    def _stun_received(self, listener: _Listener, datagram: bytes, addr: Any) -> None:
        """Answer a STUN Binding request with the address it came from (RFC 5389)."""
        answer = binding_response(datagram, normalize_ip(addr[0]), int(addr[1]))
        if answer is not None and listener.port is not None:
            try:
                send_datagram(listener.port, answer, addr)
            except Exception as error:
                log.debug("STUN answer to {addr} failed: {error}", addr=addr, error=error)

    def _udp_origin(self, listener: _Listener, addr: Any) -> Origin:
        """The Origin of datagrams from ``addr`` on ``listener``, remembered (immutable;
        peers send many datagrams, and building it costs two frozen dataclasses)."""
        assert listener.advertised is not None
        peer = Address("UDP", normalize_ip(addr[0]), int(addr[1]))
        origin = Origin(peer, listener.advertised, None)
        origins = listener.origins
        if len(origins) >= MAX_REMEMBERED_ORIGINS:
            origins.clear()  # bounded: a flood of sources only costs the cache
        origins[addr] = origin
        return origin

    def stream_received(self, conn: SIPStreamProtocol, messages: list[Request | Response]) -> None:
        """Messages framed on a connection (possibly none: a partial read or a ping)."""
        self._touch(conn)
        origin = conn.origin
        assert origin is not None
        for message in messages:
            if conn.state is not ConnState.READY:
                break
            if self.sip_trace:
                self._trace("received from", origin.peer, origin.local, message.to_bytes())
            self._deliver(message, origin, None)

    def stream_parse_error(
        self, conn: SIPStreamProtocol, error: SIPParseError, rest: bytes
    ) -> None:
        """The stream cannot be framed: tell the receiver (it may answer), then close."""
        origin = conn.origin
        assert origin is not None
        self._parse_error(error, rest, origin)
        self._close(conn, f"closed after framing error: {error}", abort=False)

    def _deliver(self, message: Request | Response, origin: Origin, datagram: bytes | None) -> None:
        if isinstance(message, Request):
            try:
                stamp_received(message, origin)
            except SIPParseError as error:
                self._parse_error(error, datagram or message.to_bytes(), origin)
                return
        try:
            self._receiver.message_received(message, origin)
        except Exception:
            log.failure("receiver.message_received raised for {message!r}", message=message)

    def _trace(self, direction: str, peer: Address, local: Address | None, data: bytes) -> None:
        trace.debug(
            "{direction} {peer} (local {local}):\n{text}",
            direction=direction,
            peer=str(peer),
            local=str(local),
            text=data.decode("utf-8", "replace"),
        )

    def _parse_error(self, error: SIPParseError, data: bytes, origin: Origin) -> None:
        try:
            self._receiver.parse_error(error, data, origin)
        except Exception:
            log.failure("receiver.parse_error raised")


if TYPE_CHECKING:  # mypy checks that the manager satisfies both declarations of the contract
    from b2bua.transaction.interfaces import Transport as TransactionTransport

    from .contract import Transport

    def _is_transport(manager: TransportManager) -> Transport:
        return manager

    def _is_transaction_transport(manager: TransportManager) -> TransactionTransport:
        return manager
