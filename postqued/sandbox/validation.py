"""Publish request validation: what PostQued (and TikTok behind it) refuse before anything is queued.

Every problem becomes an issue ``{path, message, code}``; the answer is one 400 whose ``code`` is the first
issue's code (``VALIDATION_ERROR`` unless a more specific one applies) and whose message names each field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from postqued.models import PLATFORMS
from postqued.sandbox.common import CAPTION_MAX, TIKTOK_VIDEO_CAPTION_MAX, ApiFail, parse_time
from postqued.sandbox.records import ContentAsset, ParsedTarget
from postqued.sandbox.world import World

MAX_TARGETS = 10
MAX_CONTENT = 35


@dataclass
class Issue:
    path: str
    message: str
    code: str = "VALIDATION_ERROR"


@dataclass
class ParsedPublish:
    content_ids: list[str]
    targets: list[ParsedTarget]
    dry_run: bool


def fail_with(issues: list[Issue]) -> ApiFail:
    message = "; ".join(f"{i.path}: {i.message}" for i in issues)
    return ApiFail(
        400,
        issues[0].code,
        message,
        issues=[{"path": i.path, "message": i.message, "code": i.code} for i in issues],
    )


def parse_publish(
    body: dict[str, Any], *, world: World, workspace_id: str, now: datetime, api_version: str
) -> ParsedPublish:
    """Validate a PublishRequest body against the workspace's content and accounts; raise ``ApiFail`` on issues."""
    issues: list[Issue] = []

    dry_run_raw = body.get("dryRun", False) if api_version == "v2" else False
    if not isinstance(dry_run_raw, bool):
        issues.append(Issue("dryRun", "must be a boolean"))
    dry_run = dry_run_raw is True

    # contentIds (v1.0.3 clients sent a single contentId string; v1 still accepts it)
    raw_ids: Any
    if "contentIds" in body:
        raw_ids = body["contentIds"]
    elif api_version == "v1" and isinstance(body.get("contentId"), str):
        raw_ids = [body["contentId"]]
    elif api_version == "v1":
        raw_ids = []
    else:
        raw_ids = None
        issues.append(Issue("contentIds", "is required (an empty list for text-only posts)"))
    assets: list[ContentAsset] = []
    content_ids: list[str] = []
    if raw_ids is not None:
        if not isinstance(raw_ids, list):
            issues.append(Issue("contentIds", "must be an array of content ids"))
        elif len(raw_ids) > MAX_CONTENT:
            issues.append(Issue("contentIds", f"at most {MAX_CONTENT} items, got {len(raw_ids)}"))
        else:
            for index, cid in enumerate(raw_ids):
                path = f"contentIds[{index}]"
                if not isinstance(cid, str):
                    issues.append(Issue(path, "must be a string"))
                    continue
                asset = world.contents.get(cid)
                if asset is None or asset.workspace_id != workspace_id or asset.status != "ready":
                    issues.append(Issue(path, f"content {cid} not found or not ready in this workspace"))
                    continue
                assets.append(asset)
                content_ids.append(cid)

    raw_targets = body.get("targets")
    targets: list[ParsedTarget] = []
    if not isinstance(raw_targets, list):
        issues.append(Issue("targets", "is required: an array of 1 to 10 targets"))
    elif not 1 <= len(raw_targets) <= MAX_TARGETS:
        issues.append(Issue("targets", f"must hold 1 to {MAX_TARGETS} targets, got {len(raw_targets)}"))
    else:
        for index, raw in enumerate(raw_targets):
            parsed = _parse_target(raw, f"targets[{index}]", world, workspace_id, now, assets, issues)
            if parsed is not None:
                targets.append(parsed)

    if issues:
        raise fail_with(issues)
    return ParsedPublish(content_ids=content_ids, targets=targets, dry_run=dry_run)


