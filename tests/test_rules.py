"""postqued.rules: every local rule refuses the bad request with the right code and path, and passes the good one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from postqued.errors import LocalError
from postqued.models import (
    PLATFORMS,
    ContentAsset,
    CreatorInfo,
    PlatformAccount,
    PublishRequest,
    PublishTarget,
)
from postqued.platform_rules import CAPTION_LIMITS, PLATFORM_RULES, media_kind, utf16_len
from postqued.rules import (
    DISPATCH_GRACE,
    ISSUE_CODES,
    Issue,
    LiveFacts,
    check,
    check_live,
    check_static,
    describe_issues,
    refuse,
)

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
EMOJI = "\U0001f600"  # one code point, two UTF-16 units

# a valid option set for every platform (the ones with required options fill them)
GOOD_OPTIONS: dict[str, dict[str, Any]] = {
    "tiktok": {"privacy_level": "PUBLIC_TO_EVERYONE"},
    "pinterest": {"board_id": "board-1"},
    "reddit": {"subreddit": "python"},
}


def target(platform: str = "tiktok", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform": platform,
        "account_id": f"acc-{platform}",
        "intent": "publish",
        "caption": "Hello",
        "dispatch_at": None,
        "options": dict(GOOD_OPTIONS.get(platform, {})),
    }
    options = kw.pop("options", None)
    if options is not None:
        body["options"].update(options)
    body.update(kw)
    return body


def req(*targets: dict[str, Any], content_ids: list[str] | None = None) -> PublishRequest:
    return PublishRequest.model_validate(
        {"content_ids": ["vid-1"] if content_ids is None else content_ids, "targets": list(targets) or [target()]}
    )


def constructed(targets: list[dict[str, Any]], content_ids: list[str]) -> PublishRequest:
    """A request past the model's own limits (the rules are defence in depth for those)."""
    return PublishRequest.model_construct(
        content_ids=content_ids, targets=[PublishTarget.model_validate(t) for t in targets]
    )


def found(issues: list[Issue]) -> set[tuple[str, str]]:
    return {(i.code, i.path) for i in issues}


def codes(issues: list[Issue]) -> set[str]:
    return {i.code for i in issues}


def static(request: PublishRequest, now: datetime = NOW) -> list[Issue]:
    issues = check_static(request, now=now)
    assert codes(issues) <= ISSUE_CODES
    return issues


# --- live facts ----------------------------------------------------------------------------------


def account(platform: str, **kw: Any) -> PlatformAccount:
    return PlatformAccount.model_validate({"id": f"acc-{platform}", "platform": platform, "username": "maker", **kw})


ACCOUNTS = {a.id: a for a in (account(p) for p in PLATFORMS)}


def video(cid: str = "vid-1", duration_ms: int | None = 30_000, **kw: Any) -> ContentAsset:
    return ContentAsset.model_validate(
        {"id": cid, "media_type": "video", "mime_type": "video/mp4", "status": "ready", "duration_ms": duration_ms} | kw
    )


def image(cid: str, **kw: Any) -> ContentAsset:
    return ContentAsset.model_validate(
        {"id": cid, "media_type": "image", "mime_type": "image/jpeg", "status": "ready", **kw}
    )


def creator(**kw: Any) -> CreatorInfo:
    return CreatorInfo.model_validate(
        {
            "creator_username": "maker",
            "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
            "max_video_post_duration_sec": 300,
            **kw,
        }
    )


def facts(
    *assets: ContentAsset | tuple[str, None],
    creator_info: CreatorInfo | None = None,
    accounts: dict[str, PlatformAccount] | None = None,
) -> LiveFacts:
    content: dict[str, ContentAsset | None] = {}
    for a in assets or (video(),):
        if isinstance(a, tuple):
            content[a[0]] = None
        else:
            content[a.id] = a
    return LiveFacts(
        accounts=ACCOUNTS if accounts is None else accounts,
        content=content,
        creator_info={"acc-tiktok": creator_info or creator()},
    )


def live(request: PublishRequest, live_facts: LiveFacts) -> list[Issue]:
    issues = check_live(request, live_facts)
    assert codes(issues) <= ISSUE_CODES
    return issues


