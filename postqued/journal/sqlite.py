"""The default journal backend: one SQLite file in WAL mode, nothing to set up.

Every commit is fsynced (``synchronous = FULL``). SQLite is a blocking library and a locked file makes a
write wait up to the busy timeout, so every call runs in a worker thread: the event loop (pings, reads,
other tools) never waits for the file. Reads use their own connection, so in WAL mode they are answered
while a write waits for another process's lock, and even when the file can only be read.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, Self, TypeVar

import anyio.to_thread

from postqued.clock import Clock, SystemClock
from postqued.errors import JournalError
from postqued.journal.interface import (
    KEY_TTL,
    PLAN_TTL,
    RECOVERED_MESSAGE,
    SENDING_GRACE,
    TERMINAL_REQUEST_STATUSES,
    Journal,
    JournalEntry,
    PublishIntent,
    check_key,
    clamp_limit,
    clip,
    dumps,
    entry_of,
    key_for_new_entry,
    not_found,
    reusable,
)
from postqued.journal.sqlite_schema import SCHEMA_VERSION, Row, dict_row, enable_wal, migrate, prepare_files, scalar

__all__ = ["BUSY_TIMEOUT_MS", "SCHEMA_VERSION", "SqliteJournal"]

BUSY_TIMEOUT_MS = 5000
P = ParamSpec("P")
R = TypeVar("R")

_LATEST = (
    "SELECT * FROM publishes WHERE identity = ? AND digest = ? AND workspace_id = ? AND created_at > ? "
    "ORDER BY created_at DESC, id DESC LIMIT 1"
)


def _ts(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so stored timestamps sort and compare as strings."""
    if moment.tzinfo is None:
        raise ValueError("the journal needs offset-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class _Store:
    """The blocking part: two connections (writer, reader), each used by one thread at a time."""

    def __init__(self, path: Path, clock: Clock, grace: timedelta, recover_on_open: bool) -> None:
        self.path = path
        self.clock = clock
        self.grace = grace
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._closed = False
        self._pending_recovery = recover_on_open

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"Publish journal at {self.path}: {action} failed: {exc}") from exc

    def open(self) -> None:
        with self._write_lock, self.guard("open"):
            self._open_writer()

    def _open_writer(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the journal is closed")
        if self._writer is not None:
            return self._writer
        prepare_files(self.path)
        conn = sqlite3.connect(
            str(self.path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
            check_same_thread=False,
        )
        try:
            conn.row_factory = dict_row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            enable_wal(conn, BUSY_TIMEOUT_MS)
            conn.execute("PRAGMA synchronous = FULL")  # every commit is fsynced
            migrate(conn)
            self._try_recovery(conn)
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        return conn

    def _try_recovery(self, conn: sqlite3.Connection) -> None:
        """Settle the previous process's sends at open if the file is free now; if another process holds
        the lock, never wait: the first write does it."""
        if not self._pending_recovery:
            return
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._recover(conn)
            conn.execute("COMMIT")
            self._pending_recovery = False
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _open_reader(self) -> sqlite3.Connection:
        """A read-only connection; it works while another process holds the write lock, or on a read-only
        file. The writer is opened first where possible, so a new file is created and migrated."""
        if self._closed:
            raise sqlite3.ProgrammingError("the journal is closed")
        if self._reader is not None:
            return self._reader
        if self._writer is None:  # never waits behind a write: once open, the writer is not needed here
            with self._write_lock, suppress(sqlite3.Error, OSError):
                self._open_writer()
        conn = sqlite3.connect(
            self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        try:
            conn.row_factory = dict_row
            version = int(scalar(conn, "PRAGMA user_version"))
            if version != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}, this postqued-mcp reads {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        self._reader = conn
        return conn

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._closed = True
            for conn in (self._writer, self._reader):
                if conn is not None:
                    with self.guard("close"):
                        conn.close()
            self._writer = self._reader = None

    @contextmanager
    def read(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._read_lock, self.guard(action):
            yield self._open_reader()

    @contextmanager
    def write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the file's write lock before anything is read."""
        with self._write_lock, self.guard(action):
            conn = self._open_writer()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._pending_recovery:
                    self._recover(conn)
                yield conn
                conn.execute("COMMIT")
                self._pending_recovery = False
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def now(self) -> datetime:
        return self.clock.now()

    def entry(self, row: Mapping[str, Any]) -> JournalEntry:
        return entry_of(row, self.now(), self.grace)

    @staticmethod
    def _by_id(conn: sqlite3.Connection, row_id: int) -> Row:
        row: Row = conn.execute("SELECT * FROM publishes WHERE id = ?", (row_id,)).fetchone()
        return row

    @staticmethod
    def _by_key(conn: sqlite3.Connection, key: str, identity: str | None) -> Row | None:
        row: Row | None = conn.execute(
            "SELECT * FROM publishes WHERE idempotency_key = ? AND (? IS NULL OR identity = ?)",
            (key, identity, identity),
        ).fetchone()
        return row

    def _for_outcome(self, conn: sqlite3.Connection, identity: str, digest_or_key: str) -> Row:
        row = self._by_key(conn, digest_or_key, identity)
        if row is None:
            row = conn.execute(
                "SELECT * FROM publishes WHERE identity = ? AND digest = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                (identity, digest_or_key),
            ).fetchone()
        if row is None:
            raise not_found(str(self.path), digest_or_key)
        return row

    # -- plans -------------------------------------------------------------------------------------

    def record_plan(self, identity: str, digest: str, workspace_id: str, summary: Mapping[str, Any]) -> None:
        text = dumps(dict(summary))
        with self.write("record_plan") as conn:
            conn.execute(
                "INSERT INTO plans (identity, digest, workspace_id, summary, planned_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (identity, digest, workspace_id) DO UPDATE SET "
                "summary = excluded.summary, planned_at = excluded.planned_at",
                (identity, digest, workspace_id, text, _ts(self.now())),
            )

    def plan_is_fresh(self, identity: str, digest: str, within: timedelta, workspace_id: str | None) -> bool:
        cutoff = _ts(self.now() - within)
        with self.read("plan_is_fresh") as conn:
            row = conn.execute(
                "SELECT 1 FROM plans WHERE identity = ? AND digest = ? AND (? IS NULL OR workspace_id = ?) "
                "AND planned_at >= ? LIMIT 1",
                (identity, digest, workspace_id, workspace_id, cutoff),
            ).fetchone()
        return row is not None

    # -- publishes ---------------------------------------------------------------------------------

    def begin_publish(
        self,
        identity: str,
        digest: str,
        workspace_id: str,
        body: Mapping[str, Any],
        targets: Sequence[Mapping[str, Any]],
        idempotency_key: str | None,
        api_version: str,
    ) -> PublishIntent:
        if idempotency_key is not None:
            check_key(idempotency_key)
        body_text = dumps(dict(body))
        targets_text = dumps([dict(target) for target in targets])
        now = self.now()
        stamp = _ts(now)
        with self.write("begin_publish") as conn:
            row = reusable(conn.execute(_LATEST, (identity, digest, workspace_id, _ts(now - KEY_TTL))).fetchone())
            if row is not None:
                overridden = idempotency_key is not None and idempotency_key != row["idempotency_key"]
                replay = row["publish_id"] is not None
                if not replay:
                    conn.execute(
                        "UPDATE publishes SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                        (stamp, row["id"]),
                    )
                    row = self._by_id(conn, row["id"])
                return PublishIntent.of(
                    self.entry(row), replay=replay, reused_key=not replay, key_overridden=overridden
                )
            holder = None if idempotency_key is None else self._by_key(conn, idempotency_key, None)
            key, overridden = key_for_new_entry(idempotency_key, holder, identity, digest, workspace_id)
            cursor = conn.execute(
                "INSERT INTO publishes (identity, digest, workspace_id, idempotency_key, api_version, body, targets, "
                "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?)",
                (
                    identity,
                    digest,
                    workspace_id,
                    key or str(uuid.uuid4()),
                    api_version,
                    body_text,
                    targets_text,
                    *[stamp] * 2,
                ),
            )
            row = self._by_id(conn, int(cursor.lastrowid or 0))
            return PublishIntent.of(self.entry(row), replay=False, reused_key=False, key_overridden=overridden)

    def record_accepted(
        self, identity: str, digest_or_key: str, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]]
    ) -> JournalEntry:
        targets_text = dumps([dict(target) for target in targets])
        with self.write("record_accepted") as conn:
            row = self._for_outcome(conn, identity, digest_or_key)
            conn.execute(
                "UPDATE publishes SET status = 'accepted', publish_id = ?, remote_status = ?, terminal = ?, "
                "targets = ?, error_code = NULL, error_message = NULL, updated_at = ? WHERE id = ?",
                (
                    publish_id,
                    status,
                    int(status in TERMINAL_REQUEST_STATUSES),
                    targets_text,
                    _ts(self.now()),
                    row["id"],
                ),
            )
            return self.entry(self._by_id(conn, row["id"]))

    def record_problem(self, identity: str, key: str, status: str, code: str, message: str) -> JournalEntry:
        with self.write(f"record_{status}") as conn:
            row = self._for_outcome(conn, identity, key)
            conn.execute(
                "UPDATE publishes SET status = ?, error_code = ?, error_message = ?, updated_at = ? "
                "WHERE id = ? AND publish_id IS NULL",
                (status, code, clip(message), _ts(self.now()), row["id"]),
            )
            return self.entry(self._by_id(conn, row["id"]))

    def record_status(
        self, identity: str, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]], terminal: bool
    ) -> JournalEntry | None:
        targets_text = dumps([dict(target) for target in targets])
        with self.write("record_status") as conn:
            row = conn.execute(
                "SELECT id FROM publishes WHERE identity = ? AND publish_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (identity, publish_id),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE publishes SET status = 'accepted', remote_status = ?, terminal = ?, targets = ?, "
                "updated_at = ? WHERE id = ?",
                (status, int(terminal), targets_text, _ts(self.now()), row["id"]),
            )
            return self.entry(self._by_id(conn, row["id"]))

    def _recover(self, conn: sqlite3.Connection) -> int:
        cursor = conn.execute(
            "UPDATE publishes SET status = 'unknown', error_code = 'OUTCOME_UNKNOWN', error_message = ?, "
            "updated_at = ? WHERE status = 'sending'",
            (RECOVERED_MESSAGE, _ts(self.now())),
        )
        return cursor.rowcount

    def recover(self) -> int:
        with self.write("recover") as conn:
            return self._recover(conn)

    # -- reads -------------------------------------------------------------------------------------

    def find_by_publish_id(self, identity: str, publish_id: str) -> JournalEntry | None:
        with self.read("find_by_publish_id") as conn:
            row = conn.execute(
                "SELECT * FROM publishes WHERE identity = ? AND publish_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (identity, publish_id),
            ).fetchone()
            return None if row is None else self.entry(row)

    def find_recent(
        self, identity: str, digest: str, workspace_id: str, within: timedelta | None
    ) -> JournalEntry | None:
        cutoff = "" if within is None else _ts(self.now() - within)
        with self.read("find_recent") as conn:
            row = conn.execute(_LATEST, (identity, digest, workspace_id, cutoff)).fetchone()
            return None if row is None else self.entry(row)

    def find_by_key(self, identity: str, key: str) -> JournalEntry | None:
        with self.read("find_by_key") as conn:
            row = self._by_key(conn, key, identity)
            return None if row is None else self.entry(row)

    def list_entries(self, identity: str, limit: int, status: str | None) -> list[JournalEntry]:
        cutoff = _ts(self.now() - self.grace)
        with self.read("list_entries") as conn:
            rows = conn.execute(
                "SELECT * FROM publishes WHERE identity = :identity AND (:status IS NULL "
                "OR (CASE WHEN status = 'sending' AND updated_at < :cutoff THEN 'unknown' ELSE status END)"
                " = :status OR (remote_status = :status AND :status NOT IN ('sending', 'accepted', 'unknown'))) "
                "ORDER BY created_at DESC, id DESC LIMIT :limit",
                {"identity": identity, "status": status, "cutoff": cutoff, "limit": clamp_limit(limit)},
            ).fetchall()
            return [self.entry(row) for row in rows]

    # -- uploads -----------------------------------------------------------------------------------

    def remember_upload(self, identity: str, workspace_id: str, sha256: str, size: int, content_id: str) -> None:
        with self.write("remember_upload") as conn:
            conn.execute(
                "INSERT INTO uploads (identity, workspace_id, sha256, size, content_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (identity, workspace_id, sha256, size) DO UPDATE SET "
                "content_id = excluded.content_id, created_at = excluded.created_at",
                (identity, workspace_id, sha256.lower(), size, content_id, _ts(self.now())),
            )

    def lookup_upload(self, identity: str, workspace_id: str, sha256: str, size: int) -> str | None:
        with self.read("lookup_upload") as conn:
            row = conn.execute(
                "SELECT content_id FROM uploads WHERE identity = ? AND workspace_id = ? AND sha256 = ? AND size = ?",
                (identity, workspace_id, sha256.lower(), size),
            ).fetchone()
            return None if row is None else str(row["content_id"])

    def has_upload_of_size(self, identity: str, workspace_id: str, size: int) -> bool:
        with self.read("has_upload_of_size") as conn:
            row = conn.execute(
                "SELECT 1 FROM uploads WHERE identity = ? AND workspace_id = ? AND size = ? LIMIT 1",
                (identity, workspace_id, size),
            ).fetchone()
            return row is not None

    def forget_upload(self, identity: str, content_id: str) -> int:
        with self.write("forget_upload") as conn:
            return conn.execute(
                "DELETE FROM uploads WHERE identity = ? AND content_id = ?", (identity, content_id)
            ).rowcount


