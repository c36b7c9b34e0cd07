"""The sandbox's object storage: presigned URLs, streamed writes to a temp folder, sniffing.

Bytes go straight to disk as they arrive and are hashed on the way, so memory stays flat for any size.
An object appears only once a PUT has completed (write to a temp file, then rename), so a reset or short
PUT leaves nothing behind and never damages an earlier object under the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import struct
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

HEAD_BYTES = 64
STORAGE_PREFIX = "/_storage/"  # the simulator's own storage endpoint (not a PostQued route)


@dataclass(frozen=True)
class StoredObject:
    key: str
    path: Path
    size: int
    sha256: str
    content_type: str
    head: bytes


class ObjectWriter:
    """One PUT in progress: bytes go to a temp file and into a running hash."""

    def __init__(self, storage: Storage, key: str, content_type: str) -> None:
        self._storage = storage
        self.key = key
        self.content_type = content_type
        self._tmp = storage.root / f"tmp-{uuid.uuid4().hex}"
        self._file: BinaryIO = open(self._tmp, "wb", buffering=1024 * 1024)  # noqa: SIM115 (closed in commit/abort)
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._file.write(chunk)
        self._hash.update(chunk)
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        self.size += len(chunk)

    def commit(self) -> StoredObject:
        self._file.close()
        final = self._storage.path_for(self.key)
        os.replace(self._tmp, final)
        obj = StoredObject(self.key, final, self.size, self._hash.hexdigest(), self.content_type, bytes(self._head))
        self._storage.objects[self.key] = obj
        return obj

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class Storage:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="postqued-sandbox-"))
        self.objects: dict[str, StoredObject] = {}
        self._secret = secrets.token_bytes(32)

    def path_for(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    def signature(self, key: str, content_type: str, expires: int) -> str:
        message = f"PUT\n{key}\n{content_type}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, key: str, content_type: str, expires: int, signature: str) -> bool:
        return hmac.compare_digest(self.signature(key, content_type, expires), signature)

    def presigned_url(self, base_url: str, key: str, content_type: str, expires: int) -> str:
        sig = self.signature(key, content_type, expires)
        return f"{base_url}{STORAGE_PREFIX}{quote(key)}?expires={expires}&signature={sig}"

    def writer(self, key: str, content_type: str) -> ObjectWriter:
        return ObjectWriter(self, key, content_type)

    def put_file(self, key: str, content_type: str, source: BinaryIO) -> StoredObject:
        writer = self.writer(key, content_type)
        try:
            while chunk := source.read(1024 * 1024):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def get(self, key: str) -> StoredObject | None:
        return self.objects.get(key)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Sniffing and image dimensions (from the stored bytes, as PostQued's complete step does)


def sniff_mime(head: bytes) -> str | None:
    """The MIME type the first bytes announce, among the seven PostQued accepts."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"
    return None


def same_family(declared: str, sniffed: str | None) -> bool:
    """MP4 and QuickTime share a container; everything else must match exactly."""
    if sniffed is None:
        return False
    iso_bmff = {"video/mp4", "video/quicktime"}
    return declared == sniffed or (declared in iso_bmff and sniffed in iso_bmff)


def image_dimensions(path: Path, mime: str) -> tuple[int, int] | None:
    """(width, height) read from the file's header, or None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            if mime == "image/png":
                data = fh.read(24)
                if len(data) >= 24 and data[12:16] == b"IHDR":
                    w, h = struct.unpack(">II", data[16:24])
                    return int(w), int(h)
            elif mime == "image/gif":
                data = fh.read(10)
                if len(data) >= 10:
                    w, h = struct.unpack("<HH", data[6:10])
                    return int(w), int(h)
            elif mime == "image/webp":
                return _webp_dimensions(fh.read(30))
            elif mime == "image/jpeg":
                return _jpeg_dimensions(fh)
    except (OSError, struct.error):
        return None
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_dimensions(fh: BinaryIO) -> tuple[int, int] | None:
    if fh.read(2) != b"\xff\xd8":
        return None
    while True:
        byte = fh.read(1)
        while byte and byte != b"\xff":
            byte = fh.read(1)
        while byte == b"\xff":
            byte = fh.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0x01, *range(0xD0, 0xD9)):
            continue  # markers without a length
        if marker == 0xD9:
            return None
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if marker in _SOF_MARKERS:
            data = fh.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return int(w), int(h)
        fh.seek(length - 2, os.SEEK_CUR)
