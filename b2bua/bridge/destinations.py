"""Where in-dialog requests go: the next hop of a dialog as a transport address."""

from __future__ import annotations

from ..dialog import Dialog, next_hop, next_hop_text
from ..sip import URI, Address, Origin
from ..sip.address import DEFAULT_PORTS, is_ip_literal
from ..sip.bounded import remember


def literal_target(uri: URI, default_transport: str = "UDP") -> Address | None:
    """The address of a URI whose host (or maddr) is an IP literal; None for names.

    The transport is the URI's ``transport`` parameter (TLS for sips:), else
    ``default_transport``; the port defaults per transport (RFC 3263 4.2).
    """
    transport = (uri.transport or default_transport).upper()
    if uri.scheme == "sips":
        transport = "TLS"
    host = uri.params.get("maddr") or uri.host
    host = host[1:-1] if host.startswith("[") else host
    if not is_ip_literal(host):
        return None
    return Address(transport, host, uri.port or DEFAULT_PORTS.get(transport, 5060))


def dialog_destination(dialog: Dialog, fallback: Address | None) -> Address | None:
    """The next hop of ``dialog`` (first Route, else the remote target, RFC 3261 12.2.1.1).

    A next hop given by name (not an IP literal) falls back to ``fallback``: where
    the dialog's peer was first reached.
    """
    default = fallback.transport if fallback is not None else "UDP"
    text, is_route = next_hop_text(dialog)
    key = (text, is_route, default)
    hops = _HOPS
    if key in hops:
        found = hops[key]
    else:
        found = literal_target(next_hop(dialog), default)
        remember(hops, key, found, _HOPS_MAX)
    return found or fallback


#: The addresses of next hops as dialogs keep them (text, route or target, default
#: transport) -> literal_target of them.  A call looks its dialogs' next hops up for
#: every request it sends (ACK, BYE, relayed requests), and dialogs toward the same
#: peer (a gateway, a PBX) share them: the URI is decoded once, not per request.
#: Bounded (cleared when full), so many peers cannot grow it without limit.
_HOPS: dict[tuple[str, bool, str], Address | None] = {}
_HOPS_MAX = 1024


def caller_destination(dialog: Dialog, origin: Origin) -> Address:
    """Where requests to the caller go.

    Over TCP and TLS, the connection the caller opened (its source address), so
    the request reuses it (RFC 5923 spirit, and the only way through NAT); over
    UDP the dialog's next hop when it is an IP literal, else the source address.
    """
    if origin.peer.transport != "UDP":
        return origin.peer
    return dialog_destination(dialog, origin.peer) or origin.peer
