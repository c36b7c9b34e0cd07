"""What every tool module shares: the server state, error translation, annotations, registration."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import AfterValidator, ValidationError, WithJsonSchema

from postqued.api.operations import supports
from postqued.client import PostQuedClient
from postqued.clock import Clock
from postqued.errors import LocalError, PostQuedError
from postqued.journal import Journal, open_journal
from postqued.publishing import Publisher
from postqued.settings import Settings
from postqued.uploads import Uploader

from .schemas import advertise

log = logging.getLogger("postqued.tools")

IDENTITY_SCOPE_KEY = "postqued.identity"  # set by the HTTP transport's bearer check (postqued_mcp.http_transport)
ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"  # ids go into URL paths: nothing that could change the path
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise ValueError("must be a UUID exactly as a list or get tool returned it")
    return value


# PostQued's workspace, account, content, publish and target ids are UUIDs (openapi-v2.json: format uuid)
UuidId = Annotated[str, AfterValidator(_uuid), WithJsonSchema({"type": "string", "format": "uuid"})]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class ServerState:
    """Owned by the server's lifespan; one per process, with one child per team identity (tokens file)."""

    settings: Settings
    client: PostQuedClient
    clock: Clock
    sandbox: bool = False
    _journal: Journal | None = None
    publisher: Publisher = field(init=False)
    uploader: Uploader = field(init=False)
    _identities: dict[str, ServerState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.client, self.journal, self.clock, self.settings)
        self.uploader = Uploader(self.client, self.journal, self.settings)
        if self.settings.api_key is not None:  # replicas sharing a key share its buckets (team journal)
            scope = hashlib.sha256(self.settings.api_key.get_secret_value().encode()).hexdigest()
            self.client.limiter.store = self.journal().bucket_store(scope)

    def journal(self) -> Journal:
        """The journal; it opens on first use, off the event loop (a JournalError then blocks live publishing)."""
        if self._journal is None:
            self._journal = open_journal(self.settings, self.clock)
        return self._journal

    def for_identity(self, name: str) -> ServerState:
        """The state one identity's requests use: its own key, client, settings and journal view."""
        child = self._identities.get(name)
        if child is None:
            identity = next(i for i in self.settings.identities if i.name == name)
            settings = self.settings.for_identity(identity)
            client = PostQuedClient(settings, transport=self.client.transport, clock=self.clock)
            journal = self.journal().for_identity(name)
            child = ServerState(
                settings=settings, client=client, clock=self.clock, sandbox=self.sandbox, _journal=journal
            )
            self._identities[name] = child
        return child

    async def aclose(self) -> None:
        for child in self._identities.values():  # their journal views share this state's store
            await child.client.aclose()
        await self.client.aclose()
        if self._journal is not None:
            await self._journal.aclose()


def request_identity(request: object) -> str | None:
    """The team identity the HTTP transport authenticated this request as (None: the server's own)."""
    scope = getattr(request, "scope", None)
    name = scope.get(IDENTITY_SCOPE_KEY) if isinstance(scope, dict) else None
    return name if isinstance(name, str) else None


def state(ctx: Context[Any, Any]) -> ServerState:
    value = ctx.request_context.lifespan_context
    assert isinstance(value, ServerState)
    name = request_identity(ctx.request_context.request)
    return value if name is None else value.for_identity(name)


def _to_tool_error(exc: PostQuedError) -> ToolError:
    return ToolError(exc.describe())


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Anticipated failures become ``is_error`` results naming code, status and next step.

    Anything else propagates: the SDK reports it as an internal error, and that is a bug to fix.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except PostQuedError as exc:
            log.info("tool %s: %s", fn.__name__, exc.code)
            raise _to_tool_error(exc) from None
        except ValidationError as exc:  # our own models refusing an argument combination
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise _to_tool_error(LocalError(f"Invalid arguments: {problems}.")) from None

    return wrapper


# --- annotations ---------------------------------------------------------------------------------

Kind = Literal["read", "local_read", "write", "idempotent_write", "destructive"]

ANNOTATIONS: dict[Kind, ToolAnnotations] = {
    "read": ToolAnnotations(readOnlyHint=True, openWorldHint=True),
    "local_read": ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    "write": ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True),
    "idempotent_write": ToolAnnotations(
        readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True
    ),
    "destructive": ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=True),
}


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Awaitable[Any]]
    kind: Kind
    title: str
    routes: tuple[str, ...]  # API routes the tool needs; not registered if the API version lacks one

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def read_only(self) -> bool:
        return self.kind in ("read", "local_read")


class Toolset:
    """A named group of tools; modules add to it with ``@toolset.tool(...)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.specs: list[ToolSpec] = []

    def tool(
        self, kind: Kind, title: str, routes: tuple[str, ...] = ()
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        def decorator(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            wrapped = tool_errors(fn)
            self.specs.append(ToolSpec(wrapped, kind, title, routes))
            return wrapped

        return decorator

    def selected(self, settings: Settings) -> list[ToolSpec]:
        """The tools ``settings`` allow: read tools, then write tools unless read-only; none the API version lacks."""
        reads = [spec for spec in self.specs if spec.read_only]
        writes = [] if settings.read_only else [spec for spec in self.specs if not spec.read_only]
        return [spec for spec in reads + writes if all(supports(settings.api_version, r) for r in spec.routes)]

    def register(self, server: MCPServer[Any], settings: Settings) -> list[str]:
        """Register the tools ``settings`` allow (at start, or later through enable_toolset)."""
        names: list[str] = []
        for spec in self.selected(settings):
            # what add_tool does (an existing tool of that name wins), from the tool built once per process
            server._tool_manager._tools.setdefault(spec.name, _fresh(spec))
            advertise(server, spec.name)
            names.append(spec.name)
        return names


@functools.cache
def _built(spec: ToolSpec) -> Tool:
    """The tool as the SDK's ``add_tool`` builds it (argument model, schemas): once per process, not per server."""
    return Tool.from_function(spec.fn, title=spec.title, annotations=ANNOTATIONS[spec.kind], structured_output=True)


def _fresh(spec: ToolSpec) -> Tool:
    """A copy of the built tool that ``advertise`` may rewrite without touching the cached one."""
    tool = _built(spec)
    return tool.model_copy(update={"fn_metadata": tool.fn_metadata.model_copy()})
