"""Confirmation for tools that reach another person or take access away, and for approved-post publishing.

A tool that replies to a comment, sends an invitation, removes a collaborator or publishes an approved post
declares a small resolver that words the question, and the tool body calls ``require``::

    async def _ask(ctx: Context[Any, Any], comment_id: str, text: str) -> Question:
        return ask(ctx, f"Send this reply to comment {comment_id}?\\n\\n{text}")

    async def reply_to_comment(
        ..., approval: Annotated[Outcome, Resolve(_ask)], confirm: ConfirmArg = False
    ) -> ...:
        require(approval, confirm, action="send this reply")

When the client supports elicitation the user is asked (``confirm=true`` does not skip the question); a client
without elicitation needs ``confirm=true``, which the agent may pass only after the user said yes.
``POSTQUED_CONFIRM=never`` (unattended pipelines) asks nothing and needs nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit
from pydantic import BaseModel, Field

from postqued.errors import LocalError

from .common import state


class Confirm(BaseModel):
    confirm: bool = Field(description="Yes, do exactly this")


class NoQuestion(BaseModel):
    """Why the user was not asked."""

    reason: Literal["not_needed", "no_elicitation", "invalid_request"]


Question = NoQuestion | Elicit[Confirm]
Outcome = ElicitationResult[Confirm]

ConfirmArg = Annotated[
    bool,
    Field(description="Set true only after the user approved this exact action (clients without elicitation)."),
]


def ask(ctx: Context[Any, Any], question: str, *, valid: bool = True) -> Question:
    """The question to put to the user, or why none is needed.

    ``valid=False`` (the tool will refuse its arguments anyway) asks nothing: no user is bothered with a
    question about a call that cannot happen.
    """
    if not valid:
        return NoQuestion(reason="invalid_request")
    if state(ctx).settings.confirm == "never":
        return NoQuestion(reason="not_needed")
    if not can_ask(ctx):
        return NoQuestion(reason="no_elicitation")
    return Elicit(question, Confirm)


def can_ask(ctx: Context[Any, Any]) -> bool:
    """Whether this client can put a question to the user (MCP elicitation)."""
    caps = ctx.client_capabilities
    return caps is not None and caps.elicitation is not None


def require(outcome: Outcome, confirm: bool, *, action: str) -> str:
    """How the action was approved; a CONFIRMATION_* error when it was not."""
    if isinstance(outcome, AcceptedElicitation):
        data = outcome.data
        if isinstance(data, Confirm):
            if data.confirm:
                return "approved by the user"
        elif isinstance(data, NoQuestion):
            if data.reason == "not_needed":
                return "not required"
            if data.reason == "invalid_request":
                raise LocalError(f"The request is invalid; I did not {action}.")
            if confirm:
                return "confirm=true"
            raise LocalError(
                f"The user must approve before I {action}, and this client cannot ask them; nothing was sent.",
                code="CONFIRMATION_REQUIRED",
                next_step="Show the user exactly what will happen; only if they approve, repeat the call with "
                "confirm=true.",
            )
    raise LocalError(
        f"The user did not approve; nothing was sent (I did not {action}).",
        code="CONFIRMATION_DECLINED",
        next_step="Ask the user what to change; do not repeat the call unless they approve it.",
    )
