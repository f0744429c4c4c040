"""Typed views of structured header values: Via, CSeq, name-addr (From, To, Contact...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .bounded import remember
from .errors import SIPParseError
from .grammar import (
    NO_PARAMS,
    WS,
    checked_params,
    format_params,
    is_token,
    no_params,
    parse_params,
    quote,
    read_quoted,
    unquote_param,
)
from .patterns import ADDR_SPEC_RE, CSEQ_RE, NAME_ADDR_RE, VIA
from .uri import _PORTS, _SHARED_MAX, URI, builder_of, parse_uri, split_hostport, uri_from_parts

MAX_CSEQ = 2**32 - 1
MAX_DELTA_SECONDS = 2**32 - 1

_SENT_PROTOCOL = re.compile(
    r"[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]*/[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]*/"
    r"[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]+(.*)\Z",
    re.S,
)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 section 20.42, RFC 3581 rport)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=no_params)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        """The branch parameter, or None."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The received parameter (RFC 3261 18.2.1), or None."""
        return self.params.get("received")

    @property
    def rport(self) -> int | bool | None:
        """None when absent, True when present without a value, else the port."""
        if "rport" not in self.params:
            return None
        value = self.params["rport"]
        return True if value is None else int(value)

    @property
    def maddr(self) -> str | None:
        """The maddr parameter, or None."""
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        """The ttl parameter, or None."""
        value = self.params.get("ttl")
        return None if value is None else int(value)

    def with_params(self, **params: str | None) -> Via:
        """A copy with these parameters added or replaced."""
        params = {**self.params, **params}
        return _via(self.transport, self.host, self.port, params, self.protocol)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


_new = object.__new__
_ViaBuilder = builder_of(Via)


#: The usual spellings of a Via transport -> upper case (no new string per Via).
_TRANSPORTS = {
    t: t.upper()
    for name in ("udp", "tcp", "tls", "sctp", "ws", "wss")
    for t in (name, name.upper())
}


#: One Via value in its usual shape (patterns.VIA), with the blanks a split list leaves.
_VIA_RE = re.compile(rf"[ \t]*{VIA}[ \t]*")


def _via(
    transport: str, host: str, port: int | None, params: dict[str, str | None], protocol: str
) -> Via:
    """``Via(transport, host, port, params, protocol)`` at half the cost of the
    constructor, built as uri.builder_of explains: an ordinary, equal, immutable Via."""
    via: Any = _new(_ViaBuilder)
    via.transport = transport
    via.host = host
    via.port = port
    via.params = params
    via.protocol = protocol
    via.__class__ = Via
    built: Via = via
    return built


def via_from_match(m: re.Match[str]) -> Via:
    """The Via of a match of patterns.VIA (transport, host, port, parameters groups).

    The pattern has checked everything parse_via checks, so this only converts (the
    port through uri._PORTS, shared with the URIs: an int() costs more than a lookup).
    """
    transport, host, port, ptext = m.groups()  # the four groups of patterns.VIA
    shared_port = _PORTS.get(port) if port is not None else None
    if port is not None and shared_port is None:
        shared_port = remember(_PORTS, port, int(port), _SHARED_MAX)
    return _via(
        _TRANSPORTS.get(transport) or transport.upper(),
        host,
        shared_port,
        checked_params(ptext[1:]) if ptext else NO_PARAMS,
        "SIP/2.0",
    )


def parse_via(text: str) -> Via:
    """Parse one Via value (``SIP/2.0/UDP host:port;params``)."""
    fast = _VIA_RE.fullmatch(text)
    if fast is not None:
        return via_from_match(fast)
    return parse_via_general(text)


def parse_via_general(text: str) -> Via:
    """parse_via without the pattern for the usual shape: any Via value, every error."""
    m = _SENT_PROTOCOL.match(text)
    if m is None:
        raise SIPParseError(400, "malformed Via")
    name, version, transport, rest = m.groups()
    hostport, semi, ptext = rest.partition(";")
    host, port = split_hostport(hostport.replace(" ", "").replace("\t", ""), "Via")
    params = parse_params(ptext, "Via") if semi else NO_PARAMS
    ttl = params.get("ttl")
    if ttl is not None and (not ttl.isdigit() or int(ttl) > 255):
        raise SIPParseError(400, "bad ttl in Via")
    rport = params.get("rport")
    if rport is not None and (not rport.isdigit() or int(rport) > 65535):
        raise SIPParseError(400, "bad rport in Via")
    return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header: a sequence number and a method."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_CSeqBuilder = builder_of(CSeq)


def parse_cseq(text: str) -> CSeq:
    """Parse ``CSeq: 1*DIGIT LWS Method`` (number at most 2**32-1)."""
    fast = CSEQ_RE.fullmatch(text)
    if fast is not None and len(fast.group(1)) < 10:  # 9 digits: below MAX_CSEQ
        number, method = fast.group(1, 2)
        cseq: Any = _new(_CSeqBuilder)  # CSeq(number, method), built as in via_from_match
        cseq.number = int(number)
        cseq.method = method
        cseq.__class__ = CSeq
        built: CSeq = cseq
        return built
    return parse_cseq_general(text)


