"""An ordered, case-insensitive, compact-form aware, repeatable header list.

Each entry keeps the raw line it was parsed from, so headers nobody touched are
written back byte for byte.  Values are handed out as ``str`` (UTF-8; bytes that
are not UTF-8 survive through ``surrogateescape``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from .grammar import split_outside_quotes

#: RFC 3261 section 7.3.3 and companion RFCs: compact form -> long form (lowercase).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",  # RFC 3841
    "b": "referred-by",  # RFC 3892
    "c": "content-type",
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",  # RFC 3841
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",  # RFC 4474
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "s": "subject",
    "t": "to",
    "u": "allow-events",  # RFC 6665
    "v": "via",
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 4474
}

_PRETTY = {
    name.lower(): name
    for name in (
        "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
        "Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition "
        "Content-Encoding Content-Language Content-Length Content-Type CSeq Date Error-Info "
        "Event Expires From History-Info Identity Identity-Info In-Reply-To Max-Forwards "
        "Min-Expires Min-SE MIME-Version Organization P-Asserted-Identity Path Priority "
        "Privacy Proxy-Authenticate Proxy-Authorization Proxy-Require RAck Reason Record-Route "
        "Refer-To Referred-By Reject-Contact Replaces Reply-To Request-Disposition Require "
        "Retry-After Route RSeq Server Service-Route Session-Expires SIP-ETag SIP-If-Match "
        "Subject Subscription-State Supported Timestamp To Unsupported User-Agent Via Warning "
        "WWW-Authenticate"
    ).split()
}

#: Headers whose grammar is a comma-separated list (``header = name HCOLON value *(COMMA value)``).
#: Everything else (auth headers, Date, unknown extension headers) is never split.
LIST_HEADERS = frozenset(
    "accept accept-contact accept-encoding accept-language alert-info allow allow-events "
    "call-info contact content-encoding content-language error-info history-info in-reply-to "
    "p-asserted-identity path proxy-require reason record-route reject-contact "
    "request-disposition require route security-client security-server security-verify "
    "service-route supported unsupported via warning".split()
)


#: Header name as written -> lookup key.  Names repeat from message to message, so
#: a lookup replaces a ``lower()`` (a new string per call) and every message shares
#: the key strings.  The usual spellings are there from the start; others are added
#: up to _KEYS_MAX, so odd input cannot grow it without limit.
_KEYS: dict[str, str] = {}
_KEYS_MAX = 1024


def _new_key(name: str) -> str:
    """header_key for a name not in _KEYS yet (kept there while there is room)."""
    lname = name.lower()
    key = COMPACT_FORMS.get(lname, lname)
    if len(_KEYS) < _KEYS_MAX:
        key = _KEYS.setdefault(key, key)  # one string per key, whatever the spelling
        _KEYS[name] = key
    return key


def header_key(name: str) -> str:
    """The lookup key for a header name: its long form, lowercased."""
    key = _KEYS.get(name)
    return key if key is not None else _new_key(name)


for _pretty in (*_PRETTY.values(), *(n.upper() for n in COMPACT_FORMS)):
    for _name in (_pretty, _pretty.lower(), _pretty.upper()):
        _new_key(_name)  # the usual spellings, so their keys are the shared strings
del _pretty, _name


def canonical_name(name: str) -> str:
    """The conventional long-form spelling of a header name (``"v"`` -> ``"Via"``)."""
    key = header_key(name)
    return _PRETTY.get(key, name if len(name) > 1 else key)


def decode(value: bytes) -> str:
    """Decode a header value; bytes that are not UTF-8 survive a round trip.

    Strict UTF-8 first (the usual value; without the error handler's name to look
    up, a decode costs a fifth less), ``surrogateescape`` for the others: the same text.
    """
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("utf-8", "surrogateescape")


def encode(value: str) -> bytes:
    """Encode a header value decoded by :func:`decode` (strict first, as decode does)."""
    try:
        return value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


#: Header key -> the ``Headers.cache`` entries that hold views decoded from that header.
#: A change to the header drops exactly these; a header not listed has no cached view.
VIEWS: dict[str, tuple[str, ...]] = {
    "via": ("via", "vias", "vias-ok"),
    "from": ("from", "from-tag"),
    "to": ("to", "to-tag"),
    "call-id": ("call-id",),
    "cseq": ("cseq",),
    "contact": ("contacts",),
    "max-forwards": ("max-forwards",),
}


#: One header line: (lookup key, name as written, value bytes, raw line or None).
Entry = tuple[str, str, bytes, "bytes | None"]

#: Header names as bytes -> (name as written, lookup key): the parser's (and a compacted
#: section's) names decoded once.  Bounded, so odd input cannot grow it without limit.
NAMES: dict[bytes, tuple[str, str]] = {}
_NAMES_MAX = 512


def name_and_key(name_b: bytes) -> tuple[str, str]:
    """A header name as bytes decoded, with its lookup key (cached, see NAMES)."""
    found = NAMES.get(name_b)
    if found is None:
        name = name_b.decode("latin-1")
        found = (name, header_key(name))
        if len(NAMES) < _NAMES_MAX:
            NAMES[name_b] = found
    return found


#: Header name -> the start of its lines, ``b"Name: "``, for the names a compacted
#: blob can hold (latin-1, without ":", CR or LF: the line splits back to the same
#: name and value).  Bounded, so odd input cannot grow it without limit.
_PREFIXES: dict[str, bytes] = {}
_PREFIXES_MAX = 512


def _blob_prefix(name: str) -> bytes | None:
    """``b"Name: "`` for a name a compacted blob can hold, else None (see _PREFIXES)."""
    prefix = _PREFIXES.get(name)
    if prefix is None:
        if ":" in name or "\r" in name or "\n" in name:
            return None
        try:
            prefix = name.encode("latin-1") + b": "
        except UnicodeEncodeError:
            return None
        if len(_PREFIXES) < _PREFIXES_MAX:
            _PREFIXES[name] = prefix
    return prefix


def _prefix(name: str) -> bytes:
    """``b"Name: "`` for any header name (latin-1; else UnicodeEncodeError)."""
    return _blob_prefix(name) or name.encode("latin-1") + b": "


def _blob_lines(entries: list[Entry]) -> list[bytes] | None:
    """Each line as a compacted blob holds it, or None if a name cannot be held."""
    prefixes = _PREFIXES
    try:
        return [prefixes[name] + value for _key, name, value, _raw in entries]
    except KeyError:  # a name not seen yet
        pass
    lines: list[bytes] = []
    for _key, name, value, _raw in entries:
        prefix = _blob_prefix(name)
        if prefix is None:
            return None
        lines.append(prefix + value)
    return lines


P = ParamSpec("P")
R = TypeVar("R")


class Headers:
    """Ordered header lines with case-insensitive, compact-form aware lookup.

    ``cache`` holds structured views decoded by the message (Via, CSeq, ...); a
    change through this class drops the views of the header it changed (see
    :data:`VIEWS`), so views never go stale and the others are not decoded again.

    :meth:`compact` keeps the lines as one bytes blob (``_blob``), unsets the
    ``_entries`` and ``cache`` slots and makes the object a :class:`_CompactHeaders`,
    whose ``__getattr__`` makes them from the blob for each read.  Headers itself has
    no ``__getattr__``, so the attribute reads on the way of every message stay fast.
    """

    __slots__ = ("_blob", "_entries", "_first", "cache")

    _blob: bytes  # set only while _entries is not (a compacted section)

    def __init__(self, items: Iterable[tuple[str, str | bytes]] = ()) -> None:
        self._entries: list[Entry] = []
        self._first: dict[str, int] | None = {}  # kept up to date by add()
        self.cache: dict[str, Any] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _from_entries(cls, entries: list[Entry], first: dict[str, int]) -> Headers:
        self = cls.__new__(cls)
        self._entries = entries
        self._first = first
        self.cache = {}
        return self

    def _changed(self, key: str, *, moved: bool = True) -> None:
        """Drop the cached views of header ``key``; and the index if lines ``moved``."""
        if moved:
            self._first = None
        cache = self.cache
        if cache:
            for view in VIEWS.get(key, ()):
                cache.pop(view, None)

    def compact(self) -> None:
        """Shed what only speeds up a message's first moments: keep the lines as one
        bytes blob, each written from its name and value (the same header field,
        RFC 3261 7.3.1), without the decoded views, the line index and the raw lines.
        For messages held for the whole of a call (see :class:`_CompactHeaders`)."""
        if type(self) is _CompactHeaders:
            return
        entries = self._entries
        self._first = None
        lines = _blob_lines(entries) if entries else None
        if lines is not None:
            blob = b"\r\n".join(lines)
            if blob.count(b"\r\n") == len(lines) - 1:  # no CRLF in a value
                self._blob = blob
                del self._entries, self.cache
                self.__class__ = _CompactHeaders
                return
        if entries:  # a blob would not split back the same: keep lines, without raw bytes
            self._entries = [(k, n, v, None) for k, n, v, _ in entries]
        self.cache = {}  # a new empty dict is not GC-tracked; a cleared one stays so

    def _index(self) -> dict[str, int]:
        first = self._first
        if first is None:
            first = {}
            for i, entry in enumerate(self._entries):
                first.setdefault(entry[0], i)
            self._first = first
        return first

    # -- reading ---------------------------------------------------------------
    def raw(self, name: str) -> bytes | None:
        """The first line's value as bytes, or None."""
        return self._value(_KEYS.get(name) or _new_key(name))

    def _value(self, key: str) -> bytes | None:
        """The first value of header ``key`` (a lookup key) as bytes, or None."""
        i = (self._first or self._index()).get(key)
        return None if i is None else self._entries[i][2]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first line with this name (whole line, not split)."""
        i = (self._first or self._index()).get(_KEYS.get(name) or _new_key(name))
        if i is None:
            return default
        return decode(self._entries[i][2])

    def get_lines(self, name: str) -> list[str]:
        """Every line's value for this name, unsplit, in order."""
        key = _KEYS.get(name) or _new_key(name)
        if key not in (self._first or self._index()):
            return []
        return [e[2].decode("utf-8", "surrogateescape") for e in self._entries if e[0] == key]

    def get_all(self, name: str) -> list[str]:
        """Every value for this name in order; comma lists are split for list headers."""
        key = _KEYS.get(name) or _new_key(name)
        if key not in (self._first or self._index()):
            return []
        lines = [e[2].decode("utf-8", "surrogateescape") for e in self._entries if e[0] == key]
        if key not in LIST_HEADERS:
            return lines
        values: list[str] = []
        for line in lines:
            for value in split_outside_quotes(line, ","):
                value = value.strip(" \t")
                if value:
                    values.append(value)
        return values

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in (self._first or self._index())

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items())

    def items(self) -> list[tuple[str, str]]:
        """(name as written, value) for every line, in order."""
        return [(e[1], e[2].decode("utf-8", "surrogateescape")) for e in self._entries]

    def count(self, name: str) -> int:
        """How many lines carry this header."""
        key = header_key(name)
        return sum(1 for e in self._entries if e[0] == key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(e[0], e[2]) for e in self._entries] == [(e[0], e[2]) for e in other._entries]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    # -- changing --------------------------------------------------------------
    def add(self, name: str, value: str | bytes, *, first: bool = False) -> None:
        """Append a line (or put it before all others with ``first=True``)."""
        data = value if isinstance(value, bytes) else encode(value)
        key = _KEYS.get(name) or _new_key(name)
        entries = self._entries
        if first:
            index = self._index()
            pos = index.get(key, 0)
            entries.insert(pos, (key, name, data, None))
            self._changed(key, moved=False)
            # every line from pos on moved down one; the new line is this key's first
            self._first = {k: i + 1 if i >= pos else i for k, i in index.items()}
            self._first[key] = pos
            return
        entries.append((key, name, data, None))
        if self.cache:
            self._changed(key, moved=False)  # an appended line moves no other
        first_lines = self._first
        if first_lines is not None and key not in first_lines:
            first_lines[key] = len(entries) - 1

    def set(self, name: str, value: str | bytes) -> None:
        """Replace every line of this header by one line, kept at the first one's place."""
        key = header_key(name)
        data = value if isinstance(value, bytes) else encode(value)
        entries = self._entries
        pos = self._index().get(key)
        if pos is None:
            self.add(name, data)
            return
        old = entries[pos]
        entries[pos] = (key, old[1], data, None)
        later = [e for e in entries[pos + 1 :] if e[0] != key]
        moved = len(later) != len(entries) - pos - 1
        if moved:
            entries[pos + 1 :] = later
        self._changed(key, moved=moved)

    def remove(self, name: str) -> int:
        """Remove every line of this header; returns how many were removed."""
        key = header_key(name)
        before = len(self._entries)
        if key not in self._index():
            return 0
        self._entries = [e for e in self._entries if e[0] != key]
        self._changed(key)
        return before - len(self._entries)

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first value of a list header (e.g. the top Via)."""
        key = header_key(name)
        pos = self._index().get(key)
        if pos is None:
            return None
        entries = self._entries
        k, written, data, _ = entries[pos]
        if key in LIST_HEADERS and b"," in data:
            parts = split_outside_quotes(decode(data), ",")
            head, rest = parts[0].strip(" \t"), ",".join(parts[1:]).strip(" \t")
        else:
            head, rest = decode(data).strip(" \t"), ""
        if rest:
            entries[pos] = (k, written, encode(rest), None)
            self._changed(key, moved=False)
        else:
            del entries[pos]
            self._changed(key)
        return head

    def replace_first_value(self, name: str, value: str | bytes) -> None:
        """Replace the first value of a list header where it stands (e.g. the top Via).

        What ``pop_first_value`` then ``add(first=True)`` do, in one step that moves
        no line: the other values of the first line stay on it, after the new one.
        Without such a header the value is appended.
        """
        key = header_key(name)
        pos = self._index().get(key)
        data = value if isinstance(value, bytes) else encode(value)
        if pos is None:
            self.add(name, data)
            return
        entries = self._entries
        k, written, old, _ = entries[pos]
        if key in LIST_HEADERS and b"," in old:
            rest = ",".join(split_outside_quotes(decode(old), ",")[1:]).strip(" \t")
            if rest:
                data = data + b", " + encode(rest)
        entries[pos] = (k, written, data, None)
        self._changed(key, moved=False)

    def copy(self) -> Headers:
        """An independent copy (raw lines shared, they are immutable)."""
        return Headers._from_entries(list(self._entries), dict(self._index()))

    def to_bytes(self, body_length: int) -> bytes:
        """The header section, each line ending in CRLF, with a correct Content-Length."""
        out: list[bytes] = []
        wrote_length = False
        length = b"%d" % body_length
        prefixes = _PREFIXES
        for key, name, value, raw in self._entries:
            if key == "content-length":
                if wrote_length:
                    continue
                wrote_length = True
                if value != length:
                    out.append((prefixes.get(name) or _prefix(name)) + length)
                    continue
            out.append(raw if raw is not None else (prefixes.get(name) or _prefix(name)) + value)
        if not wrote_length:
            out.append(b"Content-Length: " + length)
        out.append(b"")
        return b"\r\n".join(out) + b"\r\n"

    # -- copying lines between messages as bytes -------------------------------
    def lines_except(self, hidden: frozenset[str]) -> list[Entry]:
        """The lines whose lookup key is not in ``hidden``, in order, for :meth:`add_lines`.

        Handed over as bytes, without their raw line: another message writes each as
        ``add(name, value)`` of its decoded value would (the same bytes on the wire),
        and nothing is decoded or encoded on the way (a B2BUA copies ~25 per call).
        """
        return [(k, n, v, None) for k, n, v, _ in self._entries if k not in hidden]

    def add_lines(self, lines: Iterable[Entry]) -> None:
        """Append lines from :meth:`lines_except`: what ``add`` of each would do, in order."""
        if isinstance(self, _CompactHeaders):
            self._unpack()  # as every change does (see _unpacking)
        entries = self._entries
        first_lines = self._first
        cache = self.cache
        for line in lines:
            key = line[0]
            if first_lines is not None and key not in first_lines:
                first_lines[key] = len(entries)
            entries.append(line)
            if cache:
                self._changed(key, moved=False)  # an appended line moves no other


class _CompactHeaders(Headers):
    """A compacted Headers (see Headers.compact): the lines as one blob.

    Reading it splits the blob each time and keeps nothing (no lines, no index, no
    views: ``cache`` is a new empty dict on every access), because such messages
    are read rarely and held long.  The first change turns it back into an ordinary
    Headers, the lines split for good, which then behaves as before.
    """

    __slots__ = ()

    if not TYPE_CHECKING:  # mypy sees the slots as always set

        def __getattr__(self, attr: str) -> Any:
            """The lines and the view cache, made for each read (see the class doc)."""
            if attr == "_entries":
                return self._lines()
            if attr == "cache":
                return {}
            raise AttributeError(attr)

    def _lines(self) -> list[Entry]:
        """The blob split into lines (raw bytes None, as compact() leaves them)."""
        entries: list[Entry] = []
        names = NAMES
        for line in self._blob.split(b"\r\n"):
            name_b, _, value = line.partition(b": ")
            name, key = names.get(name_b) or name_and_key(name_b)
            entries.append((key, name, value, None))
        return entries

    def _value(self, key: str) -> bytes | None:
        """Headers._value read from the blob, without splitting it into lines."""
        names = NAMES
        for line in self._blob.split(b"\r\n"):
            name_b, _, value = line.partition(b": ")
            if (names.get(name_b) or name_and_key(name_b))[1] == key:
                return value
        return None

    def _index(self) -> dict[str, int]:
        first: dict[str, int] = {}
        for i, entry in enumerate(self._lines()):
            first.setdefault(entry[0], i)
        return first  # not kept (see the class doc)

    def _unpack(self) -> None:
        """Split the blob for good: from now on this is an ordinary Headers."""
        self._entries = self._lines()
        self.cache = {}
        del self._blob
        self.__class__ = Headers  # type: ignore[assignment]


def _unpacking(
    change: Callable[Concatenate[Headers, P], R],
) -> Callable[Concatenate[Headers, P], R]:
    """``change`` for a _CompactHeaders: split the blob for good first."""

    @functools.wraps(change)
    def unpack_then_change(self: Headers, /, *args: P.args, **kwargs: P.kwargs) -> R:
        assert isinstance(self, _CompactHeaders)
        self._unpack()
        return change(self, *args, **kwargs)

    return unpack_then_change


for _change in (
    Headers.add,
    Headers.set,
    Headers.remove,
    Headers.pop_first_value,
    Headers.replace_first_value,
):
    setattr(_CompactHeaders, _change.__name__, _unpacking(_change))
