"""A headless baresip (Debian ``baresip-core``) for integration tests, driven over ctrl_tcp.

:class:`Baresip` writes a fresh configuration directory (``baresip.conf`` next to
this file, filled in), a paced 8 kHz mono WAV for the audio source (no sound card
is needed: the player is ALSA's built-in ``null`` device), starts ``baresip -f DIR``
bounded by its own ``-t`` and by :meth:`Baresip.stop`, and connects a
:class:`Ctrl` client to its ctrl_tcp socket.

ctrl_tcp speaks netstrings (``LEN:PAYLOAD,``) carrying JSON: commands
``{"command": "uanew", "params": "...", "token": "1"}`` (names without the ``/`` of
the interactive menu), answered by ``{"response": true, "ok": ..., "data": ...,
"token": "1"}``, and events ``{"event": true, "type": "REGISTER_OK", ...}``. Events
go only to connected clients, so accounts are added with ``uanew`` after the
client connected (an account in the ``accounts`` file registers before anyone
listens and its REGISTER_OK is lost).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import socket
import struct
import subprocess
import time
import wave
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIG_TEMPLATE = HERE / "baresip.conf"
MODULES = Path("/usr/lib/baresip/modules")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def free_port_on(host: str, kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on ``host`` for ``kind`` (UDP by default) right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_sip_port_on(host: str, attempts: int = 50) -> int:
    """A port free on ``host`` for both UDP and TCP (baresip listens on both)."""
    for _ in range(attempts):
        port = free_port_on(host, socket.SOCK_STREAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free for UDP and TCP on {host}")


def write_tone(path: Path, seconds: int = 30, rate: int = 8000) -> None:
    """A 440 Hz tone, mono 16-bit at ``rate`` Hz (G.711's rate: aufile plays it paced)."""
    frames = b"".join(
        struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(rate)
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames * seconds)


class CtrlError(AssertionError):
    """An expected event did not come (timeout, closed socket, or a failure event)."""


class Ctrl:
    """A ctrl_tcp client: send commands, read events and responses in order."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 10.0,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Connect, retrying until ``connect_timeout`` or until ``alive()`` is false."""
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline or not alive():
                    raise CtrlError(f"ctrl_tcp {host}:{port} refused connections") from None
                time.sleep(0.1)
        self.buffer = b""
        self.token = 0
        self.messages: list[dict[str, Any]] = []  # everything received, in order
        self.cursor = 0  # messages before this one were read by wait()

    def close(self) -> None:
        self.sock.close()

    def send(self, command: str, params: str = "") -> str:
        """Send ``command`` (no leading ``/``) and return its token."""
        self.token += 1
        body = json.dumps({"command": command, "params": params, "token": str(self.token)})
        data = body.encode()
        self.sock.sendall(b"%d:%s," % (len(data), data))
        return str(self.token)

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """Read the next message from the socket into :attr:`messages`, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            length, colon, rest = self.buffer.partition(b":")
            if colon and len(rest) > int(length):
                payload, self.buffer = rest[: int(length)], rest[int(length) + 1 :]
                message: dict[str, Any] = json.loads(payload)
                self.messages.append(message)
                return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise CtrlError("baresip closed the ctrl_tcp connection")
            self.buffer += data

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Send a command and return its response (events that come meanwhile stay unread)."""
        token = self.send(command, params)
        deadline = time.monotonic() + timeout
        while (message := self._read(deadline - time.monotonic())) is not None:
            if message.get("response") and message.get("token") == token:
                return message
        raise CtrlError(f"no response to {command} {params} within {timeout} s")

    def wait(
        self, wanted: str, *, fail: Iterable[str] = (), timeout: float = 10.0
    ) -> dict[str, Any]:
        """Return the next unread event of type ``wanted``, skipping other events.

        Raises :class:`CtrlError` on an event of a type in ``fail`` or on a timeout.
        """
        failures = set(fail)
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.messages):
                message = self.messages[self.cursor]
                self.cursor += 1
                kind = message.get("type")
                if message.get("event") and kind == wanted:
                    return message
                if message.get("event") and kind in failures:
                    raise CtrlError(f"{kind} while waiting for {wanted}: {message}")
            if self._read(deadline - time.monotonic()) is None:
                raise CtrlError(f"no {wanted} within {timeout} s; received {self.messages}")

    def seen(
        self, wanted: str, *, call: str | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first event of type ``wanted`` (of call id ``call``), read or not; waits for one.

        For events whose order against others is not fixed: baresip reports
        CALL_RTPESTAB when the first RTP packet comes, which may be before
        CALL_ESTABLISHED (the callee sends RTP as soon as it answers).
        """
        deadline = time.monotonic() + timeout
        while not (found := [e for e in self.events(wanted) if call in (None, e.get("id"))]):
            if self._read(deadline - time.monotonic()) is None:
                raise CtrlError(f"no {wanted} within {timeout} s; received {self.messages}")
        return found[0]

    def drain(self, seconds: float) -> None:
        """Read whatever arrives within ``seconds`` into :attr:`messages`."""
        deadline = time.monotonic() + seconds
        while self._read(max(0.0, deadline - time.monotonic())) is not None:
            pass

    def events(self, kind: str) -> list[dict[str, Any]]:
        """Every event of type ``kind`` received so far."""
        return [m for m in self.messages if m.get("event") and m.get("type") == kind]


class Baresip:
    """One baresip process on ``host`` (SIP on ``sip_port``, ctrl_tcp on ``ctrl_port``)."""

    def __init__(self, workdir: Path, host: str, *, lifetime: int = 60) -> None:
        self.workdir = workdir
        self.host = host
        self.lifetime = lifetime
        self.sip_port = free_sip_port_on(host)
        self.ctrl_port = free_port_on(host, socket.SOCK_STREAM)
        self.log_path = workdir / "baresip.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctrl: Ctrl | None = None

    def configure(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tone = self.workdir / "tone.wav"
        write_tone(tone)
        values = {
            "SIP_LISTEN": f"{self.host}:{self.sip_port}",
            "LOCAL_IP": self.host,
            "CTRL_LISTEN": f"{self.host}:{self.ctrl_port}",
            "AUDIO_FILE": str(tone),
            "MODULES": str(MODULES),
        }
        text = CONFIG_TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        (self.workdir / "config").write_text(text)
        (self.workdir / "accounts").write_text("")  # accounts come over ctrl_tcp (uanew)
        (self.workdir / "contacts").write_text("")

    def start(self) -> Ctrl:
        binary = shutil.which("baresip")
        if binary is None:
            raise AssertionError(
                "baresip not found: `make test` installs it (apt-get install baresip-core)"
            )
        self.configure()
        with self.log_path.open("wb") as log:
            # -s: SIP trace in the log; -t: baresip quits by itself after lifetime seconds
            self.proc = subprocess.Popen(
                [binary, "-s", "-f", str(self.workdir), "-t", str(self.lifetime)],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        proc = self.proc
        try:
            self.ctrl = Ctrl(self.host, self.ctrl_port, alive=lambda: proc.poll() is None)
        except CtrlError:
            self.stop()
            raise AssertionError(f"baresip did not open ctrl_tcp:\n{self.log}") from None
        return self.ctrl

    @property
    def log(self) -> str:
        """The log without colours and without the \\r-separated audio status lines."""
        if not self.log_path.exists():
            return ""
        text = ANSI_ESCAPE.sub("", self.log_path.read_text(errors="replace"))
        lines = text.replace("\r", "\n").splitlines()
        return "\n".join(line for line in lines if line.strip() and not line.startswith("[0:"))

    def stop(self, timeout: float = 5.0) -> int | None:
        """Ask baresip to quit (unregistering), then terminate or kill it; return its status."""
        if self.proc is None:
            return None
        if self.ctrl is not None:
            with contextlib.suppress(OSError, CtrlError):
                self.ctrl.send("quit")
            self.ctrl.close()
            self.ctrl = None
        for signal_it in (None, self.proc.terminate, self.proc.kill):
            if signal_it is not None:
                signal_it()
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.wait()
