"""Path policy: which local files may be uploaded, and opening them so that what is read is what was checked."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple, NoReturn

from postqued.media.kinds import fail


class FileIdentity(NamedTuple):
    """What must stay the same between the check, the upload and the end of the upload."""

    st_dev: int
    st_ino: int
    st_size: int
    st_mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the check must not block the open
    | getattr(os, "O_NOFOLLOW", 0)  # nor a symlink swapped in for the (already resolved) final name
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# Folders between an allowed folder and the file are opened one by one, each relative to the one before and
# never through a symbolic link, so a folder swapped for a link mid-check cannot lead outside (issue 12.3).
_DIR_FLAGS: Final = (
    os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
_WALKS: Final = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY") and hasattr(os, "O_NOFOLLOW")

_CHANGED_NEXT_STEP: Final = (
    "Wait until the file is completely written and no longer being edited or replaced, then call the tool again."
)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file that passed the path policy.

    ``path`` is fully resolved and lies below ``root``, the resolved allowed folder it was found in;
    ``requested`` is the path as the caller wrote it (for messages only).
    """

    path: Path
    size: int
    identity: FileIdentity
    root: Path
    requested: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """The caller's path, quoted as data."""
        return repr(self.requested or str(self.path))

    def _changed(self, what: str) -> NoReturn:
        fail(f"{self.label} {what} after it was checked.", "FILE_CHANGED", _CHANGED_NEXT_STEP)

    def verify_unchanged(self, handle: BinaryIO | None = None) -> None:
        """Raise ``FILE_CHANGED`` unless the file is still the same inode with the same size and mtime.

        With ``handle`` (from ``open_checked``) the open descriptor is checked too: it is what is read.
        """
        try:
            st = os.lstat(self.path)
            opened = os.fstat(handle.fileno()) if handle is not None else st
        except OSError:
            self._changed("was removed, renamed or became unreadable")
        if not stat.S_ISREG(st.st_mode):
            self._changed("was replaced by something that is not a regular file")
        if FileIdentity.of(st) != self.identity or FileIdentity.of(opened) != self.identity:
            self._changed("was modified or replaced (its size, modification time or inode changed)")

    def _open_fd(self) -> int:
        if not _WALKS:  # no openat(): the final component alone is guarded, then the identity
            return os.open(self.path, _OPEN_FLAGS)
        parts = self.path.relative_to(self.root).parts
        if not parts:
            raise IsADirectoryError(self.path)
        fd = os.open(self.root, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))  # the configured folder itself
        try:
            for name in parts[:-1]:
                below = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = below
            return os.open(parts[-1], _OPEN_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)

    def open_checked(self) -> BinaryIO:
        """Open the file for reading and prove that the opened file is the one that was checked.

        The file is reached from ``root`` one component at a time, each opened relative to the folder
        before it with ``O_NOFOLLOW`` (folders also ``O_DIRECTORY``): a folder or the file swapped for a
        symbolic link at any moment makes the open fail instead of leading outside the allowed folder.
        Opening never blocks (``O_NONBLOCK``), and the opened descriptor's ``fstat`` must match
        ``identity``. Read only from the returned handle; never open the path again.
        """
        try:
            fd = self._open_fd()
        except PermissionError:
            fail(
                f"{self.label} cannot be opened: permission denied.",
                "PATH_NOT_READABLE",
                "Make the file readable by the user running the server (or copy it somewhere readable).",
            )
        except OSError:
            self._changed("could not be opened (it was removed, renamed or replaced)")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._changed("was replaced by something that is not a regular file")
            if FileIdentity.of(st) != self.identity:
                self._changed("was modified or replaced (its size, modification time or inode changed)")
            return open(fd, "rb", buffering=0, closefd=True)  # unbuffered: every read is exactly what was asked
        except BaseException:
            os.close(fd)
            raise


@dataclass(frozen=True, slots=True)
class _Root:
    configured: Path  # absolute, normalized, as configured (not resolved)
    resolved: Path


def _roots(allowed_dirs: Sequence[str | os.PathLike[str]]) -> list[_Root]:
    roots: list[_Root] = []
    for entry in allowed_dirs:
        configured = Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(entry)))))
        try:
            resolved = Path(os.path.realpath(configured))
        except (OSError, ValueError):
            continue
        roots.append(_Root(configured, resolved))
    return roots


def _folders_text(roots: Sequence[_Root]) -> str:
    if not roots:
        return "none are configured"
    return ", ".join(repr(str(r.configured)) for r in roots)


def _add_folder_hint() -> str:
    return f"add its folder to POSTQUED_MEDIA_DIRS (folders separated by {os.pathsep!r}) and restart the server"


def _cwd_text() -> str:
    try:
        return repr(os.getcwd())
    except OSError:
        return "which no longer exists"


