"""What every part of the simulator shares: the documented limits, ids, times and the error answer."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PRIVACY_LEVELS: tuple[str, ...] = (
    "PUBLIC_TO_EVERYONE",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "SELF_ONLY",
)
# MIME type -> (media type, storage key extension)
MIME_TYPES: dict[str, tuple[str, str]] = {
    "video/mp4": ("video", ".mp4"),
    "video/webm": ("video", ".webm"),
    "video/quicktime": ("video", ".mov"),
    "image/jpeg": ("image", ".jpg"),
    "image/png": ("image", ".png"),
    "image/webp": ("image", ".webp"),
    "image/gif": ("image", ".gif"),
}
VIDEO_MAX_BYTES = 4 * 1024**3  # "4 GB", read as GiB
IMAGE_MAX_BYTES = 20 * 1024**2  # "20 MB", read as MiB
IMAGE_MAX_SIDE = 4096  # px on either side, measured from the stored file (choice: TikTok's video bound)
UPLOAD_URL_TTL_SECONDS = 3600
IDEMPOTENCY_TTL = timedelta(hours=24)
CAP_WINDOW = timedelta(hours=24)
DIRECT_POST_CAP = 15  # the 16th direct post per creator in 24 h fails
PENDING_DRAFT_CAP = 5  # the 6th pending inbox draft per creator in 24 h fails
TIKTOK_VIDEO_CAPTION_MAX = 2200
CAPTION_MAX = 63206
ALT_MAX = 500

PROVIDER_REASONS: dict[str, str] = {
    "spam_risk_too_many_posts": "The creator reached TikTok's daily limit of direct posts.",
    "spam_risk_too_many_pending_share": "The creator has too many pending drafts in the TikTok inbox.",
    "file_format_check_failed": "TikTok could not process the media file format.",
    "duration_check_failed": "The video duration is outside what TikTok accepts for this creator.",
    "frame_rate_check_failed": "The video frame rate is outside what TikTok accepts.",
    "picture_size_check_failed": "The picture size is outside what TikTok accepts.",
    "spam_risk_user_banned_from_posting": "The creator is banned from posting.",
    "unaudited_client_can_only_post_to_private_accounts": "Unaudited clients can post to private accounts only.",
    "internal": "The provider had an internal error.",
}

_NS = uuid.UUID("5d1c4a8e-51a7-4c43-9f3c-2f7a4f0e6b11")


def stable_id(name: str) -> str:
    """A deterministic UUID string for seeded objects."""
    return str(uuid.uuid5(_NS, name))


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a ``Z`` suffix, the way the API writes times."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: object) -> datetime | None:
    """Parse an offset-aware ISO 8601 string; ``None`` for anything else (naive times included)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed.astimezone(UTC)


class ApiFail(Exception):
    """An error answer: ``{"error": message, "code": code}`` with the given status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        issues: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.issues = issues
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.issues is not None:
            out["issues"] = self.issues
        return out


def derived_number(seed: str, low: int, high: int) -> int:
    """A deterministic number in [low, high] derived from ``seed`` (seed data and analytics)."""
    return low + int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16) % (high - low + 1)
