"""Mem0's SQLite history file (`history_db_path`): the text rows an erasure must purge beside the vectors.

`history` has no user column: its rows are found by the erased memory ids. `messages` holds raw chat turns per
session scope. Deletes run with `secure_delete` on (freed pages are zeroed) and the file is vacuumed after, so the
subject's text cannot be read back from its bytes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..base import StoreConfigError, StoreUnavailable
from . import matching

CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds


class HistoryFile:
    def __init__(self, path: str | None, busy_timeout: float = 30.0):
        self.path = path if path and path != ":memory:" else None
        self.busy_timeout = busy_timeout  # how long to wait for the application's write to finish

    def exists(self) -> bool:
        return self.path is not None and os.path.isfile(self.path)

    def connect(self) -> sqlite3.Connection | None:
        """A connection to the existing file (never creates one), or None when there is no history file."""
        if self.path is None:
            return None
        if not os.path.isfile(self.path):
            raise StoreConfigError(
                "history_db_path: no Mem0 history file at this path", field="history_db_path"
            )
        try:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=rw", uri=True, timeout=self.busy_timeout, isolation_level=None
            )
            conn.execute("PRAGMA secure_delete=ON")
            return conn
        except sqlite3.Error as exc:
            raise StoreUnavailable("the Mem0 history file could not be opened") from exc

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def count_history(self, memory_ids: Sequence[str]) -> int:
        conn = self.connect()
        if conn is None:
            return 0
        try:
            if "history" not in self._tables(conn):
                return 0
            total = 0
            for start in range(0, len(memory_ids), CHUNK):
                chunk = list(memory_ids[start : start + CHUNK])
                marks = ",".join("?" * len(chunk))
                total += conn.execute(
                    f"SELECT count(*) FROM history WHERE memory_id IN ({marks})", chunk
                ).fetchone()[0]
            return int(total)
        finally:
            conn.close()

    def delete_history(self, memory_ids: Sequence[str]) -> int:
        conn = self.connect()
        if conn is None:
            return 0
        try:
            if "history" not in self._tables(conn):
                return 0
            deleted = 0
            conn.execute("BEGIN IMMEDIATE")
            for start in range(0, len(memory_ids), CHUNK):
                chunk = list(memory_ids[start : start + CHUNK])
                marks = ",".join("?" * len(chunk))
                deleted += conn.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk).rowcount
            conn.execute("COMMIT")
            return deleted
        finally:
            conn.close()

    def session_scopes(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> dict[str, int]:
        """The subject's chat sessions (session_scope → rows) that no hold keeps. Only a scope naming people,
        agents or runs alone reaches chat turns (they are not tied to single memories)."""
        if not matching.whole_identity(scope):
            return {}
        conn = self.connect()
        if conn is None:
            return {}
        try:
            if "messages" not in self._tables(conn):
                return {}
            found: dict[str, int] = {}
            rows = conn.execute("SELECT session_scope, count(*) FROM messages GROUP BY session_scope")
            for session_scope, n in rows:
                ids = matching.parse_session_scope(session_scope)
                if ids is None or not matching.session_matches(scope, ids):
                    continue
                # A hold narrowed to some memories (metadata, ids) keeps those memories, not the chat.
                if any(matching.whole_identity(h) and matching.session_matches(h, ids) for h in holds):
                    continue
                found[session_scope] = int(n)
            return found
        finally:
            conn.close()

    def delete_messages(self, session_scopes: Sequence[str]) -> int:
        conn = self.connect()
        if conn is None or not session_scopes:
            return 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            deleted = 0
            for start in range(0, len(session_scopes), CHUNK):
                chunk = list(session_scopes[start : start + CHUNK])
                marks = ",".join("?" * len(chunk))
                deleted += conn.execute(
                    f"DELETE FROM messages WHERE session_scope IN ({marks})", chunk
                ).rowcount
            conn.execute("COMMIT")
            return deleted
        finally:
            conn.close()

    def vacuum(self) -> None:
        """Rebuilds the file so no freed page keeps deleted text (secure_delete already zeroed them; VACUUM also
        drops them from the file and its journal)."""
        conn = self.connect()
        if conn is None:
            return
        try:
            vacuum_sqlite(conn)
        finally:
            conn.close()


def vacuum_sqlite(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("VACUUM")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
