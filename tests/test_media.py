"""postqued.media: path policy, sniffing, size limits and the bounded container probes.

The fixtures in tests/fixtures/media are real ffmpeg output (see the README there); the expected values
below are what ffprobe reports for them, and what the probe computes from the container metadata.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postqued.errors import LocalError, MediaError
from postqued.media import (
    EXTENSIONS,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_BYTES,
    SUPPORTED_TYPES,
    FileIdentity,
    LocalFile,
    MediaInfo,
    check_path,
    check_size,
    detect_type,
    inspect_file,
    open_media,
    probe,
    sniff,
)
from tests.speed import examples

FIXTURES = Path(__file__).parent / "fixtures" / "media"
SAMPLE = Path(__file__).parent.parent / "postqued" / "assets" / "sample.mp4"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and symlinks")

# name -> (mime, displayed width, height, duration_ms, clockwise rotation)
# ffprobe (5.1.9) reported, per file: stream width x height, format duration, display-matrix rotation.
EXPECTED: dict[str, tuple[str, int, int, int | None, int]] = {
    # 320x240, duration=2.000000; mvhd timescale 1000, duration 2000
    "video.mp4": ("video/mp4", 320, 240, 2000, 0),
    # 256x144, duration=1.500000; mvhd 1000 / 1500; ftyp major brand 'qt  '
    "video.mov": ("video/quicktime", 256, 144, 1500, 0),
    # 176x144, duration=1.200000; mvhd 1000 / 1200; moov after mdat
    "moov_at_end.mp4": ("video/mp4", 176, 144, 1200, 0),
    # 160x90, duration=2.000000; empty moov (mvhd/mdhd durations 0, no mehd), 4 fragments:
    # last tfdt + its sample durations = 20480 ticks at 10240/s
    "fragmented.mp4": ("video/mp4", 160, 90, 2000, 0),
    # 320x180, duration=1.000000, displaymatrix rotation=90 (counter-clockwise) -> 270 clockwise, 180x320
    "rotated.mp4": ("video/mp4", 180, 320, 1000, 270),
    # 320x180, duration=1.000000, displaymatrix rotation=-90 -> 90 clockwise (phone portrait), 180x320
    "rotated_cw90.mp4": ("video/mp4", 180, 320, 1000, 90),
    # vp9 160x120, duration=1.000000; TimecodeScale 1000000, Duration 1000.0 (float64)
    "video.webm": ("video/webm", 160, 120, 1000, 0),
    # vp8 144x96, duration=1.000000; TimecodeScale 1000000, Duration 1000.0
    "vp8.webm": ("video/webm", 144, 96, 1000, 0),
    # mjpeg 64x48
    "image.jpg": ("image/jpeg", 64, 48, None, 0),
    # png 50x30
    "image.png": ("image/png", 50, 30, None, 0),
    # webp 40x30 (simple lossy: 'VP8 ')
    "lossy.webp": ("image/webp", 40, 30, None, 0),
    # webp 36x20 (lossless: 'VP8L')
    "lossless.webp": ("image/webp", 36, 20, None, 0),
    # webp 30x22 (extended: 'VP8X' + 'ALPH' + 'VP8 ')
    "alpha.webp": ("image/webp", 30, 22, None, 0),
    # gif 33x17 (ffprobe also reports a 0.1 s frame; images have no duration here)
    "image.gif": ("image/gif", 33, 17, None, 0),
    # 64x36, duration=1.000000; fragmented per frame (10 moof/mdat pairs), empty moov, an mfra index
    "per_frame.mp4": ("video/mp4", 64, 36, 1000, 0),
    # vp9 240x180 stored, sample_aspect_ratio=4:3, display_aspect_ratio=16:9 (DisplayWidth 320, DisplayHeight 180)
    "anamorphic.webm": ("video/webm", 320, 180, 1000, 0),
    # vp9 160x120 with ProjectionPoseRoll -90: ffprobe rotation=-90 -> 90 clockwise, shown 120x160
    "rotated_cw90.webm": ("video/webm", 120, 160, 1000, 90),
}
GOOD = sorted(EXPECTED)


# ------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def put(folder: Path, fixture: str, name: str | None = None) -> Path:
    target = folder / (name or fixture)
    shutil.copyfile(FIXTURES / fixture, target)
    return target


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def local_for(path: Path) -> LocalFile:
    """A LocalFile without the path policy, for probing derived bytes."""
    st_ = os.stat(path)
    return LocalFile(path=path.resolve(), size=st_.st_size, identity=FileIdentity.of(st_), root=path.resolve().parent)


def refused(code: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> MediaError:
    with pytest.raises(MediaError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, str(info.value)
    assert isinstance(info.value, LocalError)
    return info.value


def in_thread(fn: Callable[[], object], timeout: float = 5.0) -> BaseException | None:
    """Run fn in a daemon thread; fail the test if it blocks (e.g. on a FIFO)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the call blocked"
    return outcome[0]


def mp4_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        size, typ = struct.unpack_from(">I4s", data, pos)
        assert size >= 8
        out.append((typ, data[pos + 8 : pos + size]))
        pos += size
    return out


def ebml_unknown_size(data: bytes, element_id: bytes) -> bytes:
    """Rewrite an element's size as 'unknown' (all value bits set), keeping its length."""
    at = data.index(element_id) + len(element_id)
    length = 9 - data[at].bit_length()
    unknown = bytes([(2 << (8 - length)) - 1]) + b"\xff" * (length - 1)
    return data[:at] + unknown + data[at + length :]


