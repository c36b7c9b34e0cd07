"""Bounded, exact reads from an open file, shared by the container probes.

Every probe reads through one ``Reader``, which counts its reads and bytes and stops the probe with
``LimitReached`` past a byte budget or a time budget: the work is bounded by what it costs, not by how
many boxes or elements a file has, and a limit is reported as a limit, never as damage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final, Literal

PROBE_BYTE_BUDGET: Final = 64 * 1024 * 1024  # bytes of headers and tables one probe may read
PROBE_SECONDS: Final = 30.0  # and the time it may take (a 1 GB MP4 fragmented per frame, ~1.2 M boxes, ~6 s)
_CLOCK_EVERY: Final = 256  # reads between two looks at the clock


class Malformed(Exception):
    """Internal: the bytes do not form a valid file of the expected type."""


class Unsupported(Exception):
    """Internal: a valid file of the container type that PostQued cannot take (e.g. audio only)."""


class LimitReached(Exception):
    """Internal: the probe's own byte or time budget ran out; the file may well be fine."""


class Reader:
    """Exact, bounds-checked reads from an open file of known size, within a byte and a time budget.

    ``reads`` and ``bytes_read`` count what was read; a budget of ``None`` is unlimited.
    """

    def __init__(
        self,
        handle: BinaryIO,
        size: int,
        *,
        byte_budget: int | None = PROBE_BYTE_BUDGET,
        seconds: float | None = PROBE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._f = handle
        self.size = size
        self.pos = 0
        self.reads = 0
        self.bytes_read = 0
        self._byte_budget = byte_budget
        self._seconds = seconds
        self._clock = clock
        self._deadline = None if seconds is None else clock() + seconds

    def _raw(self, offset: int, n: int) -> bytes:
        if self._byte_budget is not None and self.bytes_read + n > self._byte_budget:
            raise LimitReached(f"its headers need more than {self._byte_budget // (1024 * 1024)} MiB of reading")
        self.reads += 1
        if self._deadline is not None and self.reads % _CLOCK_EVERY == 0 and self._clock() > self._deadline:
            raise LimitReached(f"reading its headers takes more than {self._seconds:g} seconds")
        self._f.seek(offset)
        data = self._f.read(n)
        self.bytes_read += len(data)
        return data

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise Malformed("the file ends early (truncated)")
        data = self._raw(offset, n)
        if len(data) != n:
            raise Malformed("the file ends early (truncated)")
        return data

    def read_upto(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        return self._raw(offset, n) if n else b""

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
