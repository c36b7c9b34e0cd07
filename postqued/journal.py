"""The durable local journal: dry-run plans, publish intents and outcomes, upload de-duplication.

One SQLite file in WAL mode. The rule it exists for: a publish intent (digest, idempotency key, body) is
committed and synced to disk *before* the request leaves, and the same digest within 24 hours always
gets the same key, so a retry, a second call or a restarted server can never publish twice.

Local statuses of a publish entry:

- ``sending``: the intent is on disk and the request is (or was about to be) on the wire.
- ``accepted``: PostQued answered with a publish id; what happened next is in ``remote_status``.
- ``unknown``: the request may have left but no answer arrived (timeout, reset, crash). A ``sending``
  entry older than the grace period (its process died or is stuck) reads as ``unknown`` too.
- ``failed``: PostQued definitely refused it (an error answer); the same request may be tried again and
  reuses the same key.

``remote_status`` is the request status PostQued last reported (``pending``, ``processing``,
``completed``, ``partial_failed``, ``failed``, ``canceled``).

Every failure to open, read or write the file is a ``JournalError``: there is deliberately no way to
run without a journal, because live publishing without one could post twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self, cast

from postqued.clock import Clock, SystemClock
from postqued.errors import JournalError, LocalError, redact

__all__ = [
    "KEY_TTL",
    "PLAN_TTL",
    "SCHEMA_VERSION",
    "SENDING_GRACE",
    "TERMINAL_REQUEST_STATUSES",
    "Journal",
    "JournalEntry",
    "LocalStatus",
    "PublishIntent",
]

LocalStatus = Literal["sending", "accepted", "unknown", "failed"]

KEY_TTL = timedelta(hours=24)  # PostQued keeps an idempotency key for 24 h from first use
PLAN_TTL = timedelta(minutes=30)  # a live publish needs a dry run of the same digest this recent
SENDING_GRACE = timedelta(minutes=2)  # a "sending" entry older than this reads as "unknown"
TERMINAL_REQUEST_STATUSES = frozenset({"completed", "partial_failed", "failed", "canceled"})
BUSY_TIMEOUT_MS = 5000
_MAX_MESSAGE = 500

# Each entry moves the schema from version i to i + 1; append, never edit.
_MIGRATIONS: tuple[str, ...] = (
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
)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One publish request as this machine sent it, with its outcome. Holds no secrets."""

    digest: str
    workspace_id: str
    idempotency_key: str
    api_version: str
    status: LocalStatus
    remote_status: str | None
    terminal: bool
    publish_id: str | None
    attempts: int
    error_code: str | None
    error_message: str | None
    body: dict[str, Any]
    targets: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO timestamps)."""
        return {
            "digest": self.digest,
            "workspace_id": self.workspace_id,
            "idempotency_key": self.idempotency_key,
            "api_version": self.api_version,
            "status": self.status,
            "remote_status": self.remote_status,
            "terminal": self.terminal,
            "publish_id": self.publish_id,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "body": self.body,
            "targets": self.targets,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PublishIntent:
    """What ``begin_publish`` decided. Send ``body`` with ``idempotency_key`` unless ``replay`` is true.

    ``replay``: this digest already succeeded within 24 h; send nothing and use ``publish_id``.
    ``reused_key``: an earlier attempt of the same request exists; its key is reused.
    ``key_overridden``: the caller's explicit key was not used (the request already has a key).
    ``error_code``: the last attempt's error, if it failed or its outcome was lost.
    """

    digest: str
    workspace_id: str
    idempotency_key: str
    body: dict[str, Any]
    targets: list[dict[str, Any]]
    status: LocalStatus
    publish_id: str | None
    created_at: datetime
    updated_at: datetime
    attempts: int
    replay: bool
    reused_key: bool
    key_overridden: bool
    error_code: str | None
    remote_status: str | None = None


def _ts(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so stored timestamps sort and compare as strings."""
    if moment.tzinfo is None:
        raise ValueError("the journal needs offset-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dumps(value: Any) -> str:
    # Key order is kept: a resend must be byte-identical to the first send.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _clip(text: str) -> str:
    return redact(text)[:_MAX_MESSAGE]


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= 255 or not all("!" <= ch <= "~" for ch in key):
        raise LocalError(
            "idempotency_key must be 1-255 visible ASCII characters (a UUID is best).",
            next_step="Omit idempotency_key (one is chosen and kept for you) or pass a UUID.",
        )


class Journal:
    """The journal in one SQLite file. Thread-safe within a process; several processes may share it."""

    def __init__(
        self,
        path: Path | str,
        clock: Clock | None = None,
        *,
        sending_grace: timedelta = SENDING_GRACE,
    ) -> None:
        self._path = Path(path).expanduser()
        self._clock: Clock = clock or SystemClock()
        self._grace = sending_grace
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        with self._guard("open"):
            self._prepare_files()
            conn = sqlite3.connect(
                str(self._path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                check_same_thread=False,
            )
            try:
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._enable_wal(conn)
                conn.execute("PRAGMA synchronous = FULL")  # every commit is fsynced
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with self._guard("close"):
                    conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"Publish journal at {self._path}: {action} failed: {exc}") from exc

    def _prepare_files(self) -> None:
        """Create missing folders as 0700 and the file as 0600 before SQLite opens it."""
        missing: list[Path] = []
        parent = self._path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:  # another process made it first
                continue
            os.chmod(folder, 0o700)  # the umask may have taken bits away; never adds any
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            info = os.fstat(fd)
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        """Switch to WAL (a property of the file, so usually already done).

        Changing the mode needs an exclusive lock and SQLite answers "database is locked" at once
        instead of waiting when another process is opening the same new file: retry until the busy
        timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                if mode != "wal":
                    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if mode != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode!r})")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this postqued-mcp understands ({SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])  # another process may have won
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the journal is closed")
        return self._conn

    @contextmanager
    def _read(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard(action):
            yield self._connection()

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the file's write lock before anything is read."""
        with self._lock, self._guard(action):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _now(self) -> datetime:
        return self._clock.now()

    def _entry(self, row: sqlite3.Row) -> JournalEntry:
        updated_at = datetime.fromisoformat(row["updated_at"])
        status = cast(LocalStatus, row["status"])
        if status == "sending" and self._now() - updated_at > self._grace:
            status = "unknown"
        return JournalEntry(
            digest=row["digest"],
            workspace_id=row["workspace_id"],
            idempotency_key=row["idempotency_key"],
            api_version=row["api_version"],
            status=status,
            remote_status=row["remote_status"],
            terminal=bool(row["terminal"]),
            publish_id=row["publish_id"],
            attempts=int(row["attempts"]),
            error_code=row["error_code"],
            error_message=row["error_message"],
            body=json.loads(row["body"]),
            targets=json.loads(row["targets"]),
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=updated_at,
        )

    @staticmethod
    def _row_by_key(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute("SELECT * FROM publishes WHERE idempotency_key = ?", (key,)).fetchone()
        return row

    def _row_for_outcome(self, conn: sqlite3.Connection, digest_or_key: str) -> sqlite3.Row:
        row = self._row_by_key(conn, digest_or_key)
        if row is None:
            row = conn.execute(
                "SELECT * FROM publishes WHERE digest = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                (digest_or_key,),
            ).fetchone()
        if row is None:
            raise JournalError(
                f"Publish journal at {self._path} has no entry for {digest_or_key!r}.",
                code="JOURNAL_ENTRY_NOT_FOUND",
                next_step="Record outcomes only for requests started with begin_publish (a bug if not).",
            )
        return row

    # -- plans (dry runs) --------------------------------------------------------------------------

    def record_plan(self, digest: str, workspace_id: str, summary: Mapping[str, Any]) -> None:
        """Remember that ``digest`` passed a dry run now (a repeat refreshes the time)."""
        text = _dumps(dict(summary))
        with self._write("record_plan") as conn:
            conn.execute(
                "INSERT INTO plans (digest, workspace_id, summary, planned_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest, workspace_id) DO UPDATE SET "
                "summary = excluded.summary, planned_at = excluded.planned_at",
                (digest, workspace_id, text, _ts(self._now())),
            )

    def plan_is_fresh(self, digest: str, within: timedelta = PLAN_TTL, *, workspace_id: str | None = None) -> bool:
        """True if ``digest`` (in ``workspace_id``, if given) passed a dry run within ``within``."""
        cutoff = _ts(self._now() - within)
        with self._read("plan_is_fresh") as conn:
            row = conn.execute(
                "SELECT 1 FROM plans WHERE digest = ? AND (? IS NULL OR workspace_id = ?) AND planned_at >= ? LIMIT 1",
                (digest, workspace_id, workspace_id, cutoff),
            ).fetchone()
        return row is not None

    def withdraw_plan(self, digest: str) -> int:
        """Forget that ``digest`` passed a dry run (the user declined it): a live publish needs a new one."""
        with self._write("withdraw_plan") as conn:
            return conn.execute("DELETE FROM plans WHERE digest = ?", (digest,)).rowcount

    # -- publish intents ---------------------------------------------------------------------------

    def begin_publish(
        self,
        digest: str,
        workspace_id: str,
        body: Mapping[str, Any],
        targets: Sequence[Mapping[str, Any]],
        idempotency_key: str | None,
        api_version: str,
    ) -> PublishIntent:
        """Commit the intent to disk (fsynced) and decide the key; send only after this returns.

        Within 24 h of the first attempt of ``digest`` in ``workspace_id``: a success is replayed
        (``replay=True``, send nothing); anything else reuses the stored key for a new attempt. Otherwise a
        new entry gets the caller's key or a new UUID. A caller key already used by a different request
        raises ``LocalError`` ``IDEMPOTENCY_KEY_REUSED``.
        """
        if idempotency_key is not None:
            _check_key(idempotency_key)
        body_text = _dumps(dict(body))
        targets_text = _dumps([dict(target) for target in targets])
        now = self._now()
        stamp = _ts(now)
        with self._write("begin_publish") as conn:
            row = conn.execute(
                "SELECT * FROM publishes WHERE digest = ? AND workspace_id = ? AND created_at > ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (digest, workspace_id, _ts(now - KEY_TTL)),
            ).fetchone()
            if row is not None and row["status"] == "failed" and row["error_code"] == "IDEMPOTENCY_CONFLICT":
                # PostQued holds this key for a different body, which proves this request was never accepted
                # under it: reusing it could only fail again. A new entry gets a new key (or the caller's).
                row = None
            if row is not None:
                overridden = idempotency_key is not None and idempotency_key != row["idempotency_key"]
                replay = row["publish_id"] is not None
                if not replay:
                    conn.execute(
                        "UPDATE publishes SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                        (stamp, row["id"]),
                    )
                    row = conn.execute("SELECT * FROM publishes WHERE id = ?", (row["id"],)).fetchone()
                return self._intent(row, replay=replay, reused_key=not replay, key_overridden=overridden)
            key, overridden = idempotency_key, False
            if key is not None:
                other = self._row_by_key(conn, key)
                if other is not None and (other["digest"], other["workspace_id"]) != (digest, workspace_id):
                    raise LocalError(
                        f"idempotency_key {key!r} was already used for a different publish request "
                        f"({other['digest']}); a key must never be reused for another request.",
                        code="IDEMPOTENCY_KEY_REUSED",
                        next_step=(
                            "Omit idempotency_key (a key is chosen and kept for you) or pass a new UUID; "
                            "list_publish_journal shows the earlier request."
                        ),
                    )
                if other is not None:  # the same request with an expired (24 h) or conflicting key: a new one
                    key, overridden = None, True
            key = key or str(uuid.uuid4())
            cursor = conn.execute(
                "INSERT INTO publishes (digest, workspace_id, idempotency_key, api_version, body, targets, "
                "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'sending', ?, ?)",
                (digest, workspace_id, key, api_version, body_text, targets_text, stamp, stamp),
            )
            row = conn.execute("SELECT * FROM publishes WHERE id = ?", (cursor.lastrowid,)).fetchone()
            return self._intent(row, replay=False, reused_key=False, key_overridden=overridden)

    def _intent(self, row: sqlite3.Row, *, replay: bool, reused_key: bool, key_overridden: bool) -> PublishIntent:
        entry = self._entry(row)
        return PublishIntent(
            digest=entry.digest,
            workspace_id=entry.workspace_id,
            idempotency_key=entry.idempotency_key,
            body=entry.body,
            targets=entry.targets,
            status=entry.status,
            publish_id=entry.publish_id,
            created_at=entry.created_at,
            updated_at=entry.updated_at,
            attempts=entry.attempts,
            replay=replay,
            reused_key=reused_key,
            key_overridden=key_overridden,
            error_code=entry.error_code,
            remote_status=entry.remote_status,
        )

    # -- outcomes ----------------------------------------------------------------------------------

    def record_accepted(
        self, digest_or_key: str, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]]
    ) -> JournalEntry:
        """PostQued accepted the request: store its publish id, request status and target statuses."""
        if not publish_id:
            raise ValueError("publish_id must not be empty")
        targets_text = _dumps([dict(target) for target in targets])
        with self._write("record_accepted") as conn:
            row = self._row_for_outcome(conn, digest_or_key)
            conn.execute(
                "UPDATE publishes SET status = 'accepted', publish_id = ?, remote_status = ?, terminal = ?, "
                "targets = ?, error_code = NULL, error_message = NULL, updated_at = ? WHERE id = ?",
                (
                    publish_id,
                    status,
                    int(status in TERMINAL_REQUEST_STATUSES),
                    targets_text,
                    _ts(self._now()),
                    row["id"],
                ),
            )
            return self._entry(conn.execute("SELECT * FROM publishes WHERE id = ?", (row["id"],)).fetchone())

    def record_failed(self, key: str, error_code: str, message: str) -> JournalEntry:
        """PostQued definitely refused the request (an error answer). An accepted entry is left as is."""
        return self._record_problem("record_failed", key, "failed", error_code, message)

    def record_unknown(self, key: str, reason: str) -> JournalEntry:
        """The request may have left but its answer was lost. An accepted entry is left as is."""
        return self._record_problem("record_unknown", key, "unknown", "OUTCOME_UNKNOWN", reason)

    def _record_problem(self, action: str, key: str, status: str, code: str, message: str) -> JournalEntry:
        with self._write(action) as conn:
            row = self._row_for_outcome(conn, key)
            conn.execute(
                "UPDATE publishes SET status = ?, error_code = ?, error_message = ?, updated_at = ? "
                "WHERE id = ? AND publish_id IS NULL",
                (status, code, _clip(message), _ts(self._now()), row["id"]),
            )
            return self._entry(conn.execute("SELECT * FROM publishes WHERE id = ?", (row["id"],)).fetchone())

    def record_status(
        self, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]], terminal: bool
    ) -> JournalEntry | None:
        """A status read: update the entry with this publish id (None if this machine did not send it)."""
        targets_text = _dumps([dict(target) for target in targets])
        with self._write("record_status") as conn:
            row = conn.execute(
                "SELECT id FROM publishes WHERE publish_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                (publish_id,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE publishes SET status = 'accepted', remote_status = ?, terminal = ?, targets = ?, "
                "updated_at = ? WHERE id = ?",
                (status, int(terminal), targets_text, _ts(self._now()), row["id"]),
            )
            return self._entry(conn.execute("SELECT * FROM publishes WHERE id = ?", (row["id"],)).fetchone())

    def recover(self) -> int:
        """After a crash: mark every ``sending`` entry as ``unknown``. Returns how many were marked."""
        with self._write("recover") as conn:
            cursor = conn.execute(
                "UPDATE publishes SET status = 'unknown', error_code = 'OUTCOME_UNKNOWN', "
                "error_message = 'The process ended while the request was being sent.', updated_at = ? "
                "WHERE status = 'sending'",
                (_ts(self._now()),),
            )
            return cursor.rowcount

    # -- reads -------------------------------------------------------------------------------------

    def find_by_publish_id(self, publish_id: str) -> JournalEntry | None:
        with self._read("find_by_publish_id") as conn:
            row = conn.execute(
                "SELECT * FROM publishes WHERE publish_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                (publish_id,),
            ).fetchone()
            return None if row is None else self._entry(row)

    def find_recent(self, digest: str, workspace_id: str, within: timedelta | None = KEY_TTL) -> JournalEntry | None:
        """The newest entry of this request within ``within`` (default: the 24 h key window, i.e. what
        ``begin_publish`` would reuse; ``None``: any age)."""
        cutoff = "" if within is None else _ts(self._now() - within)
        with self._read("find_recent") as conn:
            row = conn.execute(
                "SELECT * FROM publishes WHERE digest = ? AND workspace_id = ? AND created_at > ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (digest, workspace_id, cutoff),
            ).fetchone()
            return None if row is None else self._entry(row)

    def find_by_key(self, key: str) -> JournalEntry | None:
        with self._read("find_by_key") as conn:
            row = self._row_by_key(conn, key)
            return None if row is None else self._entry(row)

    def list_entries(self, limit: int = 20, status: str | None = None) -> list[JournalEntry]:
        """Newest first. ``status`` is a local status (a stale ``sending`` counts as ``unknown``) or one
        PostQued reports (``pending``, ``completed``, ...); ``failed`` matches both a local refusal and a
        request PostQued accepted and then failed. ``limit`` is clamped to 1..500."""
        limit = max(1, min(int(limit), 500))
        cutoff = _ts(self._now() - self._grace)
        with self._read("list_entries") as conn:
            rows = conn.execute(
                "SELECT * FROM publishes WHERE :status IS NULL "
                "OR (CASE WHEN status = 'sending' AND updated_at < :cutoff THEN 'unknown' ELSE status END)"
                " = :status OR (remote_status = :status AND :status NOT IN ('sending', 'accepted', 'unknown')) "
                "ORDER BY created_at DESC, id DESC LIMIT :limit",
                {"status": status, "cutoff": cutoff, "limit": limit},
            ).fetchall()
            return [self._entry(row) for row in rows]

    # -- uploads -----------------------------------------------------------------------------------

    def remember_upload(self, workspace_id: str, sha256: str, size: int, content_id: str) -> None:
        with self._write("remember_upload") as conn:
            conn.execute(
                "INSERT INTO uploads (workspace_id, sha256, size, content_id, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, sha256, size) DO UPDATE SET "
                "content_id = excluded.content_id, created_at = excluded.created_at",
                (workspace_id, sha256.lower(), size, content_id, _ts(self._now())),
            )

    def lookup_upload(self, workspace_id: str, sha256: str, size: int) -> str | None:
        with self._read("lookup_upload") as conn:
            row = conn.execute(
                "SELECT content_id FROM uploads WHERE workspace_id = ? AND sha256 = ? AND size = ?",
                (workspace_id, sha256.lower(), size),
            ).fetchone()
            return None if row is None else str(row["content_id"])

    def has_upload_of_size(self, workspace_id: str, size: int) -> bool:
        """Whether any upload of exactly ``size`` bytes is remembered (else a duplicate is impossible)."""
        with self._read("has_upload_of_size") as conn:
            row = conn.execute(
                "SELECT 1 FROM uploads WHERE workspace_id = ? AND size = ? LIMIT 1", (workspace_id, size)
            ).fetchone()
            return row is not None

    def forget_upload(self, content_id: str) -> int:
        """Drop every remembered upload of ``content_id`` (e.g. it was deleted). Returns how many."""
        with self._write("forget_upload") as conn:
            return conn.execute("DELETE FROM uploads WHERE content_id = ?", (content_id,)).rowcount
