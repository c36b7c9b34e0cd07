"""What every journal backend promises: the async interface, its records, and the rules they share.

The rule the journal exists for: a publish intent (digest, idempotency key, body) is durably committed
*before* the request leaves, and the same request within 24 hours always gets the same key, so a retry, a
second call, a restarted server or another replica can never publish twice.

Local statuses of a publish entry:

- ``sending``: the intent is stored and the request is (or was about to be) on the wire.
- ``accepted``: PostQued answered with a publish id; what happened next is in ``remote_status``.
- ``unknown``: the request may have left but no answer arrived (timeout, reset, crash). A ``sending``
  entry older than the grace period (its process died or is stuck) reads as ``unknown`` too.
- ``failed``: PostQued definitely refused it (an error answer); the same request may be tried again and
  reuses the same key.

``remote_status`` is the request status PostQued last reported (``pending``, ``processing``,
``completed``, ``partial_failed``, ``failed``, ``canceled``).

Every entry belongs to one identity (the person or agent a token names; ``""`` for a single-user server):
a journal object is a view for one identity and never reads or changes another identity's entries.

Every failure to open, read or write the journal is a ``JournalError``: there is deliberately no way to
run without a journal, because live publishing without one could post twice. Every method is a coroutine
that never blocks the event loop (SQLite work runs in a worker thread; PostgreSQL is natively async).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Self, cast

from postqued.errors import JournalError, LocalError, redact

if TYPE_CHECKING:
    from postqued.client import BucketStore

__all__ = [
    "KEY_TTL",
    "PLAN_TTL",
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
RECOVERED_MESSAGE = "The process ended while the request was being sent."
_MAX_MESSAGE = 500


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One publish request as it was sent, with its outcome. Holds no secrets."""

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
    identity: str = ""

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
            "identity": self.identity,
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

    @classmethod
    def of(cls, entry: JournalEntry, *, replay: bool, reused_key: bool, key_overridden: bool) -> PublishIntent:
        return cls(
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


# -- rules both backends apply (one place) -------------------------------------------------------------


def dumps(value: Any) -> str:
    # Key order is kept: a resend must be byte-identical to the first send.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def clip(text: str) -> str:
    return redact(text)[:_MAX_MESSAGE]


def check_key(key: str) -> None:
    if not 1 <= len(key) <= 255 or not all("!" <= ch <= "~" for ch in key):
        raise LocalError(
            "idempotency_key must be 1-255 visible ASCII characters (a UUID is best).",
            next_step="Omit idempotency_key (one is chosen and kept for you) or pass a UUID.",
        )


def reusable(latest: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The newest attempt (within 24 h) whose key a repeat reuses, if any.

    An ``IDEMPOTENCY_CONFLICT`` failure proves PostQued holds that key for a different body, so this
    request was never accepted under it: reusing it could only fail again, and a new key is safe.
    """
    if latest is not None and latest["status"] == "failed" and latest["error_code"] == "IDEMPOTENCY_CONFLICT":
        return None
    return latest


def key_for_new_entry(
    wanted: str | None, holder: Mapping[str, Any] | None, identity: str, digest: str, workspace_id: str
) -> tuple[str | None, bool]:
    """(key or None for a new UUID, key_overridden) for a new entry; ``holder`` is the row holding ``wanted``."""
    if wanted is None or holder is None:
        return wanted, False
    if (holder["identity"], holder["digest"], holder["workspace_id"]) != (identity, digest, workspace_id):
        earlier = f" ({holder['digest']})" if holder["identity"] == identity else ""  # never another's request
        raise LocalError(
            f"idempotency_key {wanted!r} was already used for a different publish request"
            f"{earlier}; a key must never be reused for another request.",
            code="IDEMPOTENCY_KEY_REUSED",
            next_step=(
                "Omit idempotency_key (a key is chosen and kept for you) or pass a new UUID; "
                "list_publish_journal shows the earlier request."
            ),
        )
    return None, True  # the same request with an expired (24 h) or conflicting key: a new one


def entry_of(row: Mapping[str, Any], now: datetime, grace: timedelta) -> JournalEntry:
    """A stored row as an entry; a ``sending`` row older than ``grace`` reads as ``unknown``."""
    created_at, updated_at = _moment(row["created_at"]), _moment(row["updated_at"])
    status = cast(LocalStatus, row["status"])
    if status == "sending" and now - updated_at > grace:
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
        created_at=created_at,
        updated_at=updated_at,
        identity=row["identity"],
    )


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def not_found(where: str, digest_or_key: str) -> JournalError:
    return JournalError(
        f"Publish journal at {where} has no entry for {digest_or_key!r}.",
        code="JOURNAL_ENTRY_NOT_FOUND",
        next_step="Record outcomes only for requests started with begin_publish (a bug if not).",
    )


# -- the interface -------------------------------------------------------------------------------------


class Journal(ABC):
    """The journal of one identity. Safe to share between tasks; several processes may share its store."""

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the journal lives, for messages (a path, or a database URL without its password)."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """The identity this view reads and writes as (``""`` for a single-user server)."""

    @abstractmethod
    def for_identity(self, identity: str) -> Journal:
        """A view of the same store for another identity (shares connections; closing either closes both)."""

    shares_uploads = False  # True where other processes (replicas) upload through the same store

    @asynccontextmanager
    async def upload_claim(self, workspace_id: str, sha256: str, size: int) -> AsyncIterator[None]:
        """Held while these bytes are looked up and uploaded: where ``shares_uploads``, another replica
        uploading the same bytes waits, then finds the finished upload. Here: nothing to wait for."""
        yield

    def bucket_store(self, scope: str) -> BucketStore | None:
        """Rate-limit buckets shared through this journal's store by every process with the same ``scope``
        (a digest of the PostQued key), or None where the store is this machine's alone."""
        return None

    @abstractmethod
    async def open(self) -> None:
        """Open (create, migrate) the store now; every other method opens it on first use anyway."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections; idempotent."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # plans (dry runs)
    @abstractmethod
    async def record_plan(self, digest: str, workspace_id: str, summary: Mapping[str, Any]) -> None:
        """Remember that ``digest`` passed a dry run now (a repeat refreshes the time)."""

    @abstractmethod
    async def plan_is_fresh(
        self, digest: str, within: timedelta = PLAN_TTL, *, workspace_id: str | None = None
    ) -> bool:
        """True if ``digest`` (in ``workspace_id``, if given) passed a dry run within ``within``."""

    @abstractmethod
    async def withdraw_plan(self, digest: str) -> int:
        """Forget that ``digest`` passed a dry run (the user declined it); a live publish needs a new one."""

    # publish intents and outcomes
    @abstractmethod
    async def begin_publish(
        self,
        digest: str,
        workspace_id: str,
        body: Mapping[str, Any],
        targets: Sequence[Mapping[str, Any]],
        idempotency_key: str | None,
        api_version: str,
    ) -> PublishIntent:
        """Durably commit the intent and decide the key; send only after this returns.

        Within 24 h of the first attempt of ``digest`` in ``workspace_id``: a success is replayed
        (``replay=True``, send nothing); anything else reuses the stored key for a new attempt. Otherwise a
        new entry gets the caller's key or a new UUID. A caller key already used by a different request
        raises ``LocalError`` ``IDEMPOTENCY_KEY_REUSED``.
        """

    @abstractmethod
    async def record_accepted(
        self, digest_or_key: str, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]]
    ) -> JournalEntry:
        """PostQued accepted the request: store its publish id, request status and target statuses."""

    @abstractmethod
    async def record_failed(self, key: str, error_code: str, message: str) -> JournalEntry:
        """PostQued definitely refused the request (an error answer). An accepted entry is left as is."""

    @abstractmethod
    async def record_unknown(self, key: str, reason: str) -> JournalEntry:
        """The request may have left but its answer was lost. An accepted entry is left as is."""

    @abstractmethod
    async def record_status(
        self, publish_id: str, status: str, targets: Sequence[Mapping[str, Any]], terminal: bool
    ) -> JournalEntry | None:
        """A status read: update the entry with this publish id (None if this identity did not send it)."""

    @abstractmethod
    async def recover(self) -> int:
        """After a crash: mark ``sending`` entries whose sender is gone as ``unknown``. Returns how many."""

    # reads
    @abstractmethod
    async def find_by_publish_id(self, publish_id: str) -> JournalEntry | None: ...

    @abstractmethod
    async def find_recent(
        self, digest: str, workspace_id: str, within: timedelta | None = KEY_TTL
    ) -> JournalEntry | None:
        """The newest entry of this request within ``within`` (default: the 24 h key window, i.e. what
        ``begin_publish`` would reuse; ``None``: any age)."""

    @abstractmethod
    async def find_by_key(self, key: str) -> JournalEntry | None: ...

    @abstractmethod
    async def list_entries(self, limit: int = 20, status: str | None = None) -> list[JournalEntry]:
        """Newest first. ``status`` is a local status (a stale ``sending`` counts as ``unknown``) or one
        PostQued reports (``pending``, ``completed``, ...); ``failed`` matches both a local refusal and a
        request PostQued accepted and then failed. ``limit`` is clamped to 1..500."""

    # uploads
    @abstractmethod
    async def remember_upload(self, workspace_id: str, sha256: str, size: int, content_id: str) -> None: ...

    @abstractmethod
    async def lookup_upload(self, workspace_id: str, sha256: str, size: int) -> str | None: ...

    @abstractmethod
    async def has_upload_of_size(self, workspace_id: str, size: int) -> bool:
        """Whether any upload of exactly ``size`` bytes is remembered (else a duplicate is impossible)."""

    @abstractmethod
    async def forget_upload(self, content_id: str) -> int:
        """Drop every remembered upload of ``content_id`` (e.g. it was deleted). Returns how many."""


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), 500))
