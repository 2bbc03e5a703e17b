"""Command line: ``metamsc run | reproduce | validate``, a thin shell over the library."""

from __future__ import annotations

import argparse
import json
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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .plots import figure_context, save_figure

        with figure_context():
            if spec.kind == "evidence-map":
                from .plots.evidence import evidence_map_plot

                ax = evidence_map_plot(an)
            elif hasattr(an, "plot"):  # method sensitivity, BAYES: their own figures
                ax = an.plot()
            else:
                from .plots.forest import forest

                ax = forest(an)
            for fig_path in spec.figure_paths():
                if redirect is not None:
                    fig_path = redirect[1] / fig_path.relative_to(redirect[0].resolve())
                written.append(save_figure(ax.figure, fig_path))
        plt.close(ax.figure)
    if not quiet and spec.kind == "evidence-map":
        print(f"{spec.name}: evidence map of {len(an.rows)} studies; wrote "
              f"{', '.join(str(p) for p in written)}")
    elif not quiet and hasattr(an, "describe"):
        print(f"{spec.name}: {an.describe()}; wrote {', '.join(str(p) for p in written)}")
    elif not quiet and not spec.overall:
        print(f"{spec.name}: {len(an.subgroups)} subgroups by {spec.subgroup} (no overall estimate); "
              f"excluded {len(an.excluded)}; wrote {', '.join(str(p) for p in written)}")
    elif not quiet:
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


def _inputs(spec) -> list[str]:
    """The files an analysis reads: its spec and its data (bundled outcomes join studies)."""
    from . import datasets

    if spec.data in datasets.BUNDLED:
        names = {"outcomes": ("outcomes", "studies")}.get(spec.data, (spec.data,))
        data = [str(datasets.DATA_DIR / f"{n}.csv") for n in names]
    else:
        data = [str(spec.data_path())]
    return [str(spec.path)] + data


def reproduce(root: Path, target: Path, *, quiet: bool = False) -> list[str]:
    """Run every spec of ``root/analyses`` writing into ``target`` (results/, figures/), then
    the manuscript table (results/summary.csv, summary.md) and results/manifest.json.

    Returns the outputs' paths relative to ``target``.
    """
    from . import __version__, report
    from .spec import load_spec

    specs = sorted((root / "analyses").glob("*.toml"))
    if not specs:
        raise MetamscError(f"{root / 'analyses'}: no analysis specs (*.toml) found")
    for p in specs:  # every output must live in the project, so that check can compare it
        for f in load_spec(p).figure_paths():
            if not f.is_relative_to(root.resolve()):
                raise MetamscError(f"{p}: key 'figure': {f} is outside the project folder {root}")
    outputs: dict[str, list[str]] = {}
    rows = []
    tgt = target.resolve()
    for i, p in enumerate(specs, 1):
        if not quiet:
            print(f"[{i}/{len(specs)}] ", end="", flush=True)
        written = run_one(p, target / "results", quiet=quiet,
                          redirect=None if tgt == root.resolve() else (root, target))
        spec = load_spec(p)
        for w in written:
            outputs[str(Path(w).resolve().relative_to(tgt))] = _inputs(spec)
        rows.append(report.summary_row(spec.name, json.loads(Path(written[0]).read_text())))
    all_inputs = sorted({i for ins in outputs.values() for i in ins})
    res = target / "results"
    (res / "summary.csv").write_text(report.summary_csv(rows), encoding="utf-8")
    (res / "summary.md").write_text(report.summary_markdown(rows), encoding="utf-8")
    outputs["results/summary.csv"] = all_inputs
    outputs["results/summary.md"] = all_inputs
    report.write_json(report.manifest(outputs, root, target, __version__), res / "manifest.json")
    return sorted(outputs) + ["results/manifest.json"]


def _cmd_reproduce(args) -> int:
    root = Path(args.dir).resolve()
    written = reproduce(root, root)
    print(f"reproduced {len(written)} outputs into {root / 'results'} and {root / 'figures'}")
    return 0


def _outputs(root: Path) -> set[Path]:
    return {p.relative_to(root) for d in ("results", "figures") if (root / d).is_dir()
            for p in (root / d).rglob("*") if p.is_file()}


def _cmd_check(args) -> int:
    """Re-run every spec into a temporary folder and compare with the committed outputs."""
    import filecmp
    import tempfile

    root = Path(args.dir).resolve()
    with tempfile.TemporaryDirectory(prefix="metamsc-check-") as tmp:
        tmp = Path(tmp)
        reproduce(root, tmp, quiet=True)
        fresh, committed = _outputs(tmp), _outputs(root)
        differ = sorted(str(p) for p in fresh & committed
                        if not filecmp.cmp(tmp / p, root / p, shallow=False))
        missing = sorted(str(p) for p in fresh - committed)
        stale = sorted(str(p) for p in committed - fresh if p.suffix != ".png")
        changed_inputs = _changed_inputs(root / "results" / "manifest.json",
                                         tmp / "results" / "manifest.json")
    for p in differ:
        print(f"differs: {p}")
    for p in missing:
        print(f"not committed: {p}")
    for p in stale:
        print(f"stale (no spec makes it): {p}")
    for p in changed_inputs:
        print(f"input changed since the committed outputs: {p}")
    bad = len(differ) + len(missing) + len(stale)
    print(f"checked {len(fresh)} outputs: " + ("all current" if not bad else
          f"{bad} out of date; run `metamsc reproduce` and commit results/ and figures/"))
    return 1 if bad else 0


def _changed_inputs(old: Path, new: Path) -> list[str]:
    """Inputs whose SHA-256 differs between two manifests."""
    if not old.is_file():
        return []
    try:
        a, b = json.loads(old.read_text()), json.loads(new.read_text())
    except ValueError:
        return []
    seen_a = {k: v for o in a.get("outputs", {}).values() for k, v in o.get("inputs", {}).items()}
    seen_b = {k: v for o in b.get("outputs", {}).values() for k, v in o.get("inputs", {}).items()}
    return sorted(k for k in seen_b if seen_a.get(k) != seen_b[k])


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
