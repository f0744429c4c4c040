"""The UAS core: RFC 3261 8.2 checks, OPTIONS, 405/501/420/416/483, malformed input."""

from __future__ import annotations

import pytest

from b2bua.sip import Address, Origin, Request, Response, parse_message
from b2bua.ua.core import CoreSettings, UACore

ORIGIN = Origin(Address("UDP", "127.0.0.1", 5080), Address("UDP", "127.0.0.1", 5060))


class FakeTx:
    """Records what the core answers."""

    def __init__(self) -> None:
        self.responses: list[Response] = []

    def respond(self, response: Response) -> None:
        self.responses.append(response)


def request(method: str = "OPTIONS", uri: str = "sip:b2bua@127.0.0.1", extra: str = "") -> Request:
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        "To: <sip:b2bua@127.0.0.1>\r\n"
        "Call-ID: c1@127.0.0.1\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


@pytest.fixture
def sent() -> list[tuple[Response, Origin]]:
    return []


@pytest.fixture
def core(sent: list[tuple[Response, Origin]]) -> UACore:
    return UACore(
        CoreSettings(user_agent="test-ua", supported=frozenset({"path"})),
        lambda resp, origin: sent.append((resp, origin)),
        tag_factory=lambda: "tag1",
    )


def answer(core: UACore, req: Request) -> Response:
    tx = FakeTx()
    core.request_received(tx, req)
    assert len(tx.responses) == 1
    return tx.responses[0]


def test_options_gets_200_with_allow_accept_supported(core: UACore) -> None:
    resp = answer(core, request())
    assert resp.status == 200
    assert resp.to_tag == "tag1"
    assert set(resp.headers.get_all("Allow")) == {"OPTIONS", "ACK", "CANCEL"}
    assert resp.headers.get("Accept") == "application/sdp"
    assert resp.headers.get("Supported") == "path"
    assert resp.headers.get("Server") == "test-ua"
    assert resp.call_id == "c1@127.0.0.1" and resp.cseq.method == "OPTIONS"
    assert resp.headers.get("Via") == "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1"


def test_unknown_method_gets_501(core: UACore) -> None:
    assert answer(core, request("FOO")).status == 501


def test_known_but_unhandled_method_gets_405_with_allow(core: UACore) -> None:
    resp = answer(core, request("INVITE"))
    assert resp.status == 405
    assert "OPTIONS" in resp.headers.get_all("Allow")


def test_registered_handler_gets_the_request(core: UACore) -> None:
    seen: list[Request] = []
    core.register("INVITE", lambda tx, req, identity: seen.append(req))
    tx = FakeTx()
    core.request_received(tx, request("INVITE"))
    assert len(seen) == 1 and tx.responses == []
    assert "INVITE" in answer(core, request()).headers.get_all("Allow")


def test_require_unknown_option_gets_420_with_unsupported(core: UACore) -> None:
    resp = answer(core, request(extra="Require: foo, path, bar\r\n"))
    assert resp.status == 420
    assert resp.headers.get_all("Unsupported") == ["foo", "bar"]


def test_require_is_ignored_for_cancel(core: UACore) -> None:
    resp = answer(core, request("CANCEL", extra="Require: foo\r\n"))
    assert resp.status == 405  # no handler for CANCEL here; not 420


def test_unknown_scheme_gets_416(core: UACore) -> None:
    assert answer(core, request(uri="http://example.com/")).status == 416


def test_max_forwards_zero_gets_483_except_options(core: UACore) -> None:
    req = request("INVITE")
    req.headers.set("Max-Forwards", "0")
    assert answer(core, req).status == 483
    req = request()
    req.headers.set("Max-Forwards", "0")
    assert answer(core, req).status == 200


def test_malformed_header_gets_400_with_reason(core: UACore) -> None:
    resp = answer(core, request(extra="Contact: <sip:bad host>\r\n"))
    assert resp.status == 400
    assert resp.reason.startswith("Bad Request (")


def test_ack_is_never_answered(core: UACore) -> None:
    tx = FakeTx()
    core.request_received(tx, request("ACK", extra="Require: foo\r\n"))
    assert tx.responses == []


def test_draining_refuses_new_requests_with_503(core: UACore) -> None:
    core.draining = True
    resp = answer(core, request())
    assert resp.status == 503 and resp.headers.get("Retry-After") == "30"
    in_dialog = request()
    in_dialog.headers.set("To", "<sip:b2bua@127.0.0.1>;tag=x")
    assert answer(core, in_dialog).status == 200


def test_unparseable_request_answered_statelessly(
    core: UACore, sent: list[tuple[Response, Origin]]
) -> None:
    data = request().to_bytes().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    from b2bua.sip import SIPParseError

    with pytest.raises(SIPParseError) as info:
        parse_message(data)
    core.parse_error(info.value, data, ORIGIN)
    assert [(r.status, o) for r, o in sent] == [(505, ORIGIN)]


def test_garbage_is_dropped(core: UACore, sent: list[tuple[Response, Origin]]) -> None:
    from b2bua.sip import SIPParseError

    core.parse_error(SIPParseError(400, "junk"), b"\x00\xff garbage", ORIGIN)
    assert sent == [] and core.stats.dropped == 1
