"""Every rule a publish request can be checked against before it leaves this machine.

Two passes, both pure (no I/O):

- ``check_static(request, now=...)`` needs only the request and the time: counts, captions, required
  options, TikTok privacy/branded-content consistency, ``dispatch_at``, duplicates.
- ``check_live(request, facts)`` needs what the caller read from PostQued (accounts, content assets,
  TikTok creator info): content found and ready, account exists and matches the platform, TikTok media
  rules (no mixed media, one video, at most 35 photos, photo-post title length, video duration), privacy
  level offered by the creator, interactions the creator disabled.

Each broken rule is an ``Issue`` with a path into the request (``targets[0].caption``), a stable
UPPER_SNAKE ``code`` and a message that says what is wrong and what to do. ``refuse`` turns issues into
the ``LocalError`` that reaches the agent. Messages never repeat the caption text, only its length.

Choices (``postqued.platform_rules`` holds the per-platform facts and their sources):

- Caption lengths: only limits documented in api-facts.md are enforced. TikTok counts UTF-16 code units
  (2200 for a video post; 90 for a photo post, where the caption becomes the title). Every other platform
  gets the spec's general maximum of 63206, counted in code points as JSON Schema ``maxLength`` does.
- ``dispatch_at``: null means "now" and is always fine; otherwise it must carry an offset and be at least
  ``DISPATCH_GRACE`` (60 s) after ``now``, so a time that is "in the future" at the check is not already
  past when PostQued receives it. Earlier than that: DISPATCH_AT_PAST (at or before now) or
  DISPATCH_AT_TOO_SOON (within the grace); both suggest null for an immediate post.
- Interactions: TikTok greys out comment/duet/stitch when creator_info disables them. Only an explicit
  ``disable_X=False`` (a request to enable it) is refused there; unset is left to PostQued and TikTok,
  which cannot enable an interaction the creator turned off.
- Options that do not apply to the TikTok post kind (``disable_duet``, ``disable_stitch``,
  ``video_cover_timestamp_ms`` on a photo post; ``photo_cover_index``, ``auto_add_music`` on a video post)
  are refused with OPTION_NOT_APPLICABLE, whatever their value: they would be silently dropped, and an agent
  that thinks it disabled duets on a photo post should learn that it did not.
- Creator info with an empty ``privacy_level_options`` is treated as "not known" (TikTok always sends at
  least one level), so it never refuses every level.
- A content asset without ``status`` (v1) is not refused: PostQued lists and gets ready assets only.
  Media-dependent checks run only when the media kind is known (``media_type``, else the MIME type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from postqued.errors import LocalError
from postqued.models import (
    ContentAsset,
    CreatorInfo,
    PlatformAccount,
    PublishRequest,
    PublishTarget,
    TikTokOptions,
)
from postqued.platform_rules import (
    MEDIA_PLATFORMS,
    PLATFORM_RULES,
    CaptionUnit,
    MediaKind,
    PlatformRules,
    media_kind,
    utf16_len,
)

__all__ = [
    "DISPATCH_GRACE",
    "ISSUE_CODES",
    "MAX_CONTENT",
    "MAX_TARGETS",
    "Issue",
    "LiveFacts",
    "check",
    "check_live",
    "check_static",
    "describe_issues",
    "refuse",
]

MAX_TARGETS = 10  # SPEC PublishRequest.targets 1..10
MAX_CONTENT = 35  # SPEC PublishRequest.contentIds maxItems 35
DISPATCH_GRACE = timedelta(seconds=60)
NEXT_STEP = "Fix the listed fields and run the dry run again; nothing was sent."


# TikTok options that exist only for one post kind (TT-DP video post_info vs TT-PH photo post_info/source_info).
_TIKTOK_VIDEO_ONLY: tuple[str, ...] = ("disable_duet", "disable_stitch", "video_cover_timestamp_ms")
_TIKTOK_PHOTO_ONLY: tuple[str, ...] = ("photo_cover_index", "auto_add_music")
_REQUIRED_HINTS: Mapping[str, str] = {
    "subreddit": "the subreddit's name without 'r/' (the account's subreddit search lists them)",
    "board_id": "the id of one of the account's Pinterest boards (the account's board list shows them)",
}
_INTERACTIONS: tuple[tuple[str, str, str], ...] = (
    ("disable_comment", "comment_disabled", "comments"),
    ("disable_duet", "duet_disabled", "duets"),
    ("disable_stitch", "stitch_disabled", "stitches"),
)

ISSUE_CODES: frozenset[str] = frozenset(
    {
        # static
        "NO_TARGETS",
        "TOO_MANY_TARGETS",
        "TOO_MANY_CONTENT",
        "CONTENT_REQUIRED",
        "DUPLICATE_CONTENT",
        "DUPLICATE_TARGET",
        "CAPTION_REQUIRED",
        "CAPTION_TOO_LONG",
        "PRIVACY_LEVEL_REQUIRED",
        "BRANDED_CONTENT_PRIVATE",
        "COMMERCIAL_CONTENT_TYPE_REQUIRED",
        "COMMERCIAL_CONTENT_CONFLICT",
        "OPTION_REQUIRED",
        "PHOTO_COVER_INDEX_OUT_OF_RANGE",
        "DISPATCH_AT_NAIVE",
        "DISPATCH_AT_PAST",
        "DISPATCH_AT_TOO_SOON",
        # live
        "CONTENT_NOT_FOUND",
        "CONTENT_NOT_READY",
        "ACCOUNT_NOT_FOUND",
        "ACCOUNT_PLATFORM_MISMATCH",
        "MIXED_MEDIA",
        "TOO_MANY_VIDEOS",
        "TOO_MANY_PHOTOS",
        "VIDEO_TOO_LONG",
        "VIDEO_COVER_OUT_OF_RANGE",
        "PRIVACY_LEVEL_NOT_OFFERED",
        "INTERACTION_DISABLED",
        "OPTION_NOT_APPLICABLE",
    }
)


@dataclass(frozen=True)
class Issue:
    """One broken rule: where (a path into the request), what (a stable code), and what to do."""

    path: str
    code: str
    message: str


@dataclass
class LiveFacts:
    """What PostQued said about the request's accounts, content and TikTok creators."""

    accounts: Mapping[str, PlatformAccount]  # every account of the workspace, by id
    content: Mapping[str, ContentAsset | None] = field(default_factory=dict)  # id -> asset / None = not found
    creator_info: Mapping[str, CreatorInfo] = field(default_factory=dict)  # TikTok account id -> creator info