def photos(n: int) -> tuple[list[str], list[ContentAsset]]:
    ids = [f"img-{k}" for k in range(n)]
    return ids, [image(cid) for cid in ids]


# --- the table -----------------------------------------------------------------------------------


def test_table_covers_every_platform_and_documents_only_known_limits() -> None:
    assert set(PLATFORM_RULES) == set(PLATFORMS)
    assert dict(CAPTION_LIMITS) == {p: (2200 if p == "tiktok" else 63206) for p in PLATFORMS}
    assert {p for p, r in PLATFORM_RULES.items() if r.needs_media} == {"tiktok", "instagram", "youtube", "pinterest"}
    assert PLATFORM_RULES["reddit"].required_options == ("subreddit",)
    assert PLATFORM_RULES["pinterest"].required_options == ("board_id",)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_good_request_has_no_issue_on_any_platform(platform: str) -> None:
    request = req(target(platform))
    assert static(request) == []
    assert live(request, facts()) == []


def test_good_multi_target_request_is_clean() -> None:
    request = req(
        target("tiktok", dispatch_at="2026-09-02T09:00:00Z"),
        target("instagram"),
        target("youtube", options={"title": "t"}),
        target("reddit", intent="draft"),
    )
    assert check(request, now=NOW, facts=facts()) == []


# --- counts --------------------------------------------------------------------------------------


def test_ten_targets_pass_eleven_are_refused() -> None:
    ten = [target("facebook", account_id=f"fb-{k}") for k in range(10)]
    assert static(req(*ten)) == []
    eleven = [*ten, target("facebook", account_id="fb-10")]
    with pytest.raises(ValidationError):
        req(*eleven)
    assert found(static(constructed(eleven, ["vid-1"]))) == {("TOO_MANY_TARGETS", "targets")}


def test_no_targets_is_refused() -> None:
    assert found(static(constructed([], ["vid-1"]))) == {("NO_TARGETS", "targets")}


def test_35_content_ids_pass_36_are_refused() -> None:
    ids = [f"c{k}" for k in range(36)]
    assert static(req(target("facebook"), content_ids=ids[:35])) == []
    with pytest.raises(ValidationError):
        req(target("facebook"), content_ids=ids)
    assert found(static(constructed([target("facebook")], ids))) == {("TOO_MANY_CONTENT", "content_ids")}


@pytest.mark.parametrize("platform", ["tiktok", "instagram", "youtube", "pinterest"])
def test_media_platforms_need_content(platform: str) -> None:
    issues = static(req(target(platform), content_ids=[]))
    assert found(issues) == {("CONTENT_REQUIRED", "content_ids")}
    assert f"targets[0] ({platform})" in issues[0].message


@pytest.mark.parametrize("platform", ["facebook", "threads", "linkedin", "twitter", "reddit", "mastodon", "bluesky"])
def test_text_platforms_need_no_content(platform: str) -> None:
    assert static(req(target(platform), content_ids=[])) == []


def test_duplicate_content_is_refused() -> None:
    assert found(static(req(target(), content_ids=["a", "b", "a"]))) == {("DUPLICATE_CONTENT", "content_ids[2]")}


def test_duplicate_account_is_refused() -> None:
    request = req(target("facebook"), target("threads"), target("facebook", caption="again"))
    assert found(static(request)) == {("DUPLICATE_TARGET", "targets[2].account_id")}


# --- captions ------------------------------------------------------------------------------------


def test_tiktok_caption_counts_utf16_units_2200_passes_2201_fails() -> None:
    at_limit = EMOJI * 1100  # 1100 code points, 2200 UTF-16 units
    assert utf16_len(at_limit) == 2200
    assert static(req(target(caption=at_limit))) == []
    issues = static(req(target(caption=at_limit + "a")))
    assert found(issues) == {("CAPTION_TOO_LONG", "targets[0].caption")}
    assert "2201" in issues[0].message and "2200" in issues[0].message
    # 1101 emoji is far below 2200 code points but 2202 units: still refused
    assert codes(static(req(target(caption=EMOJI * 1101)))) == {"CAPTION_TOO_LONG"}


