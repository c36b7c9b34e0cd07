"""The shared journal backend: PostgreSQL, for several server replicas (``POSTQUED_JOURNAL_URL``).

Needs the optional extra ``postqued-mcp[postgres]`` (psycopg 3 and its pool, both async). Exactly-once
across replicas rests on the database, never on timing: ``begin_publish`` runs in one transaction holding
a transaction-level advisory lock on the request (identity, digest, workspace) and one on the caller's key,
so concurrent identical publishes on any number of replicas get one entry and one idempotency key; the key
column is ``UNIQUE``. Every commit is durable (``synchronous_commit`` as the server has it, on by default).

The schema is created and migrated on open, in one transaction under an advisory lock, so replicas that
start at the same moment migrate once; the version lives in ``postqued_schema``. Tables are prefixed
``postqued_`` so the journal can share a database with other applications.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from postqued.clock import Clock, SystemClock
from postqued.errors import JournalError
from postqued.journal.interface import (
    KEY_TTL,
    PLAN_TTL,
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

__all__ = ["POSTGRES_SCHEMA_VERSION", "PostgresJournal", "safe_url"]

Conn = psycopg.AsyncConnection[DictRow]

_MIGRATION_LOCK = 0x706F737471756564  # "postqued": the advisory lock every replica migrates under
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Each entry moves the schema from version i to i + 1; append, never edit.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE postqued_plans (
        identity      text NOT NULL,
        digest        text NOT NULL,
        workspace_id  text NOT NULL,
        summary       text NOT NULL,
        planned_at    timestamptz NOT NULL,
        PRIMARY KEY (identity, digest, workspace_id)
    );
    CREATE TABLE postqued_publishes (
        id               bigserial PRIMARY KEY,
        identity         text NOT NULL,
        digest           text NOT NULL,
        workspace_id     text NOT NULL,
        idempotency_key  text NOT NULL UNIQUE,
        api_version      text NOT NULL,
        body             text NOT NULL,
        targets          text NOT NULL,
        status           text NOT NULL CHECK (status IN ('sending', 'accepted', 'unknown', 'failed')),
        remote_status    text,
        terminal         boolean NOT NULL DEFAULT false,
        publish_id       text,
        error_code       text,
        error_message    text,
        attempts         integer NOT NULL DEFAULT 1,
        created_at       timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL
    );
    CREATE INDEX postqued_publishes_by_request ON postqued_publishes (identity, digest, workspace_id, created_at);
    CREATE INDEX postqued_publishes_by_publish_id ON postqued_publishes (identity, publish_id);
    CREATE INDEX postqued_publishes_by_created ON postqued_publishes (identity, created_at);
    CREATE TABLE postqued_uploads (
        identity      text NOT NULL,
        workspace_id  text NOT NULL,
        sha256        text NOT NULL,
        size          bigint NOT NULL,
        content_id    text NOT NULL,
        created_at    timestamptz NOT NULL,
        PRIMARY KEY (identity, workspace_id, sha256, size)
    );
    CREATE INDEX postqued_uploads_by_content ON postqued_uploads (identity, content_id);
    """,
    # 2: rate-limit buckets shared by every replica of one PostQued key (scope: the key's SHA-256)
    """
    CREATE TABLE postqued_rate_sends (
        scope    text NOT NULL,
        bucket   text NOT NULL,
        sent_at  timestamptz NOT NULL
    );
    CREATE INDEX postqued_rate_sends_by_bucket ON postqued_rate_sends (scope, bucket, sent_at);
    """,
)
POSTGRES_SCHEMA_VERSION = len(_MIGRATIONS)
_LATEST = (
    "SELECT * FROM postqued_publishes WHERE identity = %s AND digest = %s AND workspace_id = %s "
    "AND created_at > %s ORDER BY created_at DESC, id DESC LIMIT 1"
)


