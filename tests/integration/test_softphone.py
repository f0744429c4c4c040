"""A real softphone (baresip, Debian ``baresip-core``) registers to the server and answers calls.

The server (twistd) runs the shipped ``etc/b2bua.toml`` with only what a deployment
changes: its ports, the example passwords and the database (in the test's
directory). That file offers ``[auth] algorithms = ["MD5"]`` because baresip 1.0.0
(libre 1.1.0) knows only MD5 *and* gives up on a challenge that offers anything
else: with ``["SHA-256", "MD5"]`` its REGISTER fails right after the 401 with
"Function not implemented" (ENOSYS).

Addresses: the server on 127.0.0.1, the caller (SIPp as alice, answering the 407
with ``[authentication]``, or a second baresip) on 127.0.0.2, baresip as bob on
127.0.0.3. baresip runs headless (audio from a generated WAV, played to ALSA's null
device) and is driven over ctrl_tcp (``softphone/baresip.py``); bob answers by
itself (``answermode=auto``). RTP flows between the phones directly (SIPp echoes
it with ``-rtp_echo``); the server relays the SDP.

With a wrong password libre answers each fresh 401 again, with the same password,
up to 16 times in a row; the default ``max_failures`` (20) is above that, so a
mistyped password does not ban the phone at once.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import ROOT, ServerProcess, running_server
from tests.integration.softphone.baresip import Baresip, Ctrl, free_port_on

SERVER, CALLER, PHONE = "127.0.0.1", "127.0.0.2", "127.0.0.3"
PASSWORDS = {"alice": "alice-b7Qx3", "bob": "bob-k2Vw9"}
SOFTPHONE = Path(__file__).resolve().parent / "softphone"

# etc/b2bua.toml lines this test relies on, and the changes it makes (old, new, count).
RELIED_ON = (
    'domains = ["127.0.0.1"]',
    'database = "var/registrations.sqlite"',
    'module = "local_users"',
    'users = ["alice", "bob"]',
    "max_failures = 20",
    'algorithms = ["MD5"]',
)
CHANGES = (
    ("port = 5060", "port = {port}", 2),  # the UDP and the TCP listener
    (
        'users = { alice = "change-me-alice", bob = "change-me-bob" }',
        f'users = {{ alice = "{PASSWORDS["alice"]}", bob = "{PASSWORDS["bob"]}" }}',
        1,
    ),
    ("sip_trace = false", "sip_trace = true", 1),  # the messages in the log, for failures
)


def softphone_config(port: int) -> str:
    """``etc/b2bua.toml`` on ``port`` with our passwords, MD5 only and the SIP trace on."""
    text = (ROOT / "etc" / "b2bua.toml").read_text()
    for line in RELIED_ON:
        assert line in text, f"etc/b2bua.toml no longer has {line!r}"
    for old, new, count in CHANGES:
        assert text.count(old) == count, f"etc/b2bua.toml: expected {count} x {old!r}"
        text = text.replace(old, new.replace("{port}", str(port)))
    return text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    """The server, in ``tmp_path/server`` (its registrations database under ``var/``)."""
    port = free_port("both")
    workdir = tmp_path / "server"
    workdir.mkdir()
    with running_server(workdir, softphone_config(port), ready_udp=port) as proc:
        yield proc, port
    assert (workdir / "var" / "registrations.sqlite").exists()


@contextlib.contextmanager
def softphone(
    workdir: Path, host: str, server: ServerProcess, *others: Baresip
) -> Iterator[tuple[Baresip, Ctrl]]:
    """baresip on ``host``, no account yet; stopped (killed if need be) afterwards.

    An AssertionError inside gets the server's log and every phone's log added.
    """
    phone = Baresip(workdir, host, lifetime=60)
    ctrl = phone.start()
    try:
        yield phone, ctrl
    except AssertionError as exc:
        if "--- server log ---" in str(exc):  # an inner softphone() added the logs already
            raise
        logs = "".join(
            f"\n--- baresip {p.host} log ---\n{p.log[-12000:]}" for p in (*others, phone)
        )
        raise AssertionError(f"{exc}\n--- server log ---\n{server.log[-20000:]}{logs}") from None
    finally:
        phone.stop()


def account(user: str, port: int, password: str, *params: str) -> str:
    """An account at the server: REGISTER at once (then every ~30 s), digest credentials."""
    line = f"<sip:{user}@{SERVER}:{port}>;auth_user={user};auth_pass={password};regint=60"
    return ";".join((line, *params))


def register(ctrl: Ctrl, user: str, port: int, *params: str) -> None:
    ctrl.command("uanew", account(user, port, PASSWORDS[user], *params))
    registered = ctrl.wait("REGISTER_OK", fail=["REGISTER_FAIL"], timeout=10)
    assert registered["param"] == "200 OK", registered


def start_call(sipp: str, scenario: str, port: int, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """SIPp as alice on 127.0.0.2: one call to bob through the server (-timeout 25s)."""
    cwd.mkdir()
    return subprocess.Popen(
        [sipp, "-sf", str(SOFTPHONE / scenario), f"{SERVER}:{port}", "-s", "bob",
         "-i", CALLER, "-p", str(free_port_on(CALLER)), "-mp", str(free_port_on(CALLER)),
         "-cp", str(free_port("udp")), "-au", "alice", "-ap", PASSWORDS["alice"],
         "-auth_uri", f"bob@{SERVER}:{port}", "-m", "1", "-rtp_echo", "-nostdin",
         "-timeout", "25s", "-timeout_error", "-trace_err", "-trace_logs", *args],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def finish_call(proc: subprocess.Popen[str], cwd: Path, timeout: float = 30.0) -> list[str]:
    """Wait for SIPp (killed if it overruns); assert it exited 0; return its log lines."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    errors = "".join(p.read_text(errors="replace") for p in cwd.glob("*_errors.log"))
    assert proc.returncode == 0, f"SIPp exited {proc.returncode}:\n{out[-3000:]}\n{errors[-3000:]}"
    logs = "".join(p.read_text(errors="replace") for p in cwd.glob("*_logs.log"))
    return [line.strip() for line in logs.splitlines() if line.strip()]