def test_other_platforms_use_the_spec_maximum_in_code_points() -> None:
    assert static(req(target("facebook", caption=EMOJI * 63206))) == []  # 126412 UTF-16 units is fine here
    assert static(req(target("twitter", caption="x" * 2201))) == []  # no undocumented 280 limit
    request = constructed([target("facebook")], [])
    request.targets[0].caption = "x" * 63207  # past the model's own maxLength
    assert found(static(request)) == {("CAPTION_TOO_LONG", "targets[0].caption")}


def test_blank_caption_is_refused() -> None:
    assert found(static(req(target("facebook", caption="   ")))) == {("CAPTION_REQUIRED", "targets[0].caption")}


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "é", EMOJI, "\n"]), min_size=1, max_size=1200).map(lambda s: s * 2))
def test_tiktok_caption_limit_property(caption: str) -> None:
    refused = "CAPTION_TOO_LONG" in codes(static(req(target(caption=caption))))
    assert refused == (len(caption.encode("utf-16-le")) // 2 > 2200)


# --- TikTok options (static) ---------------------------------------------------------------------


def test_direct_tiktok_post_needs_privacy_level() -> None:
    no_privacy = target(options={"privacy_level": None})
    issues = static(req(no_privacy))
    assert found(issues) == {("PRIVACY_LEVEL_REQUIRED", "targets[0].options.privacy_level")}
    assert "get_creator_info" in issues[0].message
    assert static(req({**no_privacy, "intent": "draft"})) == []


def test_branded_content_cannot_be_self_only() -> None:
    bad = target(options={"privacy_level": "SELF_ONLY", "commercial_content": True, "brand_content_toggle": True})
    assert found(static(req(bad))) == {("BRANDED_CONTENT_PRIVATE", "targets[0].options.privacy_level")}
    organic = target(options={"privacy_level": "SELF_ONLY", "commercial_content": True, "brand_organic_toggle": True})
    assert static(req(organic)) == []
    public = target(options={"commercial_content": True, "brand_content_toggle": True})
    assert static(req(public)) == []


def test_commercial_content_needs_a_brand_toggle() -> None:
    bad = target(options={"commercial_content": True})
    assert found(static(req(bad))) == {("COMMERCIAL_CONTENT_TYPE_REQUIRED", "targets[0].options.commercial_content")}
    assert static(req(target(options={"commercial_content": True, "brand_organic_toggle": True}))) == []
    assert static(req(target(options={"commercial_content": False}))) == []


def test_brand_toggle_with_commercial_content_false_is_a_conflict() -> None:
    bad = target(options={"commercial_content": False, "brand_organic_toggle": True})
    assert found(static(req(bad))) == {("COMMERCIAL_CONTENT_CONFLICT", "targets[0].options.commercial_content")}


def test_photo_cover_index_within_the_content() -> None:
    ids = ["img-0", "img-1", "img-2"]
    assert static(req(target(options={"photo_cover_index": 2}), content_ids=ids)) == []
    bad = req(target(options={"photo_cover_index": 3}), content_ids=ids)
    assert found(static(bad)) == {("PHOTO_COVER_INDEX_OUT_OF_RANGE", "targets[0].options.photo_cover_index")}


# --- required options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "option", "value"),
    [("reddit", "subreddit", None), ("reddit", "subreddit", "  "), ("pinterest", "board_id", None)],
)
def test_required_options(platform: str, option: str, value: str | None) -> None:
    issues = static(req(target(platform, options={option: value})))
    assert found(issues) == {("OPTION_REQUIRED", f"targets[0].options.{option}")}
    assert f"options.{option}" in issues[0].message


