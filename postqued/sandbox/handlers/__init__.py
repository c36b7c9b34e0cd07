"""Every route's handler, one small module per resource; each module lists its own in ``HANDLERS``."""

from __future__ import annotations

from postqued.sandbox.handlers import (
    accounts,
    admin,
    analytics,
    approvals,
    content,
    engagement,
    providers,
    publishing,
    team,
    uploads,
)
from postqued.sandbox.http import Handler

MODULES = (accounts, uploads, content, publishing, admin, providers, analytics, engagement, approvals, team)


def all_handlers() -> dict[str, Handler]:
    """Route name -> handler; a name registered twice is a mistake caught here."""
    found: dict[str, Handler] = {}
    for module in MODULES:
        twice = found.keys() & module.HANDLERS.keys()
        if twice:
            raise RuntimeError(f"{module.__name__} registers {sorted(twice)} again")
        found.update(module.HANDLERS)
    return found
