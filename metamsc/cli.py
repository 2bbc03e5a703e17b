"""Command line: ``metamsc run | reproduce | check | validate``, a thin shell over the library.

argparse only: each command calls one function of :mod:`metamsc.project` (or
:mod:`metamsc.validate`) and prints what it returns; an error of the user's
(:class:`~metamsc.errors.MetamscError`) is printed as its one-line ``str``, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MetamscError

__all__ = ["main"]


def _cmd_run(args) -> int:
    from .project import reproduce as rp

    if args.explain:
        print(rp.explain(args.spec), end="")
        return 0
    print("\n".join(rp.run_specs(args.spec, rp.check_out_dir(args.out))))
    return 0


def _cmd_reproduce(args) -> int:
    from .project.reproduce import reproduce

    root = Path(args.dir).resolve()
    written = reproduce(root, root)
    print(f"reproduced {len(written)} outputs into {root / 'results'} and {root / 'figures'}")
    return 0


def _cmd_check(args) -> int:
    """Re-run every spec into a temporary folder and compare with the committed outputs."""
    from .project.reproduce import check

    rep = check(Path(args.dir))
    print("\n".join(rep.lines()))
    return 1 if rep.bad else 0


def _cmd_validate(args) -> int:
    from . import validate

    argv = ([args.path] if args.path else []) + (["--seeds", args.seeds] if args.seeds else [])
    return validate.main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="metamsc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run analysis specs (TOML)")
    p_run.add_argument("spec", nargs="+")
    p_run.add_argument("--out", help="output folder for the JSON (default: results/ beside analyses/)")
    p_run.add_argument("--explain", action="store_true",
                       help="print the resolved spec and the selected rows, compute nothing")
    p_run.set_defaults(func=_cmd_run)
    p_rep = sub.add_parser("reproduce", help="run every spec in DIR/analyses")
    p_rep.add_argument("dir", nargs="?", default=".")
    p_rep.set_defaults(func=_cmd_reproduce)
    p_chk = sub.add_parser("check", help="re-run everything and compare with the committed outputs")
    p_chk.add_argument("dir", nargs="?", default=".")
    p_chk.set_defaults(func=_cmd_check)
    p_val = sub.add_parser("validate", help="check the curated data (bundled, or PATH)")
    p_val.add_argument("path", nargs="?")
    p_val.add_argument("--seeds", help="folder of the seed documents, for the verbatim-quote check")
    p_val.set_defaults(func=_cmd_validate)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MetamscError as e:  # a user's mistake: one line, no traceback
        print(f"metamsc: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"metamsc: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("metamsc: error: out of memory (the data are too large for this machine)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