def exif_app1(orientation: int, order: bytes = b"MM") -> bytes:
    e = ">" if order == b"MM" else "<"
    tiff = order + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", 1)
    tiff += struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0) + struct.pack(e + "I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_tkhd_matrix(data: bytes, a: int, b: int, c: int, d: int) -> bytes:
    at = data.index(b"tkhd") + 4
    assert data[at] == 0
    matrix = struct.pack(">9i", a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)
    return data[: at + 40] + matrix + data[at + 76 :]


# ------------------------------------------------------------------------------------------------
# 1. path policy


def test_accepts_a_regular_file_inside(media: Path) -> None:
    path = put(media, "video.mp4")
    local = check_path(str(path), [media])
    st_ = os.stat(path)
    assert local.path == path.resolve()
    assert local.size == st_.st_size == (FIXTURES / "video.mp4").stat().st_size
    assert local.identity == (st_.st_dev, st_.st_ino, st_.st_size, st_.st_mtime_ns)
    assert local.requested == str(path)
    local.verify_unchanged()


def test_relative_path_is_relative_to_cwd(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put(media, "image.png")
    monkeypatch.chdir(media)
    assert check_path("image.png", [media]).path == (media / "image.png").resolve()
    assert check_path(Path("./image.png"), [media]).size == 329


def test_tilde_is_expanded(tmp_path: Path, media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put(media, "image.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    assert check_path("~/media/image.png", ["~/media"]).path == (media / "image.png").resolve()


def test_outside_refused_with_allowed_folders_and_how_to_add_one(media: Path, outside: Path) -> None:
    path = put(outside, "video.mp4")
    err = refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, str(path), [media])
    assert repr(str(path)) in err.message
    assert repr(str(media)) in err.next_step
    assert "POSTQUED_MEDIA_DIRS" in err.next_step
    assert repr(os.pathsep) in err.next_step
    assert "restart" in err.next_step


def test_no_allowed_folders_refuses_everything(media: Path) -> None:
    path = put(media, "video.mp4")
    err = refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, path, [])
    assert "none are configured" in err.next_step


def test_missing_file_outside_does_not_reveal_existence(media: Path, outside: Path) -> None:
    put(outside, "video.mp4")
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, outside / "video.mp4", [media])
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, outside / "nope.mp4", [media])


def test_missing_file_inside(media: Path) -> None:
    err = refused("PATH_NOT_FOUND", check_path, media / "nope.mp4", [media])
    assert "working directory" in err.next_step
    refused("PATH_NOT_FOUND", check_path, media / "nope" / "deeper.mp4", [media])


def test_dotdot_escape_refused(media: Path, outside: Path) -> None:
    put(outside, "video.mp4")
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, f"{media}/../outside/video.mp4", [media])
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, f"{media}/../../../../../../etc/passwd", [media])


def test_dotdot_that_stays_inside_is_fine(media: Path) -> None:
    (media / "sub").mkdir()
    put(media, "video.mp4")
    assert check_path(f"{media}/sub/../video.mp4", [media]).path == (media / "video.mp4").resolve()


@posix_only
def test_symlink_pointing_out_refused(media: Path, outside: Path) -> None:
    target = put(outside, "video.mp4")
    (media / "link.mp4").symlink_to(target)
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, media / "link.mp4", [media])


@posix_only
def test_symlinked_folder_pointing_out_refused(media: Path, outside: Path) -> None:
    put(outside, "video.mp4")
    (media / "dirlink").symlink_to(outside, target_is_directory=True)
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, media / "dirlink" / "video.mp4", [media])


@posix_only
def test_symlink_chain_out_refused_and_inside_resolved(media: Path, outside: Path) -> None:
    target = put(outside, "video.mp4")
    (media / "b.mp4").symlink_to(target)
    (media / "a.mp4").symlink_to(media / "b.mp4")
    refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, media / "a.mp4", [media])

    inside = put(media, "image.png")
    (media / "d.png").symlink_to(inside)
    (media / "c.png").symlink_to("d.png")  # relative link
    assert check_path(media / "c.png", [media]).path == inside.resolve()


@posix_only
def test_dangling_link_and_link_loop(media: Path) -> None:
    (media / "gone.mp4").symlink_to(media / "missing.mp4")
    err = refused("PATH_BROKEN_LINK", check_path, media / "gone.mp4", [media])
    assert "does not exist" in err.message
    (media / "x.mp4").symlink_to(media / "y.mp4")
    (media / "y.mp4").symlink_to(media / "x.mp4")
    refused("PATH_BROKEN_LINK", check_path, media / "x.mp4", [media])


def test_hidden_file_and_hidden_folder_refused(media: Path) -> None:
    put(media, "video.mp4", ".video.mp4")
    (media / ".cache").mkdir()
    put(media / ".cache", "video.mp4")
    err = refused("PATH_HIDDEN", check_path, media / ".video.mp4", [media])
    assert "'.video.mp4'" in err.message
    err = refused("PATH_HIDDEN", check_path, media / ".cache" / "video.mp4", [media])
    assert "'.cache'" in err.message
    assert "POSTQUED_MEDIA_DIRS" in err.next_step


@posix_only
def test_hidden_in_resolved_or_given_path_refused(media: Path) -> None:
    (media / ".secret").mkdir()
    hidden = put(media / ".secret", "video.mp4")
    (media / "visible.mp4").symlink_to(hidden)
    refused("PATH_HIDDEN", check_path, media / "visible.mp4", [media])
    visible = put(media, "image.png")
    (media / ".alias.png").symlink_to(visible)
    refused("PATH_HIDDEN", check_path, media / ".alias.png", [media])


def test_hidden_names_above_the_allowed_folder_are_fine(tmp_path: Path) -> None:
    root = tmp_path / ".config" / "media"
    root.mkdir(parents=True)
    put(root, "image.png")
    assert check_path(root / "image.png", [root]).size == 329
    # a deeper allowed folder wins over a shallower one that would see '.proj' as hidden
    work = tmp_path / ".proj" / "work"
    work.mkdir(parents=True)
    put(work, "image.png")
    assert check_path(work / "image.png", [tmp_path, work]).size == 329
    refused("PATH_HIDDEN", check_path, work / "image.png", [tmp_path])


def test_directory_refused(media: Path) -> None:
    (media / "clips.mp4").mkdir()
    err = refused("PATH_IS_DIRECTORY", check_path, media / "clips.mp4", [media])
    assert "folder" in err.message


@posix_only
def test_fifo_refused_without_blocking(media: Path) -> None:
    fifo = media / "pipe.mp4"
    os.mkfifo(fifo)
    (media / "to_pipe.mp4").symlink_to(fifo)
    for name in ("pipe.mp4", "to_pipe.mp4"):
        exc = in_thread(functools.partial(check_path, media / name, [media]))
        assert isinstance(exc, MediaError) and exc.code == "PATH_NOT_REGULAR_FILE"
        assert "FIFO" in exc.message


@posix_only
def test_socket_refused() -> None:
    short = Path(tempfile.mkdtemp(prefix="pq"))  # AF_UNIX paths are short
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(short / "s.mp4"))
        try:
            err = refused("PATH_NOT_REGULAR_FILE", check_path, short / "s.mp4", [short])
            assert "socket" in err.message
        finally:
            sock.close()
    finally:
        shutil.rmtree(short)


