"""The SIP message layer (RFC 3261 section 7, 19, 20, 25): pure, no I/O, no Twisted."""

from .address import Address, Origin
from .errors import SIPParseError
from .fields import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from .headers import Headers, canonical_name, header_key
from .message import Message, Request, Response, reason_phrase, response_for
from .parser import (
    DEFAULT_LIMITS,
    FramingError,
    Limits,
    StreamFramer,
    parse_message,
    salvage_request,
)
from .uri import URI, parse_uri

__all__ = [
    "Address",
    "Origin",
    "DEFAULT_LIMITS",
    "URI",
    "CSeq",
    "FramingError",
    "Headers",
    "Limits",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SIPParseError",
    "StreamFramer",
    "Via",
    "canonical_name",
    "header_key",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "reason_phrase",
    "response_for",
    "salvage_request",
]