class SqliteJournal(Journal):
    """The journal in one SQLite file; several processes may share the file.

    ``recover_on_open``: the first write also marks every ``sending`` entry ``unknown`` (a single server
    that restarts: its previous process died mid-send). Construction does no I/O.
    """

    def __init__(
        self,
        path: Path | str,
        clock: Clock | None = None,
        *,
        sending_grace: timedelta = SENDING_GRACE,
        recover_on_open: bool = False,
        identity: str = "",
        _store: _Store | None = None,
    ) -> None:
        self._store = _store or _Store(Path(path).expanduser(), clock or SystemClock(), sending_grace, recover_on_open)
        self._identity = identity

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def where(self) -> str:
        return str(self._store.path)

    @property
    def identity(self) -> str:
        return self._identity

    def for_identity(self, identity: str) -> SqliteJournal:
        return SqliteJournal(self._store.path, identity=identity, _store=self._store)

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def open(self) -> None:
        await self._run(self._store.open)

    async def aclose(self) -> None:
        await self._run(self._store.close)

    def close(self) -> None:
        """Close from synchronous code (quick: no lock is waited for)."""
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def record_plan(self, digest: str, workspace_id: str, summary: Mapping[str, Any]) -> None:
        await self._run(self._store.record_plan, self._identity, digest, workspace_id, summary)

    async def plan_is_fresh(
        self, digest: str, within: timedelta = PLAN_TTL, *, workspace_id: str | None = None
    ) -> bool:
        return await self._run(self._store.plan_is_fresh, self._identity, digest, within, workspace_id)

    async def begin_publish(
        self,
        digest: str,
        workspace_id: str,
        body: Mapping[str, Any],
        targets: Sequence[Mapping[str, Any]],
        idempotency_key: str | None,
        api_version: str,
    ) -> PublishIntent:
        store = self._store
        args = (self._identity, digest, workspace_id, body, targets, idempotency_key, api_version)
        return await self._run(store.begin_publish, *args)

    async def record_accepted(
        self, digest_or_key: str, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]]
    ) -> JournalEntry:
        if not publish_id:
            raise ValueError("publish_id must not be empty")
        return await self._run(self._store.record_accepted, self._identity, digest_or_key, publish_id, status, targets)

    async def record_failed(self, key: str, error_code: str, message: str) -> JournalEntry:
        return await self._run(self._store.record_problem, self._identity, key, "failed", error_code, message)

    async def record_unknown(self, key: str, reason: str) -> JournalEntry:
        return await self._run(self._store.record_problem, self._identity, key, "unknown", "OUTCOME_UNKNOWN", reason)

    async def record_status(
        self, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]], terminal: bool
    ) -> JournalEntry | None:
        return await self._run(self._store.record_status, self._identity, publish_id, status, targets, terminal)

    async def recover(self) -> int:
        return await self._run(self._store.recover)

    async def find_by_publish_id(self, publish_id: str) -> JournalEntry | None:
        return await self._run(self._store.find_by_publish_id, self._identity, publish_id)

    async def find_recent(
        self, digest: str, workspace_id: str, within: timedelta | None = KEY_TTL
    ) -> JournalEntry | None:
        return await self._run(self._store.find_recent, self._identity, digest, workspace_id, within)

    async def find_by_key(self, key: str) -> JournalEntry | None:
        return await self._run(self._store.find_by_key, self._identity, key)

    async def list_entries(self, limit: int = 20, status: str | None = None) -> list[JournalEntry]:
        return await self._run(self._store.list_entries, self._identity, limit, status)

    async def remember_upload(self, workspace_id: str, sha256: str, size: int, content_id: str) -> None:
        await self._run(self._store.remember_upload, self._identity, workspace_id, sha256, size, content_id)

    async def lookup_upload(self, workspace_id: str, sha256: str, size: int) -> str | None:
        return await self._run(self._store.lookup_upload, self._identity, workspace_id, sha256, size)

    async def has_upload_of_size(self, workspace_id: str, size: int) -> bool:
        return await self._run(self._store.has_upload_of_size, self._identity, workspace_id, size)

    async def forget_upload(self, content_id: str) -> int:
        return await self._run(self._store.forget_upload, self._identity, content_id)
