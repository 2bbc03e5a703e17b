"""The alternation shared by bench_pool.py and bench_batch.py: the Python side and R take turns
``--rounds`` times and every time keeps its best, so that both sides see the same phases of the
machine's load (other processes only ever add time)."""

from __future__ import annotations

import argparse


def rounds_from_args(description: str) -> int:
    """The ``--rounds`` of the command line (default 3)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate the Python side and R this many times and keep each "
                             "time's best (both then see the same phases of machine load)")
    return parser.parse_args().rounds


def keep_best(into: dict[str, float], new: dict[str, float]) -> None:
    """Keep in ``into`` the smaller of its time and ``new``'s, key by key."""
    for key, t in new.items():
        into[key] = min(into.get(key, t), t)