# --- helpers -------------------------------------------------------------------------------------


def _measure(text: str, unit: CaptionUnit) -> int:
    return utf16_len(text) if unit == "utf16" else len(text)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


def _label(index: int, target: PublishTarget, accounts: Mapping[str, PlatformAccount] | None = None) -> str:
    account = (accounts or {}).get(target.account_id)
    who = f" @{account.username.lstrip('@')}" if account is not None and account.username else ""
    return f"targets[{index}] ({target.platform}{who})"


def _tiktok_options(target: PublishTarget) -> TikTokOptions:
    return target.options if isinstance(target.options, TikTokOptions) else TikTokOptions()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- static --------------------------------------------------------------------------------------


def check_static(request: PublishRequest, *, now: datetime) -> list[Issue]:
    """Rules that need only the request and the current time (offset-aware); no I/O."""
    if now.utcoffset() is None:
        raise ValueError("now must be offset-aware (e.g. datetime.now(UTC))")
    issues: list[Issue] = []
    targets = list(request.targets)
    content_ids = list(request.content_ids)

    if not targets:
        issues.append(Issue("targets", "NO_TARGETS", "The request has no targets; add 1 to 10 targets."))
    elif len(targets) > MAX_TARGETS:
        issues.append(
            Issue(
                "targets",
                "TOO_MANY_TARGETS",
                f"The request has {len(targets)} targets and PostQued accepts at most {MAX_TARGETS}; "
                "split it into several requests.",
            )
        )
    if len(content_ids) > MAX_CONTENT:
        issues.append(
            Issue(
                "content_ids",
                "TOO_MANY_CONTENT",
                f"The request has {len(content_ids)} content ids and PostQued accepts at most {MAX_CONTENT}; "
                "remove some.",
            )
        )
    first_seen: dict[str, int] = {}
    for j, cid in enumerate(content_ids):
        if cid in first_seen:
            issues.append(
                Issue(
                    f"content_ids[{j}]",
                    "DUPLICATE_CONTENT",
                    f"content_ids[{j}] repeats content_ids[{first_seen[cid]}] ({cid}); list each item once.",
                )
            )
        else:
            first_seen[cid] = j

    account_seen: dict[str, int] = {}
    for i, target in enumerate(targets):
        if target.account_id in account_seen:
            issues.append(
                Issue(
                    f"targets[{i}].account_id",
                    "DUPLICATE_TARGET",
                    f"{_label(i, target)} posts to the same account as targets[{account_seen[target.account_id]}]; "
                    "keep one target per account (send a second request for a second post).",
                )
            )
        else:
            account_seen[target.account_id] = i
        issues.extend(_static_target(i, target, content_ids, now))
    return issues


