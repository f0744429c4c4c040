"""SIP requests and responses, with lazily decoded, cached header views."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .bounded import remember
from .errors import SIPParseError
from .fields import (
    MAX_DELTA_SECONDS,
    CSeq,
    NameAddr,
    Via,
    parse_cseq,
    parse_name_addr,
    parse_uint,
    parse_via,
    via_from_match,
)
from .grammar import is_token, parse_params, read_quoted, split_outside_quotes
from .headers import Entry, Headers, decode, encode
from .patterns import (
    BYTE_B,
    MEDIA_TYPE_B,
    NAME_ADDR_B,
    NAME_ADDR_LIST_B,
    TAGGED_RE,
    TOKEN_LIST_B,
    TOP_VIA_LINE_RE,
    TOP_VIA_RE,
    UINT9_B,
    VALUE,
    VIA_LIST_B,
)
from .uri import URI, parse_uri

SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    555: "Push Notification Service Not Supported", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}  # fmt: skip


def reason_phrase(status: int) -> str:
    """The standard reason phrase for a status code (or a generic one for its class)."""
    return REASON_PHRASES.get(status) or REASON_PHRASES.get(status // 100 * 100, "Unknown")


def _name_addrs(value: str, name: str) -> None:
    for part in split_outside_quotes(value, ","):
        parse_name_addr(part, name)


def _name_addr(value: str, name: str) -> None:
    parse_name_addr(value, name)


def _vias(value: str, name: str) -> None:
    for part in split_outside_quotes(value, ","):
        parse_via(part)


def _uint(maximum: int) -> Callable[[str, str], None]:
    def check(value: str, name: str) -> None:
        parse_uint(value, name, maximum)

    return check


def _tokens(value: str, name: str) -> None:
    for part in value.split(","):
        part = part.strip(" \t")
        if part and not is_token(part):
            raise SIPParseError(400, f"bad token {part[:40]!r} in {name}")


def _content_type(value: str, name: str) -> None:
    mtype, _, params = value.partition(";")
    top, slash, sub = mtype.strip(" \t").partition("/")
    if not slash or not is_token(top.strip(" \t")) or not is_token(sub.strip(" \t")):
        raise SIPParseError(400, "malformed Content-Type")
    if params:
        parse_params(params, name)


#: How validate() checks each value of the headers this library knows.
_VALUE_CHECKS: dict[str, Callable[[str, str], None]] = {
    "via": _vias,
    "from": _name_addr,
    "to": _name_addr,
    "reply-to": _name_addr,
    "refer-to": _name_addr,
    "referred-by": _name_addr,
    "contact": _name_addrs,
    "route": _name_addrs,
    "record-route": _name_addrs,
    "p-asserted-identity": _name_addrs,
    "path": _name_addrs,
    "service-route": _name_addrs,
    "max-forwards": _uint(255),
    "content-length": _uint(2**31),
    "min-expires": _uint(MAX_DELTA_SECONDS),
    "rseq": _uint(MAX_DELTA_SECONDS),
    "content-type": _content_type,
    "require": _tokens,
    "proxy-require": _tokens,
    "supported": _tokens,
    "unsupported": _tokens,
    "allow": _tokens,
}
#: Patterns for the usual shape of a header's whole value: a value that matches needs
#: no further check (each accepts a subset of what its _VALUE_CHECKS entry accepts).
_FAST_CHECKS: dict[str, re.Pattern[bytes]] = {
    "via": VIA_LIST_B,
    "from": NAME_ADDR_B,
    "to": NAME_ADDR_B,
    "reply-to": NAME_ADDR_B,
    "refer-to": NAME_ADDR_B,
    "referred-by": NAME_ADDR_B,
    "contact": NAME_ADDR_LIST_B,
    "route": NAME_ADDR_LIST_B,
    "record-route": NAME_ADDR_LIST_B,
    "p-asserted-identity": NAME_ADDR_LIST_B,
    "path": NAME_ADDR_LIST_B,
    "service-route": NAME_ADDR_LIST_B,
    "max-forwards": BYTE_B,
    "content-length": UINT9_B,
    "min-expires": UINT9_B,
    "rseq": UINT9_B,
    "content-type": MEDIA_TYPE_B,
    "require": TOKEN_LIST_B,
    "proxy-require": TOKEN_LIST_B,
    "supported": TOKEN_LIST_B,
    "unsupported": TOKEN_LIST_B,
    "allow": TOKEN_LIST_B,
}
#: Values validate() found good, by header (Via aside: its values are unique per
#: message).  Allow, Supported, Contact, Content-Type... repeat from message to
#: message, and a set lookup costs far less than a pattern.  Whether a value is good
#: depends on nothing else, so keeping the answer is safe; each set is emptied when
#: it reaches _KNOWN_GOOD_MAX, so odd input cannot grow it without limit.
_KNOWN_GOOD: dict[str, set[bytes]] = {key: set() for key in _VALUE_CHECKS if key != "via"}
_KNOWN_GOOD_MAX = 256
#: Headers that may appear at most once.
_SINGLE = frozenset({"from", "to", "call-id", "cseq", "max-forwards", "content-length"})


#: Call-ID = word [ "@" word ]; word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_"
#: / "+" / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]"
#: / "?" / "{" / "}")
_WORD = r"""[A-Za-z0-9\-.!%*_+`'~()<>:\\"/\[\]?{}]+"""
_CALL_ID_RE = re.compile(f"{_WORD}(?:@{_WORD})?")


def _tag_of(value: str, what: str) -> str | None:
    """The tag parameter of a From or To value, reading only the header parameters.

    The usual shape (``[display] <URI>;params``, no quotes after the display name)
    is read by one pattern.  Otherwise the fast path reads only what follows
    ``<...>``; values with quotes or without angle brackets are decoded in full, so
    a bad quote or addr-spec is an error here as it is in the full parse.
    """
    m = _ONE_TAG_RE.fullmatch(value)
    if m is not None:
        tag: str | None = m.group(1)
        return tag
    return _tag_of_tagged(value, what)


def _read_tag(raw: bytes, what: str) -> str | None:
    """The tag of a From or To line's bytes (:func:`_tag_of`), kept in _TAGS."""
    return remember(_TAGS, raw, _tag_of(decode(raw), what), _LINE_VIEWS_MAX)


def _tag_of_tagged(value: str, what: str) -> str | None:
    """_tag_of without _ONE_TAG_RE (tried first, by _tag_of)."""
    m = TAGGED_RE.fullmatch(value)
    if m is not None:
        params = m.group(1)
        if not params:
            return None
        tags = _TAG_PARAM_RE.findall(params)
        return (tags[-1] or None) if tags else None  # the last wins, as in a dict
    return _tag_of_general(value, what)


#: TAGGED_RE where the header parameters are one tag or none (the usual From and To):
#: the tag in a group, what _tag_of finds for these values without a findall.
#: (Empty alternatives rather than ``?``: a branch costs the matcher less than a repeat.)
_ONE_TAG_RE = re.compile(rf'(?:"[^"\\\r\n]*"|)[^"<>]*<[^"<>]*>(?:;[Tt][Aa][Gg]=({VALUE})|)')

#: The tag parameters in the header parameters TAGGED_RE matched (``;name[=value]``
#: pairs whose values hold no ``;``): their values, "" for a tag without one.
_TAG_PARAM_RE = re.compile(r";[Tt][Aa][Gg](?:=([^;]*))?(?=;|\Z)")


def _tag_of_general(value: str, what: str) -> str | None:
    """_tag_of without the pattern for the usual shape."""
    if value.startswith('"'):
        _, end = read_quoted(value, 0)  # raises on an unbalanced quote
        value = value[end:]
    lt = value.find("<")
    gt = value.rfind(">")
    if '"' in value or lt < 0 or gt < lt:
        return parse_name_addr(value, what).tag
    tail = value[gt + 1 :].strip(" \t")
    if not tail:
        return None
    if tail[0] != ";":
        raise SIPParseError(400, f"junk after URI in {what}")
    return parse_params(tail[1:], what).get("tag")


_ESSENTIAL = (
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("from", "From"),
    ("to", "To"),
    ("via", "Via"),
)

#: Header names already found to be tokens (bounded: odd input cannot grow it).
_TOKEN_NAMES: set[str] = set()
_TOKEN_NAMES_MAX = 512

#: CSeq values already decoded, by their bytes: the same few ("1 INVITE", "2 BYE")
#: come in message after message, and a CSeq is immutable, so messages share them.
#: Emptied when full, so odd input cannot grow it without limit.
_CSEQS: dict[bytes, CSeq] = {}
_CSEQS_MAX = 512

#: Call-IDs and From/To tags already read, by the bytes of their header line: each
#: comes in several messages of a call (the INVITE, ACK and BYE of a caller; the
#: answers to our requests), and the view is a function of those bytes alone (a
#: str, or None for no tag; values that raise are not kept).  Emptied when full, so
#: odd input cannot grow them without limit.
_CALL_IDS: dict[bytes, str] = {}
_TAGS: dict[bytes, str | None] = {}
_LINE_VIEWS_MAX = 1024
#: The top Via of Via lines that TOP_VIA_LINE_RE matched whole, by the line's bytes:
#: branches are unique per transaction, but the answers to one request (a 180 and a
#: 200) carry the same line.  Bounded as the tables above.
_VIA_LINES: dict[bytes, Via] = {}

#: Methods known to be tokens (the usual ones): validate() need not match them.
_KNOWN_METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK UPDATE INFO MESSAGE REFER "
    "NOTIFY SUBSCRIBE PUBLISH".split()
)

#: Marks a view that is not cached yet, where None is a valid view.
_MISSING: Any = object()


def _split_list(text: str) -> list[str]:
    """A comma-separated header value cut into its values."""
    return text.split(",") if '"' not in text else split_outside_quotes(text, ",")


class Message:
    """What requests and responses share: headers, body, version and header views.

    The views (``top_via``, ``cseq``, ``call_id``, the tags...) are decoded once and
    kept in ``headers.cache`` until the header they come from changes.
    """

    __slots__ = ("body", "headers", "version")

    headers: Headers
    body: bytes
    version: str

    def _start_line(self) -> bytes:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The message on the wire; Content-Length always matches the body."""
        return self._start_line() + self.headers.to_bytes(len(self.body)) + self.body

    def compact(self) -> None:
        """Keep only the text: drop decoded views, the header index and raw lines.

        For messages kept for the length of a call (the INVITEs, the ACKs) or of a
        transaction's linger: what is decoded later is decoded again on demand.
        """
        self.headers.compact()

    def _first_raw(self, key: str, name: str) -> bytes:
        """The first line of header ``key`` (a lookup key) as bytes; 400 when absent."""
        headers = self.headers
        first = headers._first
        if first is None:
            value = headers._value(key)  # builds the index (or reads a compacted blob)
        else:
            i = first.get(key)
            value = None if i is None else headers._entries[i][2]
        if value is None:
            raise SIPParseError(400, f"missing {name} header")
        return value

    def _first_value(self, key: str, name: str) -> str:
        """The first line of header ``key`` (a lookup key), decoded; 400 when absent."""
        return decode(self._first_raw(key, name))

    @property
    def call_id(self) -> str:
        """The Call-ID (``word ["@" word]``, RFC 3261 25.1)."""
        cache = self.headers.cache
        value: str | None = cache.get("call-id")
        if value is None:
            raw = self._first_raw("call-id", "Call-ID")
            value = _CALL_IDS.get(raw)
            if value is None:
                value = decode(raw).strip(" \t")
                if _CALL_ID_RE.fullmatch(value) is None:
                    raise SIPParseError(400, "malformed Call-ID")
                remember(_CALL_IDS, raw, value, _LINE_VIEWS_MAX)
            cache["call-id"] = value
        return value

    @property
    def cseq(self) -> CSeq:
        """The CSeq header, decoded."""
        cache = self.headers.cache
        value: CSeq | None = cache.get("cseq")
        if value is None:
            raw = self._first_raw("cseq", "CSeq")
            value = _CSEQS.get(raw)
            if value is None:
                value = parse_cseq(decode(raw))
                remember(_CSEQS, raw, value, _CSEQS_MAX)
            cache["cseq"] = value
        return value

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first (decoded on demand: the hot path reads top_via)."""
        headers = self.headers
        cache = headers.cache
        vias: list[Via] | None = cache.get("vias")
        if vias is None:
            vias = []
            for key, _name, value, _raw in headers._entries:
                if key == "via":
                    vias.extend(parse_via(part) for part in _split_list(decode(value)))
            cache["vias"] = vias
        return vias

    @property
    def top_via(self) -> Via:
        """The topmost Via value, decoded alone.

        The Via values below it are not decoded: ``parse_message`` and
        ``validate()`` check them (:meth:`check_vias`), ``vias`` decodes them.
        """
        cache = self.headers.cache
        via: Via | None = cache.get("via")
        if via is None:
            text = self._first_value("via", "Via")
            m = TOP_VIA_RE.match(text)
            via = via_from_match(m) if m is not None else parse_via(_split_list(text)[0])
            cache["via"] = via
        return via

    def check_vias(self, *, one_line: bool = False) -> None:
        """Decode the top Via; raise SIPParseError, as ``vias`` would, if any is malformed.

        A Via line in the usual shape is checked by one pattern, which for the first
        line also gives the top Via (kept in _VIA_LINES, for the next answer bringing
        the same line); only a line that does not match is decoded the
        general way (which accepts it or raises the exact error).  Nothing is built
        for the Via values below the top one.  ``one_line``: the caller knows there
        is one Via line (the parser, which saw every line), so no other is looked for.
        """
        headers = self.headers
        cache = headers.cache
        skip_first = False
        if "via" not in cache:
            raw = self._first_raw("via", "Via")
            via = _VIA_LINES.get(raw)
            if via is None:
                m = TOP_VIA_LINE_RE.fullmatch(decode(raw))
                if m is not None:
                    via = remember(_VIA_LINES, raw, via_from_match(m), _LINE_VIEWS_MAX)
            if via is not None:
                cache["via"] = via
                if one_line:
                    cache["vias-ok"] = True
                    return
                skip_first = True  # the whole first line matched
            else:
                _ = self.top_via
        fast = VIA_LIST_B.fullmatch
        for key, _name, value, _raw in headers._entries:
            if key == "via":
                if skip_first:
                    skip_first = False
                elif fast(value) is None:
                    _ = self.vias
                    break
        cache["vias-ok"] = True  # validate() need not look at them again

    @property
    def branch(self) -> str | None:
        """The top Via's branch parameter."""
        return self.top_via.branch

    @property
    def from_(self) -> NameAddr:
        """The From header, decoded."""
        cache = self.headers.cache
        value: NameAddr | None = cache.get("from")
        if value is None:
            value = cache["from"] = parse_name_addr(self._first_value("from", "From"), "From")
        return value

    @property
    def to(self) -> NameAddr:
        """The To header, decoded."""
        cache = self.headers.cache
        value: NameAddr | None = cache.get("to")
        if value is None:
            value = cache["to"] = parse_name_addr(self._first_value("to", "To"), "To")
        return value

    @property
    def from_tag(self) -> str | None:
        """The From tag (found without decoding the whole From header)."""
        cache = self.headers.cache
        tag: str | None = cache.get("from-tag", _MISSING)
        if tag is _MISSING:
            tag = cache["from-tag"] = self._line_tag("from", "From")
        return tag

    @property
    def to_tag(self) -> str | None:
        """The To tag (None outside a dialog)."""
        cache = self.headers.cache
        tag: str | None = cache.get("to-tag", _MISSING)
        if tag is _MISSING:
            tag = cache["to-tag"] = self._line_tag("to", "To")
        return tag

    def _line_tag(self, key: str, name: str) -> str | None:
        """The tag of the first From or To line: looked up by the line's bytes in
        _TAGS, read (and kept there) the first time a line is seen."""
        raw = self._first_raw(key, name)
        tag: str | None = _TAGS.get(raw, _MISSING)
        return _read_tag(raw, name) if tag is _MISSING else tag

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or None when absent."""
        cache = self.headers.cache
        value: int | None = cache.get("max-forwards", _MISSING)
        if value is _MISSING:
            data = self.headers._value("max-forwards")
            value = cache["max-forwards"] = (
                None if data is None else parse_uint(decode(data), "Max-Forwards", 255)
            )
        return value

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact value ([] when there is none)."""
        cache = self.headers.cache
        value: list[NameAddr] | None = cache.get("contacts")
        if value is None:
            value = cache["contacts"] = [
                parse_name_addr(v, "Contact") for v in self.headers.get_all("Contact")
            ]
        return value

    @property
    def content_type(self) -> str | None:
        """The media type of the body (lowercase, without parameters), or None."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.partition(";")[0].strip(" \t").lower()

    def validate(self) -> None:
        """Decode every header this library knows; raise SIPParseError on the first bad one.

        A value in its usual shape is accepted by one pattern (patterns.py) without
        being decoded; any other goes through the general check for its header.
        """
        index = self.headers._index()
        for key, name in _ESSENTIAL:
            if key not in index:
                raise SIPParseError(400, f"missing {name} header")
        _ = (self.call_id, self.cseq, self.from_tag, self.to_tag)
        if isinstance(self, Request) and self.cseq.method != self.method:
            raise SIPParseError(400, "CSeq method does not match the request method")
        seen: set[str] = set()
        vias_ok = "vias-ok" in self.headers.cache
        fast = _FAST_CHECKS
        checks = _VALUE_CHECKS
        known_good = _KNOWN_GOOD
        token_names = _TOKEN_NAMES
        for key, name, value, _raw in self.headers._entries:
            if key in _SINGLE:
                if key in seen:
                    raise SIPParseError(400, f"more than one {name} header")
                seen.add(key)
            known = known_good.get(key)
            if known is not None:
                if value in known:
                    continue
                if fast[key].fullmatch(value) is None:
                    checks[key](decode(value), name)
                if len(known) >= _KNOWN_GOOD_MAX:
                    known.clear()
                known.add(value)
            elif key == "via":
                if not vias_ok and VIA_LIST_B.fullmatch(value) is None:
                    _vias(decode(value), name)
            elif name not in token_names:
                if not is_token(name):
                    raise SIPParseError(400, f"bad header name {name[:40]!r}")
                if len(token_names) < _TOKEN_NAMES_MAX:
                    token_names.add(name)


class Request(Message):
    """A SIP request.  ``uri`` is the Request-URI as written; ``request_uri`` parses it."""

    __slots__ = ("_ruri", "method", "uri")

    def __init__(
        self,
        method: str,
        uri: str | URI,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.method = method
        self.uri = str(uri)
        self._ruri: URI | None = uri if isinstance(uri, URI) else None
        self.headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    @property
    def request_uri(self) -> URI:
        """The Request-URI, parsed on first use."""
        if self._ruri is None:
            self._ruri = parse_uri(self.uri)
        return self._ruri

    def compact(self) -> None:
        """Keep only the text (see :meth:`Message.compact`), the Request-URI's too."""
        super().compact()
        self._ruri = None

    def set_uri(self, uri: str | URI) -> None:
        """Change the Request-URI."""
        self.uri = str(uri)
        self._ruri = uri if isinstance(uri, URI) else None

    def _start_line(self) -> bytes:
        return encode(f"{self.method} {self.uri} {self.version}\r\n")

    def validate(self) -> None:
        """As Message.validate, plus the method token and the Request-URI."""
        if self.method not in _KNOWN_METHODS and not is_token(self.method):
            raise SIPParseError(400, "bad method")
        _ = self.request_uri
        super().validate()

    def copy(self) -> Request:
        """An independent copy (headers copied, body shared)."""
        return Request(self.method, self.uri, self.headers.copy(), self.body, self.version)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason
        self.headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    @property
    def is_provisional(self) -> bool:
        """1xx."""
        return self.status < 200

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    def _start_line(self) -> bytes:
        return encode(f"{self.version} {self.status} {self.reason}\r\n")

    def copy(self) -> Response:
        """An independent copy (headers copied, body shared)."""
        return Response(self.status, self.reason, self.headers.copy(), self.body, self.version)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def _lacks_tag(request: Request) -> bool:
    try:
        return request.to_tag is None
    except SIPParseError:
        return False


#: The headers an answer copies from its request (RFC 3261 8.2.6.2).
ANSWER_HEADERS = frozenset({"via", "from", "to", "call-id", "cseq"})


def response_for(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` per RFC 3261 8.2.6.2.

    Via, From, To, Call-ID and CSeq are copied (Vias in order); ``to_tag`` is added
    to To when given and To has none.  The caller adds anything else.
    """
    entries: list[Entry] = []
    first: dict[str, int] = {}
    src = request.headers
    tag = to_tag if to_tag is not None and _lacks_tag(request) else None
    for key, name, value, raw in src._entries:
        if key in ANSWER_HEADERS:
            if key == "to" and tag is not None:
                value = value + b";tag=" + tag.encode("ascii")
                raw = None
            first.setdefault(key, len(entries))
            entries.append((key, name, value, raw))
    headers = Headers._from_entries(entries, first)
    # The same lines give the same views: share the request's immutable ones.
    cache = src.cache
    if cache:
        headers.cache = {
            view: cache[view] for view in (_COPIED if tag is None else _UNTAGGED) if view in cache
        }
    return Response(status, reason, headers)


#: The views of the headers response_for copies, which are immutable values (not the
#: ``vias`` list); the To views only when To is copied unchanged.
_UNTAGGED = ("via", "vias-ok", "from", "from-tag", "call-id", "cseq")
_COPIED = (*_UNTAGGED, "to", "to-tag")