# --- dispatch_at ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dispatch_at", "code"),
    [
        (None, None),
        (NOW + DISPATCH_GRACE, None),  # exactly at the grace boundary: accepted
        ((NOW + DISPATCH_GRACE).astimezone(timezone(timedelta(hours=2))), None),  # same instant, other offset
        (NOW + timedelta(days=30), None),
        (NOW + DISPATCH_GRACE - timedelta(microseconds=1), "DISPATCH_AT_TOO_SOON"),
        (NOW + timedelta(seconds=1), "DISPATCH_AT_TOO_SOON"),
        (NOW, "DISPATCH_AT_PAST"),
        (NOW - timedelta(days=1), "DISPATCH_AT_PAST"),
    ],
)
def test_dispatch_at(dispatch_at: datetime | None, code: str | None) -> None:
    issues = static(req(target(dispatch_at=dispatch_at.isoformat() if dispatch_at else None)))
    assert found(issues) == ({(code, "targets[0].dispatch_at")} if code else set())
    if code:
        assert "null" in issues[0].message


def test_naive_dispatch_at_is_refused() -> None:
    naive = target(dispatch_at="2026-12-01T09:00:00")
    with pytest.raises(ValidationError):
        req(naive)
    request = constructed([target()], ["vid-1"])
    request.targets[0].dispatch_at = datetime(2026, 12, 1, 9, 0)  # past the model's own validator
    assert found(static(request)) == {("DISPATCH_AT_NAIVE", "targets[0].dispatch_at")}


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="offset-aware"):
        check_static(req(), now=datetime(2026, 9, 1, 12, 0))


# --- content and accounts (live) -----------------------------------------------------------------


def test_content_not_found() -> None:
    issues = live(req(target("facebook"), content_ids=["a", "b"]), facts(image("a"), ("b", None)))
    assert found(issues) == {("CONTENT_NOT_FOUND", "content_ids[1]")}


@pytest.mark.parametrize("status", ["processing", "failed", "deleted"])
def test_content_not_ready(status: str) -> None:
    issues = live(req(target()), facts(video(status=status)))
    assert found(issues) == {("CONTENT_NOT_READY", "content_ids[0]")}
    assert status in issues[0].message


def test_content_without_status_or_unchecked_passes() -> None:
    assert live(req(target()), facts(video(status=None))) == []
    unchecked = LiveFacts(accounts=ACCOUNTS, content={}, creator_info={})
    assert live(req(target(), content_ids=["x", "y"]), unchecked) == []


def test_account_not_found() -> None:
    issues = live(req(target(account_id="acc-gone")), facts())
    assert found(issues) == {("ACCOUNT_NOT_FOUND", "targets[0].account_id")}
    assert "list_accounts" in issues[0].message


def test_account_platform_mismatch() -> None:
    issues = live(req(target("facebook", account_id="acc-instagram")), facts())
    assert found(issues) == {("ACCOUNT_PLATFORM_MISMATCH", "targets[0].platform")}
    assert "instagram" in issues[0].message
    mixed_case = {"acc-tiktok": account("TikTok", id="acc-tiktok")}
    assert live(req(target()), facts(accounts=mixed_case)) == []


# --- TikTok media (live) -------------------------------------------------------------------------


def test_tiktok_refuses_mixed_media() -> None:
    issues = live(req(target(), content_ids=["vid-1", "img-0"]), facts(video(), image("img-0")))
    assert found(issues) == {("MIXED_MEDIA", "content_ids")}
    assert live(req(target("instagram"), content_ids=["vid-1", "img-0"]), facts(video(), image("img-0"))) == []


def test_tiktok_refuses_two_videos() -> None:
    issues = live(req(target(), content_ids=["vid-1", "vid-2"]), facts(video(), video("vid-2")))
    assert found(issues) == {("TOO_MANY_VIDEOS", "content_ids")}


def test_tiktok_35_photos_pass_36_are_refused() -> None:
    ids, assets = photos(36)
    assert live(req(target(), content_ids=ids[:35]), facts(*assets[:35])) == []
    issues = live(constructed([target()], ids), facts(*assets))
    assert found(issues) == {("TOO_MANY_PHOTOS", "content_ids")}


