"""Topology hiding: which headers cross from one leg to the other, and how.

A B2BUA re-originates every message, so by default nothing that identifies one
side's network (Via, Contact, Record-Route, Route, Call-ID, tags, CSeq) reaches
the other.  Everything else (Supported, Require, Allow, Session-Expires,
User-Agent, unknown extension headers, the body) is copied so the legs can still
negotiate end to end.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..sip import (
    URI,
    Address,
    Message,
    NameAddr,
    Request,
    Response,
    Via,
    header_key,
    response_for,
)
from ..transaction import new_branch

#: Headers that belong to one leg (topology, transaction and dialog identity,
#: hop-by-hop credentials) and are never copied unless configured.
HIDDEN = frozenset(
    {
        "via",
        "route",
        "record-route",
        "contact",
        "call-id",
        "from",
        "to",
        "cseq",
        "max-forwards",
        "content-length",
        "path",
        "service-route",
        "authorization",
        "proxy-authorization",
        "proxy-require",
        "rack",
        "timestamp",
        # our responses carry our own Server header (RFC 3261 7.3.1: one only)
        "server",
    }
)


#: Requests whose 1xx/2xx responses carry the answerer's Contact (dialog creation, refresh).
_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class HeaderPolicy:
    """Decides which headers are copied across legs (``pass_headers`` lifts hiding)."""

    __slots__ = ("hidden",)

    def __init__(self, pass_headers: Iterable[str] = ()) -> None:
        self.hidden = HIDDEN - {header_key(name) for name in pass_headers}

    def copied(self, source: Message) -> list[tuple[str, str]]:
        """The copyable header lines of ``source`` (for dialog.create_request)."""
        hidden = self.hidden
        return [
            (name, value)
            for name, value in source.headers.items()
            if header_key(name) not in hidden
        ]

    def copy(self, source: Message, into: Message) -> None:
        """Append the copyable header lines of ``source`` to ``into``, in order, as bytes:
        the same lines as adding each of :meth:`copied`, without decoding them."""
        into.headers.add_lines(source.headers.lines_except(self.hidden))


def local_contact(local: Address) -> str:
    """Our Contact for a leg reached through ``local`` (one of our listeners), as text."""
    params: dict[str, str | None] = {}
    if local.transport != "UDP":
        params["transport"] = local.transport.lower()
    return str(
        NameAddr(URI("sip", user="b2bua", host=local.host_for_uri, port=local.port, params=params))
    )


def add_via(request: Request, local: Address) -> None:
    """Put our Via (new branch, rport) on top of ``request``, with its decoded view.

    The transaction and transport layers read the top Via (branch, sent-by) of
    every request we send: the view, equal to what ``request.top_via`` would
    decode from the line, is stored in the header cache so it is never parsed.
    """
    branch = new_branch()
    transport, host, port = local.transport, local.host_for_uri, local.port
    headers = request.headers
    headers.add("Via", f"SIP/2.0/{transport} {host}:{port};branch={branch};rport", first=True)
    headers.cache["via"] = Via(transport.upper(), host, port, {"branch": branch, "rport": None})


def relay_response(
    policy: HeaderPolicy,
    request: Request,
    response: Response,
    *,
    to_tag: str | None = None,
    contact: str | None = None,
) -> Response:
    """The response to ``request`` on this leg that mirrors ``response`` from the other leg."""
    out = response_for(request, response.status, response.reason, to_tag=to_tag)
    if contact is not None and 100 < response.status < 300 and request.method in _REFRESH:
        out.headers.add("Contact", contact)
    policy.copy(response, out)
    out.body = response.body
    return out