def _parse_target(
    raw: Any,
    path: str,
    world: World,
    workspace_id: str,
    now: datetime,
    assets: list[ContentAsset],
    issues: list[Issue],
) -> ParsedTarget | None:
    if not isinstance(raw, dict):
        issues.append(Issue(path, "must be an object"))
        return None
    before = len(issues)

    platform = raw.get("platform")
    if platform not in PLATFORMS:
        issues.append(Issue(f"{path}.platform", f"must be one of {', '.join(PLATFORMS)}"))

    account_id = raw.get("accountId")
    account = world.accounts.get(account_id) if isinstance(account_id, str) else None
    if not isinstance(account_id, str) or not account_id:
        issues.append(Issue(f"{path}.accountId", "is required"))
    elif account is None or account.workspace_id != workspace_id:
        issues.append(Issue(f"{path}.accountId", f"account {account_id} is not connected in this workspace"))
        account = None
    elif platform in PLATFORMS and account.platform != platform:
        issues.append(Issue(f"{path}.platform", f"is {platform} but account {account.username} is {account.platform}"))
        account = None

    intent = raw.get("intent")
    if intent not in ("draft", "publish"):
        issues.append(Issue(f"{path}.intent", "must be 'draft' or 'publish'"))

    caption = raw.get("caption")
    if not isinstance(caption, str) or not caption:
        issues.append(Issue(f"{path}.caption", "is required (1 to 63206 characters)"))
        caption = ""
    elif len(caption) > CAPTION_MAX:
        issues.append(Issue(f"{path}.caption", f"at most {CAPTION_MAX} characters"))

    dispatch_at: datetime | None = None
    if "dispatchAt" not in raw:
        issues.append(Issue(f"{path}.dispatchAt", "is required: a future ISO 8601 time with offset, or null"))
    elif raw["dispatchAt"] is not None:
        dispatch_at = parse_time(raw["dispatchAt"])
        if dispatch_at is None:
            issues.append(Issue(f"{path}.dispatchAt", "must be an ISO 8601 time with an offset (e.g. ...Z), or null"))
        elif dispatch_at <= now:
            issues.append(Issue(f"{path}.dispatchAt", "must be in the future (or null for immediate)"))

    options_raw = raw.get("options", {})
    options: dict[str, Any] = {}
    if options_raw is None:
        options_raw = {}
    if not isinstance(options_raw, dict):
        issues.append(Issue(f"{path}.options", "must be an object"))
    else:
        options = options_raw

    videos = [a for a in assets if a.media_type == "video"]
    if platform == "tiktok":
        _tiktok_rules(path, account, intent, caption, options, assets, videos, issues)
    elif platform == "instagram" and not assets:
        issues.append(Issue(f"{path}", "Instagram posts need at least one image or video"))
    elif platform == "reddit" and not (isinstance(options.get("subreddit"), str) and options["subreddit"]):
        issues.append(Issue(f"{path}.options.subreddit", "is required for Reddit"))
    elif platform == "pinterest" and not (isinstance(options.get("boardId"), str) and options["boardId"]):
        issues.append(Issue(f"{path}.options.boardId", "is required for Pinterest"))

    if len(issues) > before:
        return None
    assert isinstance(platform, str) and isinstance(account_id, str) and isinstance(intent, str)
    return ParsedTarget(platform, account_id, intent, caption, dispatch_at, options)


def _tiktok_rules(
    path: str,
    account: Any,
    intent: Any,
    caption: str,
    options: dict[str, Any],
    assets: list[ContentAsset],
    videos: list[ContentAsset],
    issues: list[Issue],
) -> None:
    if not assets:
        issues.append(Issue(path, "TikTok needs one video or 1 to 35 photos in contentIds"))
    elif videos and len(assets) > 1:
        issues.append(Issue(path, "TikTok takes a single video, or photos only (no mixed or multi-video posts)"))
    if videos and len(caption) > TIKTOK_VIDEO_CAPTION_MAX:
        issues.append(Issue(f"{path}.caption", f"at most {TIKTOK_VIDEO_CAPTION_MAX} characters for a TikTok video"))
    if account is None:
        return  # the account-level rules need the creator info

    privacy = options.get("privacyLevel")
    allowed = list(account.privacy_level_options)
    if privacy is None:
        if intent == "publish":
            issues.append(
                Issue(
                    f"{path}.options.privacyLevel",
                    f"is required for a direct TikTok post; {account.username} allows {', '.join(allowed)}",
                )
            )
    elif privacy not in allowed:
        issues.append(
            Issue(
                f"{path}.options.privacyLevel",
                f"{privacy!s} is not offered by {account.username}; allowed: {', '.join(allowed)}",
                "PRIVACY_LEVEL_OPTION_MISMATCH",
            )
        )
    if options.get("brandContentToggle") is True and privacy == "SELF_ONLY":
        issues.append(
            Issue(
                f"{path}.options.privacyLevel",
                "branded content cannot be SELF_ONLY (private)",
                "BRANDED_CONTENT_PRIVATE",
            )
        )
    for flag, disabled in (
        ("disableComment", account.comment_disabled),
        ("disableDuet", account.duet_disabled),
        ("disableStitch", account.stitch_disabled),
    ):
        if disabled and options.get(flag) is False:
            issues.append(
                Issue(f"{path}.options.{flag}", f"must not be false: {account.username} has this interaction disabled")
            )
    max_ms = account.max_video_post_duration_sec * 1000
    for video in videos:
        if video.duration_ms is not None and video.duration_ms > max_ms:
            issues.append(
                Issue(
                    path,
                    f"video {video.id} lasts {video.duration_ms / 1000:.1f} s; "
                    f"{account.username} may post at most {account.max_video_post_duration_sec} s",
                )
            )
