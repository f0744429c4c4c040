"""Bytes to messages: datagram parsing (RFC 3261 18.3) and stream framing for TCP/TLS.

Every limit is explicit (:class:`Limits`) and every failure is a
:class:`SIPParseError` whose status is the response a UAS answers with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .bounded import remember
from .errors import SIPParseError
from .headers import NAMES, Entry, Headers, header_key, name_and_key
from .message import _SINGLE, ANSWER_HEADERS, Request, Response

_TOKEN_RE = re.compile(rb"[A-Za-z0-9.!%*_+`'~-]+")
_SCHEME_RE = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True, slots=True)
class Limits:
    """Parser limits; every message bigger or stranger than these is refused.

    ``max_message_size`` and ``max_body_size`` give 413, ``max_line_length``
    gives 414 on a request line and 400 elsewhere, ``max_headers`` gives 400.
    """

    max_message_size: int = 65535
    max_headers: int = 256
    max_line_length: int = 8192
    max_body_size: int = 65535


DEFAULT_LIMITS = Limits()


def _parse_version(version: bytes) -> str:
    if version == b"SIP/2.0":
        return "SIP/2.0"
    upper = version.upper()
    if upper == b"SIP/2.0":
        return "SIP/2.0"
    if upper.startswith(b"SIP/"):
        major, dot, minor = upper[4:].partition(b".")
        if dot and major.isdigit() and minor.isdigit():
            raise SIPParseError(505, f"SIP version {version.decode('latin-1')} not supported")
    raise SIPParseError(400, "malformed SIP version")


#: The usual methods, already decoded (and known to be tokens).
_METHODS = {
    name.encode(): name
    for name in "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK UPDATE INFO MESSAGE REFER "
    "NOTIFY SUBSCRIBE PUBLISH".split()
}
_new = object.__new__


#: Status lines already read -> (status, reason, version).  The same few lines come
#: again and again ("SIP/2.0 180 Ringing"); emptied when full, so odd input cannot
#: grow it without limit.
_STATUS_LINES: dict[bytes, tuple[int, str, str]] = {}
_STATUS_LINES_MAX = 256


def _status_line(line: bytes) -> tuple[int, str, str]:
    """The status, reason and version of a status line (kept in _STATUS_LINES)."""
    parts = line.split(b" ", 2)
    if len(parts) < 2:
        raise SIPParseError(400, "malformed status line")
    version = _parse_version(parts[0])
    code = parts[1]
    if len(code) != 3 or not code.isdigit() or not (b"100" <= code <= b"699"):
        raise SIPParseError(400, "status code out of range")
    reason = parts[2] if len(parts) == 3 else b""
    if b"\r" in reason or b"\n" in reason or b"\x00" in reason:
        raise SIPParseError(400, "bad reason phrase")
    found = (int(code), reason.decode("utf-8", "surrogateescape"), version)
    return remember(_STATUS_LINES, line, found, _STATUS_LINES_MAX)


def _parse_start_line(line: bytes, limits: Limits) -> Request | Response:
    """The message of a start line, without headers yet (parse_head sets them).

    Built without the constructors, which would make an empty Headers to throw away.
    """
    if line.startswith(b"SIP/"):
        if len(line) > limits.max_line_length:
            raise SIPParseError(
                400, f"status line longer than max_line_length ({limits.max_line_length})"
            )
        status, reason, version = _STATUS_LINES.get(line) or _status_line(line)
        response: Response = _new(Response)  # headers are set by the caller
        response.status = status
        response.reason = reason
        response.body = b""
        response.version = version
        return response
    if len(line) > limits.max_line_length:
        raise SIPParseError(
            414, f"request line longer than max_line_length ({limits.max_line_length})"
        )
    parts = line.split(b" ")
    if len(parts) != 3:
        raise SIPParseError(400, "malformed request line")
    method_b, uri, version_b = parts
    method = _METHODS.get(method_b)
    if method is None:
        if _TOKEN_RE.fullmatch(method_b) is None:
            raise SIPParseError(400, "malformed method")
        method = method_b.decode("ascii")
    if _SCHEME_RE.match(uri) is None:
        raise SIPParseError(400, "malformed Request-URI")
    version = _parse_version(version_b)
    request: Request = _new(Request)  # headers are set by the caller
    request.method = method
    request.uri = uri.decode("utf-8", "surrogateescape")
    request._ruri = None
    request.body = b""
    request.version = version
    return request


def _unfold(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Join continuation lines (RFC 3261 7.3.1): the logical lines and their raw bytes."""
    logical: list[bytes] = []
    raws: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and logical:
            logical[-1] = logical[-1].rstrip(b" \t") + b" " + line.lstrip(b" \t")
            raws[-1] = raws[-1] + b"\r\n" + line
        else:
            logical.append(line)
            raws.append(line)
    return logical, raws