def parse_cseq_general(text: str) -> CSeq:
    """parse_cseq without the pattern for the usual shape: any value, every error."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise SIPParseError(400, "malformed CSeq")
    if len(parts[0]) > 10 or int(parts[0]) > MAX_CSEQ:
        raise SIPParseError(400, "CSeq number out of range")
    if not is_token(parts[1]):
        raise SIPParseError(400, "bad method in CSeq")
    return CSeq(int(parts[0]), parts[1])


def parse_uint(text: str, what: str, maximum: int) -> int:
    """Parse a bounded decimal number (Content-Length, Max-Forwards, Expires...)."""
    text = text.strip(WS)
    if not text.isdigit() or not text.isascii():
        raise SIPParseError(400, f"malformed {what}")
    if len(text) > 12 or int(text) > maximum:
        raise SIPParseError(400, f"{what} out of range")
    return int(text)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route...).

    ``is_star`` marks the ``Contact: *`` of a REGISTER that removes all bindings.
    """

    uri: URI
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=no_params)
    is_star: bool = False

    @property
    def tag(self) -> str | None:
        """The tag parameter (From/To), or None."""
        return self.params.get("tag")

    def param(self, name: str) -> str | None:
        """A parameter's value with quotes removed."""
        return unquote_param(self.params.get(name))

    def with_params(self, **params: str | None) -> NameAddr:
        """A copy with these parameters added or replaced."""
        return _name_addr(self.uri, self.display_name, {**self.params, **params}, self.is_star)

    def without_params(self, *names: str) -> NameAddr:
        """A copy without these parameters."""
        kept = {k: v for k, v in self.params.items() if k not in names}
        return _name_addr(self.uri, self.display_name, kept or NO_PARAMS, self.is_star)

    def __str__(self) -> str:
        if self.is_star:
            return "*"
        display = self.display_name
        text = f"{quote(display)} <{self.uri}>" if display else f"<{self.uri}>"
        return text + format_params(self.params) if self.params else text


STAR = NameAddr(URI("sip"), is_star=True)


_NameAddrBuilder = builder_of(NameAddr)


def _name_addr(
    uri: URI, display: str | None, params: dict[str, str | None], is_star: bool = False
) -> NameAddr:
    """``NameAddr(uri, display, params, is_star)``, built as _via is."""
    addr: Any = _new(_NameAddrBuilder)
    addr.uri = uri
    addr.display_name = display
    addr.params = params
    addr.is_star = is_star
    addr.__class__ = NameAddr
    built: NameAddr = addr
    return built


def parse_name_addr(text: str, what: str = "header") -> NameAddr:
    """Parse ``[display-name] <URI> *(;param)`` or ``addr-spec *(;param)``.

    The usual shapes (a sip or sips URI, parameters without quotes) are read by one
    pattern (patterns.NAME_ADDR_RE, ADDR_SPEC_RE); any other value by the general code.
    """
    m = NAME_ADDR_RE.fullmatch(text)
    if m is not None:
        quoted, tokens, scheme, user, password, host, port, uparams, ptext = m.groups()
        display = quoted if tokens is None else " ".join(tokens.split())
        uri = uri_from_parts(scheme, user, password, host, port, uparams)
        return _name_addr(uri, display, checked_params(ptext[1:]) if ptext else NO_PARAMS)
    m = ADDR_SPEC_RE.fullmatch(text)
    if m is not None:
        scheme, user, password, host, port, ptext = m.groups()
        uri = uri_from_parts(scheme, user, password, host, port, "")
        return _name_addr(uri, None, checked_params(ptext[1:]) if ptext else NO_PARAMS)
    return parse_name_addr_general(text, what)


def parse_name_addr_general(text: str, what: str = "header") -> NameAddr:
    """parse_name_addr without the patterns for the usual shapes: any value, every error."""
    text = text.strip(WS)
    if text == "*":
        return STAR
    display: str | None = None
    if text.startswith('"'):
        display, end = read_quoted(text, 0)
        rest = text[end:].lstrip(WS)
        if not rest.startswith("<"):
            raise SIPParseError(400, f"display name without <URI> in {what}")
        text = rest
    lt = text.find("<")
    if lt >= 0:
        if lt > 0:
            words = text[:lt].split()
            if not all(is_token(w) for w in words):
                raise SIPParseError(400, f"bad display name in {what}")
            display = " ".join(words)
        gt = text.find(">", lt)
        if gt < 0:
            raise SIPParseError(400, f"unterminated <URI> in {what}")
        uri = parse_uri(text[lt + 1 : gt])
        rest = text[gt + 1 :].strip(WS)
    else:
        spec, _, ptext = text.partition(";")
        uri = parse_uri(spec.strip(WS))
        rest = ";" + ptext if _ else ""
        if uri.headers or "?" in spec:
            raise SIPParseError(400, f"URI with headers must be in <> in {what}")
    params = NO_PARAMS
    if rest:
        if not rest.startswith(";"):
            raise SIPParseError(400, f"junk after URI in {what}")
        params = parse_params(rest[1:], what)
    return NameAddr(uri, display, params)
