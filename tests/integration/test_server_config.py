"""Start-up errors and ``--check`` of the real ``twistd b2bua``.

A bad configuration must stop twistd within seconds with a non-zero status and a
message that names the file, the line and the key, never a traceback; a port that
is already taken must give one "cannot listen" line.  ``--check`` validates a file
(or, without ``--config``, the embedded default) and exits 0.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import ROOT, TWISTD

TIMEOUT = 20  # hard bound on one run (subprocess timeout)
QUICK = 10.0  # each of these exits in about a second; "within a few seconds"


def twistd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``twistd -n --pidfile= b2bua ARGS`` to completion; it must end quickly."""
    start = time.monotonic()
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "b2bua", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - start
    assert elapsed < QUICK, f"twistd took {elapsed:.1f} s:\n{result.stdout}{result.stderr}"
    return result


def listen(transport: str, host: str, port: int | str) -> str:
    port_text = port if isinstance(port, str) else str(port)
    return f'[[listen]]\ntransport = "{transport}"\nhost = "{host}"\nport = {port_text}\n'


# (id, configuration text, line that must be named, key that must be named)
BAD_CONFIGS = [
    (
        "unknown key",
        listen("udp", "127.0.0.1", 0) + '\n[server]\nuser_agent = "x"\nuser_agnet = "typo"\n',
        8,
        "server.user_agnet",
    ),
    (
        "unknown key in listen",
        listen("udp", "127.0.0.1", 0) + "prot = 5\n",
        5,
        "listen[0].prot",
    ),
    ("wrong type", listen("udp", "127.0.0.1", '"5070"'), 4, "listen[0].port"),
    (
        "wrong type float",
        listen("udp", "127.0.0.1", 0) + '\n[timers]\nt1 = "fast"\n',
        7,
        "timers.t1",
    ),
    ("bad address", listen("udp", "127.0.0.300", 0), 3, "listen[0].host"),
    ("hostname not address", listen("tcp", "localhost", 0), 3, "listen[0].host"),
    ("bad transport", listen("sctp", "127.0.0.1", 0), 2, "listen[0].transport"),
    ("port out of range", listen("udp", "127.0.0.1", 70000), 4, "listen[0].port"),
]


@pytest.mark.parametrize(
    ("text", "line", "key"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_stops_with_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = twistd("--config", str(path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{path}:{line}:" in output, output
    assert key in output, output
    assert "Traceback" not in output, output


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(listen("udp", "127.0.0.1", 0) + "[server\n")
    result = twistd("--config", str(path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{path}:5:" in output, output
    assert "Traceback" not in output, output


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    result = twistd("--config", str(path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert str(path) in output, output
    assert "Traceback" not in output, output


@pytest.fixture(params=["udp", "tcp"])
def busy_port(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A loopback port held by another socket for the duration of the test."""
    transport: str = request.param
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    port = free_port(transport)  # type: ignore[arg-type]
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            sock.listen()
        yield transport, port


def test_port_in_use_is_one_clean_line(tmp_path: Path, busy_port: tuple[str, int]) -> None:
    transport, port = busy_port
    path = tmp_path / "busy.toml"
    path.write_text(listen(transport, "127.0.0.1", port))
    result = twistd("--config", str(path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    lines = [line for line in output.splitlines() if "cannot listen" in line]
    assert len(lines) == 1, output
    assert str(port) in lines[0], output
    assert "Traceback" not in output, output


def test_check_documented_config(tmp_path: Path) -> None:
    result = twistd("--check", "--config", str(ROOT / "etc" / "b2bua.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout, result.stdout
    assert "b2bua.toml" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_embedded_default(tmp_path: Path) -> None:
    result = twistd("--check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout, result.stdout
    assert "embedded" in result.stdout, result.stdout


def test_check_bad_config_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(listen("udp", "127.0.0.1", 0) + '\n[logging]\nformat = "xml"\n')
    result = twistd("--check", "--config", str(path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{path}:7:" in output and "logging.format" in output, output
    assert "OK" not in result.stdout, output
    assert "Traceback" not in output, output
