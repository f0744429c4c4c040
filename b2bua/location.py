"""What the location service holds: bindings of addresses of record (RFC 3261 10).

Pure values, shared by the registrar that writes them and the routers that read
them (through :class:`b2bua.interfaces.ILocationService`).  An address of record
(AOR) is always handled in its canonical form, a plain string made by
:func:`address_of_record`, so ``sip:Alice@EXAMPLE.com;transport=tcp`` and
``sips:Alice@example.com:5061`` index the same bindings.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field

from .sip import URI, SIPParseError, parse_name_addr
from .sip.uri import unescape

__all__ = ["Binding", "address_of_record", "canonical_host"]


def canonical_host(host: str) -> str:
    """A host for comparison: lower case, no trailing dot, IP addresses in canonical
    form, IPv6 without brackets (``[::0001]`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def address_of_record(uri: URI) -> str:
    """The canonical AOR of a SIP URI: ``sip:user@host`` (RFC 3261 10.3 step 5).

    The scheme is always ``sip`` (a sips AOR is the same user), the user is
    unescaped (and keeps its case), the host is :func:`canonical_host` (IPv6 in
    brackets), and the port, URI parameters and headers are dropped: an AOR names
    a user in a domain.  It is an index key, not necessarily a parseable URI.
    Raises ValueError for a URI that is not sip/sips or has no user part.
    """
    if not uri.is_sip:
        raise ValueError(f"{uri} is not a sip: or sips: URI")
    if not uri.user:
        raise ValueError(f"{uri} has no user part")
    host = canonical_host(uri.host)
    if ":" in host:
        host = f"[{host}]"
    return f"sip:{unescape(uri.user)}@{host}"


@dataclass(frozen=True, slots=True)
class Binding:
    """One contact of an address of record, as the registrar accepted it.

    - ``aor``: the canonical AOR (:func:`address_of_record`);
    - ``contact``: the Contact value as registered, without its ``expires``
      parameter (``<sip:alice@192.0.2.7:5060;transport=tcp>;q=0.5``); ``uri`` is
      its URI, parsed;
    - ``expires_at``: when it expires, in the clock's seconds (``reactor.seconds()``,
      i.e. the Unix time on a real reactor, so it survives a restart);
    - ``q``: the q-value, or None when the contact gave none (counts as 1.0);
    - ``call_id``, ``cseq``: of the REGISTER that last touched it (RFC 3261 10.3
      step 7 orders updates with them);
    - ``path``: the Path header values of that REGISTER (RFC 3327), in order;
    - ``source``: where that REGISTER came from (``UDP 192.0.2.7:5060``);
    - ``registered_at``: when the contact was first registered (refreshes keep
      it); bindings of equal q are tried in this order.
    """

    aor: str
    contact: str
    expires_at: float
    q: float | None = None
    call_id: str = ""
    cseq: int = 0
    path: tuple[str, ...] = ()
    source: str = ""
    registered_at: float = 0.0
    uri: URI = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", contact_uri(self.contact))

    @property
    def priority(self) -> float:
        """The q-value used for ordering (1.0 when none was given)."""
        return 1.0 if self.q is None else self.q

    def live(self, now: float) -> bool:
        """True until the binding's expiry time."""
        return self.expires_at > now

    def expires_in(self, now: float) -> int:
        """Whole seconds left (rounded up, 0 once expired): the ``expires`` to report."""
        return max(0, math.ceil(self.expires_at - now))


def contact_uri(contact: str) -> URI:
    """The URI of a Contact value (ValueError when it is not one)."""
    try:
        value = parse_name_addr(contact, "Contact")
    except SIPParseError as e:
        raise ValueError(f"bad contact {contact!r}: {e.reason}") from None
    if value.is_star:
        raise ValueError("'*' is not a contact")
    return value.uri