def _static_target(i: int, target: PublishTarget, content_ids: Sequence[str], now: datetime) -> list[Issue]:
    issues: list[Issue] = []
    rules = PLATFORM_RULES.get(target.platform, PlatformRules())
    where = f"targets[{i}]"
    label = _label(i, target)

    if rules.needs_media and not content_ids:
        media = ", ".join(MEDIA_PLATFORMS)
        issues.append(
            Issue(
                "content_ids",
                "CONTENT_REQUIRED",
                f"{label} needs at least one content id ({media} posts carry media); upload the media and "
                "pass its content id in content_ids, or remove this target.",
            )
        )

    caption = target.caption or ""
    if not caption.strip():
        issues.append(Issue(f"{where}.caption", "CAPTION_REQUIRED", f"{label} has an empty caption; write a caption."))
    length = _measure(caption, rules.caption_unit)
    if length > rules.caption_limit:
        issues.append(_caption_too_long(i, label, length, rules.caption_limit, rules.caption_unit, ""))

    for name in rules.required_options:
        if _blank(getattr(target.options, name, None)):
            issues.append(
                Issue(
                    f"{where}.options.{name}",
                    "OPTION_REQUIRED",
                    f"{label} needs options.{name}; set it to {_REQUIRED_HINTS.get(name, 'a value')}.",
                )
            )

    if target.platform == "tiktok":
        issues.extend(_static_tiktok(i, target, content_ids))
    issues.extend(_dispatch_at(i, target, now))
    return issues


def _caption_too_long(i: int, label: str, length: int, limit: int, unit: CaptionUnit, kind: str) -> Issue:
    units = "UTF-16 units (an emoji counts 2)" if unit == "utf16" else "characters"
    return Issue(
        f"targets[{i}].caption",
        "CAPTION_TOO_LONG",
        f"{label}: the caption{kind} is {length} {units} and the limit is {limit}; shorten it by {length - limit}.",
    )


def _static_tiktok(i: int, target: PublishTarget, content_ids: Sequence[str]) -> list[Issue]:
    issues: list[Issue] = []
    opts = _tiktok_options(target)
    where = f"targets[{i}].options"
    label = _label(i, target)

    if target.intent == "publish" and opts.privacy_level is None:
        issues.append(
            Issue(
                f"{where}.privacy_level",
                "PRIVACY_LEVEL_REQUIRED",
                f"{label} publishes directly and TikTok has no default privacy; set options.privacy_level to "
                "one of the creator's privacy_level_options (get_creator_info), or use intent 'draft'.",
            )
        )
    if opts.brand_content_toggle and opts.privacy_level == "SELF_ONLY":
        issues.append(
            Issue(
                f"{where}.privacy_level",
                "BRANDED_CONTENT_PRIVATE",
                f"{label}: branded content (brand_content_toggle) cannot be SELF_ONLY on TikTok; choose another "
                "privacy level or turn brand_content_toggle off.",
            )
        )
    toggles = bool(opts.brand_content_toggle) or bool(opts.brand_organic_toggle)
    if opts.commercial_content and not toggles:
        issues.append(
            Issue(
                f"{where}.commercial_content",
                "COMMERCIAL_CONTENT_TYPE_REQUIRED",
                f"{label} discloses commercial content but does not say whose; set brand_organic_toggle "
                "(your own brand) and/or brand_content_toggle (paid partnership) to true, or set "
                "commercial_content to false.",
            )
        )
    if opts.commercial_content is False and toggles:
        issues.append(
            Issue(
                f"{where}.commercial_content",
                "COMMERCIAL_CONTENT_CONFLICT",
                f"{label} sets a brand toggle while commercial_content is false; set commercial_content to true "
                "or turn brand_content_toggle and brand_organic_toggle off.",
            )
        )
    if opts.photo_cover_index is not None and content_ids and opts.photo_cover_index >= len(content_ids):
        issues.append(
            Issue(
                f"{where}.photo_cover_index",
                "PHOTO_COVER_INDEX_OUT_OF_RANGE",
                f"{label}: photo_cover_index {opts.photo_cover_index} points past the {len(content_ids)} "
                f"content item(s); use 0 to {len(content_ids) - 1}.",
            )
        )
    return issues