def test_registers_and_answers_calls_from_sipp(
    tmp_path: Path, sipp: str, server: tuple[ServerProcess, int]
) -> None:
    proc, port = server
    with softphone(tmp_path / "bob", PHONE, proc) as (phone, bob):
        register(bob, "bob", port, "answermode=auto")
        assert "SIP/2.0 401 Unauthorized" in phone.log  # it did authenticate
        # bob's contact, not its address of record, is what the server calls
        contact = re.search(r"Contact: <(sip:bob[^>]*@127\.0\.0\.3:\d+)>;expires=60", phone.log)
        assert contact is not None, "no Contact in baresip's REGISTER"

        # 1. alice calls bob, bob answers by itself, alice hangs up after 2 s
        call = start_call(sipp, "call_uac.xml", port, tmp_path / "call1", "-d", "2000")
        try:
            established = bob.wait("CALL_ESTABLISHED", fail=["CALL_CLOSED"], timeout=10)
            answered = time.monotonic()
            bob.seen("CALL_RTPESTAB", call=established["id"], timeout=5)  # SIPp echoes
            closed = bob.wait("CALL_CLOSED", timeout=10)
            lasted = time.monotonic() - answered
        finally:
            lines = finish_call(call, tmp_path / "call1")
        assert lines == ["CALL ANSWERED", "CALL ENDED"]
        assert established["direction"] == "incoming"
        assert established["peeruri"] == f"sip:alice@{SERVER}"  # the server's From, not SIPp's
        assert closed["id"] == established["id"]
        assert closed["param"] == "Connection reset by peer"  # a BYE came, not an error
        assert 1.5 < lasted < 6, lasted
        assert f"INVITE {contact.group(1)} SIP/2.0" in phone.log

        # 2. alice calls again, and bob hangs up after 1 s
        call = start_call(sipp, "callee_bye_uac.xml", port, tmp_path / "call2")
        try:
            bob.wait("CALL_ESTABLISHED", fail=["CALL_CLOSED"], timeout=10)
            time.sleep(1.0)
            bob.command("hangup")
            closed = bob.wait("CALL_CLOSED", timeout=10)
        finally:
            lines = finish_call(call, tmp_path / "call2")
        assert lines == ["CALL ANSWERED", "CALL ENDED BY CALLEE"]
        assert closed["param"] == "Connection reset by user"

    # on quit baresip unregistered (an authenticated REGISTER, expires=0): no binding left
    call = start_call(sipp, "call_uac.xml", port, tmp_path / "call3")
    assert finish_call(call, tmp_path / "call3") == ["CALL UNAVAILABLE"], proc.log[-20000:]


def test_two_softphones_call_each_other(tmp_path: Path, server: tuple[ServerProcess, int]) -> None:
    """baresip alice (127.0.0.2) dials bob through the server (answering the 407 itself)."""
    proc, port = server
    with (
        softphone(tmp_path / "bob", PHONE, proc) as (bob_phone, bob),
        softphone(tmp_path / "alice", CALLER, proc, bob_phone) as (alice_phone, alice),
    ):
        register(bob, "bob", port, "answermode=auto")
        register(alice, "alice", port)
        alice.command("dial", f"sip:bob@{SERVER}:{port}")
        outgoing = alice.wait("CALL_ESTABLISHED", fail=["CALL_CLOSED"], timeout=10)
        incoming = bob.wait("CALL_ESTABLISHED", fail=["CALL_CLOSED"], timeout=10)
        assert (outgoing["direction"], incoming["direction"]) == ("outgoing", "incoming")
        assert incoming["peeruri"] == f"sip:alice@{SERVER}"
        alice.seen("CALL_RTPESTAB", timeout=5)
        bob.seen("CALL_RTPESTAB", timeout=5)
        time.sleep(2.0)
        alice.command("hangup")
        assert alice.wait("CALL_CLOSED", timeout=10)["param"] == "Connection reset by user"
        assert bob.wait("CALL_CLOSED", timeout=10)["param"] == "Connection reset by peer"
        assert "SIP/2.0 407 Proxy Authentication Required" in alice_phone.log


def test_a_wrong_password_does_not_register(
    tmp_path: Path, sipp: str, server: tuple[ServerProcess, int]
) -> None:
    proc, port = server
    with softphone(tmp_path / "bob", PHONE, proc) as (_phone, bob):
        bob.command("uanew", account("bob", port, "wrong-password", "answermode=auto"))
        failed = bob.wait("REGISTER_FAIL", fail=["REGISTER_OK"], timeout=10)
        assert failed["accountaor"] == f"sip:bob@{SERVER}:{port}"
        assert "Authentication failed for 'bob' from 127.0.0.3: wrong password" in proc.log
        # bob (a known user) has no binding: a call finds nobody (480), bob's phone stays quiet
        call = start_call(sipp, "call_uac.xml", port, tmp_path / "call")
        assert finish_call(call, tmp_path / "call") == ["CALL UNAVAILABLE"]
        bob.drain(0.5)
        assert not bob.events("CALL_INCOMING") and not bob.events("CALL_ESTABLISHED")
        assert not bob.events("REGISTER_OK")
