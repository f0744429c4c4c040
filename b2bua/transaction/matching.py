"""Transaction identifiers: matching keys (RFC 3261 17.1.3, 17.2.3, 8.2.2.2), branches, tags.

Keys are plain strings or tuples so matching is one dict lookup:

- client transactions: ``"branch method"``, the method being the CSeq method of
  a response (17.1.3); the branch is always ours and carries the magic cookie;
- server transactions, requests with an RFC 3261 branch:
  ``"branch sent-by-host sent-by-port method"`` with ACK counted as INVITE, so an
  ACK finds its INVITE transaction and a CANCEL gets its own (17.2.3);
- server transactions, RFC 2543 requests (branch without ``z9hG4bK``):
  ``(Call-ID, From tag, CSeq number, top Via, Request-URI, method)``; the To tag,
  also part of the rule, is checked after the lookup because an ACK carries the
  response's To tag rather than the INVITE's;
- merged requests (8.2.2.2): ``"Call-ID From-tag CSeq-number CSeq-method"``.

The common keys are strings joined by spaces, none of their parts holding one
(tokens, a host, a number; a missing tag or branch is empty, a missing port
None), rather than tuples: a finished transaction stays in the layer's maps under
its key for up to 64*T1 (:mod:`.ghosts`), and a string is an atom the garbage
collector never tracks, where a tuple is scanned by the first collection after
it is made.  At a few hundred calls per second those tuples were a quarter of
what each young collection scanned, lengthening its pause.  A string also caches
its hash; a tuple's is recomputed on every lookup.
"""

from __future__ import annotations

import secrets

from ..sip import Request, Response, Via

__all__ = [
    "MAGIC_COOKIE",
    "ClientKey",
    "Key",
    "MergeKey",
    "ServerKey",
    "client_key",
    "has_magic_cookie",
    "merge_key",
    "new_branch",
    "new_tag",
    "server_key",
    "server_key_for_response",
    "sibling_key",
    "via_key",
]

#: RFC 3261 8.1.1.7: branches of RFC 3261 implementations start with this.
MAGIC_COOKIE = "z9hG4bK"

ClientKey = str
ServerKey = str | tuple[object, ...]
MergeKey = str
#: Any transaction's key: what a transaction and its ghost hold (client or server).
Key = ServerKey


def has_magic_cookie(branch: str | None) -> bool:
    """True for a branch built by RFC 3261 rules (unique per transaction)."""
    return branch is not None and branch.startswith(MAGIC_COOKIE)


def new_branch() -> str:
    """A fresh branch: the magic cookie and 64 random bits (RFC 3261 8.1.1.7)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """A fresh From/To tag with 48 random bits (RFC 3261 19.3 asks for at least 32)."""
    return secrets.token_hex(6)


def client_key(branch: str | None, method: str) -> ClientKey:
    """The key of the client transaction with ``branch`` and ``method`` (RFC 3261 17.1.3):
    a response's top-Via branch and CSeq method, a request's branch and method."""
    return f"{branch or ''} {method}"


def via_key(via: Via) -> tuple[object, ...]:
    """A hashable form of a Via value under RFC 3261 20.42 equality.

    Sent-protocol and sent-by equal, the same parameters with equal values; host
    and parameter values compare case-insensitively.
    """
    params = frozenset(
        (name, None if value is None else value.lower()) for name, value in via.params.items()
    )
    return (via.protocol.upper(), via.transport.upper(), via.host.lower(), via.port, params)


def server_key(request: Request, method: str) -> tuple[ServerKey, bool]:
    """The key of the server transaction ``request`` matches, counting it as ``method``.

    Returns the key and whether it is an RFC 2543 key (which needs the To tag
    checked after the lookup).  Raises SIPParseError if a header it reads is
    malformed.
    """
    via = request.top_via
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return _branch_key(branch, via, method), False
    return (
        request.call_id,
        request.from_tag,
        request.cseq.number,
        via_key(via),
        request.request_uri,
        method,
    ), True


def server_key_for_response(response: Response) -> ServerKey | None:
    """The key of the server transaction that sent ``response`` (RFC 3261 branches only).

    An RFC 2543 key needs the Request-URI, which a response does not carry: None then.
    """
    via = response.top_via
    branch = via.branch
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        return None
    return _branch_key(branch, via, response.cseq.method)


def _branch_key(branch: str, via: Via, method: str) -> str:
    """The RFC 3261 server key: the request's and its responses' must be the same string."""
    return f"{branch} {via.host.lower()} {via.port} {method}"


def sibling_key(key: ServerKey, method: str) -> ServerKey:
    """The key of the server transaction that ``key``'s request shares all but its
    method with: a CANCEL's key gives its INVITE's (RFC 3261 9.2)."""
    if isinstance(key, str):
        return f"{key.rpartition(' ')[0]} {method}"
    return (*key[:-1], method)


def merge_key(request: Request) -> MergeKey:
    """What RFC 3261 8.2.2.2 compares to detect a merged request: From tag, Call-ID, CSeq."""
    cseq = request.cseq
    return f"{request.call_id} {request.from_tag or ''} {cseq.number} {cseq.method}"
