"""Compiled patterns for the common, well-formed shapes of header values (the fast path).

What and why: decoding a header the general way (splitting, building URI and
NameAddr objects, checking each part with its own function) costs tens of
microseconds per message, and most of it is spent on values that are plainly
fine.  The patterns here recognise the usual shapes of those values in one C-level
regular expression match.

The rule every pattern obeys: it accepts a *subset* of what the general code
accepts, and where it captures parts they are the parts the general code would
find.  A value a pattern refuses is not necessarily wrong: the caller then runs
the general code, which accepts it or raises the exact error it always raised.  So
behaviour on malformed input is the general code's, and the patterns only decide
how fast a good value goes through.  ``tests/unit/sip/test_patterns.py`` checks the
subset rule on generated and mutated values.

Each pattern exists as ``str`` source; the ``*_B`` variants are the same grammar
compiled for ``bytes`` (header values are kept as bytes until something reads
them; matching the bytes avoids decoding values that are only checked).  Character
classes are spelled out in ASCII (never ``\\d`` or ``\\w``, which match non-ASCII
digits and letters in ``str`` patterns).  Repetitions are written so that no two
of them can match the same text, which keeps matching linear in the length of the
value, whatever the input.
"""

from __future__ import annotations

import re

#: RFC 3261 token.
TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
#: A parameter value as grammar.parse_params accepts it without quotes.
VALUE = r"[A-Za-z0-9.!%*_+`'~\[\]:-]+"
#: ``;name[=value]`` pairs as grammar.parse_params accepts them on its fast path.
PARAMS = rf"(?:;{TOKEN}(?:={VALUE})?)*"
#: 0-65535 (leading zeros only where the general check allows them, within five digits).
PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
#: 0-255, for a Via ttl and Max-Forwards.
BYTE = r"(?:25[0-5]|2[0-4][0-9]|[01][0-9]{2}|[0-9]{1,2})"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
#: Host names whose last label starts with a letter (so never an IPv4-looking name).
_LABEL = r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*"
_TOPLABEL = r"[A-Za-z][A-Za-z0-9]*(?:-+[A-Za-z0-9]+)*"
HOST = rf"(?:{IPV4}|(?:{_LABEL}\.)*{_TOPLABEL}\.?)"
_HEX2 = r"%[0-9A-Fa-f]{2}"
#: URI user, password and parameter characters (uri._USER_CHARS, ...) with escapes.
_USER = rf"(?:[A-Za-z0-9_.!~*'()&=+$,;?/-]|{_HEX2})+"
#: A user part in an addr-spec written without <>: no ``;`` ``?`` or ``,`` (the general
#: code cuts the value at those).
_PLAIN_USER = rf"(?:[A-Za-z0-9_.!~*'()&=+$/-]|{_HEX2})+"
_PASSWORD = rf"(?:[A-Za-z0-9_.!~*'()&=+$,]|{_HEX2})*"
_PCHARS = rf"(?:[A-Za-z0-9_.!~*'()\[\]/:&+$-]|{_HEX2})+"
_SCHEME = r"[Ss][Ii][Pp][Ss]?"

#: A sip or sips URI without URI headers, in groups: scheme, user, password, host,
#: port, and the parameters (``;a=b;c``, possibly empty).
SIP_URI = (
    rf"({_SCHEME}):(?:({_USER})(?::({_PASSWORD}))?@)?({HOST})(?::({PORT}))?"
    rf"((?:;{_PCHARS}(?:={_PCHARS})?)*)"
)
_SIP_URI_NOGROUPS = (
    rf"{_SCHEME}:(?:{_USER}(?::{_PASSWORD})?@)?{HOST}(?::{PORT})?"
    rf"(?:;{_PCHARS}(?:={_PCHARS})?)*"
)
_ADDR_SPEC = rf"{_SCHEME}:(?:{_PLAIN_USER}(?::{_PASSWORD})?@)?{HOST}(?::{PORT})?"
_DISPLAY = rf'(?:"[^"\\\r\n]*"[ \t]*|{TOKEN}(?:[ \t]+{TOKEN})*[ \t]*)?'
#: From, To, Contact, Route... values: ``[display] <sip-uri>;params`` or ``sip-uri;params``.
NAME_ADDR = rf"(?:{_DISPLAY}<{_SIP_URI_NOGROUPS}>|{_ADDR_SPEC}){PARAMS}"

