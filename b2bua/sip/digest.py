"""HTTP digest for SIP (RFC 3261 22, RFC 7616, RFC 8760): challenges and credentials.

Pure functions: parse a ``WWW-Authenticate``/``Proxy-Authenticate`` challenge,
compute the response for MD5 or SHA-256 (with ``qop=auth`` or without qop), and
build or parse (:class:`Credentials`) the ``Authorization``/``Proxy-Authorization``
value.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from .errors import SIPParseError
from .grammar import WS, quote, read_quoted

#: RFC 8760 algorithm names and their hash functions.
ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _h(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode("utf-8")).hexdigest()


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest a=b, c="d"`` into the scheme and its (lowercased) parameters."""
    value = value.strip(WS)
    scheme, _, rest = value.partition(" ")
    if not scheme:
        raise SIPParseError(400, "empty authentication header")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise SIPParseError(400, "malformed authentication parameter")
        name = rest[i:eq].strip(WS).lower()
        j = eq + 1
        while j < n and rest[j] in WS:
            j += 1
        if j < n and rest[j] == '"':
            val, j = read_quoted(rest, j)
        else:
            end = rest.find(",", j)
            end = n if end < 0 else end
            val, j = rest[j:end].strip(WS), end
        if not name:
            raise SIPParseError(400, "malformed authentication parameter")
        params[name] = val
        i = j
    return scheme, params


@dataclass(frozen=True, slots=True)
class Challenge:
    """A digest challenge from a 401 or 407."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        """Parse a WWW-Authenticate / Proxy-Authenticate value (Digest only)."""
        scheme, p = parse_auth_params(value)
        if scheme.lower() != "digest":
            raise SIPParseError(400, f"unsupported authentication scheme {scheme!r}")
        if "realm" not in p or "nonce" not in p:
            raise SIPParseError(400, "digest challenge without realm or nonce")
        algorithm = p.get("algorithm", "MD5").upper()
        qop = tuple(q.strip() for q in p.get("qop", "").split(",") if q.strip())
        return cls(
            p["realm"],
            p["nonce"],
            algorithm,
            qop,
            p.get("opaque"),
            p.get("stale", "").lower() == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f'qop="{",".join(self.qop)}"')
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The digest credentials of an ``Authorization``/``Proxy-Authorization`` value.

    ``qop``, ``nc`` and ``cnonce`` are None when the client answered without
    qop (RFC 2069 style, which RFC 3261 22.4 still allows).
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> Credentials:
        """Parse a Digest credentials value; SIPParseError when it is not one.

        Requires username, realm, nonce, uri and response (RFC 7616 3.4), and nc
        with cnonce when qop is present.  ``algorithm`` is upper-cased (it
        defaults to MD5), ``response`` lower-cased (hex).
        """
        scheme, p = parse_auth_params(value)
        if scheme.lower() != "digest":
            raise SIPParseError(400, f"unsupported authentication scheme {scheme[:20]!r}")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            raise SIPParseError(400, f"digest credentials without {', '.join(missing)}")
        qop = p.get("qop") or None
        if qop is not None and ("nc" not in p or "cnonce" not in p):
            raise SIPParseError(400, "digest credentials with qop but without nc or cnonce")
        return cls(
            p["username"],
            p["realm"],
            p["nonce"],
            p["uri"],
            p["response"].lower(),
            p.get("algorithm", "MD5").upper(),
            qop,
            p.get("nc") if qop else None,
            p.get("cnonce") if qop else None,
            p.get("opaque"),
        )


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password), what a users file stores instead of the password."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def digest_response(
    ha1_value: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    """The ``response`` value (RFC 7616 3.4.1; RFC 2617 compatibility without qop)."""
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1_value}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1_value}:{nonce}:{ha2}")


def authorization(
    challenge: Challenge, username: str, password: str, method: str, uri: str, nc: int = 1
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge``."""
    if challenge.algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {challenge.algorithm}")
    secret = ha1(username, challenge.realm, password, challenge.algorithm)
    qop = "auth" if "auth" in challenge.qop else None
    cnonce = secrets.token_hex(8) if qop else ""
    nc_text = f"{nc:08x}"
    response = digest_response(
        secret, method, uri, challenge.nonce,
        algorithm=challenge.algorithm, qop=qop, nc=nc_text, cnonce=cnonce,
    )  # fmt: skip
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    return "Digest " + ", ".join(parts)
