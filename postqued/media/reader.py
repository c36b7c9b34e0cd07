"""Bounded, exact reads from an open file, shared by the container probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Literal


class Malformed(Exception):
    """Internal: the bytes do not form a valid file of the expected type."""


class Reader:
    """Exact, bounds-checked reads from an open file of known size."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._f = handle
        self.size = size
        self.pos = 0

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise Malformed("the file ends early (truncated)")
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:
            raise Malformed("the file ends early (truncated)")
        return data

    def read_upto(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        self._f.seek(offset)
        return self._f.read(n)

    def read(self, n: int) -> bytes:
        data = self.read_at(self.pos, n)
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise Malformed("the file ends early (truncated)")
        self.pos += n

    def u8(self) -> int:
        return self.read(1)[0]

    def u16be(self) -> int:
        return int.from_bytes(self.read(2), "big")


@dataclass
class Dims:
    width: int
    height: int
    duration_ms: int | None = None
    rotation: Literal[0, 90, 180, 270] = 0


def ticks_to_ms(duration: int, timescale: int) -> int:
    """Container ticks -> whole milliseconds, rounded half up."""
    return (duration * 1000 + timescale // 2) // timescale
