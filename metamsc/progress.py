"""A tiny progress reporter for the loops that can take more than a few seconds.

``for x in progress(items, "leave-one-out"): ...`` writes ``\\rleave-one-out: 3/13`` to stderr,
at most every ``every`` seconds and only once ``delay`` seconds have passed (a quick loop prints
nothing), then ends the line. It is silent when stderr is not a terminal (a pipe, a file, a
notebook's captured stream, the test suite) and when the environment variable
``METAMSC_PROGRESS=0``; ``METAMSC_PROGRESS=1`` shows it on any stream. No dependency.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

__all__ = ["progress", "enabled"]

T = TypeVar("T")


def enabled(stream=None) -> bool:
    """Whether progress is shown on ``stream`` (default: stderr)."""
    flag = os.environ.get("METAMSC_PROGRESS", "").strip()
    if flag == "0":
        return False
    if flag == "1":
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress(items: Iterable[T], label: str, *, total: int | None = None, stream=None,
             delay: float = 1.0, every: float = 0.2) -> Iterator[T]:
    """Yield ``items`` unchanged, reporting ``label: i/total`` on ``stream`` (stderr) as it goes
    (see the module docstring for when it is silent)."""
    stream = sys.stderr if stream is None else stream
    if not enabled(stream):
        yield from items
        return
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    start = last = time.monotonic()
    shown = False
    i = 0
    try:
        for i, item in enumerate(items, 1):
            yield item
            now = time.monotonic()
            if now - start >= delay and (now - last >= every or i == total):
                of = f"/{total}" if total else ""
                stream.write(f"\r{label}: {i}{of}")
                stream.flush()
                last, shown = now, True
    finally:
        if shown:
            of = f"/{total}" if total else ""
            stream.write(f"\r{label}: {i}{of} done\n")
            stream.flush()
