"""The content library: upload local media, the raw two upload steps, list, get, update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from postqued.api.shape import Checked
from postqued.errors import LocalError, redact
from postqued.models import ContentAsset, MimeType, UploadComplete
from postqued.uploads import ProgressThrottle

from .accounts import WorkspaceArg
from .apps import remember_source
from .common import Toolset, UuidId, state

TOOLS = Toolset("content")

ContentIdArg = Annotated[UuidId, Field(description="From upload_media or list_content.")]


class ContentView(Checked):
    id: str
    media_type: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    status: str | None = None
    alt: str | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, asset: ContentAsset) -> ContentView:
        return cls.model_validate(asset, from_attributes=True)


class UploadResult(BaseModel):
    content: ContentView
    deduplicated: bool = Field(description="True when the same bytes were already uploaded; nothing was sent.")
    sha256: str = Field(description="SHA-256 of the local file (of the original when it was converted).")
    bytes_sent: int
    converted_from: str | None = Field(
        default=None,
        description="Set when the file was converted on this machine before upload, e.g. 'image/heic': an "
        "upright JPEG without location data was uploaded; the original file is unchanged.",
    )
    sandbox: bool


class UploadSessionResult(BaseModel):
    content_id: str
    key: str = Field(description="Pass to complete_content_upload.")
    method: str
    headers: dict[str, str]
    upload_target: str = Field(description="Where the bytes go, without the presigned credential.")
    note: str


class ContentResult(BaseModel):
    content: ContentView
    sandbox: bool


class ContentListResult(Checked):
    content: list[ContentView]
    page: int
    per_page: int
    total: int
    pages: int
    sandbox: bool


class DeleteResult(BaseModel):
    content_id: str
    deleted: bool


@TOOLS.tool("write", "Upload a local video or image", routes=("content_upload", "content_complete"))
async def upload_media(
    ctx: Context[Any, Any],
    path: Annotated[
        str,
        Field(
            description="A local file in the allowed media folders: mp4, mov, webm, jpeg, png, webp or gif; "
            "a HEIC/HEIF photo is converted to JPEG first.",
            min_length=1,
            max_length=4096,
        ),
    ],
    alt_text: Annotated[str | None, Field(description="For images.", max_length=500)] = None,
    force: Annotated[bool, Field(description="Upload again even if already uploaded.")] = False,
    workspace_id: WorkspaceArg = None,
) -> UploadResult:
    """First step of a post with a file on this machine: checks it, streams it with progress, returns the
    ready content (the same bytes again: the same asset unless force). Next: list_accounts."""
    st = state(ctx)
    throttle = ProgressThrottle(ctx.report_progress, clock=st.clock)
    outcome = await st.uploader.upload_file(
        path, alt_text=alt_text, force=force, workspace_id=workspace_id, progress=throttle
    )
    remember_source(outcome.content.id, path, outcome.sha256)  # the preview card's thumbnail
    return UploadResult(
        content=ContentView.of(outcome.content),
        deduplicated=outcome.deduplicated,
        sha256=outcome.sha256,
        bytes_sent=outcome.bytes_sent,
        converted_from=outcome.converted_from,
        sandbox=st.sandbox,
    )


@TOOLS.tool("write", "Start a content upload (raw step)", routes=("content_upload",))
async def start_content_upload(
    ctx: Context[Any, Any],
    filename: Annotated[
        str, Field(description="File name with extension, e.g. clip.mp4.", min_length=1, max_length=255)
    ],
    content_type: MimeType,
    file_size: Annotated[int, Field(description="Exact size in bytes.", ge=1)],
    workspace_id: WorkspaceArg = None,
) -> UploadSessionResult:
    """Rarely needed: use upload_media for a local file. Never returns the presigned URL, so it cannot move
    bytes: for a file elsewhere, upload over the REST API (POST /v2/content/upload, then PUT). Next:
    complete_content_upload."""
    st = state(ctx)
    session = await st.client.start_upload(filename, content_type, file_size, workspace_id=workspace_id)
    st.uploader.remember_session(session)
    return UploadSessionResult(
        content_id=session.content_id,
        key=session.key,
        method=session.method,
        headers=session.headers,
        upload_target=redact(session.url).replace("?***", ""),
        note=(
            "This server never hands out presigned URLs, so nothing can be uploaded to this session. If the "
            "file is on this machine, use upload_media. Otherwise start the upload with PostQued's REST API "
            "(POST /v2/content/upload returns the URL to your own HTTP client), PUT the bytes, then call "
            "complete_content_upload with the contentId and upload.key of that answer."
        ),
    )


@TOOLS.tool("idempotent_write", "Complete a content upload (raw step)", routes=("content_complete",))
async def complete_content_upload(
    ctx: Context[Any, Any],
    content_id: ContentIdArg,
    key: Annotated[str, Field(description="The key returned by start_content_upload.", min_length=1)],
    filename: Annotated[str, Field(min_length=1, max_length=255)],
    content_type: MimeType,
    size: Annotated[int | None, Field(ge=1)] = None,
    width: Annotated[int | None, Field(ge=1)] = None,
    height: Annotated[int | None, Field(ge=1)] = None,
    duration_ms: Annotated[int | None, Field(ge=1)] = None,
    workspace_id: WorkspaceArg = None,
) -> ContentResult:
    """After the bytes of a REST upload are in storage: mark the content ready. Next: publish_content with
    content.id."""
    st = state(ctx)
    ws = await st.client.resolve_workspace(workspace_id)
    asset = await st.client.complete_upload(
        UploadComplete(
            content_id=content_id,
            key=key,
            filename=filename,
            content_type=content_type,
            size=size,
            width=width,
            height=height,
            duration_ms=duration_ms,
            workspace_id=ws,
        )
    )
    return ContentResult(content=ContentView.of(asset), sandbox=st.sandbox)


@TOOLS.tool("read", "List content", routes=("content_list",))
async def list_content(
    ctx: Context[Any, Any],
    page: Annotated[int, Field(ge=1)] = 1,
    per_page: Annotated[int, Field(ge=1, le=60)] = 24,
    search: Annotated[str | None, Field(description="Filter by file name.", max_length=200)] = None,
    media_type: Annotated[Literal["all", "image", "video"] | None, Field()] = None,
    workspace_id: WorkspaceArg = None,
) -> ContentListResult:
    """When the user wants to post media uploaded before: ready images and videos, newest first, paged.
    Next: publish_content with a content id."""
    st = state(ctx)
    result = await st.client.list_content(
        page=page, per_page=per_page, search=search, media_type=media_type, workspace_id=workspace_id
    )
    p = result.pagination
    return ContentListResult(
        content=[ContentView.of(a) for a in result.content],
        page=p.page,
        per_page=p.per_page,
        total=p.total,
        pages=p.pages,
        sandbox=st.sandbox,
        unverified=result.unverified,
    )


@TOOLS.tool("read", "Get content", routes=("content_get",))
async def get_content(
    ctx: Context[Any, Any], content_id: ContentIdArg, workspace_id: WorkspaceArg = None
) -> ContentResult:
    """To check an asset before posting it: type, size, dimensions, duration, status. Next:
    publish_content."""
    st = state(ctx)
    return ContentResult(
        content=ContentView.of(await st.client.get_content(content_id, workspace_id=workspace_id)), sandbox=st.sandbox
    )


@TOOLS.tool("idempotent_write", "Update content", routes=("content_update",))
async def update_content(
    ctx: Context[Any, Any],
    content_id: ContentIdArg,
    filename: Annotated[str | None, Field(min_length=1, max_length=255)] = None,
    alt_text: Annotated[str | None, Field(max_length=500)] = None,
    workspace_id: WorkspaceArg = None,
) -> ContentResult:
    """When the user wants an asset renamed or its alt text set (one or both). Next: publish_content."""
    st = state(ctx)
    if filename is None and alt_text is None:
        raise LocalError("Nothing to update.", code="EMPTY_UPDATE", next_step="Pass filename and/or alt_text.")
    asset = await st.client.update_content(content_id, filename=filename, alt=alt_text, workspace_id=workspace_id)
    return ContentResult(content=ContentView.of(asset), sandbox=st.sandbox)


@TOOLS.tool("destructive", "Delete content", routes=("content_delete",))
async def delete_content(
    ctx: Context[Any, Any], content_id: ContentIdArg, workspace_id: WorkspaceArg = None
) -> DeleteResult:
    """Only when the user asked: delete an asset (soft delete; scheduled posts using it may fail). Next:
    tell the user."""
    st = state(ctx)
    deleted = await st.client.delete_content(content_id, workspace_id=workspace_id)
    await st.uploader.forget(content_id)
    return DeleteResult(content_id=content_id, deleted=deleted)
