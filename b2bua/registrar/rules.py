"""What a registrar does with a REGISTER (RFC 3261 10.3, RFC 3327), as pure functions.

No I/O and no Twisted: the request, the current bindings of its address of
record and the time go in; the new bindings (or the error to answer with) and
the responses come out.  :mod:`b2bua.registrar.registrar` drives them with the
location service.

The steps, in the RFC's order (authentication is the core's, before us):

1. the Request-URI names one of our domains, else 403;
2. the address of record is the To URI in canonical form
   (:func:`~b2bua.location.address_of_record`); a To outside our domains, not
   sip/sips or without a user gets 404;
3. an authenticated sender may register only its own AOR (403);
4. ``Contact: *`` must be alone and come with ``Expires: 0`` (400); it removes
   every binding;
5. each contact's interval is its ``expires`` parameter, else the Expires header,
   else ``default_expires``; a non-zero interval shorter than ``min_expires`` (and
   than an hour) fails the whole request with 423 and Min-Expires; longer ones are
   cut to ``max_expires``; 0 removes the binding;
6. an update of a binding with the same Call-ID and a CSeq not higher than the
   stored one fails the whole request with 500 (10.3 step 7);
7. nothing changes unless every contact was accepted; the 200 lists every current
   binding with its ``expires`` (a REGISTER without Contact only fetches them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import formatdate

from ..location import Binding, address_of_record, canonical_host
from ..sip import NameAddr, Request, Response, SIPParseError, parse_name_addr, response_for
from ..sip.fields import MAX_DELTA_SECONDS

__all__ = [
    "RegisterError",
    "RegistrarSettings",
    "Registration",
    "apply_register",
    "check_identity",
    "error_response",
    "ok_response",
    "registration_aor",
]

#: RFC 3261 10.3 step 7: only intervals under an hour may be refused as too brief.
ONE_HOUR = 3600
#: Reason phrase of the 500 for an out-of-order REGISTER.
OUT_OF_ORDER = "Out of Order Registration"

_QVALUE_RE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    """The registrar's domains (canonical hosts) and its expiry bounds, in seconds."""

    domains: frozenset[str]
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600


