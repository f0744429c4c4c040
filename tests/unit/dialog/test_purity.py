"""The dialog layer is pure: importing it pulls in no Twisted and no I/O module."""

from __future__ import annotations

import subprocess
import sys

import b2bua.dialog


def test_import_does_not_load_twisted_or_transaction() -> None:
    code = (
        "import sys, b2bua.dialog\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('twisted', 'socket', 'asyncio')\n"
        "             or m.startswith(('b2bua.transaction', 'b2bua.transport')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_exported_and_documented() -> None:
    for name in b2bua.dialog.__all__:
        obj = getattr(b2bua.dialog, name)
        if callable(obj):
            assert obj.__doc__, name
    assert b2bua.dialog.__doc__


def test_per_call_objects_use_slots() -> None:
    from b2bua.dialog import (
        AckCache,
        Dialog,
        DialogTable,
        EarlyDialogs,
        ReliableProvisionals,
        TwoXXRetransmitter,
    )

    for cls in (
        Dialog,
        DialogTable,
        EarlyDialogs,
        AckCache,
        ReliableProvisionals,
        TwoXXRetransmitter,
    ):
        assert "__slots__" in cls.__dict__, cls
