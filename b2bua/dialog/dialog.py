"""One SIP dialog (RFC 3261 section 12): identity, state, sequence numbers, route set, targets.

A :class:`Dialog` is the state two user agents share for the life of a call leg:
the dialog ID, the local and remote CSeq, the local and remote URIs, the route set
and the remote target.  It builds in-dialog requests (12.2.1.1) and takes in
requests and responses (12.2.1.2, 12.2.2, 13.2.2.4), but it never sends anything:
the caller adds the top Via, sends the request to :func:`next_hop` through a
transaction, and feeds back what comes in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ..sip import (
    URI,
    Headers,
    NameAddr,
    Request,
    Response,
    parse_name_addr,
    parse_uri,
    response_for,
)
from ..sip.bounded import remember
from .prack import rseq_of

#: The largest CSeq number (RFC 3261 8.1.1.5: a 32-bit unsigned integer).
MAX_CSEQ = 2**32 - 1
#: Max-Forwards of every request the dialog builds (RFC 3261 8.1.1.6).
MAX_FORWARDS = 70
_MAX_FORWARDS_TEXT = str(MAX_FORWARDS)
#: Requests that update the remote target (RFC 3261 12.2, RFC 3311 UPDATE,
#: RFC 6665 SUBSCRIBE and NOTIFY, RFC 3515 REFER, which must carry one Contact).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
#: Requests that never take a new CSeq number: ACK and CANCEL reuse the INVITE's.
_NO_NEW_CSEQ = frozenset({"ACK", "CANCEL"})


class DialogError(Exception):
    """A request the dialog refuses to build: the RFC forbids it in the current state.

    Raised for a request on a terminated dialog, a BYE from the callee on an early
    dialog (RFC 3261 15), a re-INVITE while another INVITE is in progress (14.1)
    and a CSeq that would pass 2**32-1.  It is a programming error in the caller.
    """


class DialogState(enum.Enum):
    """The three states of RFC 3261 section 12: early, confirmed, terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """The dialog ID (RFC 3261 12): Call-ID, local tag and remote tag, from our side.

    The same dialog has mirrored IDs at the two ends; ours puts our own tag in
    ``local_tag``.  A peer that sends no tag (RFC 2543) has the empty string as tag.
    """

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_request(cls, request: Request) -> DialogId | None:
        """The ID of the dialog an incoming request belongs to, None if To has no tag.

        We are the request's recipient, so the local tag is the To tag and the
        remote tag the From tag (12.2.2).
        """
        to_tag = request.to_tag
        if to_tag is None:
            return None
        return cls(request.call_id, to_tag, request.from_tag or "")

    @classmethod
    def of_response(cls, response: Response) -> DialogId:
        """The ID of the dialog an incoming response belongs to (we sent the request).

        The local tag is the From tag and the remote tag the To tag (12.1.2).
        """
        return cls(response.call_id, response.from_tag or "", response.to_tag or "")


def _without_tag(address: NameAddr) -> NameAddr:
    return address.without_params("tag") if "tag" in address.params else address


def _tagged(address: NameAddr | str, tag: str) -> str:
    """``address`` with ``tag`` as its last parameter, as text: our From or To.

    The same text as ``str(address.without_params("tag").with_params(tag=tag))``
    (parameters are written in order, ``;name=value``), without building those
    copies when ``address`` already ends with that tag or has none.  ``address``
    may be given as its text (``str(address)``, see :func:`_tagged_text`).
    """
    if isinstance(address, str):
        return _tagged_text(address, tag)
    params = address.params
    if "tag" in params:
        if params["tag"] == tag and next(reversed(params)) == "tag":
            return str(address)
        address = address.without_params("tag")
    return f"{address};tag={tag}"


def _tagged_text(text: str, tag: str) -> str:
    """:func:`_tagged` of the address whose ``str()`` is ``text``, without decoding it.

    Such a text ends with the URI's ``>`` and then the parameters: when they hold no
    tag the tag is appended; when the only one is ``tag`` last, the text already is
    the answer; anything else (a quoted value, another tag) is decoded.
    """
    tail = text[text.rfind(">") + 1 :]
    if '"' not in tail:
        found = tail.lower().count(";tag")
        if not found:
            return f"{text};tag={tag}"
        if found == 1 and tail.endswith(f";tag={tag}"):
            return text
    return _tagged(parse_name_addr(text, "From"), tag)


