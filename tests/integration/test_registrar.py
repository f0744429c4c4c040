"""The registrar through the real server: SIPp registers, calls reach the registered SIPp.

The server runs on 127.0.0.1 with ``[registrar]`` for the domain 127.0.0.1 and the
``local_users`` plugin; the registering phone (and later the SIPp UAS that takes
the call) lives on 127.0.0.3, the caller on 127.0.0.2.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import SCENARIOS, running_server

CALLER, SERVER, PHONE = "127.0.0.2", "127.0.0.1", "127.0.0.3"


def registrar_config(port: int, extra: str = "", min_expires: int = 60) -> str:
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f'[[listen]]\ntransport = "tcp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f"{extra}\n"
        f'[registrar]\nenabled = true\ndomains = ["{SERVER}"]\nmin_expires = {min_expires}\n'
        f'database = "var/registrations.sqlite"\n\n'
        f'[[plugin]]\nmodule = "local_users"\nusers = ["carol"]\n'
    )


def sipp_register(
    sipp: str, port: int, cwd: Path, *, user: str, contact_port: int, expires: int, auth: str = ""
) -> str:
    """Run register_uac.xml once; return its log lines (REGISTERED ... / FORBIDDEN)."""
    cwd.mkdir(exist_ok=True)
    credentials = ["-au", auth.split(":")[0], "-ap", auth.split(":")[1]] if auth else []
    cmd = [
        sipp, "-cp", str(free_port("udp")), "-sf", str(SCENARIOS / "register_uac.xml"), f"{SERVER}:{port}",
        "-i", PHONE, "-p", str(free_port("udp")), "-m", "1", "-nostdin",
        "-timeout", "20s", "-timeout_error", "-trace_err", "-trace_logs",
        "-set", "user", user, "-set", "contact_port", str(contact_port),
        "-set", "expires", str(expires), *credentials,
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    logs = "".join(p.read_text() for p in cwd.glob("*_logs.log"))
    errors = "".join(p.read_text() for p in cwd.glob("*_errors.log"))
    assert result.returncode == 0, result.stdout[-2000:] + errors[-2000:]
    return logs


def start_uas(sipp: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sipp, "-cp", str(free_port("udp")), "-sn", "uas", "-i", PHONE, "-p", str(port), "-nostdin", "-timeout", "60s"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def stop_uas(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def sipp_call(sipp: str, port: int, cwd: Path, user: str) -> subprocess.CompletedProcess[str]:
    """One SIPp uac call to sip:USER@server, 100 ms long."""
    cwd.mkdir(exist_ok=True)
    cmd = [
        sipp, "-cp", str(free_port("udp")), "-sn", "uac", f"{SERVER}:{port}", "-s", user, "-i", CALLER,
        "-p", str(free_port("udp")), "-m", "1", "-d", "100", "-nostdin",
        "-timeout", "30s", "-timeout_error", "-trace_err",
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def call_status(port: int, user: str, timeout: float = 5.0) -> int:
    """Send an INVITE to sip:USER@server and return the final status (ACKing it)."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((CALLER, 0))
        me = sock.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        head = (
            f"Via: SIP/2.0/UDP {CALLER}:{me};branch={branch}\r\n"
            f"From: <sip:caller@{CALLER}>;tag=c1\r\n"
        )
        sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
        invite = (
            f"INVITE sip:{user}@{SERVER}:{port} SIP/2.0\r\n{head}"
            f"To: <sip:{user}@{SERVER}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:caller@{CALLER}:{me}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        ).encode() + sdp
        sock.sendto(invite, (SERVER, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                break
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                to = re.search(r"^To:.*$", data, re.M | re.I)
                assert to is not None
                ack = (
                    f"ACK sip:{user}@{SERVER}:{port} SIP/2.0\r\n{head}{to.group(0)}\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n"
                )
                sock.sendto(ack.encode(), (SERVER, port))
                return status
    raise AssertionError(f"no final response to the INVITE for {user}")


def successful(out: str) -> int:
    m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return int(m.group(1)) if m else -1


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port("both"), free_port("udp")


def test_register_then_a_call_reaches_the_registered_phone(
    tmp_path: Path, sipp: str, ports: tuple[int, int]
) -> None:
    port, phone_port = ports
    with running_server(tmp_path, registrar_config(port), ready_udp=port) as server:
        logs = sipp_register(
            sipp, port, tmp_path / "reg", user="alice", contact_port=phone_port, expires=600
        )
        assert f"REGISTERED sip:alice@{PHONE}:{phone_port} expires=600" in logs, logs
        assert call_status(port, "bob") == 404  # never registered, not a configured user
        assert call_status(port, "carol") == 480  # a configured user, not registered
        phone = start_uas(sipp, phone_port, tmp_path / "uas")
        try:
            result = sipp_call(sipp, port, tmp_path / "uac", "alice")
        finally:
            stop_uas(phone)
        assert result.returncode == 0, result.stdout[-2000:] + server.log[-3000:]
        assert successful(result.stdout) == 1  # the phone is the only target: it answered
        assert "Traceback" not in server.log
    assert (tmp_path / "var" / "registrations.sqlite").is_file()


def test_bindings_survive_a_server_restart(
    tmp_path: Path, sipp: str, ports: tuple[int, int]
) -> None:
    port, phone_port = ports
    config = registrar_config(port)
    with running_server(tmp_path, config, ready_udp=port) as server:
        logs = sipp_register(
            sipp, port, tmp_path / "reg", user="alice", contact_port=phone_port, expires=3600
        )
        assert "REGISTERED" in logs, logs
        assert server.stop() == 0
    with running_server(tmp_path, config, ready_udp=port) as server:
        # the stored bindings are read in a thread: the line may follow readiness
        server.wait_log(r"Location service: 1 bindings of 1 addresses of record")
        phone = start_uas(sipp, phone_port, tmp_path / "uas")
        try:
            result = sipp_call(sipp, port, tmp_path / "uac", "alice")
        finally:
            stop_uas(phone)
        assert result.returncode == 0, result.stdout[-2000:] + server.log[-3000:]
        assert successful(result.stdout) == 1


def test_an_expired_binding_no_longer_routes(
    tmp_path: Path, sipp: str, ports: tuple[int, int]
) -> None:
    port, phone_port = ports
    with running_server(tmp_path, registrar_config(port, min_expires=1), ready_udp=port) as server:
        logs = sipp_register(
            sipp, port, tmp_path / "reg", user="alice", contact_port=phone_port, expires=2
        )
        assert f"REGISTERED sip:alice@{PHONE}:{phone_port} expires=2" in logs, logs
        time.sleep(3)
        assert call_status(port, "alice") == 480  # known (it registered), not reachable
        assert "Traceback" not in server.log


def test_registration_is_refused_below_min_expires(
    tmp_path: Path, sipp: str, ports: tuple[int, int]
) -> None:
    port, phone_port = ports
    with running_server(tmp_path, registrar_config(port), ready_udp=port):
        cwd = tmp_path / "reg"
        cwd.mkdir()
        cmd = [
            sipp, "-cp", str(free_port("udp")), "-sf", str(SCENARIOS / "register_uac.xml"), f"{SERVER}:{port}",
            "-i", PHONE, "-p", str(free_port("udp")), "-m", "1", "-nostdin",
            "-timeout", "10s", "-timeout_error", "-trace_msg",
            "-set", "user", "alice", "-set", "contact_port", str(phone_port),
            "-set", "expires", "30",
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=40)
        assert result.returncode != 0  # the scenario wanted a 200
        messages = "".join(p.read_text() for p in cwd.glob("*_messages.log"))
        assert "SIP/2.0 423 Interval Too Brief" in messages
        assert re.search(r"^Min-Expires: 60", messages, re.M)


def test_with_auth_a_user_registers_only_itself(
    tmp_path: Path, sipp: str, ports: tuple[int, int]
) -> None:
    port, phone_port = ports
    auth = '[auth]\nusers = { alice = "secret" }\nmethods = ["REGISTER"]\nalgorithms = ["MD5"]\n'
    with running_server(tmp_path, registrar_config(port, auth), ready_udp=port) as server:
        logs = sipp_register(
            sipp, port, tmp_path / "alice", user="alice", contact_port=phone_port,
            expires=600, auth="alice:secret",
        )  # fmt: skip
        assert "REGISTERED" in logs, logs + server.log[-3000:]
        logs = sipp_register(
            sipp, port, tmp_path / "bob", user="carol", contact_port=phone_port,
            expires=600, auth="alice:secret",
        )  # fmt: skip
        assert "REGISTER FORBIDDEN" in logs, logs + server.log[-3000:]
        assert call_status(port, "carol") == 480


def test_parallel_forking_rings_every_contact(sipp: str, tmp_path: Path) -> None:
    """With ``fork = "parallel"`` both registered contacts ring; the one that answers
    gets the call and the other is cancelled (CANCEL, 487, ACK: cancel_uas.xml; the
    CANCEL may come before that callee's 180, as soon as its 100 is in: RFC 3261 9.1)."""
    from tests.integration.test_bridge_scenarios import CALLS
    from tests.integration.test_scenarios_direct import free_media_port, udp_bound

    port = free_port("both")
    winner, loser = free_port("udp"), free_port("udp")
    config = registrar_config(port).replace(
        'module = "local_users"\n', 'module = "local_users"\nfork = "parallel"\n'
    )
    with running_server(tmp_path, config, ready_udp=port) as server:
        for contact in (winner, loser):
            sipp_register(
                sipp, port, tmp_path / f"reg{contact}", user="dave", contact_port=contact,
                expires=300,
            )  # fmt: skip
        callees = []
        for scenario, contact in (("basic_uas.xml", winner), ("cancel_uas.xml", loser)):
            callees.append(
                subprocess.Popen(
                    [
                        sipp,
                        "-cp",
                        str(free_port("udp")),
                        "-sf",
                        str(CALLS / scenario),
                        "-i",
                        PHONE,
                        "-p",
                        str(contact),
                        "-mp",
                        str(free_media_port()),
                        "-m",
                        "1",
                        "-nostdin",
                        "-timeout",
                        "30s",
                        "-timeout_error",
                        "-trace_msg",
                        "-trace_err",
                    ],
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        # the call starts once both callees listen (an unbound contact would fail its fork)
        deadline = time.monotonic() + 10
        while not all(udp_bound(contact, PHONE) for contact in (winner, loser)):
            assert all(proc.poll() is None for proc in callees), "a callee SIPp exited early"
            assert time.monotonic() < deadline, "the callees did not bind their ports"
            time.sleep(0.02)
        caller = subprocess.run(
            [
                sipp, "-cp", str(free_port("udp")), "-sf", str(CALLS / "basic_uac.xml"),
                f"{SERVER}:{port}", "-s", "dave", "-i", CALLER, "-p", str(free_port("udp")),
                "-mp", str(free_port("udp")), "-m", "1", "-nostdin", "-timeout", "30s",
                "-timeout_error",
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        outputs = [proc.communicate(timeout=45)[0] for proc in callees]
        errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*_errors.log"))
        assert caller.returncode == 0, caller.stdout[-2500:] + errors + server.log[-2500:]
        for proc, out in zip(callees, outputs, strict=True):
            assert proc.returncode == 0, out[-2500:] + errors + server.log[-2500:]