def _is_text(name: str) -> bool:
    """False for names holding undecodable bytes (surrogate escapes) or lone surrogates."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_hidden_name(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def _hidden_below(parts: tuple[str, ...], root_parts: tuple[str, ...]) -> list[str] | None:
    """Hidden names in ``parts`` below ``root_parts``; None when ``parts`` is not below the root."""
    if len(parts) < len(root_parts) or parts[: len(root_parts)] != root_parts:
        return None
    return [p for p in parts[len(root_parts) :] if _is_hidden_name(p)]


def _refuse_hidden(label: str, names: Sequence[str], roots: Sequence[_Root]) -> NoReturn:
    fail(
        f"{label} goes through a hidden file or folder ({', '.join(repr(n) for n in names)}); hidden "
        "names (starting with '.') are never uploaded.",
        "PATH_HIDDEN",
        "Copy the file to a visible folder inside an allowed media folder "
        f"({_folders_text(roots)}) and use that path; if the hidden folder itself holds your media, "
        f"{_add_folder_hint()}.",
    )


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def check_path(path: str | os.PathLike[str], allowed_dirs: Sequence[str | os.PathLike[str]]) -> LocalFile:
    """Apply the path policy and return the checked file; refusals raise ``MediaError``.

    ``~`` is expanded and a relative path is relative to the server's working directory. Codes:
    PATH_INVALID, PATH_OUTSIDE_MEDIA_DIRS, PATH_HIDDEN, PATH_NOT_FOUND, PATH_BROKEN_LINK,
    PATH_NOT_READABLE, PATH_IS_DIRECTORY, PATH_NOT_REGULAR_FILE, FILE_EMPTY, FILE_CHANGED.
    """
    raw = os.fspath(path)
    if isinstance(raw, bytes):  # tolerated at run time although the signature says str
        raw = os.fsdecode(raw)
    label = repr(raw)
    roots = _roots(allowed_dirs)
    folders = _folders_text(roots)
    if not raw.strip() or "\x00" in raw:
        fail(
            f"{label} is not a usable file path.",
            "PATH_INVALID",
            f"Pass the absolute path of a media file inside an allowed media folder ({folders}).",
        )
    try:
        given = Path(os.path.expanduser(raw))
        if not given.is_absolute():
            given = Path.cwd() / given
        lexical = Path(os.path.abspath(given))
        loose = Path(os.path.realpath(given))  # follows existing links, tolerates missing parts
    except (OSError, ValueError):
        fail(
            f"{label} cannot be resolved (the server's working directory may no longer exist).",
            "PATH_INVALID",
            f"Pass an absolute path inside an allowed media folder ({folders}).",
        )

    # Containment first, before anything reveals whether a path outside the folders exists.
    containing = [r for r in roots if loose.is_relative_to(r.resolved)]
    if not containing:
        fail(
            f"{label} is outside the allowed media folders.",
            "PATH_OUTSIDE_MEDIA_DIRS",
            f"Allowed media folders: {folders}. Move or copy the file into one of them, or {_add_folder_hint()}.",
        )

    # Hidden names: below the allowed folder, in the path as given and in the resolved path.
    given_checks = [
        h
        for r in roots
        for root in (r.configured, r.resolved)
        if (h := _hidden_below(lexical.parts, root.parts)) is not None
    ]
    given_hidden = min(given_checks, key=len) if given_checks else [n for n in (lexical.name,) if _is_hidden_name(n)]
    if given_hidden:
        _refuse_hidden(label, given_hidden, roots)
    resolved_checks = [h for r in containing if (h := _hidden_below(loose.parts, r.resolved.parts)) is not None]
    resolved_hidden = min(resolved_checks, key=len) if resolved_checks else []
    if resolved_hidden:
        _refuse_hidden(label, resolved_hidden, roots)

    try:
        real = Path(os.path.realpath(given, strict=True))
    except PermissionError:
        fail(
            f"{label} cannot be reached: permission denied on the file or one of its folders.",
            "PATH_NOT_READABLE",
            "Make the file and its folders readable by the user running the server, or copy the file "
            f"into an allowed media folder ({folders}).",
        )
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(given):
            fail(
                f"{label} is a symbolic link whose target does not exist.",
                "PATH_BROKEN_LINK",
                "Point the link at an existing file or pass the real file's path.",
            )
        fail(
            f"{label} does not exist.",
            "PATH_NOT_FOUND",
            "Check the spelling and pass an absolute path; relative paths are resolved against the "
            f"server's working directory ({_cwd_text()}). Allowed media folders: {folders}.",
        )
    except (OSError, RuntimeError, ValueError):  # ELOOP (symlink loop), name too long, ...
        fail(
            f"{label} cannot be resolved (a symbolic link loop or an over-long name).",
            "PATH_BROKEN_LINK",
            "Pass the real file's path instead of the link.",
        )
    if real != loose or not any(real.is_relative_to(r.resolved) for r in roots):
        # A link changed between the two resolutions.
        fail(f"{label} changed while it was being checked.", "FILE_CHANGED", _CHANGED_NEXT_STEP)
    if not _is_text(real.name):
        # The name is sent to PostQued as the file name; bytes that are not UTF-8 cannot be.
        fail(
            f"{label} has a file name that is not valid UTF-8 text.",
            "PATH_INVALID",
            "Rename the file (or copy it) to a name made of ordinary characters and pass that path.",
        )

    try:
        st = os.lstat(real)
    except OSError:
        fail(f"{label} changed while it was being checked.", "FILE_CHANGED", _CHANGED_NEXT_STEP)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        fail(
            f"{label} is a folder, not a file.",
            "PATH_IS_DIRECTORY",
            "Pass the path of one media file inside this folder.",
        )
    if not stat.S_ISREG(mode):
        kind = _special_kind(mode)
        fail(
            f"{label} is {kind}; only regular files can be uploaded.",
            "PATH_NOT_REGULAR_FILE",
            "Save the media to a regular file inside an allowed media folder and pass that path.",
        )
    if st.st_size == 0:
        fail(
            f"{label} is empty (0 bytes).",
            "FILE_EMPTY",
            "Wait until the file has been completely written (or re-export it), then call the tool again.",
        )
    root = max((r.resolved for r in roots if real.is_relative_to(r.resolved)), key=lambda p: len(p.parts))
    local = LocalFile(path=real, size=st.st_size, identity=FileIdentity.of(st), root=root, requested=raw)
    with local.open_checked():  # readable, and still the file that was checked
        pass
    return local
