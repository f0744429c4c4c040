"""Digest authentication through the real server (twistd) with SIPp and raw UDP.

SIPp answers challenges with its ``[authentication]`` keyword.  SIPp 3.6.1 knows
only MD5 and answers the *first* challenge of a response, so the SIPp runs use a
server configured with ``algorithms = ["MD5"]`` (what README "Authentication"
tells operators of such clients); SHA-256, offered first by default (RFC 8760),
is exercised by a Python client over UDP using the server's own digest code.
Clients live on 127.0.0.2 (the attacker on 127.0.0.4), the server on 127.0.0.1,
the callee on 127.0.0.3 (a trusted network in these tests).
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2bua.sip import Response, parse_message
from b2bua.sip.digest import Challenge, authorization
from tests.conftest import free_port
from tests.integration.harness import SCENARIOS, running_server

SERVER, CLIENT, CALLEE, ATTACKER = "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"

WHOAMI = '''"""Test router: a call to "whoami" is refused with the caller's identity as reason."""
from zope.interface import implementer

from b2bua.interfaces import IRouter, Reject


@implementer(IRouter)
class WhoAmI:
    def route(self, request, context):
        if request.request_uri.user == "whoami":
            return Reject(480, f"identity={context.identity}")
        return None


def make_plugin(options, context):
    return WhoAmI()
