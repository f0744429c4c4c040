"""The values routing plugins exchange with the server: context in, decision out.

Pure data (frozen dataclasses), so a plugin can be tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sip import URI, Address, parse_uri

#: Final responses that make a call move on to the next target (RFC 3261 16.7's
#: spirit: the target is unreachable or broken, another may work).
DEFAULT_FAILOVER_STATUSES = frozenset({408, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where a new request came from.

    ``source`` is the peer's address and transport, ``listener`` our socket that
    received it; ``identity`` is the authenticated user (None until
    authentication is configured).
    """

    source: Address
    listener: Address
    identity: str | None = None

    @property
    def transport(self) -> str:
        """ "UDP", "TCP" or "TLS"."""
        return self.source.transport


@dataclass(frozen=True, slots=True)
class HeaderChanges:
    """Header edits applied to the request sent to a target.

    ``remove`` names headers to drop; ``set`` replaces (or adds) headers;
    ``add`` appends values.  Topology headers (Via, Route, Record-Route,
    Contact, Call-ID, From/To tags, CSeq) are the server's and cannot be changed.
    """

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """One place to try a call: a URI and how to reach it.

    ``transport`` forces UDP, TCP or TLS (else the URI's ``transport`` parameter,
    else RFC 3263).  ``timeout`` is how long to wait for any response before
    trying the next target; ``ring_timeout`` how long to wait for a provisional
    response other than 100 (None: no limit); ``credentials`` (user, password)
    answer a 401/407 from the target (used once authentication exists).
    """

    uri: URI
    transport: str | None = None
    timeout: float | None = None
    ring_timeout: float | None = None
    credentials: tuple[str, str] | None = None
    headers: HeaderChanges = field(default_factory=HeaderChanges)

    @classmethod
    def of(cls, uri: str | URI, **kwargs: object) -> Target:
        """A target from a URI string (``"sip:pbx@127.0.0.1:5070"``)."""
        return cls(parse_uri(uri) if isinstance(uri, str) else uri, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Routes:
    """The decision to try these targets: in order (serial failover), or all at once.

    With ``parallel`` every target is called at the same time (parallel forking,
    RFC 3261 16.7 rules): the first 2xx is bridged and the others are cancelled;
    a 6xx ends the call; the caller gets the best final response when none answers.
    """

    targets: tuple[Target, ...]
    parallel: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    """The decision to refuse the call with this response."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class CallInfo:
    """What call features see of a call (read it; the bridge keeps it current).

    ``call_id`` is the caller's Call-ID, ``b_call_id`` ours on the callee side;
    ``target`` the target being tried or bridged; ``data`` a dict where
    features may keep per-call state.
    """

    call_id: str
    b_call_id: str
    context: RequestContext
    started: float
    target: Target | None = None
    answered: bool = False
    data: dict[str, object] = field(default_factory=dict)


#: What a router decides.  ``None`` means "no opinion": the next router is asked.
Decision = Routes | Reject | None
