"""--profile: cProfile stats of the processes a run starts, and a readable summary of each."""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
from collections.abc import Iterator
from pathlib import Path

TOP = 40
"""Functions each summary lists."""


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """Profile this process's block into `<directory>/<name>.prof` (nothing without one)."""
    if directory is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(directory / f"{name}.prof")


def summarise(directory: Path) -> list[Path]:
    """Write `<name>.txt` beside each `<name>.prof`: the top functions by own time and by
    cumulative time. Returns the summaries written."""
    written = []
    for stats_file in sorted(directory.glob("*.prof")):
        text = io.StringIO()
        try:
            stats = pstats.Stats(str(stats_file), stream=text)
        except (OSError, EOFError, TypeError, ValueError):  # a process killed mid-write
            continue
        stats.strip_dirs()
        for key in ("tottime", "cumulative"):
            text.write(f"==== top {TOP} by {key} ====\n")
            stats.sort_stats(key).print_stats(TOP)
        summary = stats_file.with_suffix(".txt")
        summary.write_text(text.getvalue())
        written.append(summary)
    return written