def parse_head(head: bytes, limits: Limits) -> Request | Response:
    """Parse a start line and header section (without the blank line).

    The usual head (no folded line, shorter than a line may be) goes through a
    tight loop; any other through the general one, which unfolds and checks every
    line's length.  Both raise the same errors for the same lines.
    """
    lines = head.split(b"\r\n")
    if len(lines) - 1 > limits.max_headers:
        raise SIPParseError(400, f"more header lines than max_headers ({limits.max_headers})")
    msg = _parse_start_line(lines[0], limits)
    if len(head) > limits.max_line_length or b"\r\n " in head or b"\r\n\t" in head:
        msg.headers = _general_headers(head, lines, limits)
        return msg
    entries: list[Entry] = []
    first: dict[str, int] = {}
    names = NAMES
    single = _SINGLE
    known_lines = _LINES
    for i, line in enumerate(lines):
        if not i:
            continue  # the start line
        entry = known_lines.get(line)
        if entry is None:
            name_b, colon, value = line.partition(b":")
            known = names.get(name_b)
            if known is None or not colon:
                if not colon or not name_b:
                    raise SIPParseError(400, "header line without a name and colon")
                known = name_and_key(name_b.rstrip(b" \t"))
            name, key = known
            entry = (key, name, value.strip(b" \t"), line)
            if key not in _UNIQUE_LINES:
                remember(known_lines, line, entry, _LINES_MAX)
        else:
            key = entry[0]
        if key not in first:
            first[key] = i - 1
        elif key in single:
            raise SIPParseError(400, f"more than one {entry[1]} header")
        entries.append(entry)
    msg.headers = Headers._from_entries(entries, first)
    return msg


#: Header lines already cut into their entry, by the line's bytes: CSeq, Contact,
#: Max-Forwards, Content-Type, Content-Length... come again and again the same, and
#: an entry is a function of its line alone (and immutable, so messages share it).
#: Lines of the headers that differ in every message or call are not kept, so they
#: do not push the others out.  Emptied when full, so odd input cannot grow it
#: without limit.  Only parse_head's loop for the usual head reads it.
_LINES: dict[bytes, Entry] = {}
_LINES_MAX = 512
_UNIQUE_LINES = frozenset({"via", "from", "to", "call-id"})


def _general_headers(head: bytes, lines: list[bytes], limits: Limits) -> Headers:
    """The header ``lines`` of any ``head``: folded lines joined, lengths checked."""
    max_line = limits.max_line_length
    check_length = len(head) > max_line
    entries: list[Entry] = []
    first: dict[str, int] = {}
    names = NAMES
    if b"\r\n " in head or b"\r\n\t" in head:
        if lines[1][:1] in (b" ", b"\t"):
            raise SIPParseError(400, "continuation line before the first header")
        logical, raws = _unfold(lines[1:])
    else:
        logical = raws = lines[1:]
    for line, raw in zip(logical, raws, strict=True):
        if check_length and len(line) > max_line:
            raise SIPParseError(400, f"header line longer than max_line_length ({max_line})")
        colon = line.find(b":")
        if colon <= 0:
            raise SIPParseError(400, "header line without a name and colon")
        name_b = line[:colon]
        known = names.get(name_b)
        if known is None:
            known = name_and_key(name_b.rstrip(b" \t"))
        name, key = known
        if key not in first:
            first[key] = len(entries)
        elif key in _SINGLE:
            raise SIPParseError(400, f"more than one {name} header")
        entries.append((key, name, line[colon + 1 :].strip(b" \t"), raw))
    return Headers._from_entries(entries, first)


def _content_length(msg: Request | Response) -> int | None:
    headers = msg.headers
    i = headers._index().get("content-length")
    if i is None:
        return None
    raw = headers._entries[i][2]
    if not raw.isdigit() or len(raw) > 10:
        raise SIPParseError(400, "malformed Content-Length")
    return int(raw)


_ESSENTIAL = (
    ("via", "Via"),
    ("cseq", "CSeq"),
    ("call-id", "Call-ID"),
    ("from", "From"),
    ("to", "To"),
)


def _check_essentials(msg: Request | Response) -> None:
    """The headers the transaction layer relies on must be there and sane."""
    headers = msg.headers
    index = headers._index()
    for key, name in _ESSENTIAL:
        if key not in index:
            raise SIPParseError(400, f"missing {name} header")
    cseq = msg.cseq
    if isinstance(msg, Request) and cseq.method != msg.method:
        raise SIPParseError(400, "CSeq method does not match the request method")
    _ = msg.call_id
    # decodes the top Via; the others are only checked (none when no name repeats)
    msg.check_vias(one_line=len(index) == len(headers._entries))
    _ = (msg.from_tag, msg.to_tag)


def parse_message(data: bytes, limits: Limits | None = None) -> Request | Response:
    """Parse one datagram into a Request or Response (RFC 3261 18.3 semantics).

    Bytes after Content-Length are ignored; without Content-Length the body is the
    rest of the datagram.  The start line, the framing and the headers the
    transaction layer needs are checked here; other headers are decoded on use
    (call ``validate()`` to check them all).
    """
    lim = DEFAULT_LIMITS if limits is None else limits
    if len(data) > lim.max_message_size:
        raise SIPParseError(413, f"message larger than max_message_size ({lim.max_message_size})")
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SIPParseError(400, "no empty line after the header section")
    msg = parse_head(data[start:end], lim)
    body_start = end + 4
    length = _content_length(msg)
    if length is None:
        body = data[body_start:]
    else:
        if body_start + length > len(data):
            raise SIPParseError(400, "Content-Length larger than the datagram")
        body = data[body_start : body_start + length]
    if len(body) > lim.max_body_size:
        raise SIPParseError(413, f"body larger than max_body_size ({lim.max_body_size})")
    msg.body = body
    _check_essentials(msg)
    return msg