def test_tiktok_photo_caption_is_a_90_unit_title() -> None:
    ids, assets = photos(2)
    at_limit = EMOJI * 45  # 90 UTF-16 units
    assert live(req(target(caption=at_limit), content_ids=ids), facts(*assets)) == []
    issues = live(req(target(caption=at_limit + "a"), content_ids=ids), facts(*assets))
    assert found(issues) == {("CAPTION_TOO_LONG", "targets[0].caption")}
    assert "title" in issues[0].message
    # the same caption is fine on a video, and not judged when the media kind is unknown
    assert live(req(target(caption=at_limit + "a")), facts()) == []
    unknown = LiveFacts(accounts=ACCOUNTS, content={}, creator_info={"acc-tiktok": creator()})
    assert live(req(target(caption=at_limit + "a"), content_ids=ids), unknown) == []


def test_media_kind_falls_back_to_mime_type() -> None:
    assert media_kind(ContentAsset.model_validate({"id": "a", "mime_type": "image/webp"})) == "image"
    assert media_kind(ContentAsset.model_validate({"id": "a", "mediaType": "VIDEO"})) == "video"
    assert media_kind(ContentAsset.model_validate({"id": "a"})) is None
    ids = ["img-0", "img-1"]
    by_mime = [ContentAsset.model_validate({"id": cid, "mime_type": "image/png", "status": "ready"}) for cid in ids]
    assert codes(live(req(target(caption="x" * 91), content_ids=ids), facts(*by_mime))) == {"CAPTION_TOO_LONG"}


def test_tiktok_video_duration_at_max_passes_one_ms_over_fails() -> None:
    info = creator(max_video_post_duration_sec=180)
    assert live(req(target()), facts(video(duration_ms=180_000), creator_info=info)) == []
    issues = live(req(target()), facts(video(duration_ms=180_001), creator_info=info))
    assert found(issues) == {("VIDEO_TOO_LONG", "content_ids[0]")}
    assert "180.001 s" in issues[0].message and "at most 180 s" in issues[0].message
    assert "@maker" in issues[0].message


def test_video_duration_unchecked_without_creator_info_or_duration() -> None:
    long_video = video(duration_ms=3_600_000)
    assert live(req(target()), LiveFacts(accounts=ACCOUNTS, content={"vid-1": long_video}, creator_info={})) == []
    assert live(req(target()), facts(video(duration_ms=None))) == []


def test_video_cover_timestamp_within_the_video() -> None:
    ok = target(options={"video_cover_timestamp_ms": 30_000})
    assert live(req(ok), facts(video(duration_ms=30_000))) == []
    bad = target(options={"video_cover_timestamp_ms": 30_001})
    issues = live(req(bad), facts(video(duration_ms=30_000)))
    assert found(issues) == {("VIDEO_COVER_OUT_OF_RANGE", "targets[0].options.video_cover_timestamp_ms")}


@pytest.mark.parametrize(
    ("media", "option", "value"),
    [
        ("photo", "disable_duet", True),
        ("photo", "disable_duet", False),
        ("photo", "disable_stitch", True),
        ("photo", "video_cover_timestamp_ms", 0),
        ("video", "photo_cover_index", 0),
        ("video", "auto_add_music", True),
    ],
)
def test_options_that_do_not_apply_to_the_post_kind(media: str, option: str, value: Any) -> None:
    ids, assets = photos(2) if media == "photo" else (["vid-1"], [video()])
    issues = live(req(target(options={option: value}), content_ids=ids), facts(*assets))
    assert found(issues) == {("OPTION_NOT_APPLICABLE", f"targets[0].options.{option}")}
    assert f"{media} post" in issues[0].message


def test_options_that_apply_pass() -> None:
    ids, assets = photos(2)
    photo_ok = {"disable_comment": True, "auto_add_music": True, "photo_cover_index": 1}
    assert live(req(target(options=photo_ok), content_ids=ids), facts(*assets)) == []
    video_ok = {"disable_comment": True, "disable_duet": True, "disable_stitch": False, "video_cover_timestamp_ms": 0}
    assert live(req(target(options=video_ok)), facts()) == []


# --- TikTok creator info (live) ------------------------------------------------------------------


