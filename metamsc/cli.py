"""Command line: ``metamsc run | reproduce | validate``, a thin shell over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .spec import MetamscError

__all__ = ["main"]


def _default_out(spec_path: Path) -> Path:
    """``results/`` beside ``analyses/`` (or beside the spec file elsewhere)."""
    parent = spec_path.resolve().parent
    return (parent.parent if parent.name == "analyses" else parent) / "results"


def run_one(spec_path: Path, out: Path | None, *, quiet: bool = False,
            redirect: tuple[Path, Path] | None = None) -> list[Path]:
    """Run one spec; write its JSON and figures; return the written paths.

    ``redirect=(root, elsewhere)`` writes figures under ``elsewhere`` at their
    path relative to ``root`` (used by ``metamsc check``).
    """
    from . import report
    from .spec import analysis_dict, load_spec, run_spec

    spec = load_spec(spec_path)
    an = run_spec(spec)
    out = out or _default_out(spec.path)
    written = [report.write_json(analysis_dict(an), out / f"{spec.name}.json")]
    if spec.figures:
        from .plots import save_figure
        from .plots.forest import forest
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = forest(an)
        for fig_path in spec.figure_paths():
            if redirect is not None:
                fig_path = redirect[1] / fig_path.relative_to(redirect[0].resolve())
            written.append(save_figure(ax.figure, fig_path))
        plt.close(ax.figure)
    if not quiet:
        r = an.result
        nat = r.natural
        val = (f"{nat.estimate:.4f} [{nat.ci_lb:.4f}, {nat.ci_ub:.4f}]" if nat else
               f"{r.estimate:.4f} [{r.ci_lb:.4f}, {r.ci_ub:.4f}]")
        print(f"{spec.name}: k = {r.k}, {r.measure}/{r.method}/{r.test}: {val}; "
              f"excluded {len(an.excluded)}; wrote {', '.join(str(p) for p in written)}")
    return written


def _cmd_run(args) -> int:
    if args.explain:
        from .spec import load_spec, select
        from . import report

        for p in args.spec:
            spec = load_spec(p)
            sel = select(spec)
            print(f"# {spec.path}")
            print(report.dumps({"resolved_spec": spec.resolved(), "data_file": sel.file,
                                "rows_selected": [dict(row=n, **r) for n, r in zip(sel.row_numbers, sel.rows)],
                                "excluded": [vars(e) for e in sel.excluded]}), end="")
        return 0
    for p in args.spec:
        run_one(Path(p), Path(args.out) if args.out else None)
    return 0


def _cmd_reproduce(args) -> int:
    root = Path(args.dir)
    specs = sorted((root / "analyses").glob("*.toml"))
    if not specs:
        raise MetamscError(f"{root / 'analyses'}: no analysis specs (*.toml) found")
    for p in specs:
        run_one(p, root / "results")
    print(f"reproduced {len(specs)} analyses into {root / 'results'} and their figures")
    return 0


def _outputs(root: Path) -> set[Path]:
    return {p.relative_to(root) for d in ("results", "figures") if (root / d).is_dir()
            for p in (root / d).rglob("*") if p.is_file()}


def _cmd_check(args) -> int:
    """Re-run every spec into a temporary folder and compare with the committed outputs."""
    import filecmp
    import tempfile

    root = Path(args.dir).resolve()
    specs = sorted((root / "analyses").glob("*.toml"))
    if not specs:
        raise MetamscError(f"{root / 'analyses'}: no analysis specs (*.toml) found")
    with tempfile.TemporaryDirectory(prefix="metamsc-check-") as tmp:
        tmp = Path(tmp)
        for p in specs:
            run_one(p, tmp / "results", quiet=True, redirect=(root, tmp))
        fresh, committed = _outputs(tmp), _outputs(root)
        differ = sorted(str(p) for p in fresh & committed
                        if not filecmp.cmp(tmp / p, root / p, shallow=False))
        missing = sorted(str(p) for p in fresh - committed)
        stale = sorted(str(p) for p in committed - fresh if p.suffix != ".png")
    for p in differ:
        print(f"differs: {p}")
    for p in missing:
        print(f"not committed: {p}")
    for p in stale:
        print(f"stale (no spec makes it): {p}")
    bad = len(differ) + len(missing) + len(stale)
    print(f"checked {len(fresh)} outputs of {len(specs)} analyses: "
          + ("all current" if not bad else f"{bad} out of date"))
    return 1 if bad else 0


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
    except MetamscError as e:
        print(f"metamsc: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"metamsc: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