class FramingError(SIPParseError):
    """A stream that cannot be framed any further.

    ``completed`` holds the good messages that came before the bad one in the
    same chunk (deliver them); ``data`` the bytes from the bad message on (for
    answering it, if its headers can be read).  Close the connection afterwards.
    """

    def __init__(
        self, status: int, reason: str, completed: list[Request | Response], data: bytes
    ) -> None:
        super().__init__(status, reason)
        self.completed = completed
        self.data = data


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages (RFC 3261 18.3, stream rules).

    Feed it chunks of any size; it returns the messages completed so far.
    Content-Length is mandatory.  CRLFs between messages are skipped; a double
    CRLF ping (RFC 5626 3.5.1) increments ``keepalives_seen`` so the transport
    can answer with a single CRLF.  After a SIPParseError the stream cannot be
    resynchronised and the connection should be closed.
    """

    __slots__ = ("_buffer", "_crlf_run", "_limits", "keepalives_seen")

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = DEFAULT_LIMITS if limits is None else limits
        self._buffer = b""
        self._crlf_run = 0
        self.keepalives_seen = 0

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Request | Response]:
        """Add bytes; return every message now complete, in order.

        On bad input raises :class:`FramingError`, which carries the messages
        completed before the bad one and the bytes from the bad one on.
        """
        self._buffer = self._buffer + data if self._buffer else data
        out: list[Request | Response] = []
        try:
            self._frame(out)
        except SIPParseError as error:
            rest, self._buffer = self._buffer, b""
            raise FramingError(error.status, error.reason, out, rest) from None
        return out

    def _frame(self, out: list[Request | Response]) -> None:
        """Move complete messages from the buffer to ``out``."""
        lim = self._limits
        buf = self._buffer
        while buf:
            skipped = 0
            while buf.startswith(b"\r\n", skipped):
                skipped += 2
            if skipped:
                self._crlf_run += skipped
                self.keepalives_seen += self._crlf_run // 4
                self._crlf_run %= 4
                buf = self._buffer = buf[skipped:]
                continue
            if buf == b"\r":
                break
            self._crlf_run = 0
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > lim.max_message_size:
                    raise SIPParseError(
                        413, f"header section larger than max_message_size ({lim.max_message_size})"
                    )
                if b"\r\n" not in buf and len(buf) > lim.max_line_length:
                    raise SIPParseError(
                        414, f"start line longer than max_line_length ({lim.max_line_length})"
                    )
                break
            msg = parse_head(buf[:end], lim)
            length = _content_length(msg)
            if length is None:
                raise SIPParseError(400, "Content-Length is required on stream transports")
            if length > lim.max_body_size:
                raise SIPParseError(413, f"body larger than max_body_size ({lim.max_body_size})")
            total = end + 4 + length
            if total > lim.max_message_size:
                raise SIPParseError(
                    413, f"message larger than max_message_size ({lim.max_message_size})"
                )
            if len(buf) < total:
                break
            msg.body = buf[end + 4 : total]
            _check_essentials(msg)
            out.append(msg)
            buf = self._buffer = buf[total:]
        self._buffer = buf


def salvage_request(data: bytes, limits: Limits | None = None) -> Request | None:
    """Best effort: the request in ``data`` that parse_message refused, to answer it.

    A UAS answers a malformed request with an error (RFC 3261 8.2) when it can
    route a response: that needs a request line and a readable top Via.  The
    Via, From, To, Call-ID and CSeq lines that can be read are kept (RFC 4475
    3.3.1: answer 400 even when some are missing); every other line, readable or
    not, is ignored.  Returns None when no answer can be routed.  Never raises.
    """
    lim = DEFAULT_LIMITS if limits is None else limits
    data = data.lstrip(b"\r\n")[: lim.max_message_size]
    end = data.find(b"\r\n\r\n")
    head = data[:end] if end >= 0 else data
    start, sep, rest = head.partition(b"\r\n")
    parts = start.split(b" ")
    if not sep or len(parts) < 3 or parts[0].startswith(b"SIP/"):
        return None
    if _TOKEN_RE.fullmatch(parts[0]) is None:
        return None
    headers = Headers()
    for line in rest.split(b"\r\n"):
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = line[:colon].strip(b" \t").decode("latin-1")
        key = header_key(name)
        if key in ANSWER_HEADERS:
            headers.add(name, line[colon + 1 :].strip(b" \t"))
    request = Request(
        parts[0].decode("ascii"), b" ".join(parts[1:-1]).decode("utf-8", "replace"), headers
    )
    try:
        request.check_vias()  # every Via must be readable to route the answer
    except SIPParseError:
        return None
    return request
