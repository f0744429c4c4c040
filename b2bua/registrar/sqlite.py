"""The embedded default store of the location service: one SQLite file.

Every statement runs on a single worker thread of a
``twisted.enterprise.adbapi.ConnectionPool`` (``cp_min = cp_max = 1``), never on
the reactor thread; with one thread the writes are applied in the order they
were made.  The directory of the file is created when missing.

Schema (``PRAGMA user_version = 1``)::

    bindings(aor, position, contact, expires_at, q, call_id, cseq, path, source,
             registered_at)      -- path: a JSON array of Path values
    aors(aor)                    -- every AOR that ever had a binding
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool

from ..location import Binding

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 1

#: adbapi carries no type annotations; the pool is used through Any.
_ConnectionPool: Any = adbapi.ConnectionPool

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS bindings (
        aor TEXT NOT NULL,
        position INTEGER NOT NULL,
        contact TEXT NOT NULL,
        expires_at REAL NOT NULL,
        q REAL,
        call_id TEXT NOT NULL,
        cseq INTEGER NOT NULL,
        path TEXT NOT NULL,
        source TEXT NOT NULL,
        registered_at REAL NOT NULL,
        PRIMARY KEY (aor, position)
    )""",
    "CREATE INDEX IF NOT EXISTS bindings_by_expiry ON bindings (expires_at)",
    "CREATE TABLE IF NOT EXISTS aors (aor TEXT PRIMARY KEY)",
)
_COLUMNS = "aor, position, contact, expires_at, q, call_id, cseq, path, source, registered_at"


class SQLiteStore:
    """A :class:`~b2bua.registrar.location.BindingStore` in the SQLite file ``path``.

    ``reactor`` provides ``callFromThread`` (results come back through it),
    ``callWhenRunning`` and system event triggers, as adbapi needs.
    """

    def __init__(self, path: str, reactor: Any) -> None:
        self.path = path
        self._reactor = reactor
        self._pool: Any = _ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,  # closed from the reactor thread at shutdown
            cp_min=1,
            cp_max=1,
            cp_name="b2bua-registrar-db",
            cp_openfun=self._configure,
            cp_reactor=reactor,
        )

    def describe(self) -> str:
        return self.path

    # -- BindingStore ----------------------------------------------------------------
    def load(self, now: float) -> Deferred[tuple[list[Binding], set[str]]]:
        """Create the directory and schema if needed, drop expired rows, read the rest."""
        self._pool.start()  # idempotent; the reactor would start it when it runs
        directory = os.path.dirname(self.path)
        # Queued on the pool's only thread, so it runs before the connection opens.
        made: Deferred[None] = deferToThreadPool(
            self._reactor, self._pool.threadpool, os.makedirs, directory or ".", exist_ok=True
        )
        loading: Deferred[tuple[list[Binding], set[str]]] = self._pool.runInteraction(
            _load, now
        )
        made.addErrback(lambda _: None)  # a failure shows again when the file is opened
        return loading

    def replace(self, aor: str, bindings: Sequence[Binding]) -> Deferred[None]:
        rows = [_row(i, b) for i, b in enumerate(bindings)]
        result: Deferred[None] = self._pool.runInteraction(_replace, aor, rows)
        return result

    def remove_expired(self, now: float) -> Deferred[None]:
        result: Deferred[None] = self._pool.runInteraction(_remove_expired, now)
        return result

    def close(self) -> Deferred[None]:
        if self._pool.running:
            self._pool.close()
        return succeed(None)

    # -- on the database thread ------------------------------------------------------
    def _configure(self, connection: sqlite3.Connection) -> None:
        """Each new connection (on the pool's thread): WAL journal, a busy timeout."""
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=5000")


def _row(position: int, b: Binding) -> tuple[object, ...]:
    return (
        b.aor,
        position,
        b.contact,
        b.expires_at,
        b.q,
        b.call_id,
        b.cseq,
        json.dumps(list(b.path)),
        b.source,
        b.registered_at,
    )


def _load(cursor: Any, now: float) -> tuple[list[Binding], set[str]]:
    (version,) = cursor.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {version}; this b2bua knows up to {SCHEMA_VERSION}"
        )
    for statement in _SCHEMA:
        cursor.execute(statement)
    if version < SCHEMA_VERSION:
        cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    cursor.execute("DELETE FROM bindings WHERE expires_at <= ?", (now,))
    rows = cursor.execute(
        f"SELECT {_COLUMNS} FROM bindings ORDER BY aor, position"
    ).fetchall()
    bindings: list[Binding] = []
    for aor, _position, contact, expires_at, q, call_id, cseq, path, source, registered in rows:
        try:
            bindings.append(
                Binding(
                    aor,
                    contact,
                    expires_at,
                    q,
                    call_id,
                    cseq,
                    tuple(json.loads(path)),
                    source,
                    registered,
                )
            )
        except ValueError:
            continue  # a row no longer readable as a contact: skipped, not fatal
    known = {aor for (aor,) in cursor.execute("SELECT aor FROM aors").fetchall()}
    return bindings, known


def _replace(cursor: Any, aor: str, rows: list[tuple[object, ...]]) -> None:
    cursor.execute("DELETE FROM bindings WHERE aor = ?", (aor,))
    if rows:
        cursor.executemany(
            f"INSERT INTO bindings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        cursor.execute("INSERT OR IGNORE INTO aors (aor) VALUES (?)", (aor,))


def _remove_expired(cursor: Any, now: float) -> None:
    cursor.execute("DELETE FROM bindings WHERE expires_at <= ?", (now,))
