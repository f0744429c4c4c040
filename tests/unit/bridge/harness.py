"""An in-memory B2BUA for the bridge tests: real layers, fake network, wire-level parties.

Wired like :mod:`b2bua.service` does it, with only the edges replaced:

- ``twisted.internet.task.Clock`` for time;
- :class:`RecordingTransport`: keeps every message the layer sends as bytes and
  as the message parsed back from those bytes (so every assertion is on the
  wire form);
- the real :class:`TransactionLayer`, :class:`UACore` and :class:`CallManager`,
  with :class:`ServerUser` (a copy of service.py's ``_ServerUser``) between them;
- :class:`FakeNetwork`: IP literals resolve to themselves over UDP, names to nothing;
- a router answering with :attr:`Harness.decision` (Routes, Reject, None, an
  exception, a Deferred or a callable).

:class:`Caller` plays the A side (a phone at 127.0.0.1:5080) and :class:`Callee`
the B side (targets 127.0.0.2:5070 and 127.0.0.3:5071): they read what the
bridge sent them and answer with messages built from raw text or from
``response_for``, fed back through ``layer.message_received``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from b2bua.bridge import BridgeSettings, CallManager, HeaderPolicy
from b2bua.bridge.tu import ServerUser
from b2bua.routing import Routes, Target
from b2bua.sip import URI, Address, Origin, Request, Response, parse_message, response_for
from b2bua.transaction import TimerConfig, TransactionLayer
from b2bua.ua.core import CoreSettings, UACore

#: Our listener, the caller and the two callees.
US = Address("UDP", "127.0.0.1", 5060)
CALLER = Address("UDP", "127.0.0.1", 5080)
CALLEE = Address("UDP", "127.0.0.2", 5070)
CALLEE2 = Address("UDP", "127.0.0.3", 5071)

#: Default T1 and what "64*T1 and a bit" is with it.
T1 = 0.5
LONG = 64 * T1 + 6

SDP_A = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
SDP_A_HOLD = SDP_A.replace(b"2890844526 IN", b"2890844527 IN") + b"a=sendonly\r\n"
SDP_B = (
    b"v=0\r\no=bob 2808844564 2808844564 IN IP4 198.51.100.20\r\ns=-\r\n"
    b"c=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 3456 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
SDP_B_HOLD = SDP_B.replace(b"2808844564 IN", b"2808844565 IN") + b"a=sendonly\r\n"


def sip_bytes(
    start: str,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
    content_type: str = "application/sdp",
) -> bytes:
    """A message as raw wire text: start line, headers, Content-Type/Length, body."""
    lines = [start, *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(frozen=True)
class Sent:
    """One message the layer handed to the transport: parsed back from its bytes."""

    message: Request | Response
    data: bytes
    peer: Address
    time: float

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, Request)


class RecordingTransport:
    """The transport: records every message, serialized and re-parsed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[Sent] = []

    def _record(self, message: Request | Response, peer: Address) -> None:
        data = message.to_bytes()
        self.sent.append(Sent(parse_message(data), data, peer, self.clock.seconds()))

    def send_request(self, request: Request, destination: Address, /) -> None:
        self._record(request, destination)

    def send_response(self, response: Response, origin: Origin, /) -> None:
        self._record(response, origin.peer)

    def to(self, peer: Address, since: int = 0) -> list[Sent]:
        """Everything sent to ``peer`` (from index ``since`` of :attr:`sent`)."""
        return [s for s in self.sent[since:] if s.peer == peer]

    def requests(self, method: str) -> list[tuple[Request, Address]]:
        """Every ``method`` request sent, with where it went."""
        return [
            (s.message, s.peer)
            for s in self.sent
            if isinstance(s.message, Request) and s.message.method == method
        ]

    def bytes_to(self, peers: Iterable[Address]) -> bytes:
        """All bytes sent to any of ``peers``, concatenated."""
        wanted = set(peers)
        return b"".join(s.data for s in self.sent if s.peer in wanted)


class FakeNetwork:
    """IP literals resolve to themselves (UDP unless the URI says otherwise); names to []."""

    def __init__(self) -> None:
        self.resolved: list[URI] = []

    def resolve(self, uri: URI) -> defer.Deferred[list[Address]]:
        self.resolved.append(uri)
        host = uri.params.get("maddr") or uri.host
        host = host[1:-1] if host.startswith("[") else host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return defer.succeed([])
        transport = (uri.transport or "udp").upper()
        return defer.succeed([Address(transport, host, uri.port or 5060)])

    def local_address(self, destination: Address) -> Address:
        return US


