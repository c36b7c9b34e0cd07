"""What is known about each platform before sending: caption limits and units, media rules, required options.

One table, ``PLATFORM_RULES``, read by the local rules (``postqued.rules``) and by anything that shows a post
before it goes out (caption counters, media checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from postqued.models import PLATFORMS, ContentAsset

__all__ = ["CAPTION_LIMITS", "MEDIA_PLATFORMS", "PLATFORM_RULES", "PlatformRules", "media_kind", "utf16_len"]

CaptionUnit = Literal["utf16", "codepoints"]
MediaKind = Literal["video", "image"]

SPEC_CAPTION_MAX = 63206  # SPEC PublishTarget.caption maxLength (Facebook's limit), every platform


@dataclass(frozen=True)
class PlatformRules:
    """What is known about one platform before sending (api-facts.md sections 3.2, 3.4 and 5)."""

    caption_limit: int = SPEC_CAPTION_MAX
    caption_unit: CaptionUnit = "codepoints"
    needs_media: bool = False  # a post must carry at least one content id
    required_options: tuple[str, ...] = ()  # option fields (snake_case) that must be set and non-blank
    photo_caption_limit: int | None = None  # caption limit when every item is an image (same unit)
    max_photos: int | None = None  # images in one photo post
    single_video: bool = False  # a video post carries exactly one video, nothing else
    no_mixed_media: bool = False  # videos and images cannot share one post


# The one table of per-platform facts. Sources: SPEC (63206 for every platform), TT-DP (TikTok video title
# <= 2200 UTF-16 runes), TT-PH (photo title <= 90 runes, <= 35 images, photo or video, never both), PLAT
# (reddit `subreddit` required); the project's own choices, not in api-facts.md: pinterest `board_id` required
# (a pin needs a board) and the platforms that need media (TikTok, Instagram, YouTube, Pinterest). No other limit is
# documented for PostQued, so none is guessed (e.g. no 280 for twitter: PostQued may thread or refuse).
PLATFORM_RULES: Mapping[str, PlatformRules] = MappingProxyType(
    {
        "tiktok": PlatformRules(
            caption_limit=2200,
            caption_unit="utf16",
            needs_media=True,
            photo_caption_limit=90,
            max_photos=35,
            single_video=True,
            no_mixed_media=True,
        ),
        "instagram": PlatformRules(needs_media=True),
        "facebook": PlatformRules(),
        "threads": PlatformRules(),
        "linkedin": PlatformRules(),
        "youtube": PlatformRules(needs_media=True),
        "twitter": PlatformRules(),
        "pinterest": PlatformRules(needs_media=True, required_options=("board_id",)),
        "reddit": PlatformRules(required_options=("subreddit",)),
        "mastodon": PlatformRules(),
        "bluesky": PlatformRules(),
    }
)
CAPTION_LIMITS: Mapping[str, int] = MappingProxyType({p: r.caption_limit for p, r in PLATFORM_RULES.items()})
MEDIA_PLATFORMS: tuple[str, ...] = tuple(p for p, r in PLATFORM_RULES.items() if r.needs_media)
assert set(PLATFORM_RULES) == set(PLATFORMS), "PLATFORM_RULES must cover every platform"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as TikTok (and JavaScript) count: an emoji outside the BMP is 2."""
    return len(text.encode("utf-16-le")) // 2


def media_kind(asset: ContentAsset) -> MediaKind | None:
    """``video`` or ``image`` from the asset's media type, else its MIME type; None when unknown."""
    for raw in (asset.media_type, (asset.mime_type or "").split("/", 1)[0]):
        value = (raw or "").strip().lower()
        if value in ("video", "image"):
            return "video" if value == "video" else "image"
    return None
