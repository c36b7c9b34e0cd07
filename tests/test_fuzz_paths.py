"""Path fuzzing of the upload path policy: zero escapes, and nothing allowed is refused.

The property: ``check_path`` accepts a path if and only if its real path (symlinks followed) is a non-empty
regular file inside an allowed folder, with no hidden name below that folder (in the path as given, once
normalised, or in the real path) and a name that is UTF-8 text; ``inspect_file`` and the ``upload_media``
tool accept exactly those whose bytes are one of PostQued's media types with a matching extension.

The tree below holds every trick: ``..``, absolute and ``~`` paths, symlinks in both directions, chains,
loops, dangling links, a FIFO, a socket, devices, a directory named like a file, hidden names, case and
Unicode look-alikes of the allowed folder, a sibling whose name starts like it, an undecodable file name.
Paths are built from the tree's names, the tricks and random text; the oracle below decides from the file
system what the answer must be. A fixed table also walks every entry once, so each trick is tried in every
run. Profiles: ``ci`` (short; shorter still without ``--run-slow``) and ``long`` (``HYPOTHESIS_PROFILE=long``,
for manual runs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import mcp.types as mt
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from postqued.clock import ManualClock
from postqued.errors import MediaError
from postqued.media import LocalFile, check_path, inspect_file
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from postqued_mcp.app import build_server
from tests.speed import examples

FIXTURES = Path(__file__).parent / "fixtures" / "media"
SECRET = "TOPSECRET-9f1c2e"  # bytes of files outside the folders; never in any message

settings.register_profile(
    "paths-ci",
    max_examples=examples(400, 100),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # CI is reproducible; the long profile explores at random
)
settings.register_profile(
    "paths-long", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
POLICY = settings.get_profile("paths-long" if LONG else "paths-ci")
THROUGH_MCP = settings(POLICY, max_examples=2_000 if LONG else examples(40, 10))

REFUSAL_CODES = {
    "PATH_INVALID",
    "PATH_OUTSIDE_MEDIA_DIRS",
    "PATH_HIDDEN",
    "PATH_NOT_FOUND",
    "PATH_BROKEN_LINK",
    "PATH_NOT_READABLE",
    "PATH_IS_DIRECTORY",
    "PATH_NOT_REGULAR_FILE",
    "FILE_EMPTY",
    "FILE_CHANGED",
}
TYPE_CODES = {"UNSUPPORTED_MEDIA_TYPE", "EXTENSION_MISMATCH", "FILE_TOO_LARGE", "PROBE_FAILED"}


# --- the tree ------------------------------------------------------------------------------------


@dataclass
class Tree:
    root: Path
    allowed: list[str]  # as configured: one through "~", one through a symlink to the folder
    names: list[str]  # every name in the tree, for building paths
    media: set[Path]  # real paths of files that are real media with a matching extension


def _link(path: Path, target: str | Path) -> None:
    path.symlink_to(target)


def build_tree(root: Path) -> Tree:
    allowed, second, outside = root / "allowed", root / "second", root / "outside"
    for folder in (allowed, second, outside, allowed / "sub" / "deeper", allowed / ".hidden", allowed / "dir.mp4"):
        folder.mkdir(parents=True, exist_ok=True)
    media: set[Path] = set()

    def put(dst: Path, fixture: str | None = None, text: str | None = None, is_media: bool = False) -> None:
        if fixture is not None:
            shutil.copy(FIXTURES / fixture, dst)
        else:
            dst.write_text(text or "")
        if is_media:
            media.add(Path(os.path.realpath(dst)))

    put(allowed / "video.mp4", "video.mp4", is_media=True)
    put(allowed / "image.png", "image.png", is_media=True)
    put(allowed / "photo.jpg", "image.jpg", is_media=True)
    put(allowed / "UPPER.MP4", "video.mp4", is_media=True)
    put(allowed / unicodedata.normalize("NFC", "vidéo.mp4"), "video.mp4", is_media=True)
    put(allowed / "png_named.jpg", "png_named.jpg")  # a PNG called .jpg
    put(allowed / "notes.txt", text="not media")
    put(allowed / "fake.mp4", text="not a video at all")
    put(allowed / "empty.mp4", text="")
    put(allowed / "sub" / "clip.mp4", "video.mp4", is_media=True)
    put(allowed / "sub" / "deeper" / "clip2.webm", "video.webm", is_media=True)
    put(allowed / "sub" / ".hid.mp4", "video.mp4")
    put(allowed / ".hidden" / "x.mp4", "video.mp4")
    put(allowed / ".dotfile.mp4", "video.mp4")
    put(second / "ok.gif", "image.gif", is_media=True)
    put(outside / "secret.mp4", "video.mp4")
    put(outside / "secret.txt", text=SECRET)
    put(outside / "secret.png", text=SECRET)
    Path(os.fsdecode(bytes(allowed) + b"/bad\xff.mp4")).write_bytes((FIXTURES / "video.mp4").read_bytes())
    for lookalike in ("allowed_evil", "ALLOWED", "allowed\u200b", "ａｌｌｏｗｅｄ", "alloweⅾ"):
        (root / lookalike).mkdir()
        put(root / lookalike / "video.mp4", "video.mp4")
    with contextlib.suppress(FileExistsError):  # the NFD spelling is another name on Linux
        put(allowed / unicodedata.normalize("NFD", "vidéo2.mp4"), "video.mp4", is_media=True)

    _link(allowed / "link_in.mp4", "video.mp4")
    _link(allowed / "link_abs.mp4", allowed / "video.mp4")
    _link(allowed / "link_out.mp4", outside / "secret.mp4")
    _link(allowed / "link_out_txt.mp4", outside / "secret.txt")
    _link(allowed / "link_dir_out", outside)
    _link(allowed / "link_dir_in", allowed / "sub")
    _link(allowed / "link_hidden.mp4", ".hidden/x.mp4")
    _link(allowed / "link_to_second.gif", second / "ok.gif")
    _link(allowed / "chain1.mp4", "chain2.mp4")
    _link(allowed / "chain2.mp4", "chain3.mp4")
    _link(allowed / "chain3.mp4", outside / "secret.mp4")
    _link(allowed / "chain_ok1.mp4", "chain_ok2.mp4")
    _link(allowed / "chain_ok2.mp4", "sub/clip.mp4")
    _link(allowed / "dangling.mp4", root / "nowhere.mp4")
    _link(allowed / "loop1.mp4", "loop2.mp4")
    _link(allowed / "loop2.mp4", "loop1.mp4")
    _link(allowed / "self.mp4", "self.mp4")
    _link(allowed / "devnull.mp4", "/dev/null")
    _link(allowed / "devzero.mp4", "/dev/zero")
    _link(allowed / "etc_passwd.mp4", "/etc/passwd")
    _link(allowed / "proc_environ.mp4", "/proc/self/environ")
    _link(allowed / "good_name.mp4", os.fsdecode(b"bad\xff.mp4"))
    _link(outside / "back_in.mp4", allowed / "video.mp4")
    (outside / ".hidden_out").mkdir()
    _link(outside / ".hidden_out" / "in.mp4", allowed / "video.mp4")
    _link(root / "link_to_second", second)
    _link(root / "link_to_allowed", allowed)
    os.mkfifo(allowed / "pipe.mp4")
    with contextlib.suppress(OSError):  # needs CAP_MKNOD (root in most containers)
        os.mknod(allowed / "chardev.mp4", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with contextlib.suppress(OSError):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(allowed / "sock.mp4"))
        sock.close()

    names = sorted({p.name for p in root.rglob("*")} | {"allowed", "outside", "second", "link_to_second"})
    return Tree(root, ["~/allowed", str(root / "link_to_second")], names, media)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    root = tmp_path_factory.mktemp("paths")
    built = build_tree(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root))  # "~" and "~/allowed" point into the tree
        mp.chdir(root / "allowed")  # relative paths resolve against the server's working directory
        yield built


# --- the oracle ----------------------------------------------------------------------------------


def _hidden_below(path: Path, root: Path) -> list[str] | None:
    if not path.is_relative_to(root):
        return None
    return [p for p in path.relative_to(root).parts if p.startswith(".") and p not in (".", "..")]


def expected(raw: str, allowed: list[str]) -> Path | None:
    """The real path the policy must accept for ``raw``, or None when it must refuse."""
    if not raw.strip() or "\x00" in raw:
        return None
    given = Path(os.path.expanduser(raw))
    given = given if given.is_absolute() else Path.cwd() / given
    try:
        real = Path(os.path.realpath(given, strict=True))
        st = os.stat(real)
    except (OSError, ValueError):
        return None
    configured = [Path(os.path.normpath(os.path.abspath(os.path.expanduser(a)))) for a in allowed]
    roots = configured + [Path(os.path.realpath(c)) for c in configured]
    if not any(real.is_relative_to(os.path.realpath(c)) for c in configured):
        return None
    lexical = Path(os.path.normpath(given))
    given_hidden = [h for r in roots if (h := _hidden_below(lexical, r)) is not None]
    if given_hidden and all(given_hidden):  # hidden below every root that holds it
        return None
    if not given_hidden and lexical.name.startswith(".") and lexical.name not in (".", ".."):
        return None
    real_hidden = [h for r in roots if (h := _hidden_below(real, r)) is not None]
    if real_hidden and all(real_hidden):
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return None
    try:
        real.name.encode()
    except UnicodeEncodeError:
        return None
    return real


# --- path strategies -----------------------------------------------------------------------------

TRICKS = (
    "..",
    ".",
    "",
    "...",
    "sub",
    "nonexistent",
    "VIDEO.MP4",
    "Video.mp4",
    unicodedata.normalize("NFD", "vidéo.mp4"),
    "video.mp4\u200b",
    "video.mp4 ",
    "video.mp4.",
    "ｖｉｄｅｏ.mp4",
    "%2e%2e",
    "..%2f",
    "..\\",
    "\\",
    "*",
    "?",
    "~root",
    "x" * 300,
    "\x00",
    "\n",
    "\ud800",
    "\udcff",
    "/",
)


def path_strings(tree: Tree) -> st.SearchStrategy[str]:
    parts = st.sampled_from(tree.names) | st.sampled_from(TRICKS) | st.text(max_size=6)
    prefixes = st.sampled_from(
        [
            str(tree.root),
            str(tree.root / "allowed"),
            str(tree.root / "outside"),
            str(tree.root / "link_to_allowed"),
            "~",
            "~/allowed",
            "",
            ".",
            "..",
            "/",
            "//",
            "/proc/self/root" + str(tree.root),
        ]
    )
    joined = st.builds(lambda p, xs, sep: sep.join([p, *xs]), prefixes, st.lists(parts, max_size=5), st.just("/"))
    return joined | st.builds(lambda p, xs: "//".join([p, *xs]), prefixes, st.lists(parts, max_size=3))


def fixed_paths(tree: Tree) -> list[str]:
    """Every entry of the tree under every spelling of its folder, plus a few classic escapes."""
    root = tree.root
    spellings = [str(root), "~", "..", str(root / "link_to_allowed" / "..")]
    out: list[str] = []
    for entry in sorted(root.rglob("*")):
        rel = entry.relative_to(root)
        out += [f"{s}/{rel}" for s in spellings]
        if rel.parts[0] == "allowed":
            out.append(str(Path(*rel.parts[1:])))  # relative to the working directory
    out += [
        "/etc/passwd",
        "~/.ssh/id_rsa",
        "../outside/secret.mp4",
        "../../../../../../etc/passwd",
        "sub/../../outside/secret.mp4",
        "link_dir_out/secret.mp4",
        "link_dir_out/../allowed/video.mp4",
        "link_dir_in/clip.mp4",
        "link_dir_in/../video.mp4",
        "video.mp4/",
        "video.mp4/.",
        "./video.mp4",
        ".//video.mp4",
        "/dev/null",
        "/dev/zero",
        "/proc/self/environ",
        "/proc/self/root/etc/passwd",
        f"/proc/self/root{root}/allowed/video.mp4",
        f"{root}/ALLOWED/video.mp4",
        f"{root}/allowed\u200b/video.mp4",
        f"{root}/allowed_evil/video.mp4",
        f"{root}/allowed/../allowed_evil/video.mp4",
        f"{root}/outside/.hidden_out/in.mp4",
        "",
        " ",
        "video.mp4\x00.png",
    ]
    return out


# --- checks --------------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: float = 5.0) -> Iterator[None]:
    """Fail instead of hanging (opening a FIFO would block)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("the path check blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _refusal(exc: MediaError, raw: str) -> None:
    assert exc.code in REFUSAL_CODES | TYPE_CODES, (raw, exc.code)
    assert SECRET not in str(exc) and SECRET not in repr(exc)
    assert exc.next_step


def assert_policy(raw: str, tree: Tree) -> None:
    want = expected(raw, tree.allowed)
    try:
        with deadline():
            got: LocalFile | None = check_path(raw, tree.allowed)
    except MediaError as exc:
        _refusal(exc, raw)
        assert exc.code in REFUSAL_CODES, (raw, exc.code)
        got = None
    if got is not None:  # the safety half, stated on its own
        real = Path(os.path.realpath(got.path))
        assert any(real.is_relative_to(os.path.realpath(os.path.expanduser(a))) for a in tree.allowed), raw
        assert stat.S_ISREG(os.lstat(real).st_mode) and got.path == real, raw
    assert (got.path if got else None) == want, f"{raw!r}: policy gave {got and got.path}, expected {want}"


def assert_inspect(raw: str, tree: Tree) -> None:
    want = expected(raw, tree.allowed)
    want = want if want in tree.media else None
    try:
        with deadline():
            local, info = inspect_file(raw, tree.allowed)
        got: Path | None = local.path
        assert info.mime_type and local.size > 0
    except MediaError as exc:
        _refusal(exc, raw)
        got = None
    assert got == want, f"{raw!r}: inspect gave {got}, expected {want}"


# --- the properties ------------------------------------------------------------------------------


def test_the_tree_has_every_trick(tree: Tree) -> None:
    allowed = tree.root / "allowed"
    assert stat.S_ISFIFO(os.lstat(allowed / "pipe.mp4").st_mode)
    assert os.path.islink(allowed / "loop1.mp4") and os.path.islink(allowed / "dangling.mp4")
    assert len(tree.media) >= 8
    accepted = [p for p in fixed_paths(tree) if expected(p, tree.allowed) is not None]
    refused = [p for p in fixed_paths(tree) if expected(p, tree.allowed) is None]
    assert len(accepted) > 30 and len(refused) > 100  # both halves of the property are exercised


def test_every_entry_under_every_spelling(tree: Tree) -> None:
    for raw in fixed_paths(tree):
        assert_policy(raw, tree)
        assert_inspect(raw, tree)


@POLICY
@given(data=st.data())
def test_policy_accepts_exactly_the_allowed_real_files(tree: Tree, data: st.DataObject) -> None:
    raw = data.draw(path_strings(tree))
    assert_policy(raw, tree)
    assert_inspect(raw, tree)


def test_special_files_are_refused_from_stat_alone(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.mp4")
    cases = {str(tmp_path / "pipe.mp4"): [str(tmp_path)], "/dev/null": ["/dev"], "/dev/zero": ["/dev"]}
    cases.update({"/dev/urandom": ["/dev"], "/proc/self/environ": ["/proc/self"], "/dev/stdin": ["/dev", "/proc"]})
    for raw, allowed in cases.items():
        with deadline(), pytest.raises(MediaError) as refused:
            check_path(raw, allowed)
        assert refused.value.code in {"PATH_NOT_REGULAR_FILE", "FILE_EMPTY", "PATH_OUTSIDE_MEDIA_DIRS"}, raw


def test_undecodable_file_name_is_refused_not_a_crash(tree: Tree) -> None:
    with pytest.raises(MediaError) as refused:
        check_path(str(tree.root / "allowed" / "good_name.mp4"), tree.allowed)
    assert refused.value.code == "PATH_INVALID" and "UTF-8" in refused.value.message


# --- the same property through the MCP tool: a refused path never reaches PostQued ---------------


@dataclass
class Upload:
    portal: BlockingPortal
    client: Client
    sandbox: Sandbox


@pytest.fixture(scope="module")
def upload(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upload]:
    clock = ManualClock()
    configured = Settings.build(
        state_dir=tmp_path_factory.mktemp("paths-state"),
        media_dirs=tuple(Path(a) for a in tree.allowed),
        rate_limits={},
    )
    with Sandbox(clock=clock, rate_limits=None) as sb, start_blocking_portal() as portal:
        server = build_server(configured, sandbox=sb, clock=clock)
        with portal.wrap_async_context_manager(Client(server)) as client:
            yield Upload(portal, client, sb)


def _call(u: Upload, path: str) -> mt.CallToolResult:
    async def run() -> mt.CallToolResult:
        with anyio.fail_after(20):
            return await u.client.call_tool("upload_media", {"path": path, "force": True})

    return u.portal.call(run)


def assert_upload(raw: str, tree: Tree, u: Upload) -> None:
    want = expected(raw, tree.allowed)
    want = want if want in tree.media else None
    before = len(u.sandbox.ledger)
    result = _call(u, raw)
    sent = u.sandbox.ledger[before:]
    text = " ".join(c.text for c in result.content if isinstance(c, mt.TextContent))
    assert SECRET not in text
    if want is None:
        assert result.is_error, f"{raw!r} was uploaded"
        assert text.startswith("Error executing tool upload_media: "), text  # an answer, not a crash
        assert not sent, f"{raw!r} was refused but {[e.route for e in sent]} reached PostQued"
        return
    assert not result.is_error, (raw, text)
    puts = [e for e in sent if e.route == "storage_put"]
    assert len(puts) == 1 and puts[0].body_size == want.stat().st_size and not puts[0].has_auth


@THROUGH_MCP
@given(data=st.data())
def test_upload_media_uploads_exactly_the_allowed_media(tree: Tree, upload: Upload, data: st.DataObject) -> None:
    raw = data.draw(path_strings(tree) | st.sampled_from(fixed_paths(tree)))
    if not _json_text(raw):
        return  # a lone surrogate cannot travel as a JSON string; check_path sees those above
    assert_upload(raw, tree, upload)


def test_upload_media_on_each_trick(tree: Tree, upload: Upload) -> None:
    for name in sorted(os.listdir(tree.root / "allowed")):
        raw = str(tree.root / "allowed" / name)
        if _json_text(raw):
            assert_upload(raw, tree, upload)


def _json_text(value: Any) -> bool:
    try:
        str(value).encode()
    except UnicodeEncodeError:
        return False
    return True