def _dispatch_at(i: int, target: PublishTarget, now: datetime) -> list[Issue]:
    at = target.dispatch_at
    path = f"targets[{i}].dispatch_at"
    label = _label(i, target)
    if at is None:
        return []
    if at.utcoffset() is None:
        return [
            Issue(
                path,
                "DISPATCH_AT_NAIVE",
                f"{label}: dispatch_at {at.isoformat()} has no UTC offset; add one, e.g. 2026-12-01T09:00:00Z.",
            )
        ]
    earliest = now + DISPATCH_GRACE
    if at >= earliest:
        return []
    if at <= now:
        return [
            Issue(
                path,
                "DISPATCH_AT_PAST",
                f"{label}: dispatch_at {at.isoformat()} is not in the future (now is {now.isoformat()}); "
                "set a later time, or null to post now.",
            )
        ]
    return [
        Issue(
            path,
            "DISPATCH_AT_TOO_SOON",
            f"{label}: dispatch_at {at.isoformat()} is less than {int(DISPATCH_GRACE.total_seconds())} s away "
            f"and may be past when PostQued receives it; set {earliest.isoformat()} or later, or null to post now.",
        )
    ]


# --- live ----------------------------------------------------------------------------------------


def check_live(request: PublishRequest, facts: LiveFacts) -> list[Issue]:
    """Rules that need what PostQued said: accounts, content assets, TikTok creator info; no I/O."""
    issues: list[Issue] = []
    kinds: dict[str, MediaKind | None] = {}
    for j, cid in enumerate(request.content_ids):
        if cid not in facts.content:
            continue  # not checked (e.g. v1)
        asset = facts.content[cid]
        if asset is None:
            issues.append(
                Issue(
                    f"content_ids[{j}]",
                    "CONTENT_NOT_FOUND",
                    f"Content {cid} was not found in this workspace; list_content shows the ready items, "
                    "or upload the file again.",
                )
            )
            continue
        kinds[cid] = media_kind(asset)
        status = (asset.status or "").strip().lower()
        if status and status != "ready":
            todo = {
                "processing": "finish the upload (complete_content_upload) and wait until it is ready",
                "failed": "upload the file again",
                "deleted": "upload the file again or choose another item",
            }.get(status, "wait until it is ready or upload the file again")
            issues.append(
                Issue(
                    f"content_ids[{j}]",
                    "CONTENT_NOT_READY",
                    f"Content {cid} is '{status}', not 'ready'; {todo}.",
                )
            )

    for i, target in enumerate(request.targets):
        account = facts.accounts.get(target.account_id)
        label = _label(i, target, facts.accounts)
        if account is None:
            issues.append(
                Issue(
                    f"targets[{i}].account_id",
                    "ACCOUNT_NOT_FOUND",
                    f"{label}: account {target.account_id} is not connected in this workspace; use an id that "
                    "list_accounts returns. If the account the user wants is not there, they connect it in the "
                    "PostQued app; never post to another account instead.",
                )
            )
        elif account.platform.strip().lower() != target.platform:
            issues.append(
                Issue(
                    f"targets[{i}].platform",
                    "ACCOUNT_PLATFORM_MISMATCH",
                    f"{label}: account {target.account_id} is a {account.platform} account, not {target.platform}; "
                    f"pick a {target.platform} account from list_accounts. If there is none, the user connects one "
                    "in the PostQued app; never post to another platform instead.",
                )
            )
        if target.platform == "tiktok":
            issues.extend(_live_tiktok(i, target, request, facts, kinds, label))
    return issues