#: A name-addr with a sip or sips URI, in groups: the display name (quoted, without
#: its quotes; or tokens), the URI (as SIP_URI) and the header parameters.
NAME_ADDR_GROUPS = (
    rf'[ \t]*(?:"([^"\\\r\n]*)"[ \t]*|({TOKEN}(?:[ \t]+{TOKEN})*)[ \t]*)?'
    rf"<{SIP_URI}>({PARAMS})[ \t]*"
)
#: An addr-spec without <> and its header parameters, in groups: the URI (as SIP_URI,
#: without URI parameters: a ``;`` starts the header parameters) and the parameters.
ADDR_SPEC_GROUPS = (
    rf"[ \t]*({_SCHEME}):(?:({_PLAIN_USER})(?::({_PASSWORD}))?@)?({HOST})(?::({PORT}))?"
    rf"({PARAMS})[ \t]*"
)

#: Via parameters, with ttl (0-255) and rport (0-65535) checked as parse_via does.
_VIA_PARAMS = (
    rf"(?:;(?:(?i:ttl)={BYTE}|(?i:rport)(?:={PORT})?"
    rf"|(?!(?i:ttl|rport)\b){TOKEN}(?:={VALUE})?))*"
)
#: One Via value, in groups: transport, host, port and the parameters.
VIA = rf"SIP/2\.0/({TOKEN}) ({HOST})(?::({PORT}))?({_VIA_PARAMS})"
_VIA_NOGROUPS = rf"SIP/2\.0/{TOKEN} {HOST}(?::{PORT})?{_VIA_PARAMS}"


def _list_of(item: str) -> str:
    return rf"{item}(?:[ \t]*,[ \t]*{item})*"


def _b(source: str) -> re.Pattern[bytes]:
    return re.compile(source.encode("ascii"))


#: The top Via of a header line: matched at the start, followed by the end or a comma.
TOP_VIA_RE = re.compile(rf"{VIA}[ \t]*(?:,|\Z)")
#: A whole Via line: the top value in groups (as VIA), the values after it checked.
TOP_VIA_LINE_RE = re.compile(rf"{VIA}(?:[ \t]*,[ \t]*{_VIA_NOGROUPS})*")
SIP_URI_RE = re.compile(SIP_URI)
NAME_ADDR_RE = re.compile(NAME_ADDR_GROUPS)
ADDR_SPEC_RE = re.compile(ADDR_SPEC_GROUPS)
#: From and To values, for the tag: the header parameters after ``<...>`` in a group.
TAGGED_RE = re.compile(rf'(?:"[^"\\\r\n]*")?[^"<>]*<[^"<>]*>({PARAMS})')
#: CSeq: number and method.
CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+({TOKEN})[ \t]*")

#: Whole header values (bytes) whose general check is sure to pass.
VIA_LIST_B = _b(_list_of(_VIA_NOGROUPS))
NAME_ADDR_B = _b(NAME_ADDR)
NAME_ADDR_LIST_B = _b(_list_of(NAME_ADDR))
TOKEN_LIST_B = _b(rf"[ \t]*(?:{TOKEN}[ \t]*)?(?:,[ \t]*(?:{TOKEN}[ \t]*)?)*")
BYTE_B = _b(BYTE)
UINT9_B = _b(r"[0-9]{1,9}")
MEDIA_TYPE_B = _b(rf"{TOKEN}/{TOKEN}{PARAMS}")
