"""The SQLite journal's file: its versioned schema, its permissions, WAL mode, and rows as dicts."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

Row = dict[str, Any]

# Each entry moves the schema from version i to i + 1; append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE plans (
        digest        TEXT NOT NULL,
        workspace_id  TEXT NOT NULL,
        summary       TEXT NOT NULL,
        planned_at    TEXT NOT NULL,
        PRIMARY KEY (digest, workspace_id)
    );
    CREATE TABLE publishes (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        digest           TEXT NOT NULL,
        workspace_id     TEXT NOT NULL,
        idempotency_key  TEXT NOT NULL UNIQUE,
        api_version      TEXT NOT NULL,
        body             TEXT NOT NULL,
        targets          TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('sending', 'accepted', 'unknown', 'failed')),
        remote_status    TEXT,
        terminal         INTEGER NOT NULL DEFAULT 0,
        publish_id       TEXT,
        error_code       TEXT,
        error_message    TEXT,
        attempts         INTEGER NOT NULL DEFAULT 1,
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
    );
    CREATE INDEX publishes_by_digest ON publishes (digest, workspace_id, created_at);
    CREATE INDEX publishes_by_publish_id ON publishes (publish_id);
    CREATE INDEX publishes_by_created ON publishes (created_at);
    CREATE TABLE uploads (
        workspace_id  TEXT NOT NULL,
        sha256        TEXT NOT NULL,
        size          INTEGER NOT NULL,
        content_id    TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        PRIMARY KEY (workspace_id, sha256, size)
    );
    CREATE INDEX uploads_by_content ON uploads (content_id);
    """,
    # 2: every row belongs to an identity ('' for a single-user server)
    """
    ALTER TABLE publishes ADD COLUMN identity TEXT NOT NULL DEFAULT '';
    CREATE TABLE plans2 (
        identity      TEXT NOT NULL DEFAULT '',
        digest        TEXT NOT NULL,
        workspace_id  TEXT NOT NULL,
        summary       TEXT NOT NULL,
        planned_at    TEXT NOT NULL,
        PRIMARY KEY (identity, digest, workspace_id)
    );
    INSERT INTO plans2 (digest, workspace_id, summary, planned_at)
        SELECT digest, workspace_id, summary, planned_at FROM plans;
    DROP TABLE plans;
    ALTER TABLE plans2 RENAME TO plans;
    CREATE TABLE uploads2 (
        identity      TEXT NOT NULL DEFAULT '',
        workspace_id  TEXT NOT NULL,
        sha256        TEXT NOT NULL,
        size          INTEGER NOT NULL,
        content_id    TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        PRIMARY KEY (identity, workspace_id, sha256, size)
    );
    INSERT INTO uploads2 (workspace_id, sha256, size, content_id, created_at)
        SELECT workspace_id, sha256, size, content_id, created_at FROM uploads;
    DROP TABLE uploads;
    ALTER TABLE uploads2 RENAME TO uploads;
    CREATE INDEX uploads_by_content ON uploads (content_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def scalar(conn: sqlite3.Connection, sql: str) -> Any:
    row: Row = conn.execute(sql).fetchone()
    return next(iter(row.values()))


def prepare_files(path: Path) -> None:
    """Create missing folders as 0700 and the file as 0600 before SQLite opens it."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(folder, 0o700)  # the umask may have taken bits away; never adds any
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def enable_wal(conn: sqlite3.Connection, timeout_ms: int) -> None:
    """Switch to WAL (a property of the file, so usually already done).

    Changing the mode needs an exclusive lock and SQLite answers "database is locked" at once
    instead of waiting when another process is opening the same new file: retry until the busy
    timeout.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            mode = str(scalar(conn, "PRAGMA journal_mode")).lower()
            if mode != "wal":
                mode = str(scalar(conn, "PRAGMA journal_mode = WAL")).lower()
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    if mode != "wal":
        raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode!r})")


def migrate(conn: sqlite3.Connection) -> None:
    version = int(scalar(conn, "PRAGMA user_version"))
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this postqued-mcp understands ({SCHEMA_VERSION})"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(scalar(conn, "PRAGMA user_version"))  # another process may have won
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
