"""Helpers shared by the b2bua.sip unit tests: fixtures, message builders, comparisons."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote_to_bytes

from b2bua.sip import Request, Response, canonical_name, parse_message

TORTURE = Path(__file__).resolve().parents[2] / "data" / "torture"

Message = Request | Response


def load(name: str) -> bytes:
    """The exact octets of one torture fixture (tests/data/torture/<name>.dat)."""
    return (TORTURE / f"{name}.dat").read_bytes()


def build(start: str, *headers: str, body: bytes = b"", content_length: bool = True) -> bytes:
    """A message from a start line and header lines (CRLF added), plus a body.

    With ``content_length`` a correct ``Content-Length`` is appended to the headers.
    """
    lines = [start, *headers]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


BASIC_HEADERS = (
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
)


def request(
    method: str = "INVITE",
    *extra: str,
    uri: str = "sip:bob@biloxi.example.com",
    body: bytes = b"",
    cseq: str | None = None,
    content_length: bool = True,
) -> bytes:
    """A well-formed request (RFC 3261 section 8.1.1's mandatory headers) plus ``extra``."""
    headers = (*BASIC_HEADERS, f"CSeq: {cseq if cseq is not None else '314159 ' + method}")
    return build(
        f"{method} {uri} SIP/2.0", *headers, *extra, body=body, content_length=content_length
    )


def response(status: int = 200, reason: str = "OK", *extra: str, body: bytes = b"") -> bytes:
    """A well-formed response to an INVITE plus ``extra`` header lines."""
    headers = (
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
        'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 INVITE",
    )
    return build(f"SIP/2.0 {status} {reason}", *headers, *extra, body=body)


def parse_and_validate(data: bytes) -> Message:
    """What a UAS does with a new datagram: parse it, then decode every known header."""
    message = parse_message(data)
    message.validate()
    return message


def start_line(message: Message) -> tuple[object, ...]:
    """The start line's parts, for comparing two messages."""
    if isinstance(message, Request):
        return ("request", message.method, str(message.uri), message.version)
    return ("response", message.status, message.reason, message.version)


def header_items(message: Message) -> list[tuple[str, str]]:
    """``headers.items()`` without Content-Length, which to_bytes always rewrites."""
    return [(n, v) for n, v in message.headers.items() if canonical_name(n) != "Content-Length"]


def assert_round_trip(message: Message) -> Message:
    """parse_message(message.to_bytes()) must give the same message back."""
    wire = message.to_bytes()
    assert isinstance(wire, bytes)
    again = parse_message(wire)
    assert type(again) is type(message)
    assert start_line(again) == start_line(message)
    assert header_items(again) == header_items(message)
    assert again.body == message.body
    lengths = [int(v.strip()) for v in again.headers.get_all("Content-Length")]
    assert lengths == [len(message.body)], "to_bytes writes one Content-Length matching the body"
    return again


def header_fields(data: bytes) -> list[bytes]:
    """The raw header fields of a message (each with its continuation lines), no CRLF."""
    head = data.split(b"\r\n\r\n", 1)[0]
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def field_name(raw_field: bytes) -> str:
    """The name of a raw header field, in its long form."""
    return canonical_name(raw_field.split(b":", 1)[0].strip().decode("utf-8", "replace"))


def user_octets(user: str | None) -> bytes:
    """A URI user part with every %HH escape decoded (RFC 3261 section 19.1.4)."""
    return unquote_to_bytes(user or "")


def find_param(params: dict[str, str | None], name: str) -> tuple[bool, str | None]:
    """Look a parameter up by name, case-insensitively; a quoted value is unquoted."""
    for key, value in params.items():
        if key.lower() == name.lower():
            if value is not None and len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return True, value
    return False, None


def squeeze(text: str) -> str:
    """Collapse LWS runs to one SP (RFC 3261 section 7.3.1: folding is equivalent to SP)."""
    return " ".join(text.split())