def safe_url(url: str) -> str:
    """The URL for messages: user, host, port and database, never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparseable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


class _Shared:
    """One pool per URL, shared by the identity views of one journal."""

    def __init__(self, url: str, clock: Clock, grace: timedelta, max_connections: int, timeout: float) -> None:
        self.url = url
        self.where = safe_url(url)
        self.clock = clock
        self.grace = grace
        self.timeout = timeout
        self.max_connections = max_connections
        self.pool: AsyncConnectionPool[Conn] | None = None
        self.closed = False
        self.opening = asyncio.Lock()

    def error(self, action: str, exc: BaseException) -> JournalError:
        text = str(exc).replace(self.url, self.where)  # psycopg never echoes the password; be sure anyway
        return JournalError(f"Publish journal at {self.where}: {action} failed: {text}")

    async def open(self) -> AsyncConnectionPool[Conn]:
        if self.closed:
            raise JournalError(f"Publish journal at {self.where}: the journal is closed")
        if self.pool is not None:
            return self.pool
        async with self.opening:
            if self.pool is None:
                pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.max_connections,
                    open=False,
                    timeout=self.timeout,
                    kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(self.timeout))},
                    check=AsyncConnectionPool.check_connection,
                    name="postqued-journal",
                )
                try:
                    await pool.open(wait=True, timeout=self.timeout)
                    async with pool.connection() as conn:
                        await _migrate(conn)
                except (psycopg.Error, PoolTimeout, OSError) as exc:
                    await pool.close()
                    raise self.error("open", exc) from exc
                except BaseException:
                    await pool.close()
                    raise
                self.pool = pool
        return self.pool

    async def close(self) -> None:
        self.closed = True
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()


async def _migrate(conn: Conn) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS postqued_schema (version integer NOT NULL)")
        row = await (await conn.execute("SELECT version FROM postqued_schema")).fetchone()
        version = 0 if row is None else int(row["version"])
        if version > POSTGRES_SCHEMA_VERSION:
            raise psycopg.DataError(
                f"schema version {version} is newer than this postqued-mcp understands ({POSTGRES_SCHEMA_VERSION})"
            )
        for step in range(version, POSTGRES_SCHEMA_VERSION):
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    await conn.execute(statement)
        if row is None:
            await conn.execute("INSERT INTO postqued_schema (version) VALUES (%s)", (POSTGRES_SCHEMA_VERSION,))
        elif version != POSTGRES_SCHEMA_VERSION:
            await conn.execute("UPDATE postqued_schema SET version = %s", (POSTGRES_SCHEMA_VERSION,))


async def _lock(conn: Conn, *parts: str) -> None:
    """A transaction-level advisory lock on ``parts`` (released at commit or rollback, or if the replica dies)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("\x1f".join(parts),))


class SharedBuckets:
    """Rate-limit buckets in the database (see ``postqued.client.BucketStore``): every replica that uses
    the same PostQued key counts against one window. Time is the database's, so replicas' clocks may differ."""

    def __init__(self, journal: PostgresJournal, scope: str) -> None:
        self._journal = journal
        self._scope = scope

    async def reserve(self, bucket: str, limit: int, window: float) -> float:
        async with self._journal._conn("rate_limit", write=True) as conn:
            await _lock(conn, "rate", self._scope, bucket)
            row = await conn.execute(
                "WITH now AS (SELECT clock_timestamp() AS t), gone AS (DELETE FROM postqued_rate_sends "
                "WHERE scope = %s AND bucket = %s AND sent_at <= (SELECT t FROM now) - %s) "
                "SELECT (SELECT t FROM now) AS now, count(*) AS sent, min(sent_at) AS oldest FROM postqued_rate_sends "
                "WHERE scope = %s AND bucket = %s AND sent_at > (SELECT t FROM now) - %s",
                (self._scope, bucket, timedelta(seconds=window), self._scope, bucket, timedelta(seconds=window)),
            )
            found = await row.fetchone()
            assert found is not None
            if int(found["sent"]) < limit:
                await conn.execute(
                    "INSERT INTO postqued_rate_sends (scope, bucket, sent_at) VALUES (%s, %s, %s)",
                    (self._scope, bucket, found["now"]),
                )
                return 0.0
            wait: timedelta = found["oldest"] + timedelta(seconds=window) - found["now"]
            return max(wait.total_seconds(), 0.001)