def _untagged_text(address: NameAddr | str) -> str:
    """``str(_without_tag(address))``, from the text when it holds no tag parameter."""
    if isinstance(address, str):
        tail = address[address.rfind(">") + 1 :]
        if '"' not in tail and ";tag" not in tail.lower():
            return address
        address = parse_name_addr(address, "To")
    return str(_without_tag(address))


def _route_entry(value: str) -> NameAddr:
    """One Record-Route value.  The grammar wants ``<URI>``; a bare ``sip:p1;lr`` seen
    in the wild is read as the URI its sender meant (``lr`` a URI parameter)."""
    if "<" not in value:
        value = "<" + value.strip(" \t") + ">"
    return parse_name_addr(value, "Record-Route")


def _record_route(message: Request | Response) -> list[NameAddr]:
    return [_route_entry(v) for v in message.headers.get_all("Record-Route")]


def _contact_uri(message: Request | Response) -> URI | None:
    """The URI of the first Contact, or None when there is none (or only ``*``)."""
    for contact in message.contacts:
        if not contact.is_star:
            return contact.uri
    return None


#: Contact values as received (the whole header, one line) -> the text of the remote
#: target they give (None for ``*``).  A peer sends the same Contact in each of its
#: responses and requests, a gateway or a phone in every call: it is decoded once.
#: Only successful decodings are kept; bounded (cleared when full).
_TARGETS: dict[bytes, str | None] = {}
_TARGETS_MAX = 1024


def _contact_target(message: Request | Response) -> str | None:
    """``str(_contact_uri(message))`` (None when that is None), kept by Contact value."""
    headers = message.headers
    raw = headers.raw("Contact")
    if raw is None:
        return None
    targets = _TARGETS
    if raw in targets and headers.count("Contact") == 1:
        return targets[raw]
    uri = _contact_uri(message)
    text = None if uri is None else str(uri)
    if headers.count("Contact") == 1:  # the one line decides alone
        remember(targets, raw, text, _TARGETS_MAX)
    return text


def _first_contact(message: Request | Response) -> NameAddr | None:
    for contact in message.contacts:
        if not contact.is_star:
            return contact
    return None


def _request_uri(uri: URI) -> URI:
    """``uri`` made fit for a Request-URI: the ``method`` parameter and headers removed.

    RFC 3261 19.1.1, table 1: neither is allowed in a Request-URI; 12.2.1.1 asks
    for them to be stripped from a strict router's URI.
    """
    if "method" in uri.params:
        uri = uri.without_params("method")
    if uri.headers:
        uri = uri.replace(headers={})
    return uri


def _request_uri_text(text: str) -> str:
    """:func:`_request_uri` on a URI's text: the text itself when there is nothing to
    strip (no headers, no ``method`` parameter), the usual case, without decoding it."""
    if "?" not in text and "method" not in text.lower():
        return text
    return str(_request_uri(parse_uri(text)))


