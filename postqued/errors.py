"""Typed errors: every failure the core can anticipate has a class, a stable code and a next step.

The hierarchy mirrors the outcomes a caller has to tell apart:

- ``LocalError``: refused on this machine, nothing was sent (bad input, path policy, rules, config).
- ``APIError``: PostQued answered with an error status; one subclass per documented outcome.
- ``TransportError``: no usable answer arrived (connection, timeout) for a request that is safe to repeat.
- ``OutcomeUnknownError``: a write was sent but its answer was lost; the caller must read state before
  doing anything else (never resend with a new idempotency key).

Messages never contain the API key, presigned URLs or signatures: callers build them from codes and
redacted text only, and ``redact`` is applied to anything that came from the wire.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "JOURNAL_SAFE_STEP",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "IdempotencyConflictError",
    "JournalError",
    "LocalError",
    "MediaError",
    "MissingIdempotencyKeyError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "PostQuedError",
    "RateLimitedError",
    "RevisionConflictError",
    "ServerError",
    "SubscriptionRequiredError",
    "TransportError",
    "UploadIncompleteError",
    "WorkflowStateError",
    "WriteOutcomeUnknownError",
    "api_error",
    "redact",
]

# pq_ keys, bearer tokens, and the query strings of presigned URLs (signatures, credentials, expiry).
_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"pq_[A-Za-z0-9_\-]{4,}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=\-]+"),
    re.compile(r"(?i)(https?://[^\s\"'<>?]+)\?[^\s\"'<>]*"),
    re.compile(r"(?i)(x-amz-signature|x-amz-credential|signature|sig|token)=[^&\s\"'<>]+"),
)


def redact(text: str) -> str:
    """Remove API keys, bearer tokens and presigned-URL query strings from ``text``."""
    text = _SECRET_PATTERNS[0].sub("pq_***", text)
    text = _SECRET_PATTERNS[1].sub("Bearer ***", text)
    text = _SECRET_PATTERNS[2].sub(r"\1?***", text)
    return _SECRET_PATTERNS[3].sub(r"\1=***", text)


class PostQuedError(Exception):
    """Base of every anticipated failure. ``str(error)`` is safe to show to a model or a log."""

    default_code: ClassVar[str] = "POSTQUED_ERROR"
    default_next_step: ClassVar[str] = "Check the message and try again."
    retryable_by_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        retry_at: datetime | None = None,
        next_step: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = redact(message)
        self.code = code or self.default_code
        self.status = status
        self.retryable = self.retryable_by_default if retryable is None else retryable
        self.retry_at = retry_at
        self.next_step = next_step or self.default_next_step
        self.details = details or {}
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for the model: code, HTTP status when there is one, message, next step."""
        head = f"{self.code} (HTTP {self.status})" if self.status is not None else self.code
        text = f"{head}: {self.message}"
        if self.retry_at is not None:
            text += f" Retry at {self.retry_at.isoformat()}."
        return f"{text} Next step: {self.next_step}"


class LocalError(PostQuedError):
    """Refused before anything was sent: the input breaks a local rule or policy."""

    default_code = "INVALID_INPUT"
    default_next_step = "Fix the input as described and call the tool again; nothing was sent."


class MediaError(LocalError):
    """A local media file was refused (path policy, type, size) or could not be read (probe)."""

    default_code = "MEDIA_REFUSED"
    default_next_step = (
        "Pick a supported media file inside an allowed media folder and call the tool again; nothing was sent."
    )


class ConfigError(LocalError):
    """The server's configuration (key, base URL, folders, state) is missing or malformed."""

    default_code = "CONFIG_ERROR"
    default_next_step = "Fix the named setting (environment or .env) and restart; `postqued-mcp doctor` checks it."


# Safe to follow whatever state the journal is in: a new, empty journal would forget the stored idempotency
# keys, and a repeat of a request whose outcome is unknown would then post twice.
JOURNAL_SAFE_STEP = (
    "First check list_publish_requests (or the PostQued app) for this post: it may already exist. Keep this "
    "journal, it holds the keys that stop a repeat from posting twice: never point POSTQUED_STATE_DIR or "
    "POSTQUED_JOURNAL_URL at a new one while an outcome may be unknown. Free it (another postqued-mcp "
    "process may hold it; or fix its permissions, disk space or database), then repeat the same call; "
    "live publishing stays blocked until then."
)


class JournalError(LocalError):
    """The publish journal cannot be read or written; live publishing is blocked."""

    default_code = "JOURNAL_UNAVAILABLE"
    default_next_step = JOURNAL_SAFE_STEP


class TransportError(PostQuedError):
    """No answer arrived (connect error, timeout, reset) for a request that is safe to repeat."""

    default_code = "NETWORK_ERROR"
    default_next_step = "Check the network or POSTQUED_BASE_URL and call the tool again."
    retryable_by_default = True