'''


def auth_config(port: int, auth: str, callee_port: int | None = None) -> str:
    """Registrar and [auth] on; the whoami router, then (maybe) a route to the callee."""
    text = (
        'plugin_dirs = ["plugins.d"]\n\n'
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f'[registrar]\nenabled = true\ndomains = ["{SERVER}"]\ndatabase = ""\n\n'
        f'[auth]\nusers = {{ alice = "secret", bob = "builder" }}\n'
        f'trusted_networks = ["{CALLEE}/32"]\n{auth}\n\n'
        '[[plugin]]\nmodule = "whoami"\n'
    )
    if callee_port is not None:
        text += (
            '\n[[plugin]]\nmodule = "static_routes"\n'
            f'[[plugin.route]]\ntargets = ["sip:{CALLEE}:{callee_port}"]\n'
        )
    return text


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "plugins.d").mkdir()
    (tmp_path / "plugins.d" / "whoami.py").write_text(WHOAMI)
    return tmp_path


class Client:
    """A minimal UDP user agent bound to ``host``: sends a request, returns its final response."""

    def __init__(self, host: str, server_port: int) -> None:
        self.host = host
        self.server = (SERVER, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def build(
        self, method: str, uri: str, user: str, call_id: str, branch: str, extra: str = ""
    ) -> str:
        self.cseq += 1
        return (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{SERVER}>;tag=t{self.port}\r\n"
            f"To: <sip:{user}@{SERVER}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {self.cseq} {method}\r\n"
            f"Contact: <sip:{user}@{self.host}:{self.port}>\r\n"
            f"{'Expires: 60' + chr(13) + chr(10) if method == 'REGISTER' else ''}"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        )

    def send(
        self,
        method: str,
        uri: str,
        *,
        user: str = "alice",
        call_id: str | None = None,
        extra: str = "",
        timeout: float = 3.0,
    ) -> Response | None:
        """The final response (1xx skipped; a non-2xx to INVITE is ACKed), None if silent."""
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        call_id = call_id or uuid.uuid4().hex
        text = self.build(method, uri, user, call_id, branch, extra)
        self.sock.sendto(text.encode(), self.server)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return None
            message = parse_message(data)
            if not isinstance(message, Response) or message.status < 200:
                continue
            if method == "INVITE":
                ack = text.split("\r\n")
                ack[0] = f"ACK {uri} SIP/2.0"
                ack = [
                    f"To: {message.headers.get('To')}" if line.startswith("To:") else line
                    for line in ack
                    if not line.startswith(("Proxy-Authorization", "Contact"))
                ]
                ack = [
                    f"CSeq: {self.cseq} ACK" if line.startswith("CSeq:") else line for line in ack
                ]
                self.sock.sendto("\r\n".join(ack).encode(), self.server)
            return message

    def authenticated(
        self,
        method: str,
        uri: str,
        *,
        user: str = "alice",
        password: str = "secret",
        algorithm: str = "SHA-256",
    ) -> tuple[Response | None, Response | None]:
        """Send, answer the challenge for ``algorithm``, return (challenge, final)."""
        call_id = uuid.uuid4().hex
        first = self.send(method, uri, user=user, call_id=call_id)
        if first is None or first.status not in (401, 407):
            return first, None
        name = "WWW-Authenticate" if first.status == 401 else "Proxy-Authenticate"
        offered = [Challenge.parse(v) for v in first.headers.get_lines(name)]
        challenge = next(c for c in offered if c.algorithm == algorithm)
        header = "Authorization" if first.status == 401 else "Proxy-Authorization"
        value = authorization(challenge, user, password, method, uri)
        return first, self.send(
            method, uri, user=user, call_id=call_id, extra=f"{header}: {value}\r\n"
        )


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def client(clients: list[Client], host: str, port: int) -> Client:
    made = Client(host, port)
    clients.append(made)
    return made


def challenges(response: Response) -> list[Challenge]:
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    return [Challenge.parse(v) for v in response.headers.get_lines(name)]


# -- SHA-256 and MD5 over the wire, the identity, trusted networks ----------------------


def test_register_offers_sha256_then_md5_and_both_work(
    workdir: Path, clients: list[Client]
) -> None:
    port = free_port("udp")
    with running_server(workdir, auth_config(port, ""), ready_udp=port) as server:
        alice = client(clients, CLIENT, port)
        for algorithm in ("SHA-256", "MD5"):
            first, final = alice.authenticated("REGISTER", f"sip:{SERVER}", algorithm=algorithm)
            assert first is not None and first.status == 401, server.log
            assert [c.algorithm for c in challenges(first)] == ["SHA-256", "MD5"]
            assert all(c.qop == ("auth",) and c.realm == SERVER for c in challenges(first))
            assert final is not None and final.status == 200, server.log
            assert f"{CLIENT}:{alice.port}" in (final.headers.get("Contact") or "")


def test_the_identity_reaches_the_routers(workdir: Path, clients: list[Client]) -> None:
    port = free_port("udp")
    with running_server(workdir, auth_config(port, ""), ready_udp=port) as server:
        uri = f"sip:whoami@{SERVER}:{port}"
        first, final = client(clients, CLIENT, port).authenticated(
            "INVITE", uri, user="bob", password="builder"
        )
        assert first is not None and first.status == 407, server.log
        assert final is not None and (final.status, final.reason) == (480, "identity=bob")
        # a trusted source is not challenged and has no identity
        trusted = client(clients, CALLEE, port).send("INVITE", uri)
        assert trusted is not None and (trusted.status, trusted.reason) == (480, "identity=None")


def test_unknown_user_and_wrong_password_look_the_same_on_the_wire(
    workdir: Path, clients: list[Client]
) -> None:
    port = free_port("udp")
    with running_server(workdir, auth_config(port, "max_failures = 0"), ready_udp=port):
        alice = client(clients, CLIENT, port)
        answers = []
        for user, password in (("alice", "wrong"), ("mallory", "whatever")):
            _first, final = alice.authenticated(
                "REGISTER", f"sip:{SERVER}", user=user, password=password
            )
            assert final is not None
            answers.append(final)
        wrong, unknown = answers

        def shape(r: Response) -> tuple[object, ...]:
            names = [
                n.lower() for n, _ in r.headers.items() if n.lower() not in ("content-length",)
            ]
            return (
                r.status,
                r.reason,
                names,
                [(c.realm, c.algorithm, c.qop, c.stale, c.opaque) for c in challenges(r)],
            )

        assert shape(wrong) == shape(unknown)
        assert wrong.status == 401


# -- SIPp's [authentication] -----------------------------------------------------------


def run_register(
    sipp: str, port: int, cwd: Path, host: str, user: str, password: str, calls: int = 1
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """auth_register_uac.xml ``calls`` times in a row; returns SIPp's result and log lines."""
    cwd.mkdir(exist_ok=True)
    cmd = [
        sipp, "-sf", str(SCENARIOS / "auth_register_uac.xml"), f"{SERVER}:{port}",
        "-i", host, "-p", str(free_port("udp")), "-cp", str(free_port("udp")),
        "-set", "user", user, "-au", user, "-ap", password,
        "-m", str(calls), "-l", "1", "-r", "50", "-nostdin", "-timeout", "40s",
        "-timeout_error", "-trace_err", "-trace_logs", "-trace_msg",
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    lines: list[str] = []
    for log in sorted(cwd.glob("auth_register_uac_*_logs.log")):
        lines += [line.strip() for line in log.read_text().splitlines() if line.strip()]
    return result, lines


def sipp_errors(cwd: Path) -> str:
    return "\n".join(p.read_text() for p in cwd.glob("*_errors.log"))


def test_sipp_registers_through_the_401(workdir: Path, sipp: str) -> None:
    port = free_port("udp")
    config = auth_config(port, 'algorithms = ["MD5"]')
    with running_server(workdir, config, ready_udp=port) as server:
        result, lines = run_register(sipp, port, workdir / "alice", CLIENT, "alice", "secret")
        assert result.returncode == 0, result.stdout + sipp_errors(workdir / "alice")
        assert lines == ["AUTH CHALLENGE algorithm=MD5", "AUTH OK"], server.log


def test_sipp_calls_through_the_407(workdir: Path, sipp: str) -> None:
    port, callee_port = free_port("udp"), free_port("udp")
    callee_dir, caller_dir = workdir / "callee", workdir / "caller"
    callee_dir.mkdir()
    caller_dir.mkdir()
    callee = subprocess.Popen(
        [sipp, "-sf", str(SCENARIOS / "calls" / "basic_uas.xml"), "-i", CALLEE,
         "-p", str(callee_port), "-mp", str(free_port("udp")), "-cp", str(free_port("udp")),
         "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error", "-trace_err"],
        cwd=callee_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        config = auth_config(port, 'algorithms = ["MD5"]', callee_port)
        with running_server(workdir, config, ready_udp=port) as server:
            caller = subprocess.run(
                [sipp, "-sf", str(SCENARIOS / "auth_invite_uac.xml"), f"{SERVER}:{port}",
                 "-i", CLIENT, "-p", str(free_port("udp")), "-mp", str(free_port("udp")),
                 "-cp", str(free_port("udp")), "-s", "callee", "-au", "alice", "-ap", "secret",
                 "-auth_uri", f"callee@{SERVER}:{port}",
                 "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err",
                 "-trace_logs"],
                cwd=caller_dir, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            logs = "".join(p.read_text() for p in caller_dir.glob("*_logs.log"))
            assert caller.returncode == 0, caller.stdout + sipp_errors(caller_dir) + server.log
            assert "AUTH CHALLENGE algorithm=MD5" in logs and "AUTH CALL ANSWERED" in logs
        out, _ = callee.communicate(timeout=30)
        assert callee.returncode == 0, out + sipp_errors(callee_dir)
    finally:
        if callee.poll() is None:
            callee.kill()
            callee.communicate()


@pytest.mark.parametrize(("answer", "banned"), [("403", "FORBIDDEN 1"), ("drop", "NO ANSWER 1")])
def test_sipp_wrong_password_is_banned_after_max_failures(
    workdir: Path, sipp: str, clients: list[Client], answer: str, banned: str
) -> None:
    port = free_port("udp")
    config = auth_config(
        port, f'algorithms = ["MD5"]\nmax_failures = 3\nban_time = 60\nban_answer = "{answer}"'
    )
    with running_server(workdir, config, ready_udp=port) as server:
        result, lines = run_register(sipp, port, workdir / "bad", ATTACKER, "bob", "guess", 4)
        assert result.returncode == 0, result.stdout + sipp_errors(workdir / "bad")
        assert lines == ["AUTH CHALLENGE algorithm=MD5", "AUTH REFUSED"] * 3 + [banned], server.log
        assert "Banned source 127.0.0.4 for 60 s" in server.log
        # the ban is the attacker's: alice registers from elsewhere, even as bob's name is
        # banned only for sources that never authenticated as bob
        alice = client(clients, CLIENT, port)
        _first, final = alice.authenticated("REGISTER", f"sip:{SERVER}", algorithm="MD5")
        assert final is not None and final.status == 200
        _first, final = alice.authenticated(
            "REGISTER", f"sip:{SERVER}", user="bob", password="builder", algorithm="MD5"
        )
        assert final is not None and final.status == 403  # user bob is banned too