class Dialog:
    """The state of one dialog (RFC 3261 12.1) and the rules for using it.

    Build one with :meth:`from_uas` or :meth:`from_uac`; the constructor takes
    every piece of state for callers that restore or synthesise a dialog.

    Attributes, all public (the RFC's names):

    - ``id``: the :class:`DialogId`.  ``uac``: True when we sent the request that
      created the dialog (we own the Call-ID; this decides route set recomputation,
      who may BYE an early dialog and the glare timer of 14.1).
    - ``state``: a :class:`DialogState`.
    - ``local_cseq``: the last CSeq number we used (None until the UAS sends its
      first request); ``remote_cseq``: the highest number received (None until the
      peer sends a request in the dialog, always for a new UAC dialog).
    - ``local_uri`` / ``remote_uri``: From and To of our requests, without tag.
    - ``local_target``: our Contact, sent in target refresh requests.
    - ``remote_target``: the peer's Contact URI, the Request-URI of our requests.
    - ``route_set``: the Route values of our requests, as :class:`NameAddr`.
    - ``secure``: the ``sips`` flag of 12.1.1/12.1.2.
    """

    __slots__ = (
        "_contact",
        "_from",
        "_invite_in",
        "_invite_out",
        "_routes",
        "_rseq",
        "_target",
        "_to",
        "_update_in",
        "id",
        "last_invite_cseq",
        "local_cseq",
        "remote_cseq",
        "secure",
        "state",
        "uac",
    )

    def __init__(
        self,
        dialog_id: DialogId,
        *,
        uac: bool,
        state: DialogState,
        local_uri: NameAddr | str,
        remote_uri: NameAddr | str,
        remote_target: URI | str,
        local_target: NameAddr | str | None = None,
        route_set: Iterable[NameAddr] = (),
        local_cseq: int | None = None,
        remote_cseq: int | None = None,
        secure: bool = False,
    ) -> None:
        self.id = dialog_id
        self.uac = uac
        self.state = state
        # The identities, targets and routes are kept as the text our requests carry:
        # written once here, not for every request, and a few strings instead of a
        # URI and NameAddr tree per field (memory per held call).
        self._from = _tagged(local_uri, dialog_id.local_tag)
        remote_tag = dialog_id.remote_tag
        self._to = _tagged(remote_uri, remote_tag) if remote_tag else _untagged_text(remote_uri)
        self._target = str(remote_target)
        self._contact = None if local_target is None else str(local_target)
        self._routes: tuple[str, ...] = tuple(str(r) for r in route_set)
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.secure = secure
        #: CSeq number of the last INVITE we sent (the one an ACK for 2xx repeats).
        self.last_invite_cseq: int | None = None
        self._invite_out: int | None = None
        self._invite_in: int | None = None
        self._update_in: int | None = None
        self._rseq: tuple[int, int] | None = None

    # -- the RFC's fields, decoded from the text kept ----------------------------
    @property
    def local_uri(self) -> NameAddr:
        """The From of our requests, without tag."""
        return _without_tag(parse_name_addr(self._from, "From"))

    @property
    def remote_uri(self) -> NameAddr:
        """The To of our requests, without tag."""
        return _without_tag(parse_name_addr(self._to, "To"))

    @property
    def remote_target(self) -> URI:
        """The peer's Contact URI: the Request-URI of our requests."""
        return parse_uri(self._target)

    @remote_target.setter
    def remote_target(self, uri: URI | str) -> None:
        self._target = str(uri)

    @property
    def local_target(self) -> NameAddr | None:
        """Our Contact, sent in target refresh requests (None until known)."""
        return None if self._contact is None else parse_name_addr(self._contact, "Contact")

    @local_target.setter
    def local_target(self, contact: NameAddr | str | None) -> None:
        self._contact = None if contact is None else str(contact)

    @property
    def route_set(self) -> tuple[NameAddr, ...]:
        """The Route values of our requests, in order."""
        return tuple(parse_name_addr(r, "Route") for r in self._routes)

    @route_set.setter
    def route_set(self, routes: Iterable[NameAddr]) -> None:
        self._routes = tuple(str(r) for r in routes)

    # -- construction (12.1) ---------------------------------------------------
    @classmethod
    def from_uas(
        cls,
        request: Request,
        response: Response,
        *,
        over_tls: bool = True,
        local_cseq: int | None = None,
        local_target: NameAddr | str | None = None,
    ) -> Dialog:
        """The dialog a UAS creates by answering ``request`` with ``response`` (12.1.1).

        ``response`` is the 101-199 or 2xx we send, carrying our To tag and our
        Contact (the local target).  The route set is the request's Record-Route
        in order; the remote target is its Contact (its From URI if it has none,
        so a broken peer still gets a usable dialog); the remote CSeq is the
        request's.  ``secure`` is set when the Request-URI is ``sips`` and
        ``over_tls`` (the transport must use TLS for sips, hence the default).
        ``local_cseq`` is left empty: the first request we send chooses 1 (8.1.1.5),
        unless a value is given here.  ``local_target`` is the Contact the response
        carries when the caller has it at hand (else it is read from the response).

        Raises ``ValueError`` for a response that cannot create a dialog (100,
        3xx-6xx, no To tag), ``SIPParseError`` for a malformed Record-Route or
        Contact (call ``request.validate()`` first to answer 400 instead).
        """
        _check_creating(response)
        to_tag = response.to_tag
        if to_tag is None:
            raise ValueError("a UAS response creating a dialog needs a To tag")
        confirmed = response.status >= 200
        remote_target = _contact_target(request) or request.from_.uri
        dialog = cls(
            DialogId(request.call_id, to_tag, request.from_tag or ""),
            uac=False,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            local_uri=request.to,
            remote_uri=request.from_,
            remote_target=remote_target,
            local_target=_first_contact(response) if local_target is None else local_target,
            route_set=_record_route(request),
            local_cseq=local_cseq,
            remote_cseq=request.cseq.number,
            secure=over_tls and request.request_uri.scheme == "sips",
        )
        if request.method == "INVITE" and not confirmed:
            dialog._invite_in = request.cseq.number
        return dialog

    @classmethod
    def from_uac(
        cls,
        request: Request,
        response: Response,
        *,
        over_tls: bool = True,
        local_target: NameAddr | str | None = None,
        local_uri: NameAddr | str | None = None,
        remote_uri: NameAddr | str | None = None,
    ) -> Dialog:
        """The dialog a UAC creates on receiving ``response`` to ``request`` (12.1.2).

        A 101-199 with a To tag makes an early dialog, a 2xx a confirmed one.  The
        route set is the response's Record-Route in reverse order; the remote
        target its Contact (the Request-URI when a sloppy 1xx has none; a later
        response's Contact replaces it); the local CSeq is the request's, the
        remote CSeq stays empty; our Contact in the request is the local target.
        The request's From and To are the local and remote URI.  A caller that has
        the Contact, From or To it wrote in the request at hand passes them
        (``local_target``, ``local_uri``, ``remote_uri``; the From and To as
        :class:`NameAddr` or as the text written): they are not read back from the
        request then.  A 2xx without To tag (RFC 2543 peer) gives the empty
        remote tag.

        Raises ``ValueError`` for a response that cannot create a dialog (100,
        3xx-6xx, a provisional response without To tag), ``SIPParseError`` for a
        malformed Record-Route or Contact.
        """
        _check_creating(response)
        to_tag = response.to_tag
        confirmed = response.status >= 200
        if to_tag is None and not confirmed:
            raise ValueError("a provisional response without To tag creates no dialog")
        route_set = _record_route(response)
        route_set.reverse()
        dialog = cls(
            DialogId(request.call_id, request.from_tag or "", to_tag or ""),
            uac=True,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            local_uri=request.from_ if local_uri is None else local_uri,
            remote_uri=request.to if remote_uri is None else remote_uri,
            remote_target=_contact_target(response) or request.request_uri,
            local_target=_first_contact(request) if local_target is None else local_target,
            route_set=route_set,
            local_cseq=request.cseq.number,
            secure=over_tls and request.request_uri.scheme == "sips",
        )
        if request.method == "INVITE":
            dialog.last_invite_cseq = request.cseq.number
            if not confirmed:
                dialog._invite_out = request.cseq.number
        return dialog

    # -- state ------------------------------------------------------------------
    @property
    def is_early(self) -> bool:
        """True in the early state."""
        return self.state is DialogState.EARLY

    @property
    def is_confirmed(self) -> bool:
        """True in the confirmed state."""
        return self.state is DialogState.CONFIRMED

    @property
    def is_terminated(self) -> bool:
        """True once terminated: the table drops it, new requests get 481."""
        return self.state is DialogState.TERMINATED

    @property
    def invite_in_progress(self) -> bool:
        """True while an INVITE transaction runs in either direction (RFC 3261 14.1)."""
        return self._invite_out is not None or self._invite_in is not None

    @property
    def outgoing_invite(self) -> int | None:
        """CSeq number of our INVITE awaiting a final response, or None."""
        return self._invite_out

    @property
    def incoming_invite(self) -> int | None:
        """CSeq number of the peer's INVITE we have not answered finally, or None."""
        return self._invite_in

    @property
    def incoming_update(self) -> int | None:
        """CSeq number of the peer's UPDATE we have not answered finally (RFC 3311 5.2)."""
        return self._update_in

    def terminate(self) -> None:
        """Move to the terminated state (after a BYE, a final non-2xx, a 481, a timeout).

        The caller decides when: RFC 3261 15 ends the session as soon as a BYE is
        sent or received, but a BYE challenged with 401/407 must be re-sent with a
        new CSeq, so building a BYE does not terminate the dialog by itself.
        """
        self.state = DialogState.TERMINATED
        self._invite_out = self._invite_in = self._update_in = None

    # -- requests we send (12.2.1.1) --------------------------------------------
    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | str | None = None,
    ) -> Request:
        """A new request within the dialog, per RFC 3261 12.2.1.1, without Via.

        To is the remote URI with the remote tag, From the local URI with the
        local tag, Call-ID the dialog's, CSeq the local number plus one (chosen as
        1 when still empty).  Request-URI and Route follow the route set (loose
        routing when its first URI has ``lr``, strict routing otherwise, see
        :meth:`target_and_route`).  Max-Forwards is 70.  Target refresh requests
        (INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER) carry Contact: ``contact`` when
        given (it becomes the local target), else the local target.  ``headers``
        are added as given, then Content-Type (required with a body, RFC 3261 7.4.1).

        The caller adds the top Via (with a new branch) and sends the request to
        :func:`next_hop` through a new client transaction.  ACK and CANCEL are not
        built here: see :meth:`create_ack`; CANCEL copies the INVITE (9.1).

        Raises :class:`DialogError` when the RFC forbids the request now, and
        ``ValueError`` for ACK, CANCEL or a body without ``content_type``.
        """
        if method in _NO_NEW_CSEQ:
            raise ValueError(
                f"{method} reuses the INVITE's CSeq: see create_ack, or copy the INVITE"
            )
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"cannot send {method} on a terminated dialog")
        if method == "BYE" and self.state is DialogState.EARLY and not self.uac:
            raise DialogError("the callee must not send BYE on an early dialog (RFC 3261 15)")
        if method == "INVITE" and self.invite_in_progress:
            raise DialogError("an INVITE transaction is already in progress (RFC 3261 14.1)")
        number = 1 if self.local_cseq is None else self.local_cseq + 1
        if number > MAX_CSEQ:
            raise DialogError("local CSeq exhausted (2**32-1)")
        if contact is not None:
            self.local_target = contact
        request = self._build(method, number, method, body, content_type, headers)
        self.local_cseq = number
        if method == "INVITE":
            self._invite_out = self.last_invite_cseq = number
        return request

    def create_ack(
        self,
        invite_cseq: int | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """The ACK for a 2xx to our INVITE (RFC 3261 13.2.2.4), without Via.

        Built like any request in the dialog (Request-URI and Route from the route
        set) except CSeq: the INVITE's number (``invite_cseq``, default the last
        INVITE we sent) with method ACK; the local CSeq is not incremented.  The
        ACK for 2xx is a transaction of its own: the caller gives it a new branch,
        sends it straight to :func:`next_hop`, and keeps it (see ``AckCache``) to
        send again when the 2xx is retransmitted.  ``body`` carries the answer
        when the 2xx held the offer (late offer).  Pass the INVITE's Authorization
        and Proxy-Authorization in ``headers`` (13.2.2.4: same credentials).
        Allowed in any state: a 2xx must be ACKed even on a dialog being torn down.
        """
        number = self.last_invite_cseq if invite_cseq is None else invite_cseq
        if number is None:
            raise ValueError("no INVITE sent on this dialog: give invite_cseq")
        return self._build("ACK", number, "ACK", body, content_type, headers)

    def target_and_route(self) -> tuple[str, list[str]]:
        """The Request-URI and Route values of our next request (RFC 3261 12.2.1.1), as text.

        - empty route set: the remote target, no Route;
        - first route has ``lr`` (loose router): the remote target, Route = the
          route set in order with all parameters;
        - first route lacks ``lr`` (strict router, RFC 2543): the first route's
          URI (headers and ``method`` stripped), Route = the rest of the route set
          followed by the remote target as the last value.
        """
        target = _request_uri_text(self._target)
        routes = self._routes
        if not routes:
            return target, []
        first = parse_name_addr(routes[0], "Route").uri
        if "lr" in first.params:
            return target, list(routes)
        rest = list(routes[1:])
        rest.append(f"<{self._target}>")
        return str(_request_uri(first)), rest

    def _build(
        self,
        method: str,
        number: int,
        cseq_method: str,
        body: bytes,
        content_type: str | None,
        extra: Iterable[tuple[str, str]],
    ) -> Request:
        if body and content_type is None:
            raise ValueError("a request with a body needs a Content-Type (RFC 3261 7.4.1)")
        uri, routes = self.target_and_route()
        headers = Headers()
        if routes:
            headers.add("Route", ", ".join(routes))
        headers.add("Max-Forwards", _MAX_FORWARDS_TEXT)
        headers.add("From", self._from)
        headers.add("To", self._to)
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{number} {cseq_method}")
        if method in TARGET_REFRESH_METHODS and self._contact is not None:
            headers.add("Contact", self._contact)
        for name, value in extra:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    # -- requests we receive (12.2.2) -------------------------------------------
    def check_remote_cseq(self, request: Request) -> bool:
        """False when ``request`` is out of order: the caller answers 500 (12.2.2).

        Out of order means a CSeq number lower than the remote CSeq.  An equal
        number is a retransmission, which the transaction layer absorbs before
        it gets here.  ACK and CANCEL carry the INVITE's number and are always in
        order (and are never answered with 500).
        """
        if request.method in _NO_NEW_CSEQ or self.remote_cseq is None:
            return True
        return request.cseq.number >= self.remote_cseq

    def receive_request(self, request: Request) -> None:
        """Take in a request of this dialog that passed :meth:`check_remote_cseq`.

        Records its CSeq as the remote CSeq; for a target refresh request with a
        Contact, replaces the remote target (12.2.2: "When a UAS receives a target
        refresh request, it MUST replace the dialog's remote target URI with the
        URI from the Contact header field in that request, if present"); notes a
        re-INVITE or UPDATE in progress until :meth:`response_sent` sees its final
        response (see ``conflict_response``).  ACK and CANCEL change nothing.
        """
        method = request.method
        if method in _NO_NEW_CSEQ:
            return
        number = request.cseq.number
        if self.remote_cseq is None or number > self.remote_cseq:
            self.remote_cseq = number
        if method in TARGET_REFRESH_METHODS:
            target = _contact_target(request)
            if target is not None:
                self.remote_target = target
        if method == "INVITE":
            self._invite_in = number
        elif method == "UPDATE":
            self._update_in = number

    def response_sent(
        self, response: Response, *, local_target: NameAddr | str | None = None
    ) -> None:
        """Take in a response we send to a request of this dialog (UAS side).

        A 2xx to the INVITE confirms an early dialog; a final non-2xx to the
        INVITE that created an early dialog terminates it (RFC 3261 12.3); a final
        response ends the INVITE or UPDATE in progress; a 2xx to a target refresh
        with a Contact makes that Contact the local target (``local_target`` when
        the caller has the Contact it put there at hand, else read from the response).
        """
        status = response.status
        if status < 200:
            return
        cseq = response.cseq
        if cseq.method == "INVITE":
            if self._invite_in == cseq.number:
                self._invite_in = None
            if self.state is DialogState.EARLY:
                if status < 300:
                    self.state = DialogState.CONFIRMED
                else:
                    self.terminate()
        elif cseq.method == "UPDATE" and self._update_in == cseq.number:
            self._update_in = None
        if status < 300 and cseq.method in TARGET_REFRESH_METHODS:
            contact = _first_contact(response) if local_target is None else local_target
            if contact is not None:
                self.local_target = contact

    # -- responses we receive (12.2.1.2, 13.2.2.4) ------------------------------
    def response_received(self, response: Response) -> None:
        """Take in a response to a request we sent on this dialog (UAC side).

        - a 2xx to a target refresh request replaces the remote target with its
          Contact (12.2.1.2); in the early state so does a provisional response
          to the INVITE with a Contact (the newest Contact of the callee);
        - a 2xx to the INVITE confirms an early dialog, and a UAC then recomputes
          the route set from the 2xx's Record-Route (13.2.2.4: "the route set for
          the dialog MUST be recomputed based on the 2xx response");
        - a final non-2xx to the INVITE of an early dialog terminates it (12.3);
        - a 481 or 408 terminates the dialog (12.2.1.2: "the UAC SHOULD terminate
          the dialog").
        """
        status = response.status
        cseq = response.cseq
        if status < 200:
            if self.state is DialogState.EARLY and cseq.method == "INVITE" and status > 100:
                target = _contact_target(response)
                if target is not None:
                    self.remote_target = target
            return
        if cseq.method == "INVITE" and self._invite_out == cseq.number:
            self._invite_out = None
        if status in (481, 408):
            self.terminate()
            return
        if status >= 300:
            if cseq.method == "INVITE" and self.state is DialogState.EARLY:
                self.terminate()
            return
        if cseq.method in TARGET_REFRESH_METHODS:
            target = _contact_target(response)
            if target is not None:
                self.remote_target = target
        if cseq.method == "INVITE" and self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED
            if self.uac:
                routes = _record_route(response)
                routes.reverse()
                self.route_set = tuple(routes)

    # -- RFC 3262 reliable provisional responses, UAC side ----------------------
    def accept_rseq(self, response: Response) -> bool:
        """Whether to process and PRACK a reliable provisional response (RFC 3262 4).

        True for the first reliable provisional response to a request (its RSeq
        starts the count) and for the next one in order (RSeq exactly one higher);
        then the count moves on.  False for a retransmission or an out-of-order
        response ("MUST NOT be acknowledged with a PRACK, and MUST NOT be processed
        further"), and for a response that is not a reliable provisional response
        (see ``is_reliable``; process those as usual, without PRACK).  The count
        restarts for a response to another request (a re-INVITE: a new RSeq space).
        """
        rseq = rseq_of(response)
        if rseq is None:
            return False
        number = response.cseq.number
        last = self._rseq
        if last is not None and last[0] == number and rseq != last[1] + 1:
            return False
        self._rseq = (number, rseq)
        return True

    def __repr__(self) -> str:
        role = "UAC" if self.uac else "UAS"
        tags = f"{self.id.local_tag}/{self.id.remote_tag}"
        return f"<Dialog {role} {self.state.value} {self.id.call_id} {tags}>"


def _check_creating(response: Response) -> None:
    if not 101 <= response.status < 300:
        raise ValueError(f"a {response.status} response creates no dialog (RFC 3261 12.1)")


def dialog_response(
    request: Request,
    status: int,
    *,
    to_tag: str,
    contact: NameAddr | str,
    reason: str | None = None,
) -> Response:
    """A response of a UAS that creates (or confirms) a dialog, per RFC 3261 12.1.1.

    ``response_for`` (Via, From, To, Call-ID, CSeq) plus our To tag, every
    Record-Route value of the request in order ("the UAS MUST copy all
    Record-Route header field values from the request into the response") and our
    ``contact`` ("The UAS MUST add a Contact header field to the response").
    Feed it to :meth:`Dialog.from_uas` to get the dialog.
    """
    response = response_for(request, status, reason, to_tag=to_tag)
    for line in request.headers.get_lines("Record-Route"):
        response.headers.add("Record-Route", line)
    response.headers.add("Contact", str(contact))
    return response


def next_hop(dialog: Dialog) -> URI:
    """Where to send the dialog's next request (RFC 3261 8.1.2 and 12.2.1.1).

    The first URI of the route set when there is one (with a strict first hop it
    is the Request-URI, with a loose one the top Route; either way the request goes
    there), else the remote target.  The transport resolves it per RFC 3263.
    """
    text, is_route = next_hop_text(dialog)
    return parse_name_addr(text, "Route").uri if is_route else parse_uri(text)


def next_hop_text(dialog: Dialog) -> tuple[str, bool]:
    """What :func:`next_hop` decodes, as the dialog keeps it: the first Route value
    (True) or the remote target URI (False).  Equal texts give equal next hops, so a
    caller can keep what it made of one (see bridge.destinations)."""
    routes = dialog._routes
    if routes:
        return routes[0], True
    return dialog._target, False


def credentials(request: Request) -> list[tuple[str, str]]:
    """The Authorization and Proxy-Authorization lines of ``request``, in order.

    An ACK for 2xx carries the INVITE's credentials (RFC 3261 13.2.2.4):
    ``dialog.create_ack(headers=credentials(invite))``.
    """
    return [
        (name, value)
        for name, value in request.headers.items()
        if name.lower() in ("authorization", "proxy-authorization")
    ]


__all__ = [
    "MAX_CSEQ",
    "MAX_FORWARDS",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogState",
    "credentials",
    "dialog_response",
    "next_hop",
    "next_hop_text",
]
