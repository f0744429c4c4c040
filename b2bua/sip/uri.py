"""SIP, SIPS and TEL URIs (RFC 3261 section 19.1, RFC 3966), with 19.1.4 comparison."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .bounded import remember
from .errors import SIPParseError
from .grammar import NO_HEADERS, NO_PARAMS, checked_params, format_params, no_headers, no_params
from .patterns import SIP_URI_RE

_ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGIT = "0123456789"
_UNRESERVED = frozenset(_ALPHA + _DIGIT + "-_.!~*'()")
_RESERVED = frozenset(";/?:@&=+$,")
#: user = 1*( unreserved / escaped / user-unreserved ); user-unreserved = & = + $ , ; ? /
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/%")
_PASSWORD_CHARS = _UNRESERVED | frozenset("&=+$,%")
#: paramchar = param-unreserved / unreserved / escaped; param-unreserved = [ ] / : & + $
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$%")
#: hnv-unreserved = [ ] / ? : + $
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$%")
#: hostname = *( domainlabel "." ) toplabel [ "." ], labels alphanumeric with inner "-".
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?"
)
_IPV4ISH_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
#: URI parameters that must match when present in either URI (RFC 3261 19.1.4).
_BAD_URI_CHARS = re.compile(r'[\x00-\x20<>"\x7f]')
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")
_HEX = frozenset("0123456789abcdefABCDEF")
_TEL_VISUAL = str.maketrans("", "", "-.()")


def _check_escapes(text: str, what: str) -> None:
    i = text.find("%")
    while i >= 0:
        pair = text[i + 1 : i + 3]
        if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            raise SIPParseError(400, f"bad escape in {what}")
        i = text.find("%", i + 3)


_CHECKERS: dict[frozenset[str], re.Pattern[str]] = {}


def _check_chars(text: str, allowed: frozenset[str], what: str) -> None:
    pattern = _CHECKERS.get(allowed)
    if pattern is None:
        body = "".join(sorted(re.escape(c) for c in allowed))
        pattern = _CHECKERS[allowed] = re.compile(f"[{body}]*")
    if pattern.fullmatch(text) is None:
        bad = next(c for c in text if c not in allowed)
        raise SIPParseError(400, f"bad character {bad!r} in {what}")
    if "%" in text:
        _check_escapes(text, what)


def normalize_escapes(text: str) -> str:
    """Decode ``%HH`` escapes of characters outside the reserved set (19.1.4).

    Escapes of reserved characters stay escaped (with upper-case hex), so
    ``%61lice`` equals ``alice`` but ``%40`` never equals ``@``.
    """
    if "%" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                ch = chr(int(pair, 16))
                out.append("%" + pair.upper() if ch in _RESERVED or ch == "%" else ch)
                i += 3
                continue
        out.append(c)
        i += 1
    return "".join(out)


def unescape(text: str) -> str:
    """Decode every ``%HH`` escape (as UTF-8 where possible)."""
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                raw.append(int(pair, 16))
                i += 3
                continue
        raw += c.encode("utf-8", "surrogateescape")
        i += 1
    return raw.decode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=1024)
def _is_ipv6(text: str) -> bool:
    """An IPv6 address; ``x:::a.b.c.d`` is tolerated as RFC 5118 4.10 asks.

    ``ipaddress`` takes microseconds per call and peers repeat their addresses, so
    answers are kept (a bounded cache: a pure function of the string).
    """
    for candidate in (text, text.replace(":::", "::", 1) if ":::" in text and "." in text else ""):
        if candidate:
            try:
                ipaddress.IPv6Address(candidate)
                return True
            except ValueError:
                pass
    return False


def _check_host(host: str, what: str) -> None:
    if host.startswith("["):
        if not host.endswith("]"):
            raise SIPParseError(400, f"bad IPv6 reference in {what}")
        if not _is_ipv6(host[1:-1]):
            raise SIPParseError(400, f"bad IPv6 reference in {what}")
        return
    if _HOSTNAME_RE.fullmatch(host) is None:
        raise SIPParseError(400, f"bad host {host[:80]!r} in {what}")
    if _IPV4ISH_RE.fullmatch(host) is not None and _IPV4_RE.fullmatch(host) is None:
        raise SIPParseError(400, f"bad IPv4 address {host!r} in {what}")


def split_hostport(text: str, what: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (host may be an IPv6 reference) and validate both."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SIPParseError(400, f"bad IPv6 reference in {what}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SIPParseError(400, f"junk after host in {what}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    _check_host(host, what)
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
            raise SIPParseError(400, f"bad port in {what}")
        port = int(port_text)
        if port > 65535:
            raise SIPParseError(400, f"port out of range in {what}")
    return host, port


@dataclass(frozen=True, eq=False, slots=True)
class URI:
    """A parsed URI.  ``==`` and ``hash`` follow RFC 3261 section 19.1.4.

    For ``tel:`` URIs ``user`` holds the telephone number; for schemes other than
    sip, sips and tel, ``opaque`` holds everything after the colon.
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=no_params)
    headers: dict[str, str] = field(default_factory=no_headers)
    opaque: str | None = None

    @property
    def is_sip(self) -> bool:
        """True for sip: and sips: URIs."""
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lowercased, or None."""
        t = self.params.get("transport")
        return t.lower() if t else None

    def replace(self, **changes: object) -> URI:
        """A copy with the given fields changed (dataclasses.replace, at a third of its
        cost: the copy is built as builder_of explains)."""
        if not changes.keys() <= _URI_FIELDS:
            return replace(self, **changes)  # type: ignore[arg-type]  # its TypeError
        get = changes.get
        uri: Any = _new(_URIBuilder)
        uri.scheme = get("scheme", self.scheme)
        uri.user = get("user", self.user)
        uri.password = get("password", self.password)
        uri.host = get("host", self.host)
        uri.port = get("port", self.port)
        uri.params = get("params", self.params)
        uri.headers = get("headers", self.headers)
        uri.opaque = get("opaque", self.opaque)
        uri.__class__ = URI
        built: URI = uri
        return built

    def with_params(self, **params: str | None) -> URI:
        """A copy with these URI parameters added or replaced."""
        return self.replace(params={**self.params, **params})

    def without_params(self, *names: str) -> URI:
        """A copy without these URI parameters."""
        kept = {k: v for k, v in self.params.items() if k not in names}
        return self.replace(params=kept or NO_PARAMS)

    def __str__(self) -> str:
        scheme = self.scheme
        if self.opaque is not None:
            return f"{scheme}:{self.opaque}"
        if scheme == "tel":
            text = f"tel:{self.user or ''}"
        else:
            user = self.user
            if user is None:
                text = f"{scheme}:{self.host}"
            elif self.password is None:
                text = f"{scheme}:{user}@{self.host}"
            else:
                text = f"{scheme}:{user}:{self.password}@{self.host}"
            if self.port is not None:
                text = f"{text}:{self.port}"
        if self.params:
            text += format_params(self.params)
        if self.headers:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return text

    def __repr__(self) -> str:
        return f"URI({str(self)!r})"

    def _key(self) -> tuple[object, ...]:
        if self.opaque is not None:
            return (self.scheme, self.opaque)
        if self.scheme == "tel":
            number = (self.user or "").translate(_TEL_VISUAL).lower()
            return ("tel", number)
        user = normalize_escapes(self.user) if self.user is not None else None
        pw = normalize_escapes(self.password) if self.password is not None else None
        return (self.scheme, user, pw, normalize_escapes(self.host).lower(), self.port)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, URI):
            return NotImplemented
        if self._key() != other._key():
            return False
        if self.opaque is not None:
            return True
        mine = {_norm_name(k): _norm_value(v) for k, v in self.params.items()}
        theirs = {_norm_name(k): _norm_value(v) for k, v in other.params.items()}
        strict = _STRICT_PARAMS if self.scheme != "tel" else ()
        for name in set(mine) | set(theirs):
            if name in mine and name in theirs:
                if mine[name] != theirs[name]:
                    return False
            elif name in strict or self.scheme == "tel":
                return False
        my_h = {k.lower(): normalize_escapes(v) for k, v in self.headers.items()}
        their_h = {k.lower(): normalize_escapes(v) for k, v in other.headers.items()}
        return my_h == their_h


def _norm_name(name: str) -> str:
    return unescape(name).lower() if "%" in name else name


def _norm_value(value: str | None) -> str | None:
    return normalize_escapes(value).lower() if value is not None else None


def _parse_uri_params(text: str, what: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not name:
            raise SIPParseError(400, f"empty parameter in {what}")
        _check_chars(name, _PARAM_CHARS, what)
        if eq:
            if not value:
                raise SIPParseError(400, f"empty parameter value in {what}")
            _check_chars(value, _PARAM_CHARS, what)
        params[name.lower()] = value if eq else None
    return params


def _parse_uri_headers(text: str, what: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not name or not eq:
            raise SIPParseError(400, f"bad header component in {what}")
        _check_chars(name, _HEADER_CHARS, what)
        _check_chars(value, _HEADER_CHARS, what)
        headers[name] = value
    return headers


def builder_of(cls: type) -> type:
    """A plain class with the slots of frozen dataclass ``cls``, for building instances.

    A frozen dataclass's generated ``__init__`` sets each field through
    ``object.__setattr__``, which costs about 100 ns a field.  The parser builds a
    few URIs, Vias, NameAddrs and a CSeq per message: it makes an instance of the
    builder, sets its slots with ordinary stores, and then makes it a ``cls``
    (``__class__`` assignment, allowed because the layouts are the same).  The
    results are ordinary, equal and immutable instances.
    """
    return type(f"_{cls.__name__}Builder", (), {"__slots__": vars(cls)["__slots__"]})


_new = object.__new__
_URIBuilder = builder_of(URI)
_URI_FIELDS = frozenset(vars(URI)["__slots__"])


#: The spellings of "sip" and "sips" a URI pattern match can give -> the scheme, so a
#: parsed URI does not hold a lowercased copy of its own.
_SCHEMES = {
    spelling: spelling.lower()
    for scheme in ("sip", "sips")
    for spelling in (scheme, scheme.upper(), scheme.capitalize())
}
#: Host strings and port numbers seen in parsed URIs, so the URIs of one peer share
#: them (a held call keeps about ten URIs).  Emptied when full: odd input cannot grow
#: them without limit.
_HOSTS: dict[str, str] = {}
_PORTS: dict[str, int] = {}
_SHARED_MAX = 1024


def uri_from_parts(
    scheme: str, user: str | None, password: str | None, host: str, port: str | None, ptext: str
) -> URI:
    """The URI of the groups of patterns.SIP_URI (wherever it is embedded), which
    checked everything parse_uri checks: this only converts."""
    uri: Any = _new(_URIBuilder)  # URI(scheme, user, password, host, port, params), see builder_of
    uri.scheme = _SCHEMES.get(scheme) or scheme.lower()
    uri.user = user
    uri.password = password
    uri.host = _HOSTS.get(host) or remember(_HOSTS, host, host, _SHARED_MAX)
    uri.port = (
        None if port is None else _PORTS.get(port) or remember(_PORTS, port, int(port), _SHARED_MAX)
    )
    uri.params = checked_params(ptext[1:]) if ptext else NO_PARAMS
    uri.headers = NO_HEADERS
    uri.opaque = None
    uri.__class__ = URI
    built: URI = uri
    return built


def parse_uri(text: str) -> URI:
    """Parse an absolute URI; sip, sips and tel are decoded into their parts.

    Raises :class:`SIPParseError` (400) for a malformed URI.  Unknown schemes are
    accepted as opaque URIs (a UAS that cannot handle one answers 416).
    """
    fast = SIP_URI_RE.fullmatch(text)
    if fast is not None:  # the usual sip: URI, checked by one pattern (see patterns.py)
        return uri_from_parts(*fast.groups())
    return parse_uri_general(text)


def parse_uri_general(text: str) -> URI:
    """parse_uri without the pattern for the usual sip: URI: any URI, every error."""
    what = "URI"
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or scheme[0] not in _ALPHA:
        raise SIPParseError(400, f"no scheme in URI {text[:80]!r}")
    if _SCHEME_RE.fullmatch(scheme) is None:
        raise SIPParseError(400, f"bad scheme in URI {text[:80]!r}")
    scheme = scheme.lower()
    if not rest or _BAD_URI_CHARS.search(rest) is not None:
        raise SIPParseError(400, f"bad URI {text[:80]!r}")
    if scheme == "tel":
        number, _, ptext = rest.partition(";")
        if not number:
            raise SIPParseError(400, "empty tel URI")
        _check_chars(number, _PARAM_CHARS | frozenset("#*"), "tel URI")
        return URI(
            scheme, user=number, params=_parse_uri_params(ptext, what) if ptext else NO_PARAMS
        )
    if scheme not in ("sip", "sips"):
        return URI(scheme, opaque=rest)
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, pcolon, pw = userinfo.partition(":")
        if not user:
            raise SIPParseError(400, "empty user in URI")
        _check_chars(user, _USER_CHARS, "URI user")
        if pcolon:
            _check_chars(pw, _PASSWORD_CHARS, "URI password")
            password = pw
    rest, qmark, htext = rest.partition("?")
    hostport, semi, ptext = rest.partition(";")
    host, port = split_hostport(hostport, what)
    params = _parse_uri_params(ptext, what) if semi else NO_PARAMS
    headers = _parse_uri_headers(htext, what) if qmark else NO_HEADERS
    return URI(scheme, user, password, host, port, params, headers)