def routes(*targets: Address | str | Target, **kwargs: Any) -> Routes:
    """Routes to these targets, in order (an Address becomes ``sip:host:port``)."""
    out = []
    for t in targets:
        if isinstance(t, Target):
            out.append(t)
        elif isinstance(t, Address):
            out.append(Target.of(f"sip:{t.host_for_uri}:{t.port}", **kwargs))
        else:
            out.append(Target.of(t, **kwargs))
    return Routes(tuple(out))


class Harness:
    """The B2BUA under test and the wire around it."""

    def __init__(
        self,
        settings: BridgeSettings | None = None,
        timers: TimerConfig | None = None,
        pass_headers: Iterable[str] = (),
        features: Iterable[Any] = (),
    ) -> None:
        self.clock = Clock()
        self.timers = timers or TimerConfig()
        self.transport = RecordingTransport(self.clock)
        self.core = UACore(CoreSettings(user_agent="b2bua-test"), self._send_stateless)
        self.tu = ServerUser(self.core)
        self.layer = TransactionLayer(self.clock, self.transport, self.tu, self.timers)
        self.network = FakeNetwork()
        #: What the router answers: Routes, Reject, None, an exception (failed
        #: Deferred), a Deferred, or a callable(request, context) to call.
        self.decision: Any = routes(CALLEE)
        self.route_calls: list[tuple[Request, Any]] = []
        self.settings = settings or BridgeSettings()
        self.manager = CallManager(
            self.clock,
            self.layer,
            self.network,
            self._route,
            self.settings,
            self.timers,
            HeaderPolicy(pass_headers),
            self.core.decorate,
            tuple(features),
        )
        self.tu.calls = self.manager
        self.core.register("INVITE", self.manager.invite_received)
        self.core.register_dialog_handler(self.manager.in_dialog_request)

    def _send_stateless(self, response: Response, origin: Origin) -> None:
        self.transport.send_response(response, origin)

    def _route(self, request: Request, context: Any) -> defer.Deferred[Any]:
        self.route_calls.append((request, context))
        decision = self.decision
        if isinstance(decision, defer.Deferred):
            return decision
        if isinstance(decision, BaseException):
            return defer.fail(decision)
        if callable(decision):
            return decision(request, context)  # type: ignore[no-any-return]
        return defer.succeed(decision)

    # -- input ---------------------------------------------------------------------
    def feed(self, data: bytes, peer: Address) -> Request | Response:
        """Bytes arriving from ``peer`` on our listener: parsed and given to the layer."""
        message = parse_message(data)
        self.layer.message_received(message, Origin(peer, US))
        return message

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- state ---------------------------------------------------------------------
    def leftovers(self) -> dict[str, object]:
        """Everything that should be empty once calls and transactions are over."""
        m = self.manager
        left: dict[str, object] = {
            "calls": set(m.calls),
            "dialogs": dict(m.dialogs),
            "by_invite": dict(m._by_invite),
            "b_call_ids": dict(m._b_call_ids),
            "a_destinations": dict(m.relays),
            "clients": dict(self.layer._clients),
            "servers": dict(self.layer._servers),
            "merged": dict(self.layer._merged),
            "timers": [c for c in self.clock.getDelayedCalls() if c.active()],
        }
        return {k: v for k, v in left.items() if v}

    def assert_idle(self) -> None:
        assert self.leftovers() == {}


_BRANCHES = itertools.count(1)