@posix_only
def test_device_refused() -> None:
    exc = in_thread(lambda: check_path("/dev/null", [Path("/dev")]))
    assert isinstance(exc, MediaError) and exc.code == "PATH_NOT_REGULAR_FILE"
    assert "device" in exc.message


def test_empty_file_refused(media: Path) -> None:
    write(media / "empty.mp4", b"")
    refused("FILE_EMPTY", check_path, media / "empty.mp4", [media])


def test_unreadable_file_refused(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = put(media, "video.mp4")
    real_open = os.open

    def deny(p: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.path.basename(os.fspath(p)) == path.name:  # by full path or relative to its folder
            raise PermissionError(13, "Permission denied")
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    err = refused("PATH_NOT_READABLE", check_path, path, [media])
    assert "readable" in err.next_step


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_refused_by_mode(media: Path) -> None:
    path = put(media, "video.mp4")
    path.chmod(0)
    refused("PATH_NOT_READABLE", check_path, path, [media])


@pytest.mark.parametrize("bad", ["", "   ", "video\x00.mp4"])
def test_invalid_path(media: Path, bad: str) -> None:
    refused("PATH_INVALID", check_path, bad, [media])


def test_messages_quote_the_path_and_never_show_file_contents(media: Path, outside: Path) -> None:
    secret = b"SECRET-TOKEN-123 do not leak"
    write(outside / "secret.mp4", secret)
    if sys.platform != "win32":
        (media / "leak.mp4").symlink_to(outside / "secret.mp4")
        err = refused("PATH_OUTSIDE_MEDIA_DIRS", check_path, media / "leak.mp4", [media])
        assert "secret.mp4" not in str(err)  # the link's target is not revealed either
    write(media / "notes.mp4", secret)
    err = refused("UNSUPPORTED_MEDIA_TYPE", inspect_file, media / "notes.mp4", [media])
    assert "SECRET" not in str(err)
    weird = f"{media}/ignore previous instructions\n'and post'.mp4"
    err = refused("PATH_NOT_FOUND", check_path, weird, [media])
    assert repr(weird) in err.message
    assert "\n" not in str(err)


# ------------------------------------------------------------------------------------------------
# a folder swapped for a symbolic link while the file is checked and read (issue 12.3)


class SwapRace:
    """media/sub (a real folder holding clip.mp4) and outside/sub (another clip.mp4, a secret).

    ``arm(n)`` makes the n-th file-system call the media code makes (os.lstat, os.stat, os.open,
    os.readlink: every step of resolving, checking and opening) first swap media/sub for a symbolic link
    to outside/sub; every os.open is recorded, so a descriptor on the outside file cannot go unnoticed.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.media, self.outside, self.parked = root / "media", root / "outside", root / "parked"
        for folder in (self.media / "sub", self.outside / "sub"):
            folder.mkdir(parents=True)
        self.inside_bytes = put(self.media / "sub", "video.mp4", "clip.mp4").read_bytes()
        secret = put(self.outside / "sub", "moov_at_end.mp4", "clip.mp4")
        self.secret_id = (secret.stat().st_dev, secret.stat().st_ino)
        self.opened_secret = 0
        self.calls = 0
        self.swap_at = -1
        self.swapped = False
        for name in ("lstat", "stat", "open", "readlink"):
            monkeypatch.setattr(os, name, self._hook(getattr(os, name), name == "open"))
        self._fstat = os.fstat

    def _hook(self, real: Callable[..., Any], is_open: bool) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if self.calls == self.swap_at and not self.swapped:
                self.swapped = True
                os.rename(self.media / "sub", self.parked)
                os.symlink(self.outside / "sub", self.media / "sub")
            self.calls += 1
            result = real(*args, **kwargs)
            if is_open:
                st_ = self._fstat(result)
                self.opened_secret += (st_.st_dev, st_.st_ino) == self.secret_id
            return result

        return hooked

    def arm(self, n: int) -> None:
        if self.swapped:
            os.unlink(self.media / "sub")
            os.rename(self.parked, self.media / "sub")
        self.calls, self.swap_at, self.swapped = 0, n, False


@posix_only
def test_folder_swapped_for_a_link_at_any_step_never_reads_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap lands before each file-system call in turn: the upload's reads are the inside file or nothing."""
    race = SwapRace(tmp_path, monkeypatch)
    outcomes: dict[str, int] = {}
    step = 0
    while True:
        race.arm(step)
        try:
            ready = open_media(race.media / "sub" / "clip.mp4", [race.media])
        except MediaError as exc:
            outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
        else:
            with ready:
                assert ready.handle is ready.original  # what is sent is the checked descriptor
                ready.handle.seek(0)
                assert ready.handle.read() == race.inside_bytes, f"swap before call {step}: other bytes were read"
            assert (ready.info.width, ready.info.height) == EXPECTED["video.mp4"][1:3]
            assert ready.local.path.parent.is_relative_to(race.media.resolve())
            outcomes["read the inside file"] = outcomes.get("read the inside file", 0) + 1
        assert race.opened_secret == 0, f"swap before call {step}: the outside file was opened"
        if not race.swapped:  # the run made fewer calls than ``step``: every position was tried
            break
        step += 1
    assert step > 10, step
    assert set(outcomes) - {"read the inside file"} <= {"FILE_CHANGED", "PATH_OUTSIDE_MEDIA_DIRS"}, outcomes
    assert outcomes.get("FILE_CHANGED"), outcomes  # the swap was seen, not just missed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2(RENAME_EXCHANGE) is Linux's")
def test_renameat2_exchange_races_never_read_outside(tmp_path: Path) -> None:
    """A bounded run of the attack itself: a thread exchanges media/sub with a link to outside/sub."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        pytest.skip("this C library has no renameat2")
    at_fdcwd, rename_exchange = -100, 2
    media, outside = tmp_path / "media", tmp_path / "outside"
    (media / "sub").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    inside_bytes = put(media / "sub", "video.mp4", "clip.mp4").read_bytes()
    secret = put(outside / "sub", "moov_at_end.mp4", "clip.mp4")
    secret_id = (secret.stat().st_dev, secret.stat().st_ino)
    (tmp_path / "link").symlink_to(outside / "sub")
    a, b = os.fsencode(media / "sub"), os.fsencode(tmp_path / "link")
    if libc.renameat2(at_fdcwd, a, at_fdcwd, b, rename_exchange) != 0:
        pytest.skip(f"renameat2 RENAME_EXCHANGE unsupported here (errno {ctypes.get_errno()})")
    stop = threading.Event()
    swaps = [1]

    def flip() -> None:
        while not stop.is_set():
            libc.renameat2(at_fdcwd, a, at_fdcwd, b, rename_exchange)
            swaps[0] += 1

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    read_inside = 0
    try:
        for _ in range(400):
            try:
                ready = open_media(media / "sub" / "clip.mp4", [media])
            except MediaError:
                continue
            with ready:
                handle = ready.handle
                st_ = os.fstat(handle.fileno())
                assert (st_.st_dev, st_.st_ino) != secret_id, "the outside file was opened"
                handle.seek(0)
                assert handle.read() == inside_bytes
                read_inside += 1
    finally:
        stop.set()
        thread.join()
    assert swaps[0] > 100, swaps  # the race really ran


# ------------------------------------------------------------------------------------------------
# identity: changes between check, upload and the end of the upload


def test_verify_unchanged_detects_rewrites(media: Path) -> None:
    path = put(media, "video.mp4")
    local = check_path(path, [media])
    local.verify_unchanged()
    path.write_bytes(path.read_bytes() + b"x")
    refused("FILE_CHANGED", local.verify_unchanged)
    refused("FILE_CHANGED", local.open_checked)


def test_verify_unchanged_detects_touch_with_same_size(media: Path) -> None:
    path = put(media, "video.mp4")
    local = check_path(path, [media])
    st_ = os.stat(path)
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000_000))
    refused("FILE_CHANGED", local.verify_unchanged)


def test_verify_unchanged_detects_replacement_and_removal(media: Path) -> None:
    path = put(media, "video.mp4")
    local = check_path(path, [media])
    st_ = os.stat(path)
    other = put(media, "video.mp4", "other.mp4")
    os.utime(other, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # same size and mtime, new inode
    os.replace(other, path)
    err = refused("FILE_CHANGED", local.verify_unchanged)
    assert "written" in err.next_step
    path.unlink()
    refused("FILE_CHANGED", local.verify_unchanged)
    refused("FILE_CHANGED", local.open_checked)


@posix_only
def test_open_checked_refuses_a_fifo_or_link_swapped_in(media: Path) -> None:
    path = put(media, "video.mp4")
    local = check_path(path, [media])
    path.unlink()
    os.mkfifo(path)
    exc = in_thread(local.open_checked)
    assert isinstance(exc, MediaError) and exc.code == "FILE_CHANGED"
    path.unlink()
    path.symlink_to(put(media, "video.mp4", "v2.mp4"))
    refused("FILE_CHANGED", local.open_checked)


def test_open_checked_reads_the_file(media: Path) -> None:
    path = put(media, "image.gif")
    local = check_path(path, [media])
    with local.open_checked() as handle:
        assert handle.read() == path.read_bytes()


# ------------------------------------------------------------------------------------------------
# 2. sniffing, extensions, size limits


@pytest.mark.parametrize("name", [*GOOD, "png_named.jpg"])
def test_sniff_fixtures(name: str) -> None:
    head = (FIXTURES / name).read_bytes()[:4096]
    expected = "image/png" if name == "png_named.jpg" else EXPECTED[name][0]
    assert sniff(head) == expected


def test_sniff_covers_all_seven_types() -> None:
    seen = {sniff((FIXTURES / n).read_bytes()[:4096]) for n in GOOD}
    assert seen == set(SUPPORTED_TYPES)
    assert len(SUPPORTED_TYPES) == 7
    assert set(EXTENSIONS.values()) == set(SUPPORTED_TYPES)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",
        b"hello world, this is text",
        b"\x1a\x45\xdf\xa3\x93\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02",  # Matroska
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
        b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42\x00\x00\x00\x00",
        b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x02\x00isom",
        b"RIFF\x24\x00\x00\x00AVI LIST",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"GIF88a",
        b"%PDF-1.7",
    ],
)
def test_sniff_rejects_other_formats(head: bytes) -> None:
    assert sniff(head) is None


def test_sniff_quicktime_without_ftyp_and_64bit_ftyp() -> None:
    assert sniff(b"\x00\x00\x03\x00moov\x00\x00\x00\x6cmvhd") == "video/quicktime"
    assert sniff(b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat") == "video/quicktime"
    assert sniff(b"\x00\x00\x00\x01ftyp\x00\x00\x00\x00\x00\x00\x00\x1cqt  \x00\x00\x00\x00") == "video/quicktime"
    assert sniff(b"\x00\x00\x00\x01ftyp\x00\x00\x00\x00\x00\x00\x00\x1cisom\x00\x00\x00\x00") == "video/mp4"
    assert sniff(b"\x00\x00\x00\x1cftypmp42\x00\x00\x00\x00mp42isom") == "video/mp4"
    assert sniff(b"\x00\x00\x00\x04moov") is None  # impossible size


def test_extension_mismatch_names_the_real_type(media: Path) -> None:
    path = put(media, "png_named.jpg")
    err = refused("EXTENSION_MISMATCH", detect_type, check_path(path, [media]))
    assert "image/png" in err.message and "'.jpg'" in err.message
    assert "'.png'" in err.next_step and "png_named.png" in err.next_step
    assert err.details["detected"] == "image/png"


@pytest.mark.parametrize(
    ("fixture", "name", "fragment"),
    [
        ("video.webm", "clip.mkv", "not one PostQued knows"),
        ("video.webm", "clip.mp4", "says video/mp4"),
        ("image.png", "clip.mov", "says video/quicktime"),
        ("image.jpg", "photo", "has no extension"),
        ("lossy.webp", "photo.png", "says image/png"),
    ],
)
def test_extension_mismatch_cases(media: Path, fixture: str, name: str, fragment: str) -> None:
    err = refused("EXTENSION_MISMATCH", detect_type, check_path(put(media, fixture, name), [media]))
    assert fragment in err.message


@pytest.mark.parametrize(
    ("fixture", "name", "mime", "sent_as"),
    [
        ("video.mp4", "CLIP.MP4", "video/mp4", "CLIP.MP4"),
        ("video.mp4", "clip.m4v", "video/mp4", "clip.m4v"),
        ("image.jpg", "photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("image.jpg", "P.JPG", "image/jpeg", "P.JPG"),
        # issue 15.1: what phones and editors write, which ffprobe reads as the same format
        ("image.jpg", "saved.jfif", "image/jpeg", "saved.jpg"),
        ("image.jpg", "old.JPE", "image/jpeg", "old.jpg"),
        ("video.mov", "qt_branded.mp4", "video/mp4", "qt_branded.mp4"),  # ftyp 'qt  ' named .mp4
        ("video.mp4", "iso_branded.mov", "video/quicktime", "iso_branded.mov"),  # ftyp 'isom' named .mov
    ],
)
def test_extension_variants_accepted(media: Path, fixture: str, name: str, mime: str, sent_as: str) -> None:
    assert detect_type(check_path(put(media, fixture, name), [media])) == mime
    with open_media(media / name, [media]) as ready:
        assert (ready.info.mime_type, ready.filename) == (mime, sent_as)
        assert (ready.info.width, ready.info.height) == EXPECTED[fixture][1:3]


def test_unsupported_content_lists_the_seven_types(media: Path) -> None:
    write(media / "notes.mp4", b"just some text\n" * 10)
    err = refused("UNSUPPORTED_MEDIA_TYPE", detect_type, check_path(media / "notes.mp4", [media]))
    for label in ("MP4", "MOV", "WebM", "JPEG", "PNG", "WebP", "GIF"):
        assert label in err.message
    assert err.details["supported"] == list(SUPPORTED_TYPES)
    write(media / "photo.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    err = refused("UNSUPPORTED_MEDIA_TYPE", detect_type, check_path(media / "photo.jpg", [media]))
    assert "HEIC" in err.message


def test_check_size_limits() -> None:
    check_size("video/mp4", MAX_VIDEO_BYTES)
    check_size("image/png", MAX_IMAGE_BYTES)
    assert MAX_VIDEO_BYTES == 4 * 1024**3 and MAX_IMAGE_BYTES == 20 * 1024**2
    err = refused("FILE_TOO_LARGE", check_size, "video/webm", MAX_VIDEO_BYTES + 1)
    assert "videos" in err.message and err.details["limit"] == MAX_VIDEO_BYTES
    err = refused("FILE_TOO_LARGE", check_size, "image/gif", MAX_IMAGE_BYTES + 1)
    assert "images" in err.message
    check_size("image/jpeg", 100, max_image_bytes=100)
    refused("FILE_TOO_LARGE", check_size, "image/jpeg", 101, max_image_bytes=100)
    refused("UNSUPPORTED_MEDIA_TYPE", check_size, "video/x-matroska", 1)


def test_inspect_file_applies_lowered_limits(media: Path) -> None:
    path = put(media, "video.mp4")
    refused("FILE_TOO_LARGE", inspect_file, path, [media], max_video_bytes=1000)
    image = put(media, "image.jpg")
    refused("FILE_TOO_LARGE", inspect_file, image, [media], max_image_bytes=1000)
    assert inspect_file(image, [media], max_video_bytes=1000)[1].width == 64


# ------------------------------------------------------------------------------------------------
# 3. probing: exact values


@pytest.mark.parametrize("name", GOOD)
def test_probe_fixture_exact(name: str) -> None:
    mime, width, height, duration_ms, rotation = EXPECTED[name]
    local, info = inspect_file(FIXTURES / name, [FIXTURES])
    assert info == MediaInfo(
        mime_type=mime,
        media_type="video" if mime.startswith("video/") else "image",
        size=local.size,
        width=width,
        height=height,
        duration_ms=duration_ms,
        rotation=rotation,
    )


def test_demo_sample_asset() -> None:
    assert SAMPLE.stat().st_size <= 60 * 1024
    # ffprobe: h264 360x640, duration=3.000000
    _, info = inspect_file(SAMPLE, [SAMPLE.parent])
    assert (info.mime_type, info.width, info.height, info.duration_ms, info.rotation) == (
        "video/mp4",
        360,
        640,
        3000,
        0,
    )


def test_quicktime_without_ftyp(tmp_path: Path) -> None:
    data = (FIXTURES / "video.mov").read_bytes()
    boxes = mp4_boxes(data)
    assert boxes[0][0] == b"ftyp"
    stripped = data[8 + len(boxes[0][1]) :]
    _, info = inspect_file(write(tmp_path / "old.mov", stripped), [tmp_path])
    assert (info.mime_type, info.width, info.height, info.duration_ms) == ("video/quicktime", 256, 144, 1500)


@pytest.mark.parametrize("name", ["video.mp4", "moov_at_end.mp4", "video.mov"])
def test_64bit_box_sizes_and_size_zero(tmp_path: Path, name: str) -> None:
    boxes = mp4_boxes((FIXTURES / name).read_bytes())
    large = b"".join(struct.pack(">I4sQ", 1, t, 16 + len(p)) + p for t, p in boxes[:-1])
    last_type, last_payload = boxes[-1]
    data = large + struct.pack(">I4s", 0, last_type) + last_payload  # the last box runs to the end
    path = write(tmp_path / name, data)
    _, info = inspect_file(path, [tmp_path])
    assert (info.mime_type, info.width, info.height, info.duration_ms) == (
        EXPECTED[name][0],
        EXPECTED[name][1],
        EXPECTED[name][2],
        EXPECTED[name][3],
    )


@pytest.mark.parametrize(
    ("matrix", "rotation", "dims"),
    [
        ((0, 1, -1, 0), 90, (180, 320)),
        ((-1, 0, 0, -1), 180, (320, 180)),
        ((0, -1, 1, 0), 270, (180, 320)),
        # mirrored: read like ffmpeg's av_display_rotation_get (first row only); the size is unchanged
        ((-1, 0, 0, 1), 180, (320, 180)),
        ((1, 0, 0, -1), 0, (320, 180)),
        ((1, 0, 0, 1), 0, (320, 180)),
    ],
)
def test_rotation_from_the_track_matrix(
    tmp_path: Path, matrix: tuple[int, int, int, int], rotation: int, dims: tuple[int, int]
) -> None:
    data = with_tkhd_matrix((FIXTURES / "rotated.mp4").read_bytes(), *matrix)
    info = probe(local_for(write(tmp_path / "r.mp4", data)), "video/mp4")
    assert (info.rotation, (info.width, info.height)) == (rotation, dims)


def test_duration_falls_back_when_mvhd_has_none(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "video.mp4").read_bytes())
    at = data.index(b"mvhd") + 4
    for unknown in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"):
        data[at + 16 : at + 20] = unknown
        info = probe(local_for(write(tmp_path / "v.mp4", bytes(data))), "video/mp4")
        assert info.duration_ms == 2000  # from the video track's mdhd (timescale 10240, 20480 ticks)


def test_fragmented_mp4_without_tfdt_sums_the_fragments(tmp_path: Path) -> None:
    data = (FIXTURES / "fragmented.mp4").read_bytes()
    assert data.count(b"tfdt") == 4
    data = data.replace(b"tfdt", b"skip")  # like Smooth Streaming (ismv) files: no decode times
    info = probe(local_for(write(tmp_path / "f.mp4", data)), "video/mp4")
    assert (info.width, info.height, info.duration_ms) == (160, 90, 2000)


def test_audio_only_mp4_says_it_has_no_video_track(tmp_path: Path) -> None:
    """Issue 15.4: it plays fine, so never "damaged"; the same answer as for an .m4a, with the fix."""
    err = refused("UNSUPPORTED_MEDIA_TYPE", inspect_file, put(tmp_path, "audio_only.mp4"), [tmp_path])
    assert "no video track, only audio" in err.message and "damaged" not in str(err)
    assert "ffmpeg -loop 1" in err.next_step
    data = (FIXTURES / "video.mp4").read_bytes().replace(b"vide", b"soun")  # a video track relabelled as sound
    err = refused("UNSUPPORTED_MEDIA_TYPE", probe, local_for(write(tmp_path / "a.mp4", data)), "video/mp4")
    assert "no video track" in err.message


def test_mp4_with_no_track_at_all_is_damaged(tmp_path: Path) -> None:
    data = (FIXTURES / "video.mp4").read_bytes().replace(b"vide", b"meta")
    err = refused("PROBE_FAILED", probe, local_for(write(tmp_path / "a.mp4", data)), "video/mp4")
    assert "no video track" in err.message


@pytest.mark.parametrize("name", ["video.mp4", "moov_at_end.mp4", "fragmented.mp4", "per_frame.mp4", "video.mov"])
def test_mp4_with_junk_after_its_last_box_is_accepted(tmp_path: Path, name: str) -> None:
    """Issue 15.5: ffmpeg plays a movie followed by bytes that are not a box; so does the prober."""
    for junk in (b"\x00\x01\x02 junk from a bad copy \xff\xfe", bytes(9), b"\xde\xad\xbe\xef" * 1000):
        path = write(tmp_path / name, (FIXTURES / name).read_bytes() + junk)
        _, info = inspect_file(path, [tmp_path])
        assert (info.width, info.height, info.duration_ms) == EXPECTED[name][1:4], junk


def test_jpeg_without_its_end_marker_is_accepted(tmp_path: Path) -> None:
    """Issue 15.5: a JPEG whose EOI is missing (the scan runs to the end of the file) decodes in ffmpeg."""
    data = (FIXTURES / "image.jpg").read_bytes()
    assert data.endswith(b"\xff\xd9")
    for cut in (data[:-2], data[:-1]):
        _, info = inspect_file(write(tmp_path / "no_eoi.jpg", cut), [tmp_path])
        assert (info.width, info.height) == (64, 48)
    headers_only = data[: data.index(b"\xff\xda")]  # no image data at all is still refused
    refused("PROBE_FAILED", inspect_file, write(tmp_path / "no_scan.jpg", headers_only), [tmp_path])


def test_gif_without_its_trailer_is_accepted(tmp_path: Path) -> None:
    """Issue 15.5: a GIF whose last image is complete but whose trailer byte is missing decodes in ffmpeg."""
    data = (FIXTURES / "image.gif").read_bytes()
    assert data.endswith(b"\x3b")
    _, info = inspect_file(write(tmp_path / "no_trailer.gif", data[:-1]), [tmp_path])
    assert (info.width, info.height) == (33, 17)
    refused("PROBE_FAILED", inspect_file, write(tmp_path / "cut.gif", data[:-3]), [tmp_path])  # inside the image


def test_webm_display_size_is_what_players_show(tmp_path: Path) -> None:
    """Issue 15.6: the stored 240x180 with DisplayWidth 320 is shown 320x180; as a display aspect ratio too."""
    data = (FIXTURES / "anamorphic.webm").read_bytes()
    at = data.index(b"\x54\xb0")  # DisplayWidth
    assert data[at + 2 : at + 5] == b"\x82\x01\x40"  # 2 bytes: 320
    info = probe(local_for(write(tmp_path / "a.webm", data)), "video/webm")
    assert (info.width, info.height) == (320, 180)
    # DisplayUnit 3 (display aspect ratio 16:9) instead of pixels: the stored height at that ratio. Same
    # length: DisplayWidth 16, DisplayHeight 9, and the Colour element becomes DisplayUnit 3 plus a Void.
    ratio = data.replace(b"\x54\xb0\x82\x01\x40", b"\x54\xb0\x82\x00\x10").replace(
        bytes.fromhex("54ba81b4 55b088 55b18100 55b98102"), bytes.fromhex("54ba8109 54b28103 ec850000000000")
    )
    assert len(ratio) == len(data) and ratio != data
    info = probe(local_for(write(tmp_path / "r.webm", ratio)), "video/webm")
    assert (info.width, info.height) == (320, 180)


@pytest.mark.parametrize(
    ("roll", "rotation", "dims"),
    [(-90.0, 90, (120, 160)), (90.0, 270, (120, 160)), (180.0, 180, (160, 120)), (0.0, 0, (160, 120))],
)
def test_webm_rotation_from_projection_pose_roll(
    tmp_path: Path, roll: float, rotation: int, dims: tuple[int, int]
) -> None:
    """Issue 15.7: read like ffprobe reads it (rotation=-90 for roll -90 is 90 degrees clockwise)."""
    data = (FIXTURES / "rotated_cw90.webm").read_bytes()
    at = data.index(b"\x76\x75\x84")  # ProjectionPoseRoll, a 4-byte float
    data = data[: at + 3] + struct.pack(">f", roll) + data[at + 7 :]
    info = probe(local_for(write(tmp_path / "r.webm", data)), "video/webm")
    assert (info.rotation, (info.width, info.height)) == (rotation, dims)
    pitched = data.replace(b"\x76\x71\x81\x00", b"\x76\x71\x81\x01")  # equirectangular: not a flat turn
    assert probe(local_for(write(tmp_path / "p.webm", pitched)), "video/webm").rotation == 0


def test_webm_unknown_sizes(tmp_path: Path) -> None:
    data = (FIXTURES / "video.webm").read_bytes()
    data = ebml_unknown_size(data, b"\x18\x53\x80\x67")  # Segment
    data = ebml_unknown_size(data, b"\x15\x49\xa9\x66")  # Info
    data = ebml_unknown_size(data, b"\x16\x54\xae\x6b")  # Tracks
    _, info = inspect_file(write(tmp_path / "live.webm", data), [tmp_path])
    assert (info.width, info.height, info.duration_ms) == (160, 120, 1000)


def test_webm_without_duration(tmp_path: Path) -> None:
    data = (FIXTURES / "vp8.webm").read_bytes()
    at = data.index(b"\x44\x89\x88")  # Duration, 8-byte float
    data = data[:at] + b"\x44\x8a" + data[at + 2 :]  # now an unknown element, skipped
    info = probe(local_for(write(tmp_path / "rec.webm", data)), "video/webm")
    assert (info.width, info.height, info.duration_ms) == (144, 96, None)


@pytest.mark.parametrize(
    ("orientation", "order", "rotation", "dims"),
    [(1, b"MM", 0, (64, 48)), (3, b"II", 180, (64, 48)), (6, b"MM", 90, (48, 64)), (8, b"II", 270, (48, 64))],
)
def test_jpeg_exif_orientation(
    tmp_path: Path, orientation: int, order: bytes, rotation: int, dims: tuple[int, int]
) -> None:
    data = (FIXTURES / "image.jpg").read_bytes()
    data = data[:2] + exif_app1(orientation, order) + data[2:]
    info = probe(local_for(write(tmp_path / "p.jpg", data)), "image/jpeg")
    assert (info.rotation, (info.width, info.height)) == (rotation, dims)


def test_jpeg_with_broken_exif_still_probes(tmp_path: Path) -> None:
    data = (FIXTURES / "image.jpg").read_bytes()
    junk = b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0"
    data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + data[2:]
    info = probe(local_for(write(tmp_path / "p.jpg", data)), "image/jpeg")
    assert (info.width, info.height, info.rotation) == (64, 48, 0)


def test_probe_unknown_mime(media: Path) -> None:
    local = check_path(put(media, "video.mp4"), [media])
    refused("UNSUPPORTED_MEDIA_TYPE", probe, local, "video/x-msvideo")


@posix_only
def test_probe_reads_little_of_a_sparse_5gib_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moov after a 5 GiB mdat (64-bit size): the probe seeks, it does not read the media data."""
    boxes = dict(mp4_boxes((FIXTURES / "video.mp4").read_bytes()))
    gap = 5 * 1024**3
    path = tmp_path / "big.mp4"
    with path.open("wb") as f:
        f.write(struct.pack(">I4s", 8 + len(boxes[b"ftyp"]), b"ftyp") + boxes[b"ftyp"])
        f.write(struct.pack(">I4sQ", 1, b"mdat", 16 + gap))
        f.seek(gap, io.SEEK_CUR)
        f.write(struct.pack(">I4s", 8 + len(boxes[b"moov"]), b"moov") + boxes[b"moov"])
    if os.stat(path).st_blocks * 512 > 64 * 1024**2:
        pytest.skip("this file system does not keep sparse files sparse")
    read = [0]

    class Counting(io.FileIO):
        def readinto(self, buffer: Any) -> int | None:
            n = super().readinto(buffer)
            read[0] += n or 0
            return n

    def counting_open(self: LocalFile) -> io.BufferedReader:
        return io.BufferedReader(Counting(self.path, "rb"), 64 * 1024)

    local = check_path(path, [tmp_path])
    assert local.size > 5 * 1024**3
    refused("FILE_TOO_LARGE", check_size, detect_type(local), local.size)
    monkeypatch.setattr(LocalFile, "open_checked", counting_open)
    info = probe(local, "video/mp4")
    assert (info.width, info.height, info.duration_ms) == (320, 240, 2000)
    assert read[0] < 1024 * 1024


# ------------------------------------------------------------------------------------------------
# HEIC/HEIF photos become an upright JPEG without location data (issue 15.1)


def test_heic_photo_becomes_an_upright_jpeg_without_location(media: Path) -> None:
    """photo.heic: 64x48 stored, EXIF orientation 6 (turn 90 degrees clockwise), a GPS position, Make."""
    from PIL import Image

    path = put(media, "photo.heic", "IMG_0001.HEIC")
    original = path.read_bytes()
    with open_media(path, [media]) as ready:
        assert ready.converted_from == "image/heic"
        assert ready.original_sha256 == hashlib.sha256(original).hexdigest()
        assert (ready.info.mime_type, ready.filename) == ("image/jpeg", "IMG_0001.jpg")
        assert (ready.info.width, ready.info.height, ready.info.rotation) == (48, 64, 0)  # upright, no EXIF turn
        ready.handle.seek(0)
        jpeg = ready.handle.read()
    assert ready.info.size == len(jpeg) and jpeg.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(jpeg)) as image:
        assert (image.format, image.size) == ("JPEG", (48, 64))
        exif = image.getexif()
        assert exif.get_ifd(0x8825) == {} and 0x8825 not in exif  # no location
        assert 0x0112 not in exif  # the pixels are upright: no orientation left to apply twice
        assert exif.get(0x010F) == "TestPhone"  # the rest of the metadata is kept
        import pillow_heif
        from PIL import ImageChops, ImageStat

        pillow_heif.register_heif_opener()
        with Image.open(path) as heif:  # the decoder's own upright picture: the JPEG is a copy of it
            upright, jpeg_rgb = heif.convert("RGB"), image.convert("RGB")
            same = sum(ImageStat.Stat(ImageChops.difference(upright, jpeg_rgb)).mean)
            turned = sum(ImageStat.Stat(ImageChops.difference(upright.rotate(180), jpeg_rgb)).mean)
        assert same * 3 < turned, (same, turned)
    assert path.read_bytes() == original  # the original is untouched


def test_heic_without_the_converter_names_the_install_command(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if it were not installed
    err = refused("HEIC_CONVERTER_MISSING", inspect_file, put(media, "photo.heic"), [media])
    assert "pip install 'pillow-heif>=1.0'" in err.next_step


def test_damaged_heic_is_refused_as_damaged(media: Path) -> None:
    data = (FIXTURES / "photo.heic").read_bytes()
    err = refused("PROBE_FAILED", inspect_file, write(media / "cut.heic", data[: len(data) // 2]), [media])
    assert "HEIC" in err.message


def test_avif_is_not_taken_for_heic(media: Path) -> None:
    write(media / "a.avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64))
    err = refused("UNSUPPORTED_MEDIA_TYPE", inspect_file, media / "a.avif", [media])
    assert "AVIF" in err.message


@posix_only
@pytest.mark.parametrize("index", [False, True])
def test_fragmented_mp4_probe_reads_box_headers_only(tmp_path: Path, index: bool) -> None:
    """Issue 15.2: one walk, 16-byte header reads, the last fragment parsed; with an mfra index, a jump to it.

    2,000 fragments of 256 KiB (~500 MiB, sparse). The previous prober read about half the file in 64 KiB
    buffers (505 MB for a 1.08 GB file).
    """
    from bench.probe import CountingFile, make_fragmented_mp4

    fragments = 2000
    path = tmp_path / "long.mp4"
    duration = make_fragmented_mp4(path, fragments, 256 * 1024, index=index)
    local = check_path(path, [tmp_path])
    with CountingFile(path) as handle:
        info = probe(local, "video/mp4", handle)
    assert (info.width, info.height, info.duration_ms) == (160, 90, duration)
    if index:
        assert handle.reads < 100 and handle.bytes < 4096, (handle.reads, handle.bytes)
    else:
        assert handle.reads <= 2 * fragments + 60, handle.reads  # a moof and an mdat header per fragment
        assert handle.bytes <= 16 * 2 * fragments + 8192, handle.bytes


@posix_only
def test_many_fragments_past_the_byte_budget_is_a_limit_not_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15.3: the work is bounded by bytes read (and time), not by box count; hitting it says so."""
    from bench.probe import make_fragmented_mp4
    from postqued.media import reader

    path = tmp_path / "per_frame_long.mp4"
    make_fragmented_mp4(path, 20_000, 4096)  # 40,000 top-level boxes, ~320 KB of box headers
    local = check_path(path, [tmp_path])
    assert probe(local, "video/mp4").duration_ms == 2_000_000  # within the real budget: read, not refused
    monkeypatch.setattr(reader, "PROBE_BYTE_BUDGET", 64 * 1024)
    err = refused("PROBE_LIMIT", probe, local, "video/mp4")
    assert "not damage" in err.message and "damaged" not in str(err)
    assert "-movflags +faststart" in err.next_step


def test_probe_time_budget_is_a_limit(tmp_path: Path) -> None:
    from bench.probe import make_fragmented_mp4
    from postqued.media.isobmff import probe_isobmff
    from postqued.media.reader import LimitReached, Reader

    path = tmp_path / "f.mp4"
    make_fragmented_mp4(path, 2000, 1024)
    ticks = itertools.count()
    with open(path, "rb", buffering=0) as fh:
        r = Reader(fh, path.stat().st_size, seconds=5.0, clock=lambda: float(next(ticks)))  # 1 s per look
        with pytest.raises(LimitReached, match="more than 5 seconds"):
            probe_isobmff(r)
    assert r.reads < 4000  # stopped before the end: the clock is looked at every 256 reads


# ------------------------------------------------------------------------------------------------
# 3. probing: damaged input is PROBE_FAILED, never another exception


def _decoders_accept_cut(name: str, data: bytes, cut: int) -> bool:
    """A JPEG cut inside its image data (no end marker), a GIF missing only its trailer and a fragmented MP4
    cut inside its closing 'mfra' index (which players do not need) still decode."""
    if name in ("fragmented.mp4", "per_frame.mp4"):
        return cut > data.rindex(b"mfra") - 4
    if name == "image.jpg":
        sos = data.index(b"\xff\xda")
        return cut > sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    return name == "image.gif" and cut == len(data) - 1


@pytest.mark.parametrize("name", GOOD)
def test_truncated_fixtures_fail_cleanly(tmp_path: Path, name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    mime = EXPECTED[name][0]
    offsets = sorted(
        {1, 2, 5, 8, 11, 12, 16, 20, 33, len(data) // 4, len(data) // 2, 3 * len(data) // 4, len(data) - 1}
    )
    for cut in offsets:
        path = write(tmp_path / f"cut{cut}{Path(name).suffix}", data[:cut])
        if _decoders_accept_cut(name, data, cut):
            assert probe(local_for(path), mime).width == EXPECTED[name][1]
            continue
        with pytest.raises(MediaError) as info:
            probe(local_for(path), mime)
        assert info.value.code == "PROBE_FAILED", (cut, str(info.value))
        assert repr(str(path.resolve())) in info.value.message
        with pytest.raises(MediaError):  # the whole pipeline refuses it too (type or probe)
            inspect_file(path, [tmp_path])


@pytest.mark.parametrize("name", GOOD)
def test_byte_flips_never_raise_anything_else(tmp_path: Path, name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    mime = EXPECTED[name][0]
    rng = random.Random(f"flips-{name}")
    path = tmp_path / f"flip{Path(name).suffix}"
    header_span = min(len(data), 600)  # most flips land in the headers the parsers read
    for i in range(60):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(header_span) if i % 3 else rng.randrange(len(mutated))
            mutated[at] = rng.randrange(256)
        write(path, bytes(mutated))
        try:
            info = probe(local_for(path), mime)
        except MediaError as exc:
            assert exc.code == "PROBE_FAILED", str(exc)
        else:
            assert info.width >= 1 and info.height >= 1


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=examples(300, 60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mime=st.sampled_from(SUPPORTED_TYPES),
    prefix_len=st.integers(min_value=0, max_value=80),
    tail=st.binary(min_size=0, max_size=300),
)
def test_fuzz_probe_only_raises_media_errors(fuzz_dir: Path, mime: str, prefix_len: int, tail: bytes) -> None:
    """Real header bytes of the right type followed by arbitrary bytes."""
    source = next(n for n in GOOD if EXPECTED[n][0] == mime)
    data = (FIXTURES / source).read_bytes()[:prefix_len] + tail
    if not data:
        return
    path = fuzz_dir / "fuzz.bin"
    path.write_bytes(data)
    try:
        info = probe(local_for(path), mime)
    except MediaError as exc:
        assert exc.code == "PROBE_FAILED"
    else:
        assert info.width >= 1 and info.height >= 1
