"""The seeded tenant, all deterministic: one organisation and workspace (and optionally a client workspace),
a public and a private TikTok account and an Instagram account, three workspace members (the key's owner, an
editor, an external client), one approval post in review with the key's owner as its reviewer, and one
published TikTok post with comments in the engagement inbox. The seeded tenant has no Reddit, LinkedIn or
Pinterest account; ``connect_account`` adds one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postqued.clock import Clock
from postqued.models import PLATFORMS
from postqued.sandbox.common import derived_number, stable_id
from postqued.sandbox.records import (
    Account,
    ApprovalPostRec,
    CommentRec,
    EngagementPost,
    MemberRec,
    Organization,
    RevisionRec,
    User,
    Workspace,
    feedback_note,
)
from postqued.sandbox.world import World

SEEDED_AT = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PUBLIC_OPTIONS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")


def new_world(
    clock: Clock,
    *,
    processing_seconds: float,
    moderation_seconds: float,
    extra_workspace: bool,
    subscription_active: bool,
) -> World:
    organization = Organization(stable_id("organization"), "Sandbox Organization")
    main = Workspace(stable_id("workspace/main"), "Sandbox Workspace", "admin", organization.id)
    owner = User(stable_id("user/owner"), "owner@sandbox.invalid", "Sandbox Owner")
    world = World(
        clock=clock,
        processing=timedelta(seconds=processing_seconds),
        moderation=timedelta(seconds=moderation_seconds),
        subscription_active=subscription_active,
        organization=organization,
        default_workspace=main,
        owner=owner,
        workspaces={main.id: main},
    )
    if extra_workspace:
        extra = Workspace(stable_id("workspace/extra"), "Sandbox Client Workspace", "editor", organization.id)
        world.workspaces[extra.id] = world.extra_workspace = extra
    _seed_accounts(world)
    _seed_team_and_approval(world)
    _seed_engagement(world)
    return world


def _seed_accounts(world: World) -> None:
    main = world.default_workspace.id
    accounts = [
        Account(
            id=stable_id("account/tiktok/public"),
            platform="tiktok",
            username="@sandbox_creator",
            display_name="Sandbox Creator",
            workspace_id=main,
            external_id="sandbox-tt-1001",
            created_at=SEEDED_AT,
            privacy_level_options=PUBLIC_OPTIONS,
            max_video_post_duration_sec=600,
        ),
        Account(
            id=stable_id("account/tiktok/private"),
            platform="tiktok",
            username="@sandbox_private",
            display_name="Sandbox Private",
            workspace_id=main,
            external_id="sandbox-tt-1002",
            created_at=SEEDED_AT,
            privacy_level_options=("FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"),
            duet_disabled=True,
            stitch_disabled=True,
            max_video_post_duration_sec=180,
        ),
        Account(
            id=stable_id("account/instagram"),
            platform="instagram",
            username="@sandbox_insta",
            display_name="Sandbox Insta",
            workspace_id=main,
            external_id="sandbox-ig-2001",
            created_at=SEEDED_AT,
        ),
    ]
    if world.extra_workspace is not None:
        accounts.append(
            Account(
                id=stable_id("account/tiktok/client"),
                platform="tiktok",
                username="@sandbox_client",
                display_name="Sandbox Client",
                workspace_id=world.extra_workspace.id,
                external_id="sandbox-tt-3001",
                created_at=SEEDED_AT,
                privacy_level_options=PUBLIC_OPTIONS,
            )
        )
    world.accounts.update((a.id, a) for a in accounts)


def _seed_team_and_approval(world: World) -> None:
    owner, main = world.owner, world.default_workspace.id
    editor = User(stable_id("user/editor"), "editor@sandbox.invalid", "Sandbox Editor")
    client = User(stable_id("user/client"), "client@sandbox.invalid", "Sandbox Client")
    world.users.update((u.id, u) for u in (owner, editor, client))
    world.members[main] = {
        owner.id: MemberRec(owner, "admin", "team"),
        editor.id: MemberRec(editor, "editor", "team"),
        client.id: MemberRec(client, "reviewer", "external"),
    }
    tiktok = world.accounts_in(main, "tiktok")[0]
    post = ApprovalPostRec(
        id=stable_id("approval/spring-teaser"),
        workspace_id=main,
        created_at=SEEDED_AT,
        updated_at=SEEDED_AT,
        status="in_review",
        version=2,
        revisions=[
            RevisionRec(
                id=stable_id("approval/spring-teaser/r1"),
                number=1,
                title="Spring launch teaser",
                brief="Short teaser for the spring launch; client signs off on the caption.",
                asset_ids=[],
                targets=[
                    {
                        "platform": "tiktok",
                        "accountId": tiktok.id,
                        "caption": "Spring is coming. Something new drops Friday #launch",
                        "linkUrl": None,
                        "options": {"privacyLevel": "PUBLIC_TO_EVERYONE"},
                    }
                ],
                created_at=SEEDED_AT,
            )
        ],
        reviewers={owner.id: owner, client.id: client},
    )
    post.feedback.append(feedback_note("submitted", None, editor, post.current.id, SEEDED_AT))
    world.posts[post.id] = post


def _seed_engagement(world: World) -> None:
    tiktok = world.accounts_in(world.default_workspace.id, "tiktok")[0]
    item = EngagementPost(
        target_id=stable_id("engagement/target/1"),
        publish_id=stable_id("engagement/publish/1"),
        account_id=tiktok.id,
        caption="Behind the scenes of the sandbox shoot #sandbox",
        published_at=SEEDED_AT + timedelta(days=3),
        provider_post_id="7400000000000000900",
        first_comment="Thanks for watching! More on Friday.",
    )
    world.engagement_posts[item.target_id] = item
    world.comments[item.target_id] = [
        CommentRec(stable_id("comment/1"), "Love this! When is the launch?", "@fan_one", SEEDED_AT + timedelta(days=4)),
        CommentRec(stable_id("comment/2"), "The lighting is great", "@fan_two", SEEDED_AT + timedelta(days=4, hours=2)),
    ]


def connect_account(world: World, platform: str, username: str, *, workspace_id: str | None = None) -> str:
    """Connect one more account (e.g. Reddit, LinkedIn, Pinterest); returns its id."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    account = Account(
        id=stable_id(f"account/{platform}/{username}"),
        platform=platform,
        username=username if username.startswith("@") else f"@{username}",
        display_name=username.lstrip("@").replace("_", " ").title(),
        workspace_id=workspace_id or world.default_workspace.id,
        external_id=f"sandbox-{platform}-{derived_number(username, 1000, 9999)}",
        created_at=SEEDED_AT,
    )
    world.accounts[account.id] = account
    return account.id
