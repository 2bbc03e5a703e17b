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
    """Yield ``items`` unchanged, reporting ``label: i/total`` on ``stream`` as it goes.

    Parameters
    ----------
    items : iterable
        What the loop runs over; yielded unchanged.
    label : str
        The text before the count, e.g. ``"leave-one-out"``.
    total : int, optional
        The number of items, when ``len(items)`` does not give it.
    stream : file-like, optional
        Where to write (stderr by default). Nothing is written unless it is a terminal or
        ``METAMSC_PROGRESS=1``; ``METAMSC_PROGRESS=0`` silences it everywhere.
    delay, every : float
        Seconds before the first report, and between two reports.

    Returns
    -------
    iterator
        The items, in order.

    References
    ----------
    None: a convenience for long loops (reproduce, leave-one-out, method-sensitivity grids,
    batch runs); it changes no number.

    Examples
    --------
    Off a terminal (as here) it is silent and only passes the items through:

    >>> from metamsc import progress
    >>> [x * x for x in progress(range(4), "squares")]
    [0, 1, 4, 9]
    """
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