class _Party:
    """What caller and callee share: an address, a view of what reached it, a sender."""

    def __init__(self, h: Harness, address: Address, name: str) -> None:
        self.h = h
        self.address = address
        self.name = name

    def new_branch(self) -> str:
        """A branch unique across every party of the test session."""
        return f"z9hG4bK{self.name}{next(_BRANCHES)}x{self.address.port}"

    @property
    def via(self) -> str:
        return f"SIP/2.0/UDP {self.address.host}:{self.address.port};branch={self.new_branch()}"

    def received(self, since: int = 0) -> list[Sent]:
        return self.h.transport.to(self.address, since)

    def requests(self, method: str | None = None, since: int = 0) -> list[Request]:
        """Requests that reached us (retransmissions included), optionally of one method."""
        return [
            s.message
            for s in self.received(since)
            if isinstance(s.message, Request) and (method is None or s.message.method == method)
        ]

    def unique_requests(self, method: str | None = None) -> list[Request]:
        """Requests that reached us, retransmissions (same branch and method) dropped."""
        seen: set[tuple[str | None, str]] = set()
        out = []
        for r in self.requests(method):
            key = (r.branch, r.method)
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out

    def responses(
        self, status: int | None = None, method: str | None = None, since: int = 0
    ) -> list[Response]:
        return [
            s.message
            for s in self.received(since)
            if isinstance(s.message, Response)
            and (status is None or s.message.status == status)
            and (method is None or s.message.cseq.method == method)
        ]

    def statuses(self, method: str | None = None) -> list[int]:
        return [r.status for r in self.responses(method=method)]

    def send(self, data: bytes) -> Request | Response:
        return self.h.feed(data, self.address)

    def reply(
        self,
        request: Request,
        status: int,
        *,
        tag: str | None = None,
        body: bytes = b"",
        contact: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> Response:
        """Answer a request that reached us, and send the answer."""
        response = response_for(request, status, reason, to_tag=tag if status > 100 else None)
        if contact is not None and 100 < status < 400:
            response.headers.add("Contact", contact)
        for name, value in extra:
            response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", "application/sdp")
        response.body = body
        message = self.send(response.to_bytes())
        assert isinstance(message, Response)
        return message


class Caller(_Party):
    """The phone that calls through the B2BUA (we are its UAS on the A leg)."""

    def __init__(
        self,
        h: Harness,
        address: Address = CALLER,
        *,
        call_id: str = "a84b4c76e66710-caller@alice.example",
        tag: str = "alicetag1928301774",
        uri: str = "sip:bob@127.0.0.1:5060",
    ) -> None:
        super().__init__(h, address, "alice")
        self.call_id = call_id
        self.tag = tag
        self.uri = uri
        self.contact = f"<sip:alice@{address.host}:{address.port}>"
        self.cseq = 100
        self.invite: Request | None = None
        #: Our view of the A dialog: the B2BUA's tag and Contact (from its 1xx/2xx).
        self.remote_tag: str | None = None
        self.remote_target: str | None = None

    def _dialog_headers(self, method: str, cseq: int, to_tag: str | None) -> list[tuple[str, str]]:
        to = "Bob <sip:bob@biloxi.example.com>"
        if to_tag:
            to += f";tag={to_tag}"
        return [
            ("Max-Forwards", "70"),
            ("From", f"Alice <sip:alice@atlanta.example.com>;tag={self.tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]

    def send_invite(self, body: bytes = SDP_A, extra: Iterable[tuple[str, str]] = ()) -> Request:
        """The initial INVITE (no To tag)."""
        headers = [("Via", self.via + ";rport"), *self._dialog_headers("INVITE", self.cseq, None)]
        headers += [("Contact", self.contact), ("User-Agent", "alice-phone/1.0"), *extra]
        request = self.send(sip_bytes(f"INVITE {self.uri} SIP/2.0", headers, body))
        assert isinstance(request, Request)
        self.invite = request
        return request

    def learn(self) -> None:
        """Take the B2BUA's tag and Contact from the last 1xx/2xx to our INVITE."""
        for r in reversed(self.responses(method="INVITE")):
            if r.cseq.number == self.cseq_of_invite and 100 < r.status < 300 and r.to_tag:
                self.remote_tag = r.to_tag
                self.remote_target = str(r.contacts[0].uri) if r.contacts else None
                return

    @property
    def cseq_of_invite(self) -> int:
        assert self.invite is not None
        return self.invite.cseq.number

    def ack(
        self, response: Response | None = None, body: bytes = b"", cseq: int | None = None
    ) -> Request:
        """The ACK for a 2xx (a new transaction, sent to the B2BUA's Contact)."""
        if response is None:
            response = self.responses(200, "INVITE")[-1]
        tag = response.to_tag
        target = str(response.contacts[0].uri) if response.contacts else self.remote_target
        number = response.cseq.number if cseq is None else cseq
        headers = [("Via", self.via), *self._dialog_headers("ACK", number, tag)]
        ack = self.send(sip_bytes(f"ACK {target} SIP/2.0", headers, body))
        assert isinstance(ack, Request)
        return ack

    def ack_failure(self, response: Response, request: Request | None = None) -> Request:
        """The ACK for a 300-699 to our INVITE or re-INVITE ``request`` (17.1.1.3: same
        branch, Request-URI and CSeq number as the INVITE, To from the response)."""
        request = self.invite if request is None else request
        assert request is not None
        headers = [
            ("Via", str(request.top_via)),
            *self._dialog_headers("ACK", request.cseq.number, response.to_tag),
        ]
        ack = self.send(sip_bytes(f"ACK {request.uri} SIP/2.0", headers))
        assert isinstance(ack, Request)
        return ack

    def cancel(self, request: Request | None = None) -> Request:
        """CANCEL for our INVITE or re-INVITE ``request`` (9.1: same Request-URI, Call-ID,
        From, To and top Via, CSeq number with method CANCEL)."""
        request = self.invite if request is None else request
        assert request is not None
        headers = [
            ("Via", str(request.top_via)),
            *self._dialog_headers("CANCEL", request.cseq.number, request.to_tag),
        ]
        cancel = self.send(sip_bytes(f"CANCEL {request.uri} SIP/2.0", headers))
        assert isinstance(cancel, Request)
        return cancel

    def request(
        self,
        method: str,
        body: bytes = b"",
        extra: Iterable[tuple[str, str]] = (),
        *,
        cseq: int | None = None,
    ) -> Request:
        """A new in-dialog request (new CSeq) to the B2BUA's Contact."""
        if self.remote_tag is None:
            self.learn()
        assert self.remote_tag is not None and self.remote_target is not None
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        headers = [("Via", self.via), *self._dialog_headers(method, cseq, self.remote_tag)]
        if method in ("INVITE", "UPDATE"):
            headers.append(("Contact", self.contact))
        headers += list(extra)
        request = self.send(sip_bytes(f"{method} {self.remote_target} SIP/2.0", headers, body))
        assert isinstance(request, Request)
        return request

    def ack_reinvite(self, response: Response, body: bytes = b"") -> Request:
        """The ACK for a 2xx to one of our re-INVITEs."""
        assert self.remote_target is not None
        headers = [
            ("Via", self.via),
            *self._dialog_headers("ACK", response.cseq.number, self.remote_tag),
        ]
        ack = self.send(sip_bytes(f"ACK {self.remote_target} SIP/2.0", headers, body))
        assert isinstance(ack, Request)
        return ack

    def answer(self, request: Request, status: int, body: bytes = b"") -> Response:
        """Answer a request the B2BUA sent us (BYE, re-INVITE...)."""
        return self.reply(request, status, body=body, contact=self.contact)


class Callee(_Party):
    """A target of the B2BUA (we are its UAC on the B leg)."""

    def __init__(
        self,
        h: Harness,
        address: Address = CALLEE,
        *,
        tag: str = "bobtag8d3e1a",
        contact: str | None = None,
    ) -> None:
        super().__init__(h, address, f"bob{address.port}")
        self.tag = tag
        self.contact = contact or f"<sip:bob@{address.host}:{address.port}>"
        self.cseq = 500

    @property
    def invite(self) -> Request:
        """The (last distinct) INVITE without To tag that reached us."""
        invites = [r for r in self.unique_requests("INVITE") if r.to_tag is None]
        assert invites, f"no INVITE reached {self.address}"
        return invites[-1]

    def answer(
        self,
        status: int,
        *,
        request: Request | None = None,
        tag: str | None = None,
        body: bytes = b"",
        contact: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> Response:
        """Respond to the INVITE (or ``request``) with our tag and Contact."""
        request = self.invite if request is None else request
        return self.reply(
            request,
            status,
            tag=tag or self.tag,
            body=body,
            contact=contact or self.contact,
            extra=extra,
            reason=reason,
        )

    def request(
        self,
        method: str,
        body: bytes = b"",
        extra: Iterable[tuple[str, str]] = (),
        *,
        tag: str | None = None,
        invite: Request | None = None,
    ) -> Request:
        """A new in-dialog request from us on the dialog the INVITE created."""
        invite = self.invite if invite is None else invite
        self.cseq += 1
        contact = invite.contacts[0].uri
        headers = [
            ("Via", self.via),
            ("Max-Forwards", "70"),
            ("From", f"{invite.to.without_params('tag')};tag={tag or self.tag}"),
            ("To", str(invite.from_)),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{self.cseq} {method}"),
        ]
        if method in ("INVITE", "UPDATE"):
            headers.append(("Contact", self.contact))
        headers += list(extra)
        request = self.send(sip_bytes(f"{method} {contact} SIP/2.0", headers, body))
        assert isinstance(request, Request)
        return request

    def ack(self, response: Response, body: bytes = b"") -> Request:
        """The ACK for a 2xx to one of our re-INVITEs (sent to the B2BUA's Contact)."""
        invite = self.invite
        headers = [
            ("Via", self.via),
            ("Max-Forwards", "70"),
            ("From", f"{invite.to.without_params('tag')};tag={self.tag}"),
            ("To", str(invite.from_)),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{response.cseq.number} ACK"),
        ]
        target = response.contacts[0].uri if response.contacts else invite.contacts[0].uri
        ack = self.send(sip_bytes(f"ACK {target} SIP/2.0", headers, body))
        assert isinstance(ack, Request)
        return ack


def establish(
    h: Harness,
    caller: Caller,
    callee: Callee,
    *,
    offer: bytes = SDP_A,
    answer: bytes = SDP_B,
    ring: bool = True,
) -> Response:
    """INVITE, (180,) 200 and ACK: a confirmed call.  Returns the 200 the caller got."""
    caller.send_invite(body=offer)
    if ring:
        callee.answer(180)
    callee.answer(200, body=answer)
    ok = caller.responses(200, "INVITE")[-1]
    caller.learn()
    caller.ack(ok)
    return ok
