"""The benchmarks run (short mode: that they work, not their numbers), and what they rely on holds.

``python -m bench.run --short`` must exit 0 and print a row for every figure. The simulated clock of the
rate-limit benchmark must order sleepers like real time. (The schema rewrite that shrinks ``tools/list``
keeps every constraint: tests/test_schemas.py.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FIGURES = [
    "Cold start: spawn -> initialize -> tools/list, stdio",
    "Per-call overhead, stdio",
    "Per-call overhead, streamable HTTP",
    "tools/list size, default toolset",
    "tools/list size, all toolsets",
    "On-demand toolsets: what a model reads at start",
    "What a model reads of tools/list, default toolset",
    "over loopback, end to end",
    "over loopback, PUT only",
    "Upload peak RSS",
    "Longest event-loop stall",
    "Rate limits: 25 publishes + 40 status reads",
    "Journal: live publish latency",
    "Probe: fragmented MP4, 400 fragments, no mfra index",
    "Probe: fragmented MP4, 400 fragments, with mfra index",
]


@pytest.mark.slow  # the benchmark smoke run (~2 min): --run-slow
def test_short_benchmark_run_prints_every_figure() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--short"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    for figure in FIGURES:
        matching = [r for r in rows if figure in r]
        assert len(matching) == 1, (figure, out.stdout)
        cells = [c.strip() for c in matching[0].strip("|").split("|")]
        assert len(cells) == 6 and all(cells), matching[0]  # figure, value, baseline, ratio, goal, verdict
        assert cells[5] in ("met", "MISSED", "-"), cells
    assert out.stdout.startswith("machine: ")


# --- the simulated clock -------------------------------------------------------------------------


async def test_sim_clock_wakes_sleepers_in_time_order() -> None:
    from bench.ratelimits import SimClock, minimum_seconds

    clock = SimClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))
        if name == "b":
            await clock.sleep(5)
            woke.append(("b2", clock.monotonic()))

    await clock.run(asyncio.gather(sleeper("a", 30), sleeper("b", 10), sleeper("c", 20), sleeper("d", 0)))
    assert woke == [("d", 0.0), ("b", 10.0), ("b2", 15.0), ("c", 20.0), ("a", 30.0)]
    assert minimum_seconds({"publish": 25, "read": 40}, {"publish": 10, "read": 30}) == 120.0
    assert minimum_seconds({"publish": 10, "read": 30}, {"publish": 10, "read": 30}) == 0.0


@pytest.mark.parametrize("size", [5 * 1024 * 1024, 4 * 1024**3 + 7])  # a 32-bit and a 64-bit free box
def test_bench_upload_file_is_a_valid_mp4(tmp_path: Path, size: int) -> None:
    from bench.upload import make_file
    from postqued.media import check_path, detect_type, probe

    local = check_path(make_file(tmp_path / "big.mp4", size), [tmp_path])
    info = probe(local, detect_type(local))
    assert local.size == size and info.mime_type == "video/mp4" and (info.width, info.height) == (320, 240)
