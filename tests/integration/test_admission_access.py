"""Admission and access control through the real server: SIPp UAC -> twistd b2bua -> SIPp UAS.

- admission: at most 5 calls at once; 10 calls placed within a tenth of a second
  and held open for 3 s: exactly 5 are answered and exactly 5 refused with 503
  and Retry-After, and the callee sees only the 5.
- access: only 127.0.0.3 is trusted; a caller on 127.0.0.2 gets 403 Forbidden and
  nothing reaches the callee, while the trusted caller is bridged, with the
  number rules of the rules plugin applied on the way (0 -> +44).

Callers on 127.0.0.2/127.0.0.3, the server on 127.0.0.1, the callee on 127.0.0.4.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from tests.conftest import free_port
from tests.integration.harness import SCENARIOS, running_server

SERVER, CALLER, OTHER_CALLER, CALLEE = "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"


def config(port: int, callee_port: int, plugins: str) -> str:
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f"{plugins}\n"
        f'[[plugin]]\nmodule = "static_routes"\n'
        f'[[plugin.route]]\ntargets = ["sip:{CALLEE}:{callee_port}"]\n'
    )


def uas(sipp: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sipp, "-cp", str(free_port("udp")), "-sn", "uas", "-i", CALLEE, "-p", str(port), "-nostdin", "-timeout", "60s",
         "-trace_msg"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def uac(
    sipp: str, server_port: int, cwd: Path, source: str, *args: str, calls: int, rate: int
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    cmd = [
        sipp, "-cp", str(free_port("udp")), f"{SERVER}:{server_port}", "-i", source, "-p", str(free_port("udp")),
        "-m", str(calls), "-r", str(rate), "-nostdin", "-timeout", "30s", "-timeout_error",
        "-trace_err", "-trace_msg", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def messages(directory: Path) -> list[str]:
    """Every SIP message in the -trace_msg logs of ``directory``."""
    text = "\n".join(p.read_text(errors="replace") for p in directory.glob("*_messages.log"))
    blocks = re.split(r"^-{20,}.*$", text, flags=re.M)
    out = []
    for block in blocks:
        m = re.search(r"^(SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0).*", block, re.M | re.S)
        if m:
            out.append(m.group(0))
    return out


def header(message: str, name: str) -> str | None:
    m = re.search(rf"^{name}:\s*(.*?)\s*$", message, re.M | re.I)
    return m.group(1) if m else None


def final_statuses(log: list[str]) -> dict[str, set[int]]:
    """Final responses to INVITE by Call-ID (retransmissions collapse)."""
    out: dict[str, set[int]] = {}
    for message in log:
        m = re.match(r"SIP/2\.0 (\d{3})", message)
        cseq = header(message, "CSeq") or ""
        if m and int(m.group(1)) >= 200 and cseq.endswith("INVITE"):
            out.setdefault(header(message, "Call-ID") or "", set()).add(int(m.group(1)))
    return out


def invites(log: list[str]) -> set[str]:
    """Call-IDs of the INVITEs in a log."""
    return {header(m, "Call-ID") or "" for m in log if m.startswith("INVITE ")}


def test_admission_refuses_exactly_the_calls_over_the_limit(sipp: str, tmp_path: Path) -> None:
    port, callee_port = free_port("udp"), free_port("udp")
    plugins = (
        f'[[plugin]]\nmodule = "access"\ntrusted = ["{CALLER}/32"]\n\n'
        '[[plugin]]\nmodule = "admission"\nretry_after = 7\n'
        "[plugin.global]\nmax_calls = 5\n"
    )
    # The callee outlives the server: the server answers a caller's BYE itself and
    # then sends its own BYE to the callee, which must be there to answer it.
    callee = uas(sipp, callee_port, tmp_path / "uas")
    try:
        with running_server(tmp_path, config(port, callee_port, plugins), ready_udp=port) as s:
            result = uac(
                sipp, port, tmp_path / "uac", CALLER,
                "-sf", str(SCENARIOS / "admission_uac.xml"), "-d", "3000",
                calls=10, rate=100,
            )  # fmt: skip
    finally:
        callee_out = stop(callee)
    log = s.log
    assert result.returncode == 0, result.stdout[-3000:] + callee_out[-2000:] + log[-3000:]
    caller_side = messages(tmp_path / "uac")
    finals = final_statuses(caller_side)
    assert len(finals) == 10, finals
    assert all(len(s) == 1 for s in finals.values()), finals
    outcome = Counter(next(iter(s)) for s in finals.values())
    assert outcome == {200: 5, 503: 5}, outcome
    refusals = [m for m in caller_side if m.startswith("SIP/2.0 503")]
    assert refusals and all(header(m, "Retry-After") == "7" for m in refusals)
    assert len(invites(messages(tmp_path / "uas"))) == 5  # the refused never reached the callee
    assert "Traceback" not in log


def test_an_untrusted_source_gets_403_and_a_trusted_one_is_bridged(
    sipp: str, tmp_path: Path
) -> None:
    port, callee_port = free_port("udp"), free_port("udp")
    plugins = (
        f'[[plugin]]\nmodule = "access"\ntrusted = ["{OTHER_CALLER}/32"]\nlog = true\n\n'
        '[[plugin]]\nmodule = "rules"\n[[plugin.rule]]\n'
        "request_user = { pattern = '^0(?=[1-9])', replace = '+44' }\n"
    )
    callee = uas(sipp, callee_port, tmp_path / "uas")  # outlives the server, as above
    try:
        with running_server(tmp_path, config(port, callee_port, plugins), ready_udp=port) as s:
            refused = uac(
                sipp, port, tmp_path / "untrusted", CALLER,
                "-sf", str(SCENARIOS / "access_uac.xml"), calls=3, rate=10,
            )  # fmt: skip
            callee_saw_before = invites(messages(tmp_path / "uas"))
            admitted = uac(
                sipp, port, tmp_path / "trusted", OTHER_CALLER,
                "-sn", "uac", "-s", "02079460000", "-d", "100", calls=2, rate=10,
            )  # fmt: skip
    finally:
        callee_out = stop(callee)
    log = s.log
    assert refused.returncode == 0, refused.stdout[-3000:] + log[-3000:]
    finals = final_statuses(messages(tmp_path / "untrusted"))
    assert len(finals) == 3 and all(s == {403} for s in finals.values()), finals
    assert callee_saw_before == set()  # refused before routing: nothing reached the callee
    assert log.count(f"Refused INVITE from untrusted udp:{CALLER}:") == 3, log[-3000:]

    assert admitted.returncode == 0, admitted.stdout[-3000:] + callee_out[-2000:] + log[-3000:]
    callee_side = messages(tmp_path / "uas")
    uris = {m.split()[1] for m in callee_side if m.startswith("INVITE ")}
    assert uris == {f"sip:+442079460000@{CALLEE}:{callee_port}"}, uris
    assert "Traceback" not in log
