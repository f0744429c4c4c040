"""The STUN Binding responder used for UDP keep-alives (RFC 5626 3.5.2, RFC 5389)."""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib

from b2bua.transport.stun import MAGIC_COOKIE, binding_response, is_stun

COOKIE = struct.pack("!I", MAGIC_COOKIE)


def binding_request(tid: bytes, *, fingerprint: bool = False) -> bytes:
    if not fingerprint:
        return struct.pack("!HH", 0x0001, 0) + COOKIE + tid
    head = struct.pack("!HH", 0x0001, 8) + COOKIE + tid
    crc = (zlib.crc32(head) & 0xFFFFFFFF) ^ 0x5354554E
    return head + struct.pack("!HHI", 0x8028, 4, crc)


def xor_mapped(response: bytes) -> tuple[str, int]:
    assert struct.unpack_from("!H", response, 0)[0] == 0x0101
    length = struct.unpack_from("!H", response, 2)[0]
    assert len(response) == 20 + length
    i = 20
    while i < len(response):
        atype, alen = struct.unpack_from("!HH", response, i)
        value = response[i + 4 : i + 4 + alen]
        if atype == 0x0020:
            family, xport = value[1], struct.unpack_from("!H", value, 2)[0]
            port = xport ^ (MAGIC_COOKIE >> 16)
            if family == 1:
                ip = ipaddress.IPv4Address(int.from_bytes(value[4:8], "big") ^ MAGIC_COOKIE)
            else:
                mask = int.from_bytes(COOKIE + response[8:20], "big")
                ip = ipaddress.IPv6Address(int.from_bytes(value[4:20], "big") ^ mask)
            return str(ip), port
        i += 4 + alen + (-alen % 4)
    raise AssertionError("no XOR-MAPPED-ADDRESS")


def test_ipv4_binding() -> None:
    tid = os.urandom(12)
    answer = binding_response(binding_request(tid), "203.0.113.7", 40123)
    assert answer is not None
    assert answer[8:20] == tid and answer[4:8] == COOKIE
    assert xor_mapped(answer) == ("203.0.113.7", 40123)


def test_ipv6_binding() -> None:
    answer = binding_response(binding_request(os.urandom(12)), "2001:db8::7", 5060)
    assert answer is not None
    assert xor_mapped(answer) == ("2001:db8::7", 5060)


def test_fingerprint_echoed() -> None:
    answer = binding_response(binding_request(os.urandom(12), fingerprint=True), "192.0.2.1", 1)
    assert answer is not None
    atype, alen, crc = struct.unpack_from("!HHI", answer, len(answer) - 8)
    assert (atype, alen) == (0x8028, 4)
    assert crc == (zlib.crc32(answer[:-8]) & 0xFFFFFFFF) ^ 0x5354554E


def test_not_a_binding_request() -> None:
    tid = os.urandom(12)
    assert binding_response(struct.pack("!HH", 0x0101, 0) + COOKIE + tid, "192.0.2.1", 1) is None  # a response
    assert binding_response(struct.pack("!HH", 0x0001, 4) + COOKIE + tid, "192.0.2.1", 1) is None  # bad length
    assert binding_response(b"OPTIONS sip:x SIP/2.0\r\n\r\n", "192.0.2.1", 1) is None
    assert not is_stun(b"\r\n\r\n")
    assert not is_stun(b"INVITE sip:bob@example.com SIP/2.0\r\n")
    assert is_stun(binding_request(tid))