def test_privacy_level_must_be_offered_by_the_creator() -> None:
    private_account = creator(privacy_level_options=["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])
    issues = live(req(target()), facts(video(), creator_info=private_account))
    assert found(issues) == {("PRIVACY_LEVEL_NOT_OFFERED", "targets[0].options.privacy_level")}
    assert "FOLLOWER_OF_CREATOR" in issues[0].message
    offered = target(options={"privacy_level": "FOLLOWER_OF_CREATOR"})
    assert live(req(offered), facts(video(), creator_info=private_account)) == []


def test_privacy_level_unchecked_without_creator_info_or_options() -> None:
    no_creator = LiveFacts(accounts=ACCOUNTS, content={"vid-1": video()}, creator_info={})
    assert live(req(target(options={"privacy_level": "FOLLOWER_OF_CREATOR"})), no_creator) == []
    empty = creator(privacy_level_options=[])
    assert live(req(target()), facts(video(), creator_info=empty)) == []


@pytest.mark.parametrize(
    ("option", "flag"),
    [("disable_comment", "comment_disabled"), ("disable_duet", "duet_disabled"), ("disable_stitch", "stitch_disabled")],
)
def test_interaction_disabled_by_the_creator(option: str, flag: str) -> None:
    info = creator(**{flag: True})
    issues = live(req(target(options={option: False})), facts(video(), creator_info=info))
    assert found(issues) == {("INTERACTION_DISABLED", f"targets[0].options.{option}")}
    for value in (True, None):  # disabling, or leaving it to PostQued, is fine
        assert live(req(target(options={option: value})), facts(video(), creator_info=info)) == []
    assert live(req(target(options={option: False})), facts(video())) == []  # creator allows it


def test_comment_disabled_applies_to_photo_posts_too() -> None:
    ids, assets = photos(1)
    issues = live(
        req(target(options={"disable_comment": False}), content_ids=ids),
        facts(*assets, creator_info=creator(comment_disabled=True)),
    )
    assert found(issues) == {("INTERACTION_DISABLED", "targets[0].options.disable_comment")}


# --- describing and refusing ---------------------------------------------------------------------


def test_describe_issues_one_line_each() -> None:
    issues = [Issue("targets[0].caption", "CAPTION_TOO_LONG", "Too long."), Issue("content_ids", "X", "Y.")]
    assert describe_issues(issues) == "- targets[0].caption [CAPTION_TOO_LONG]: Too long.\n- content_ids [X]: Y."


def test_refuse_single_issue_keeps_its_code() -> None:
    issue = Issue("targets[0].options.privacy_level", "PRIVACY_LEVEL_REQUIRED", "Set it.")
    error = refuse([issue])
    assert isinstance(error, LocalError)
    assert error.code == "PRIVACY_LEVEL_REQUIRED"
    assert "targets[0].options.privacy_level" in error.message
    assert error.next_step == "Fix the listed fields and run the dry run again; nothing was sent."
    assert error.details["issues"] == [
        {"path": "targets[0].options.privacy_level", "code": "PRIVACY_LEVEL_REQUIRED", "message": "Set it."}
    ]


def test_refuse_several_issues() -> None:
    request = req(
        target(caption=EMOJI * 1101, options={"privacy_level": None}), target("reddit", options={"subreddit": None})
    )
    issues = static(request)
    assert codes(issues) == {"CAPTION_TOO_LONG", "PRIVACY_LEVEL_REQUIRED", "OPTION_REQUIRED"}
    error = refuse(issues)
    assert error.code == "PUBLISH_REQUEST_INVALID"
    assert "3 local rules" in error.message
    assert all(i.path in error.message for i in issues)
    assert "nothing was sent" in str(error)


def test_refuse_needs_an_issue() -> None:
    with pytest.raises(ValueError):
        refuse([])


def test_check_runs_both_passes() -> None:
    request = req(target(account_id="acc-gone", dispatch_at=NOW.isoformat()))
    assert codes(check(request, now=NOW)) == {"DISPATCH_AT_PAST"}
    assert codes(check(request, now=NOW, facts=facts())) == {"DISPATCH_AT_PAST", "ACCOUNT_NOT_FOUND"}