def _live_tiktok(
    i: int,
    target: PublishTarget,
    request: PublishRequest,
    facts: LiveFacts,
    kinds: Mapping[str, MediaKind | None],
    label: str,
) -> list[Issue]:
    issues: list[Issue] = []
    rules = PLATFORM_RULES["tiktok"]
    opts = _tiktok_options(target)
    where = f"targets[{i}].options"
    ids = list(request.content_ids)
    known = [kinds[cid] for cid in ids if kinds.get(cid) is not None]
    all_known = bool(ids) and len(known) == len(ids)
    videos = known.count("video")
    images = known.count("image")

    post: Literal["video", "photo"] | None = None
    if videos and images and rules.no_mixed_media:
        issues.append(
            Issue(
                "content_ids",
                "MIXED_MEDIA",
                f"{label}: a TikTok post is either one video or 1 to {rules.max_photos} photos, and the content "
                f"mixes {videos} video(s) with {images} image(s); send them as separate requests.",
            )
        )
    elif videos > 1 and rules.single_video:
        issues.append(
            Issue(
                "content_ids",
                "TOO_MANY_VIDEOS",
                f"{label}: a TikTok post carries one video and the content has {videos}; send one request per video.",
            )
        )
    elif videos and not images:
        post = "video"
    elif images and not videos and all_known:
        post = "photo"

    if post == "photo" and rules.max_photos is not None and images > rules.max_photos:
        issues.append(
            Issue(
                "content_ids",
                "TOO_MANY_PHOTOS",
                f"{label}: a TikTok photo post holds at most {rules.max_photos} images and the content has "
                f"{images}; remove {images - rules.max_photos}.",
            )
        )
    if post == "photo" and rules.photo_caption_limit is not None:
        length = _measure(target.caption, rules.caption_unit)
        if length > rules.photo_caption_limit:
            issues.append(
                _caption_too_long(
                    i,
                    label,
                    length,
                    rules.photo_caption_limit,
                    rules.caption_unit,
                    " (the title of a TikTok photo post)",
                )
            )

    not_applicable = _TIKTOK_VIDEO_ONLY if post == "photo" else _TIKTOK_PHOTO_ONLY if post == "video" else ()
    for name in not_applicable:
        if getattr(opts, name) is not None:
            issues.append(
                Issue(
                    f"{where}.{name}",
                    "OPTION_NOT_APPLICABLE",
                    f"{label}: options.{name} does not apply to a TikTok {post} post and would be ignored; remove it.",
                )
            )

    creator = facts.creator_info.get(target.account_id)
    j, video = next(((j, facts.content.get(cid)) for j, cid in enumerate(ids) if kinds.get(cid) == "video"), (0, None))
    if post == "video" and video is not None and video.duration_ms is not None:
        max_sec = creator.max_video_post_duration_sec if creator is not None else None
        if max_sec is not None and video.duration_ms > max_sec * 1000:
            issues.append(
                Issue(
                    f"content_ids[{j}]",
                    "VIDEO_TOO_LONG",
                    f"{label}: the video lasts {_seconds(video.duration_ms)} s and this creator may post at most "
                    f"{max_sec} s; trim it and upload it again, or post it to another account.",
                )
            )
        cover = opts.video_cover_timestamp_ms
        if cover is not None and cover > video.duration_ms:
            issues.append(
                Issue(
                    f"{where}.video_cover_timestamp_ms",
                    "VIDEO_COVER_OUT_OF_RANGE",
                    f"{label}: video_cover_timestamp_ms {cover} is past the end of the {video.duration_ms} ms "
                    f"video; use 0 to {video.duration_ms}.",
                )
            )

    if creator is None:
        return issues
    offered = list(creator.privacy_level_options)
    if opts.privacy_level is not None and offered and opts.privacy_level not in offered:
        issues.append(
            Issue(
                f"{where}.privacy_level",
                "PRIVACY_LEVEL_NOT_OFFERED",
                f"{label}: this creator does not offer {opts.privacy_level}; choose one of {', '.join(offered)}.",
            )
        )
    for option, flag, noun in _INTERACTIONS:
        if option in _TIKTOK_VIDEO_ONLY and post == "photo":
            continue  # reported as OPTION_NOT_APPLICABLE above
        if getattr(creator, flag) and getattr(opts, option) is False:
            issues.append(
                Issue(
                    f"{where}.{option}",
                    "INTERACTION_DISABLED",
                    f"{label}: the creator has turned {noun} off in TikTok, so {option}=false cannot enable "
                    f"them; set {option} to true or remove it.",
                )
            )
    return issues


# --- both, and the error -------------------------------------------------------------------------


def check(request: PublishRequest, *, now: datetime, facts: LiveFacts | None = None) -> list[Issue]:
    """``check_static`` plus, when ``facts`` are given, ``check_live``."""
    issues = check_static(request, now=now)
    if facts is not None:
        issues += check_live(request, facts)
    return issues


def describe_issues(issues: Sequence[Issue]) -> str:
    """One readable line per issue: ``- path [CODE]: message``."""
    return "\n".join(f"- {issue.path} [{issue.code}]: {issue.message}" for issue in issues)


def refuse(issues: Sequence[Issue]) -> LocalError:
    """The LocalError for a request that broke local rules (code of the single issue, or a general one)."""
    if not issues:
        raise ValueError("refuse() needs at least one issue")
    code = issues[0].code if len(issues) == 1 else "PUBLISH_REQUEST_INVALID"
    count = "1 local rule" if len(issues) == 1 else f"{len(issues)} local rules"
    return LocalError(
        f"The publish request breaks {count}:\n{describe_issues(issues)}",
        code=code,
        next_step=NEXT_STEP,
        details={"issues": [{"path": i.path, "code": i.code, "message": i.message} for i in issues]},
    )
