"""The transport layer's decisions, as small pure functions (no Twisted, no I/O).

- :func:`stamp_received`: RFC 3261 18.2.1 ``received`` and RFC 3581 ``rport``.
- :func:`response_destination`: RFC 3261 18.2.2 with RFC 3581.
- :func:`needs_congestion_control`: RFC 3261 18.1.1, the UDP to TCP switch.
- :func:`switch_to_stream`: rewrites the top Via for that switch.
- :func:`tls_server_name`: the name a TLS server's certificate must match.
- :func:`is_crlf_keepalive`: CRLF-only datagrams (ignored on UDP, see below).
"""

from __future__ import annotations

import functools
import ipaddress

from b2bua.sip import Address, Origin, Request, Response, Via, parse_name_addr
from b2bua.sip.address import DEFAULT_PORTS, RELIABLE_TRANSPORTS, is_ip_literal

#: RFC 3261 18.1.1: the size limit for UDP requests when the path MTU is unknown.
UNKNOWN_MTU_LIMIT = 1300
#: RFC 3261 18.1.1: a request "within 200 bytes of the path MTU" goes over TCP.
MTU_MARGIN = 200


def strip_brackets(host: str) -> str:
    """An IPv6 reference without its brackets (``[::1]`` -> ``::1``); others unchanged."""
    return host[1:-1] if "[" in host and host[0] == "[" and host[-1] == "]" else host


@functools.lru_cache(maxsize=4096)
def normalize_ip(host: str) -> str:
    """The canonical text of an IP literal (IPv4-mapped IPv6 becomes IPv4).

    Hosts that are not IP literals (DNS names) are returned unchanged.  Cached
    (bounded): every datagram asks this of a handful of peer addresses.
    """
    text = strip_brackets(host)
    if ":" not in text:
        return text  # IPv4 text from the kernel is canonical; names stay as they are
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def is_ipv6(host: str) -> bool:
    """True for an IPv6 literal."""
    return ":" in host


def same_host(a: str, b: str) -> bool:
    """True when two hosts are the same IP address (or the same name, ignoring case)."""
    a, b = strip_brackets(a), strip_brackets(b)
    if a.lower() == b.lower():
        return True
    return is_ip_literal(a) and is_ip_literal(b) and normalize_ip(a) == normalize_ip(b)


def default_port(transport: str) -> int:
    """The default port of a transport (5061 for TLS, 5060 for UDP and TCP)."""
    return DEFAULT_PORTS.get(transport.upper(), 5060)


def replace_top_via(message: Request | Response, via: Via) -> None:
    """Replace the topmost Via value where it stands (cached Via views are reset).

    Other values on the same line stay after it (RFC 3261 7.3.1: the same list).
    """
    message.headers.replace_first_value("Via", str(via))


def stamp_received(request: Request, origin: Origin) -> bool:
    """Add ``received`` / fill ``rport`` on a request's top Via; True if it changed.

    RFC 3261 18.2.1: ``received=<source IP>`` when the sent-by host differs from
    the packet's source address.  RFC 3581 section 4: when the top Via has an
    ``rport`` parameter without a value, set it to the source port and add
    ``received`` even if the host matches.  Raises ``SIPParseError`` when the
    top Via is malformed.
    """
    via = request.top_via
    params = via.params
    source = origin.peer.host
    changes: dict[str, str | None]
    if "rport" in params and params["rport"] is None:
        changes = {"received": source, "rport": str(origin.peer.port)}
    elif via.host == source or same_host(via.host, source):
        return False  # the usual case: the sent-by host is the source address
    else:
        changes = {"received": source}
    if all(params.get(name) == value for name, value in changes.items()):
        return False
    replace_top_via(request, via.with_params(**changes))
    return True


def response_destination(response: Response, origin: Origin | None = None) -> Address:
    """Where a response goes when it cannot use the request's connection.

    RFC 3261 18.2.2 with RFC 3581 section 4, from the response's top Via:

    - reliable ``sent-protocol`` (TCP, TLS): ``received`` (else the sent-by host)
      and the sent-by port (default 5060, 5061 for TLS).  The caller first tries
      the connection the request came in on (``origin.connection``).
    - unreliable with ``maddr``: the maddr address and the sent-by port (5060).
    - unreliable with ``received`` and a numeric ``rport``: received and rport.
    - otherwise: ``received`` (else the sent-by host, to be resolved per RFC
      3263 section 5) and the sent-by port (5060).

    ``origin`` is accepted for symmetry with the manager; the decision needs only
    the Via (which carries what :func:`stamp_received` added on receipt).
    Raises ``SIPParseError`` when the top Via is malformed.
    """
    via = response.top_via
    transport = via.transport
    params = via.params  # read directly: this runs for every response sent over UDP
    host = strip_brackets(params.get("received") or via.host)
    port = via.port
    if transport in RELIABLE_TRANSPORTS:
        return Address(transport, host, port or default_port(transport))
    maddr = params.get("maddr")
    if maddr:
        return Address(transport, strip_brackets(maddr), port or default_port(transport))
    rport = params.get("rport")  # None: absent or without a value
    if rport is not None and int(rport) > 0:
        return Address(transport, host, int(rport))
    return Address(transport, host, port or default_port(transport))


def needs_congestion_control(size: int, path_mtu: int | None = None) -> bool:
    """RFC 3261 18.1.1: must a request of ``size`` bytes avoid UDP?

    True when it is within 200 bytes of the path MTU, or larger than 1300
    bytes when the MTU is unknown (``None``).
    """
    if path_mtu is None:
        return size > UNKNOWN_MTU_LIMIT
    return size > path_mtu - MTU_MARGIN


def switch_to_stream(
    request: Request, transport: str = "TCP", sent_by: tuple[Address, Address] | None = None
) -> None:
    """Change the top Via's transport for the 18.1.1 switch away from UDP.

    ``sent_by`` is ``(old, new)``: when the Via's sent-by is ``old`` (our UDP
    listener), it becomes ``new`` (our TCP listener), so a peer that has to open
    a new connection for the response reaches a socket that listens for TCP.
    """
    via = request.top_via
    host, port = via.host, via.port
    if sent_by is not None:
        old, new = sent_by
        if same_host(host, old.host) and (port or default_port(old.transport)) == old.port:
            host, port = new.host_for_uri, new.port
    new_via = Via(transport, host, port, dict(via.params), via.protocol)
    replace_top_via(request, new_via)


def tls_server_name(request: Request) -> str:
    """The identity a TLS server must prove for this request (RFC 5922 section 4).

    It is the host of the URI that RFC 3263 resolved to find the next hop: the
    first Route (loose routing) if there is one, else the Request-URI; an
    ``maddr`` parameter wins.  IPv6 hosts are returned without brackets.
    Raises ``SIPParseError`` when that URI is malformed.
    """
    routes = request.headers.get_all("Route")
    if routes:
        uri = parse_name_addr(routes[0], "Route").uri
        if "lr" not in uri.params:
            uri = request.request_uri
    else:
        uri = request.request_uri
    return strip_brackets(uri.params.get("maddr") or uri.host)


def is_crlf_keepalive(datagram: bytes) -> bool:
    """True for a datagram made only of CR and LF bytes (and not empty).

    RFC 5626 section 3.5.1 defines the double-CRLF ping for connection-oriented
    transports only; on UDP, keep-alives are STUN (section 3.5.2).  Some UAs still
    send CRLFs over UDP to keep NAT bindings open: we drop those silently, with
    no answer (an answer could start a ping-pong between two such servers).
    """
    return bool(datagram) and not datagram.strip(b"\r\n")
