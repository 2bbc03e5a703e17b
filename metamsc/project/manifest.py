"""The manifest of a reproduced project (``results/manifest.json``): for every output its
SHA-256 and those of the inputs it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import datasets

__all__ = ["manifest", "sha256"]


def sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(outputs: dict[str, list[str]], root: Path, target: Path, version: str,
             staged=None) -> dict[str, Any]:
    """For every output (path relative to ``target``) its SHA-256 and those of the inputs it
    came from: paths relative to ``root``, bundled data as ``metamsc/data/<file>``.
    ``staged(out)`` gives the file holding an output not yet renamed into place."""
    import os

    def rel(p: str) -> str:
        q = Path(p).resolve()
        for base, prefix in ((datasets.DATA_DIR.resolve(), "metamsc/data/"), (root.resolve(), "")):
            try:
                return prefix + q.relative_to(base).as_posix()
            except ValueError:
                continue
        # outside the project: relative to it all the same (no machine-specific absolute path)
        return Path(os.path.relpath(q, root.resolve())).as_posix()

    files = {out: {"sha256": sha256(staged(out) if staged else target / out),
                   "inputs": {rel(i): sha256(i) for i in sorted(set(inputs))}}
             for out, inputs in sorted(outputs.items())}
    return {"package": "metamsc", "version": version, "outputs": files}
