"""Run every benchmark and print one table: each figure next to a baseline measured in the same run.

    python -m bench.run            # the full run (a few minutes; uploads 1 GiB many times over loopback)
    python -m bench.run --short    # CI: small sizes and few repetitions; checks that everything works
    python -m bench.run --only coldstart,journal

Figures are medians of repeated runs after a warm-up; the spread in brackets is the interquartile range
(min-max below four samples). The exit status is 0 when every benchmark ran, whatever its numbers: a goal
that is missed shows as MISSED in the table, and the README explains it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable

from bench import coldstart, journal_latency, overhead, probe, ratelimits, toolslist, upload
from bench.common import Config, Row, machine, table

# The upload runs last: the gigabytes it writes are still being flushed to disk afterwards, which would
# slow down the fsyncs the journal benchmark measures.
BENCHMARKS: dict[str, Callable[[Config], list[Row]]] = {
    "coldstart": coldstart.run,
    "overhead": overhead.run,
    "toolslist": toolslist.run,
    "ratelimits": ratelimits.run,
    "journal": journal_latency.run,
    "probe": probe.run,
    "upload": upload.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="small sizes and few runs (CI: checks they work)")
    parser.add_argument("--only", help=f"comma list of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    config = Config(short=args.short)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {machine()}", flush=True)
    print(
        f"mode: {'short (CI: checks that they work, not their numbers)' if args.short else 'full'}; "
        f"load average at start: {load:.2f}",
        flush=True,
    )
    rows: list[Row] = []
    failed: list[str] = []
    for name in names:
        start = time.perf_counter()
        print(f"... {name}", file=sys.stderr, flush=True)
        try:
            found = BENCHMARKS[name](config)
        except Exception:
            failed.append(name)
            traceback.print_exc()
            continue
        rows.extend(found)
        print(f"    {name} done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print()
    print(table(rows))
    notes = [n for r in rows for n in r.notes]
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