class OutcomeUnknownError(PostQuedError):
    """A write left this machine but its answer was lost: it may or may not have taken effect."""

    default_code = "OUTCOME_UNKNOWN"
    default_next_step = (
        "Do not publish again with a new key. Read the state first (get_publish_status or "
        "list_publish_journal); calling publish_content again with the same request reuses the same "
        "idempotency key and cannot create a second post."
    )


class WriteOutcomeUnknownError(OutcomeUnknownError):
    """A write without an idempotency key (comment, invitation, approval step) may or may not have happened."""

    default_next_step = (
        "The action may or may not have happened. Read the current state first (the matching list or get tool) "
        "and repeat the call only if it did not happen."
    )


class UploadIncompleteError(PostQuedError):
    """An upload failed after PostQued had opened an upload session: the message says what was sent and
    whether the unfinished asset was deleted. The code and status are the cause's."""

    default_code = "UPLOAD_INCOMPLETE"
    default_next_step = "Call upload_media again."


class APIError(PostQuedError):
    """PostQued answered with an error status."""

    default_code = "API_ERROR"


class BadResponseError(APIError):
    """PostQued answered 2xx, but without what this server needs to read it (e.g. no id): the request WAS sent."""

    default_code = "BAD_RESPONSE"
    default_next_step = (
        "The request reached PostQued, which answered in a shape this server cannot read. Read the current "
        "state (the matching list or get tool) before repeating anything, and run `postqued-mcp doctor "
        "--contract` to report the shape."
    )


class BadRequestError(APIError):
    default_code = "INVALID_REQUEST"
    default_next_step = "Fix the request as the message says; repeating it unchanged will fail again."


class MissingIdempotencyKeyError(BadRequestError):
    default_code = "MISSING_IDEMPOTENCY_KEY"
    default_next_step = "This is a bug in the client (a live publish must carry Idempotency-Key); report it."


class AuthenticationError(APIError):
    default_code = "UNAUTHORIZED"
    default_next_step = "Set POSTQUED_API_KEY to a valid key (PostQued app, Settings -> API) and restart the server."


class SubscriptionRequiredError(APIError):
    default_code = "SUBSCRIPTION_REQUIRED"
    default_next_step = "The workspace's plan lacks this capability: upgrade it in the PostQued app."


class PermissionDeniedError(APIError):
    default_code = "FORBIDDEN"
    default_next_step = "Use a workspace and account this key can access (list_workspaces, list_accounts)."


class NotFoundError(APIError):
    default_code = "NOT_FOUND"
    default_next_step = "Check the id: list the resources again and use one that exists in this workspace."


class ConflictError(APIError):
    default_code = "CONFLICT"
    default_next_step = "Read the resource's current state and decide again; do not retry blindly."


class IdempotencyConflictError(ConflictError):
    default_code = "IDEMPOTENCY_CONFLICT"
    default_next_step = (
        "This idempotency key was already used for a different request. Check get_publish_status / "
        "list_publish_journal for the earlier request; to post something different, omit idempotency_key."
    )


class RevisionConflictError(ConflictError):
    """A stale ``expectedRevisionId``/``expectedVersion``: someone changed the post since it was read."""

    default_code = "REVISION_CONFLICT"
    default_next_step = "Call get_approval_post and decide again; do not retry blindly."


class WorkflowStateError(ConflictError):
    """The post is not in a state that allows the action (e.g. approving a draft)."""

    default_code = "INVALID_STATE"
    default_next_step = "Call get_approval_post to see the post's status, then choose an action that fits it."


class RateLimitedError(APIError):
    default_code = "RATE_LIMITED"
    default_next_step = "Wait until retry_at, then call the tool again."
    retryable_by_default = True


class ServerError(APIError):
    default_code = "SERVER_ERROR"
    default_next_step = "PostQued had a transient failure; for reads try again shortly, for writes read state first."
    retryable_by_default = True


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: SubscriptionRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}
_BY_CODE: dict[str, type[APIError]] = {
    "MISSING_IDEMPOTENCY_KEY": MissingIdempotencyKeyError,
    "IDEMPOTENCY_CONFLICT": IdempotencyConflictError,
    "SUBSCRIPTION_REQUIRED": SubscriptionRequiredError,
}


def api_error(
    status: int,
    body: Any,
    *,
    retry_at: datetime | None = None,
) -> APIError:
    """Build the typed error for an error answer. The body's ``code`` decides first, then the status."""
    code: str | None = None
    message = ""
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, str) and raw_code else None
        raw_msg = body.get("error") or body.get("message")
        if isinstance(raw_msg, dict):  # TikTok-style {"error": {"code", "message"}}
            code = code or (raw_msg.get("code") if isinstance(raw_msg.get("code"), str) else None)
            raw_msg = raw_msg.get("message")
        message = str(raw_msg) if raw_msg else ""
    elif isinstance(body, str):
        message = body[:300]
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    if not message:
        message = f"PostQued answered HTTP {status}."
    # Quote the server's words as data: they reach the model inside a tool error.
    return cls(f"PostQued says: {message!r}", code=code, status=status, retry_at=retry_at)