class RegisterError(Exception):
    """A REGISTER that fails: the status, reason phrase and extra headers to answer with."""

    def __init__(
        self, status: int, reason: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(f"{status} {reason or ''}".strip())
        self.status = status
        self.reason = reason
        self.headers = tuple(headers)


@dataclass(frozen=True, slots=True)
class Registration:
    """An accepted REGISTER: the AOR's bindings after it, or None for a fetch.

    ``path`` is the request's Path (RFC 3327), ``echo_path`` whether the 200
    carries it back (the UA said ``Supported: path``).
    """

    aor: str
    bindings: tuple[Binding, ...] | None
    path: tuple[str, ...] = ()
    echo_path: bool = False


def registration_aor(request: Request, settings: RegistrarSettings) -> str:
    """Steps 1 and 2: the canonical AOR the REGISTER is for, or RegisterError."""
    ruri = request.request_uri
    if not ruri.is_sip or canonical_host(ruri.host) not in settings.domains:
        raise RegisterError(403, "Domain Not Served Here")
    try:
        to_uri = request.to.uri
    except SIPParseError as e:
        raise RegisterError(400, f"Bad To ({e.reason})") from None
    if not to_uri.is_sip or canonical_host(to_uri.host) not in settings.domains:
        raise RegisterError(404, "Not Found (address of record not in our domains)")
    try:
        return address_of_record(to_uri)
    except ValueError:
        raise RegisterError(404, "Not Found (address of record without a user)") from None


def check_identity(identity: str | None, aor: str) -> None:
    """Step 3: the authenticated ``identity`` (None: no authentication) may register ``aor``.

    It matches the AOR's user (``alice`` for ``sip:alice@example.com``) or the
    whole ``user@host``; anything else is a third-party registration: 403.
    """
    if identity is None:
        return
    user, _, host = aor[len("sip:") :].rpartition("@")
    wanted = identity[4:] if identity.lower().startswith("sip:") else identity
    if wanted == user:
        return
    name, at, domain = wanted.rpartition("@")
    if at and name == user and canonical_host(domain) == canonical_host(host):
        return
    raise RegisterError(403, "Forbidden (not your address of record)")


def apply_register(
    request: Request,
    aor: str,
    current: Sequence[Binding],
    now: float,
    settings: RegistrarSettings,
    source: str = "",
) -> Registration:
    """Steps 4 to 7: the bindings of ``aor`` after ``request`` (``current`` are the live ones).

    Raises RegisterError (400, 423 or 500) and changes nothing when any contact
    cannot be accepted.
    """
    try:
        contacts = request.contacts
    except SIPParseError as e:
        raise RegisterError(400, f"Bad Contact ({e.reason})") from None
    path = _path(request)
    echo = bool(path) and "path" in _tokens(request.headers.get_all("Supported"))
    if not contacts:
        return Registration(aor, None, path, echo)
    call_id = request.call_id
    cseq = request.cseq.number
    header_expires = _expires_header(request)
    ordered = sorted(current, key=lambda b: b.registered_at)  # stable: list order for ties

    if any(c.is_star for c in contacts):
        if len(contacts) != 1:
            raise RegisterError(400, "Bad Request (Contact: * must be the only contact)")
        if header_expires != 0:
            raise RegisterError(400, "Bad Request (Contact: * needs Expires: 0)")
        for binding in ordered:
            _check_order(binding, call_id, cseq)
        return Registration(aor, (), path, echo)

    bindings = list(ordered)
    touched: set[int] = set()  # bindings this request already set (a contact given twice)
    for contact in contacts:
        interval = _interval(contact, header_expires, settings)
        uri = contact.uri
        index = next((i for i, b in enumerate(bindings) if b.uri == uri), None)
        existing = bindings[index] if index is not None else None
        if existing is not None and id(existing) not in touched:
            _check_order(existing, call_id, cseq)
        if interval == 0:
            if index is not None:
                del bindings[index]
            continue
        binding = Binding(
            aor,
            str(contact.without_params("expires")),
            now + interval,
            _qvalue(contact),
            call_id,
            cseq,
            path,
            source,
            existing.registered_at if existing is not None else now,
        )
        touched.add(id(binding))
        if index is None:
            bindings.append(binding)
        else:
            bindings[index] = binding
    return Registration(aor, tuple(bindings), path, echo)


def ok_response(
    request: Request,
    registration: Registration,
    bindings: Iterable[Binding],
    now: float,
    *,
    to_tag: str,
) -> Response:
    """The 200 OK (10.3 step 8): every current binding with its expires, a Date header,
    and the Path with ``Supported: path`` when the UA supports it (RFC 3327 5.3)."""
    resp = response_for(request, 200, to_tag=to_tag)
    for binding in bindings:
        if not binding.live(now):
            continue
        contact = parse_name_addr(binding.contact, "Contact")
        resp.headers.add("Contact", str(contact.with_params(expires=str(binding.expires_in(now)))))
    if registration.echo_path:
        for hop in registration.path:
            resp.headers.add("Path", hop)
        resp.headers.add("Supported", "path")
    resp.headers.add("Date", formatdate(now, usegmt=True))
    return resp


def error_response(request: Request, error: RegisterError, *, to_tag: str) -> Response:
    """The response for a failed REGISTER."""
    resp = response_for(request, error.status, error.reason, to_tag=to_tag)
    for name, value in error.headers:
        resp.headers.add(name, value)
    return resp


# -- pieces ---------------------------------------------------------------------


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """10.3 step 7: the same Call-ID must come with a higher CSeq, else abort with 500."""
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise RegisterError(500, OUT_OF_ORDER, (("Retry-After", "1"),))


def _interval(contact: NameAddr, header: int | None, settings: RegistrarSettings) -> int:
    """The expiration interval granted to one contact (10.2.1.1, 10.3 step 7)."""
    raw = contact.param("expires")
    asked = _delta_seconds(raw) if raw is not None else header
    # 20.19: a malformed value is taken as the default
    requested = settings.default_expires if asked is None or asked == MALFORMED else asked
    if 0 < requested < settings.min_expires and requested < ONE_HOUR:
        raise RegisterError(423, None, (("Min-Expires", str(settings.min_expires)),))
    return min(requested, settings.max_expires)


#: What :func:`_delta_seconds` gives for a value that is not delta-seconds.
MALFORMED = -1


def _expires_header(request: Request) -> int | None:
    """The Expires header: None when absent, MALFORMED when it is not delta-seconds."""
    value = request.headers.get("Expires")
    return None if value is None else _delta_seconds(value)


def _delta_seconds(text: str) -> int:
    """delta-seconds capped at 2**32-1, or MALFORMED."""
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        return MALFORMED
    return min(int(text), MAX_DELTA_SECONDS)


def _qvalue(contact: NameAddr) -> float | None:
    raw = contact.param("q")
    if raw is None:
        return None
    if _QVALUE_RE.fullmatch(raw) is None:
        raise RegisterError(400, f"Bad Request (q={raw[:20]!r} is not a q-value)")
    return float(raw)


def _path(request: Request) -> tuple[str, ...]:
    values = request.headers.get_all("Path")
    for value in values:
        try:
            parse_name_addr(value, "Path")
        except SIPParseError as e:
            raise RegisterError(400, f"Bad Path ({e.reason})") from None
    return tuple(values)


def _tokens(values: Iterable[str]) -> set[str]:
    return {v.strip().lower() for v in values}
