"""Crossing requests within a dialog: re-INVITE glare (RFC 3261 14) and UPDATE (RFC 3311 5.2).

Two UAs may start an INVITE on the same dialog at once.  The receiving side
answers 491 or 500 (:func:`conflict_response`); the side that got the 491 tries
again after a random delay that favours the Call-ID's owner (:func:`glare_retry_delay`).
Offer/answer conflicts of UPDATE (its 491 case) need the session state and are the
caller's business.
"""

from __future__ import annotations

import random

from ..sip import Request, Response, response_for
from .dialog import Dialog

_RNG = random.Random()


def _retry_later(request: Request, rng: random.Random) -> Response:
    response = response_for(request, 500)
    response.headers.add("Retry-After", str(rng.randint(0, 10)))
    return response


def conflict_response(
    dialog: Dialog, request: Request, *, rng: random.Random | None = None
) -> Response | None:
    """The error response for a re-INVITE or UPDATE that crosses another, or None.

    Call it before ``dialog.receive_request(request)``:

    - INVITE while our own INVITE on the dialog is in progress: 491 (RFC 3261
      14.2: "A UAS that receives an INVITE on a dialog while an INVITE it had sent
      on that dialog is in progress MUST return a 491 (Request Pending)");
    - INVITE before we sent the final response to an earlier INVITE: 500 with a
      Retry-After of 0 to 10 seconds (14.2);
    - UPDATE before we sent the final response to an earlier UPDATE: 500 with a
      Retry-After of 0 to 10 seconds (RFC 3311 5.2).
    """
    rng = rng or _RNG
    method = request.method
    if method == "INVITE":
        if dialog.outgoing_invite is not None:
            return response_for(request, 491)
        pending = dialog.incoming_invite
        if pending is not None and pending < request.cseq.number:
            return _retry_later(request, rng)
    elif method == "UPDATE":
        pending = dialog.incoming_update
        if pending is not None and pending < request.cseq.number:
            return _retry_later(request, rng)
    return None


def glare_retry_delay(dialog: Dialog, *, rng: random.Random | None = None) -> float:
    """Seconds to wait before re-sending an INVITE that got 491 (RFC 3261 14.1).

    2.1 to 4 seconds in steps of 10 ms when we own the Call-ID (we sent the
    request that created the dialog, ``dialog.uac``), 0 to 2 seconds otherwise.
    """
    rng = rng or _RNG
    if dialog.uac:
        return rng.randint(210, 400) / 100
    return rng.randint(0, 200) / 100


__all__ = ["conflict_response", "glare_retry_delay"]
