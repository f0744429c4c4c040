"""Request checks a UAS makes before acting (RFC 3261 section 8.2), as plain functions.

Each check returns the response to send, or None to go on.  They are pure so the
RFC's rules are tested without a transaction in sight.
"""

from __future__ import annotations

from collections.abc import Callable

from ..sip import Request, Response, SIPParseError, response_for

#: Methods this server understands (RFC 3261 and companions); others get 501.
KNOWN_METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK UPDATE INFO MESSAGE REFER "
    "NOTIFY SUBSCRIBE PUBLISH".split()
)
#: URI schemes a Request-URI may use here; others get 416 (RFC 3261 8.2.2.1).
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})


def check_request(
    request: Request, supported: frozenset[str], *, new_tag: Callable[[], str]
) -> Response | None:
    """Run the RFC 3261 8.2 checks in the RFC's order; return the error response or None.

    ``new_tag`` makes the To tag of an error response; it is called only when there
    is one (a random tag per request that passes would be wasted).

    Order: the message is well formed (400 and friends from SIPParseError), the
    method is known (501), the Request-URI scheme is supported (416), every
    Require option is supported (420 with Unsupported; not for ACK or CANCEL,
    8.2.2.3), and Max-Forwards is not exhausted (483; OPTIONS is answered anyway
    since we are its destination).
    """
    try:
        request.validate()
    except SIPParseError as error:
        return error_response(request, error.status, error.reason, to_tag=new_tag())
    if request.method not in KNOWN_METHODS:
        return response_for(request, 501, to_tag=new_tag())
    if request.request_uri.scheme not in SUPPORTED_SCHEMES:
        resp = response_for(request, 416, to_tag=new_tag())
        return resp
    if request.method not in ("ACK", "CANCEL") and "Require" in request.headers:
        required = [opt.strip() for opt in request.headers.get_all("Require")]
        unsupported = [opt for opt in required if opt.lower() not in supported]
        if unsupported:
            resp = response_for(request, 420, to_tag=new_tag())
            resp.headers.add("Unsupported", ", ".join(unsupported))
            return resp
    max_forwards = request.max_forwards
    if max_forwards is not None and max_forwards <= 0 and request.method != "OPTIONS":
        return response_for(request, 483, to_tag=new_tag())
    return None


def error_response(request: Request, status: int, detail: str, *, to_tag: str) -> Response:
    """An error response whose reason phrase carries the detail (e.g. which limit)."""
    resp = response_for(request, status, to_tag=to_tag)
    resp.reason = f"{resp.reason} ({_printable(detail)})"
    return resp


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() and c.isascii() else "?" for c in text)[:120]