class PostgresJournal(Journal):
    """The journal in a PostgreSQL database, shared by every replica that points at it."""

    def __init__(
        self,
        url: str,
        clock: Clock | None = None,
        *,
        sending_grace: timedelta = SENDING_GRACE,
        identity: str = "",
        max_connections: int = 10,
        timeout: float = 10.0,
        _shared: _Shared | None = None,
    ) -> None:
        self._shared = _shared or _Shared(url, clock or SystemClock(), sending_grace, max_connections, timeout)
        self._identity = identity

    @property
    def where(self) -> str:
        return self._shared.where

    @property
    def identity(self) -> str:
        return self._identity

    def for_identity(self, identity: str) -> PostgresJournal:
        return PostgresJournal(self._shared.url, identity=identity, _shared=self._shared)

    async def open(self) -> None:
        await self._shared.open()

    def bucket_store(self, scope: str) -> SharedBuckets:
        return SharedBuckets(self, scope)

    shares_uploads = True

    @asynccontextmanager
    async def upload_claim(self, workspace_id: str, sha256: str, size: int) -> AsyncIterator[None]:
        """A session advisory lock on these bytes for the upload's duration, on a connection of its own: a
        replica that dies lets go with its connection."""
        key = "\x1f".join(("upload", self._identity, workspace_id, sha256.lower(), str(size)))
        async with self._conn("upload_claim", write=False) as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
            try:
                yield
            finally:
                with suppress(psycopg.Error):  # a lost connection has let go of the lock already
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    async def aclose(self) -> None:
        await self._shared.close()

    def _now(self) -> datetime:
        return self._shared.clock.now()

    def _entry(self, row: Mapping[str, Any]) -> JournalEntry:
        return entry_of(row, self._now(), self._shared.grace)

    @asynccontextmanager
    async def _conn(self, action: str, *, write: bool) -> AsyncIterator[Conn]:
        """A pooled connection; with ``write``, inside one transaction. Database errors become JournalError."""
        pool = await self._shared.open()
        try:
            async with pool.connection() as conn:
                if write:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise self._shared.error(action, exc) from exc

    @staticmethod
    async def _one(conn: Conn, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> DictRow | None:
        return await (await conn.execute(sql, params)).fetchone()

    async def _by_key(self, conn: Conn, key: str, identity: str | None) -> DictRow | None:
        return await self._one(
            conn,
            "SELECT * FROM postqued_publishes WHERE idempotency_key = %s AND (%s::text IS NULL OR identity = %s)",
            (key, identity, identity),
        )

    async def _for_outcome(self, conn: Conn, digest_or_key: str) -> DictRow:
        row = await self._by_key(conn, digest_or_key, self._identity)
        if row is None:
            row = await self._one(
                conn,
                "SELECT * FROM postqued_publishes WHERE identity = %s AND digest = %s "
                "ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE",
                (self._identity, digest_or_key),
            )
        if row is None:
            raise not_found(self.where, digest_or_key)
        return row

    async def _updated(self, conn: Conn, sql: str, params: Sequence[Any]) -> JournalEntry:
        row = await self._one(conn, sql + " RETURNING *", params)
        assert row is not None
        return self._entry(row)

    # -- plans -------------------------------------------------------------------------------------

    async def record_plan(self, digest: str, workspace_id: str, summary: Mapping[str, Any]) -> None:
        async with self._conn("record_plan", write=True) as conn:
            await conn.execute(
                "INSERT INTO postqued_plans (identity, digest, workspace_id, summary, planned_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (identity, digest, workspace_id) DO UPDATE SET "
                "summary = excluded.summary, planned_at = excluded.planned_at",
                (self._identity, digest, workspace_id, dumps(dict(summary)), self._now()),
            )

    async def plan_is_fresh(
        self, digest: str, within: timedelta = PLAN_TTL, *, workspace_id: str | None = None
    ) -> bool:
        async with self._conn("plan_is_fresh", write=False) as conn:
            row = await self._one(
                conn,
                "SELECT 1 AS fresh FROM postqued_plans WHERE identity = %s AND digest = %s "
                "AND (%s::text IS NULL OR workspace_id = %s) AND planned_at >= %s LIMIT 1",
                (self._identity, digest, workspace_id, workspace_id, self._now() - within),
            )
        return row is not None

    async def withdraw_plan(self, digest: str) -> int:
        async with self._conn("withdraw_plan", write=True) as conn:
            cursor = await conn.execute(
                "DELETE FROM postqued_plans WHERE identity = %s AND digest = %s", (self._identity, digest)
            )
        return cursor.rowcount

    # -- publishes ---------------------------------------------------------------------------------

    async def begin_publish(
        self,
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
        now = self._now()
        async with self._conn("begin_publish", write=True) as conn:
            # One request at a time across every replica; then one key at a time (a caller's key).
            await _lock(conn, "request", self._identity, digest, workspace_id)
            latest = await self._one(conn, _LATEST, (self._identity, digest, workspace_id, now - KEY_TTL))
            row = reusable(latest)
            if row is not None:
                overridden = idempotency_key is not None and idempotency_key != row["idempotency_key"]
                replay = row["publish_id"] is not None
                entry = self._entry(row)
                if not replay:
                    entry = await self._updated(
                        conn,
                        "UPDATE postqued_publishes SET status = 'sending', attempts = attempts + 1, updated_at = %s "
                        "WHERE id = %s",
                        (now, row["id"]),
                    )
                return PublishIntent.of(entry, replay=replay, reused_key=not replay, key_overridden=overridden)
            holder = None
            if idempotency_key is not None:
                await _lock(conn, "key", idempotency_key)
                holder = await self._by_key(conn, idempotency_key, None)
            key, overridden = key_for_new_entry(idempotency_key, holder, self._identity, digest, workspace_id)
            texts = (targets_text, now, now)
            row = await self._one(
                conn,
                "INSERT INTO postqued_publishes (identity, digest, workspace_id, idempotency_key, api_version, body, "
                "targets, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'sending', %s, %s) "
                "RETURNING *",
                (self._identity, digest, workspace_id, key or str(uuid.uuid4()), api_version, body_text, *texts),
            )
            assert row is not None
            return PublishIntent.of(self._entry(row), replay=False, reused_key=False, key_overridden=overridden)

    async def record_accepted(
        self, digest_or_key: str, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]]
    ) -> JournalEntry:
        if not publish_id:
            raise ValueError("publish_id must not be empty")
        async with self._conn("record_accepted", write=True) as conn:
            row = await self._for_outcome(conn, digest_or_key)
            terminal = status in TERMINAL_REQUEST_STATUSES
            return await self._updated(
                conn,
                "UPDATE postqued_publishes SET status = 'accepted', publish_id = %s, remote_status = %s, "
                "terminal = %s, targets = %s, error_code = NULL, error_message = NULL, updated_at = %s WHERE id = %s",
                (publish_id, status, terminal, dumps([dict(t) for t in targets]), self._now(), row["id"]),
            )

    async def record_failed(self, key: str, error_code: str, message: str) -> JournalEntry:
        return await self._record_problem(key, "failed", error_code, message)

    async def record_unknown(self, key: str, reason: str) -> JournalEntry:
        return await self._record_problem(key, "unknown", "OUTCOME_UNKNOWN", reason)

    async def _record_problem(self, key: str, status: str, code: str, message: str) -> JournalEntry:
        async with self._conn(f"record_{status}", write=True) as conn:
            row = await self._for_outcome(conn, key)
            await conn.execute(
                "UPDATE postqued_publishes SET status = %s, error_code = %s, error_message = %s, updated_at = %s "
                "WHERE id = %s AND publish_id IS NULL",
                (status, code, clip(message), self._now(), row["id"]),
            )
            fresh = await self._one(conn, "SELECT * FROM postqued_publishes WHERE id = %s", (row["id"],))
            assert fresh is not None
            return self._entry(fresh)

    async def record_status(
        self, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]], terminal: bool
    ) -> JournalEntry | None:
        async with self._conn("record_status", write=True) as conn:
            row = await self._one(
                conn,
                "SELECT id FROM postqued_publishes WHERE identity = %s AND publish_id = %s "
                "ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE",
                (self._identity, publish_id),
            )
            if row is None:
                return None
            return await self._updated(
                conn,
                "UPDATE postqued_publishes SET status = 'accepted', remote_status = %s, terminal = %s, targets = %s, "
                "updated_at = %s WHERE id = %s",
                (status, terminal, dumps([dict(t) for t in targets]), self._now(), row["id"]),
            )

    async def recover(self) -> int:
        """Mark ``sending`` entries older than the grace period ``unknown``: other replicas may be sending
        the younger ones right now, so a restart of one replica never touches them."""
        async with self._conn("recover", write=True) as conn:
            cursor = await conn.execute(
                "UPDATE postqued_publishes SET status = 'unknown', error_code = 'OUTCOME_UNKNOWN', "
                "error_message = 'The sender stopped before the answer arrived.', updated_at = %s "
                "WHERE status = 'sending' AND updated_at < %s",
                (self._now(), self._now() - self._shared.grace),
            )
            return cursor.rowcount

    # -- reads -------------------------------------------------------------------------------------

    async def find_by_publish_id(self, publish_id: str) -> JournalEntry | None:
        async with self._conn("find_by_publish_id", write=False) as conn:
            row = await self._one(
                conn,
                "SELECT * FROM postqued_publishes WHERE identity = %s AND publish_id = %s "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (self._identity, publish_id),
            )
        return None if row is None else self._entry(row)

    async def find_recent(
        self, digest: str, workspace_id: str, within: timedelta | None = KEY_TTL
    ) -> JournalEntry | None:
        cutoff = _EPOCH if within is None else self._now() - within
        async with self._conn("find_recent", write=False) as conn:
            row = await self._one(conn, _LATEST, (self._identity, digest, workspace_id, cutoff))
        return None if row is None else self._entry(row)

    async def find_by_key(self, key: str) -> JournalEntry | None:
        async with self._conn("find_by_key", write=False) as conn:
            row = await self._by_key(conn, key, self._identity)
        return None if row is None else self._entry(row)

    async def list_entries(self, limit: int = 20, status: str | None = None) -> list[JournalEntry]:
        params = {
            "identity": self._identity,
            "status": status,
            "cutoff": self._now() - self._shared.grace,
            "limit": clamp_limit(limit),
        }
        async with self._conn("list_entries", write=False) as conn:
            cursor = await conn.execute(
                "SELECT * FROM postqued_publishes WHERE identity = %(identity)s AND (%(status)s::text IS NULL "
                "OR (CASE WHEN status = 'sending' AND updated_at < %(cutoff)s THEN 'unknown' ELSE status END)"
                " = %(status)s OR (remote_status = %(status)s "
                "AND %(status)s::text NOT IN ('sending', 'accepted', 'unknown'))) "
                "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
                params,
            )
            rows = await cursor.fetchall()
        return [self._entry(row) for row in rows]

    # -- uploads -----------------------------------------------------------------------------------

    async def remember_upload(self, workspace_id: str, sha256: str, size: int, content_id: str) -> None:
        async with self._conn("remember_upload", write=True) as conn:
            await conn.execute(
                "INSERT INTO postqued_uploads (identity, workspace_id, sha256, size, content_id, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (identity, workspace_id, sha256, size) DO UPDATE SET "
                "content_id = excluded.content_id, created_at = excluded.created_at",
                (self._identity, workspace_id, sha256.lower(), size, content_id, self._now()),
            )

    async def lookup_upload(self, workspace_id: str, sha256: str, size: int) -> str | None:
        async with self._conn("lookup_upload", write=False) as conn:
            row = await self._one(
                conn,
                "SELECT content_id FROM postqued_uploads WHERE identity = %s AND workspace_id = %s "
                "AND sha256 = %s AND size = %s",
                (self._identity, workspace_id, sha256.lower(), size),
            )
        return None if row is None else str(row["content_id"])

    async def has_upload_of_size(self, workspace_id: str, size: int) -> bool:
        async with self._conn("has_upload_of_size", write=False) as conn:
            row = await self._one(
                conn,
                "SELECT 1 AS seen FROM postqued_uploads WHERE identity = %s AND workspace_id = %s AND size = %s "
                "LIMIT 1",
                (self._identity, workspace_id, size),
            )
        return row is not None

    async def forget_upload(self, content_id: str) -> int:
        async with self._conn("forget_upload", write=True) as conn:
            cursor = await conn.execute(
                "DELETE FROM postqued_uploads WHERE identity = %s AND content_id = %s", (self._identity, content_id)
            )
            return cursor.rowcount
