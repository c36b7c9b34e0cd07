"""What every benchmark shares: repetition, statistics, the result row, the table and the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    """Run sizes. ``short`` is for CI: it checks that every benchmark works, not its numbers."""

    short: bool = False

    @property
    def runs(self) -> int:
        """Repetitions of an expensive measurement (median of at least 10 in the full run)."""
        return 2 if self.short else 11

    @property
    def calls(self) -> int:
        """Repetitions of a cheap measurement (a single tool call)."""
        return 20 if self.short else 300


@dataclass(frozen=True)
class Stats:
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Iterable[float]) -> Stats:
        values = tuple(samples)
        if not values:
            raise ValueError("no samples")
        return cls(values)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def quartiles(self) -> tuple[float, float]:
        if len(self.samples) < 4:
            return self.low, self.high
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]

    def show(self, unit: str = "ms", scale: float = 1000.0, digits: int = 1) -> str:
        """``median [p25-p75]`` (min-max below 4 samples), e.g. ``412.3 ms [405.1-420.7]``."""
        lo, hi = self.quartiles()
        return f"{self.median * scale:.{digits}f} {unit} [{lo * scale:.{digits}f}-{hi * scale:.{digits}f}]"


@dataclass
class Row:
    """One figure of the table: its value, the baseline measured in the same run, their ratio, the goal."""

    figure: str
    value: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None  # None: reported, no goal of its own
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "-"}[self.met]


def ratio(value: float, baseline: float, digits: int = 2) -> str:
    return f"{value / baseline:.{digits}f}x" if baseline else "n/a"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def table(rows: list[Row]) -> str:
    """A Markdown table (pasted as is into the README)."""
    head = ["figure", "value (median [spread])", "baseline, same run", "ratio", "goal", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [r.figure, r.value, r.baseline, r.ratio, r.goal, r.verdict]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """CPU model, cores, memory, OS, Python and MCP SDK versions: the context every figure needs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) / 1024**2:.0f} GiB RAM"
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        sdk = f", mcp {version('mcp')}, httpx {version('httpx')}"
    except Exception:
        sdk = ""
    cores = os.cpu_count() or 0
    return f"{cpu}, {cores} cores{mem}; {platform.system()} {platform.release()}; Python {sys.version.split()[0]}{sdk}"


def rss_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes, from /proc (0, 0 where /proc is missing)."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


def peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM; ``ru_maxrss`` where there is no /proc)."""
    _, hwm = rss_of(os.getpid())
    if hwm:
        return hwm
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"
