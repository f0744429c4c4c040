"""A minimal STUN Binding responder for UDP keep-alives (RFC 5626 3.5.2, RFC 5389).

SIP Outbound clients keep UDP NAT bindings open with STUN Binding requests sent
to the SIP port; the server answers each with a Binding success response
carrying XOR-MAPPED-ADDRESS (the address it saw), so the client also learns when
its NAT binding changed.  No authentication, no other methods.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_FINGERPRINT = 0x8028
_FINGERPRINT_XOR = 0x5354554E
HEADER_SIZE = 20


def is_stun(datagram: bytes) -> bool:
    """True when a datagram looks like STUN: top two bits zero and the magic cookie.

    SIP messages start with a letter, so the two never collide on one port.
    """
    return len(datagram) >= HEADER_SIZE and datagram[0] < 0x40 and datagram[4:8] == _COOKIE_BYTES


def _attributes(body: bytes) -> list[tuple[int, bytes]] | None:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(body):
        if i + 4 > len(body):
            return None
        atype, alen = struct.unpack_from("!HH", body, i)
        end = i + 4 + alen
        if end > len(body):
            return None
        out.append((atype, body[i + 4 : end]))
        i = end + (-alen % 4)
    return out


def _fingerprint(message: bytes) -> int:
    return (zlib.crc32(message) & 0xFFFFFFFF) ^ _FINGERPRINT_XOR


def binding_response(datagram: bytes, host: str, port: int) -> bytes | None:
    """The Binding success response to a Binding request from ``host``:``port``.

    Returns None when ``datagram`` is not a well-formed Binding request (other
    STUN methods, responses, indications and garbage are ignored).  A FINGERPRINT
    is added when the request carried one.
    """
    if not is_stun(datagram):
        return None
    mtype, length = struct.unpack_from("!HH", datagram, 0)
    if mtype != BINDING_REQUEST or length % 4 or HEADER_SIZE + length != len(datagram):
        return None
    attrs = _attributes(datagram[HEADER_SIZE:])
    if attrs is None:
        return None
    transaction_id = datagram[8:20]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    xport = port ^ (MAGIC_COOKIE >> 16)
    if isinstance(ip, ipaddress.IPv4Address):
        xaddr = (int(ip) ^ MAGIC_COOKIE).to_bytes(4, "big")
        value = struct.pack("!BBH", 0, 0x01, xport) + xaddr
    else:
        mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
        xaddr = (int(ip) ^ mask).to_bytes(16, "big")
        value = struct.pack("!BBH", 0, 0x02, xport) + xaddr
    body = struct.pack("!HH", ATTR_XOR_MAPPED_ADDRESS, len(value)) + value
    with_fingerprint = any(atype == ATTR_FINGERPRINT for atype, _ in attrs)
    total = len(body) + (8 if with_fingerprint else 0)
    message = struct.pack("!HH", BINDING_SUCCESS, total) + _COOKIE_BYTES + transaction_id + body
    if with_fingerprint:
        message += struct.pack("!HHI", ATTR_FINGERPRINT, 4, _fingerprint(message))
    return message
