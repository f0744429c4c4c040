"""Requests, origins and credentials for the auth tests."""

from __future__ import annotations

from b2bua.sip import Address, Origin, Request, Response, parse_message
from b2bua.sip.digest import Challenge, authorization

REALM = "example.com"
PASSWORDS = {"alice": "secret", "bob": "builder"}


def origin(host: str = "192.0.2.10", port: int = 5062, transport: str = "UDP") -> Origin:
    return Origin(Address(transport, host, port), Address(transport, "192.0.2.1", 5060))


def request(
    method: str = "REGISTER",
    uri: str = f"sip:{REALM}",
    extra: str = "",
    *,
    call_id: str = "c1@192.0.2.10",
    to_tag: str | None = None,
) -> Request:
    to = f"<sip:alice@{REALM}>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-1\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:alice@{REALM}>;tag=a1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def challenges(headers: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[Challenge]:
    return [Challenge.parse(v) for n, v in headers if n.endswith("Authenticate")]


def answer(
    challenge: Challenge,
    method: str = "REGISTER",
    uri: str = f"sip:{REALM}",
    *,
    user: str = "alice",
    password: str = "secret",
    nc: int = 1,
) -> Request:
    """``method`` again, with credentials answering ``challenge``."""
    header = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
    value = authorization(challenge, user, password, method, uri, nc)
    return request(method, uri, f"{header}: {value}\r\n")


def response_challenges(response: Response) -> list[Challenge]:
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    return [Challenge.parse(v) for v in response.headers.get_lines(name)]
