"""Server nonces: stateless, HMAC-signed, with expiry; and nonce-count replay protection.

A nonce carries the time it was issued and a random salt, signed with a secret
(HMAC-SHA-256), so the server keeps no state per challenge and can still tell
its own nonces from forged ones and fresh ones from stale ones (RFC 7616 3.3,
5.5).  :class:`NonceCounts` remembers, for nonces that have been used with good
credentials, the highest nonce-count seen, so a replayed request is refused
(RFC 7616 3.4: nc must grow).  Pure: the current time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["NonceCounts", "NonceFactory", "NonceStatus"]

_STAMP = struct.Struct(">Q")  # issue time, in milliseconds
_SALT_SIZE = 8
_MAC_SIZE = 16
_RAW_SIZE = _STAMP.size + _SALT_SIZE + _MAC_SIZE
#: A nonce dated this far in the future (clock steps, other workers) is still accepted.
_CLOCK_SKEW_MS = 5_000


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class NonceStatus(enum.Enum):
    """What :meth:`NonceFactory.check` thinks of a nonce."""

    VALID = "valid"  # ours, signed, not expired
    STALE = "stale"  # ours but expired
    INVALID = "invalid"  # not ours (forged, garbled, or from another secret)


class NonceFactory:
    """Issues and checks nonces: ``base64url(issued_ms | salt | HMAC(secret, issued_ms | salt))``.

    ``secret`` should be random per process (the default) or shared by the
    processes that serve the same clients; ``lifetime`` is how many seconds a
    nonce stays valid.
    """

    __slots__ = ("_key", "_random", "lifetime")

    def __init__(
        self,
        secret: bytes | None = None,
        lifetime: float = 300.0,
        *,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("nonce lifetime must be positive")
        self._key = secret if secret else secrets.token_bytes(32)
        self._random = random
        self.lifetime = lifetime

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:_MAC_SIZE]

    def new(self, now: float) -> str:
        """A fresh nonce issued at ``now`` (seconds)."""
        data = _STAMP.pack(max(0, int(now * 1000))) + self._random(_SALT_SIZE)
        return _encode(data + self._mac(data))

    def issued(self, nonce: str) -> float | None:
        """When ``nonce`` was issued (seconds), or None if it is not one of ours."""
        if len(nonce) != 43:  # 32 bytes in unpadded base64
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _RAW_SIZE or _encode(raw) != nonce:
            return None  # only the canonical spelling: one nonce, one nonce-count entry
        data, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        if not hmac.compare_digest(mac, self._mac(data)):
            return None
        return float(_STAMP.unpack_from(data)[0]) / 1000.0

    def check(self, nonce: str, now: float) -> NonceStatus:
        """VALID, STALE (ours, expired) or INVALID (not ours, or dated in the future)."""
        return self.status(self.issued(nonce), now)

    def status(self, issued: float | None, now: float) -> NonceStatus:
        """:meth:`check` for a nonce whose :meth:`issued` time is known."""
        if issued is None or issued * 1000 > now * 1000 + _CLOCK_SKEW_MS:
            return NonceStatus.INVALID
        if now - issued >= self.lifetime:
            return NonceStatus.STALE
        return NonceStatus.VALID


class NonceCounts:
    """The highest nonce-count used with each nonce, in a bounded table.

    :meth:`use` accepts a nonce-count only if it is higher than every one used
    before with that nonce.  Entries go when their nonce expires; when the table
    is full the oldest entry goes, and from then on any nonce issued no later
    than an evicted one is refused (its history is lost), so eviction can never
    let a replay through: the client just gets a fresh challenge.
    """

    __slots__ = ("_floor", "_seen", "lifetime", "max_entries")

    def __init__(self, lifetime: float, max_entries: int = 100_000) -> None:
        self.lifetime = lifetime
        self.max_entries = max_entries
        #: nonce -> (issued, highest nc), in order of first use
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._floor = float("-inf")

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, nonce: str, issued: float, nc: int, now: float) -> bool:
        """Record nonce-count ``nc`` for ``nonce``; False if it is not higher than before.

        A request without qop has no nonce-count: pass 0, which makes such a
        nonce good for one request only.
        """
        self._expire(now)
        seen = self._seen.get(nonce)
        if seen is not None:
            if nc <= seen[1]:
                return False
            self._seen[nonce] = (issued, nc)
            return True
        if issued <= self._floor:
            return False
        self._seen[nonce] = (issued, nc)
        if len(self._seen) > self.max_entries:
            _, (evicted, _nc) = self._seen.popitem(last=False)
            self._floor = max(self._floor, evicted)
        return True

    def _expire(self, now: float) -> None:
        seen = self._seen
        horizon = now - self.lifetime
        while seen:
            nonce, (issued, _nc) = next(iter(seen.items()))
            if issued > horizon:
                return
            del seen[nonce]
