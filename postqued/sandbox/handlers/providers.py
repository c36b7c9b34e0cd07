"""Provider helpers: Instagram audio, Reddit subreddits and rules, LinkedIn companies, Pinterest boards."""

from __future__ import annotations

from postqued.sandbox.common import ApiFail, derived_number, stable_id
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, json_reply
from postqued.sandbox.records import Account

SUBREDDITS = (
    ("sandbox", "Sandbox testing ground", 12_400, False),
    ("videos", "Videos", 26_800_000, False),
    ("shortfilms", "Short films", 310_000, False),
    ("socialmedia", "Social media marketing", 480_000, False),
    ("pics", "Pictures", 30_100_000, False),
)
COMPANIES = (("1001", "Sandbox Inc", "sandbox-inc"), ("1002", "Sandbox Studio", "sandbox-studio"))
BOARDS = (("Launch ideas", "public"), ("Behind the scenes", "public"), ("Drafts", "secret"))


def _provider_account(ctx: Ctx, platform: str) -> Account:
    workspace = ctx.workspace()
    account = ctx.world.account_in(workspace.id, ctx.params["id"])
    if account.platform != platform:
        raise ApiFail(400, "UNSUPPORTED_PLATFORM", f"This helper needs a {platform} account, not {account.platform}")
    return account


async def instagram_audio(ctx: Ctx) -> Reply:
    account = _provider_account(ctx, "instagram")
    tracks = [
        ("music", "Sunny Loop", "Sandbox Sound Co", 30_000),
        ("music", "Night Drive", "The Placeholders", 45_000),
        ("original_sound", f"Original audio - {account.username.lstrip('@')}", account.username, 15_000),
    ]
    return json_reply(
        {
            "audio": [
                {
                    "selectionToken": f"sbx_audio_{stable_id(f'audio/{account.id}/{i}')[:8]}",
                    "type": kind,
                    "title": title,
                    "artist": artist,
                    "durationMs": duration,
                }
                for i, (kind, title, artist, duration) in enumerate(tracks)
            ]
        }
    )


async def reddit_subreddits(ctx: Ctx) -> Reply:
    _provider_account(ctx, "reddit")
    limit = ctx.int_query("limit", 10, 1, 100)
    query = (ctx.query("query") or "").lower().removeprefix("r/")
    found = [s for s in SUBREDDITS if query in s[0] or query in s[1].lower()][:limit]
    return json_reply(
        {
            "subreddits": [
                {"name": name, "title": title, "subscribers": subscribers, "nsfw": nsfw}
                for name, title, subscribers, nsfw in found
            ]
        }
    )


async def reddit_restrictions(ctx: Ctx) -> Reply:
    _provider_account(ctx, "reddit")
    name = (ctx.query("subreddit") or "").strip().removeprefix("r/")
    if not name:
        raise ApiFail(400, "MISSING_SUBREDDIT", "subreddit is required")
    if name.lower() not in {s[0] for s in SUBREDDITS}:
        raise ApiFail(404, "NOT_FOUND", f"Subreddit r/{name} not found")
    strict = name.lower() in ("sandbox", "shortfilms")
    return json_reply(
        {
            "subreddit": name.lower(),
            "postTypes": ["self", "link", "video"] if strict else ["self", "link", "image", "video", "videogif"],
            "flairRequired": strict,
            "flairs": [
                {"id": stable_id(f"flair/{name.lower()}/{t}")[:13], "text": t} for t in ("Discussion", "OC", "Meta")
            ],
            "titleMaxLength": 300,
        }
    )


async def linkedin_companies(ctx: Ctx) -> Reply:
    _provider_account(ctx, "linkedin")
    limit = ctx.int_query("limit", 10, 1, 100)
    query = (ctx.query("query") or "").lower()
    found = [c for c in COMPANIES if query in c[1].lower()][:limit]
    return json_reply(
        {"companies": [{"id": f"urn:li:organization:{i}", "name": n, "vanityName": v} for i, n, v in found]}
    )


async def pinterest_boards(ctx: Ctx) -> Reply:
    account = _provider_account(ctx, "pinterest")
    limit = ctx.int_query("limit", 50, 1, 250)
    boards = [
        {"id": str(derived_number(f"board/{account.id}/{name}", 10**17, 10**18 - 1)), "name": name, "privacy": privacy}
        for name, privacy in BOARDS
    ]
    return json_reply({"boards": boards[:limit]})


HANDLERS: dict[str, Handler] = by_name(
    instagram_audio, reddit_subreddits, reddit_restrictions, linkedin_companies, pinterest_boards
)
