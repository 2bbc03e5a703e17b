"""Running specs into files: one spec (``metamsc run``), every spec of a project with its
manuscript table and manifest (``metamsc reproduce``), and the comparison of a fresh run with
the committed outputs (``metamsc check``).

Every output of a command is staged (:class:`metamsc.report.Staging`) and renamed into place only
when all were made, never over an input; the curated data must pass validation first.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import datasets
from ..errors import OutputError, SpecError, ValidationError
from ..summary import summary_csv, summary_markdown, summary_row
from .analysis_json import analysis_dict
from .manifest import manifest
from .run import run_spec
from .schema import load_spec
from .select import select

__all__ = ["run_one", "run_specs", "explain", "reproduce", "check", "CheckReport",
           "check_out_dir", "spec_inputs"]


def _project_root(spec_path: Path) -> Path:
    """The project of a spec: the folder holding ``analyses/`` (or the spec's own folder)."""
    parent = spec_path.resolve().parent
    return parent.parent if parent.name == "analyses" else parent


def _default_out(spec_path: Path) -> Path:
    """``results/`` beside ``analyses/`` (or beside the spec file elsewhere)."""
    return _project_root(spec_path) / "results"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def run_one(spec_path: Path, out: Path | None, *, quiet: bool = False,
            redirect: tuple[Path, Path] | None = None, stage=None,
            allowed: tuple[Path, ...] | None = None, say: list[str] | None = None) -> list[Path]:
    """Run one spec; stage its JSON and figures; return the output paths.

    Outputs go through ``stage`` (a :class:`~metamsc.report.Staging`; a new one, committed at
    the end, when None), so nothing is written unless every output of the run was made, and
    never over one of the run's inputs. Figures must lie in the spec's project or under one of
    the ``allowed`` folders (an explicit ``--out``). ``redirect=(root, elsewhere)`` writes figures under
    ``elsewhere`` at their path relative to ``root`` (used by ``metamsc check``). With an
    outer ``stage`` the console lines go to ``say``, to be printed once the stage is committed.
    """
    from .. import report

    spec = load_spec(spec_path)
    protected = {Path(p) for p in spec_inputs(spec)}
    own = stage is None
    if own:
        stage = report.Staging(protected)
    else:
        stage.protected |= {p.resolve() for p in protected}
    allowed = (_project_root(spec.path),) + tuple(allowed or ())
    if redirect is None:
        for f in spec.figure_paths():
            if not any(_inside(f, a) for a in allowed):
                raise OutputError(spec.path, f"key 'figure': {f} is outside the project folder "
                                             f"{allowed[0]}; metamsc writes outside the project "
                                             f"only into an explicit --out", key="figure")
    an = run_spec(spec)
    out = out or _default_out(spec.path)
    try:
        written = [report.write_json(analysis_dict(an), out / f"{spec.name}.json", stage)]
        if spec.figures or getattr(spec, "plots", None):  # extra plots without a forest too
            written += _figures(spec, an, stage, redirect)
    except BaseException:
        if own:
            stage.discard()
        raise
    lines = [_run_line(spec, an, written)] + [f"{spec.name}: warning: {note}"
                                              for note in getattr(an, "notes", ())]
    if own:
        stage.commit()
        if not quiet:
            print("\n".join(lines))
    elif say is not None:
        say.extend(lines)
    return written


def _figures(spec, an, stage, redirect) -> list[Path]:
    """Draw the spec's figures (forest or evidence map, and its extra ``plots``) and stage one
    file per path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import figure_context, save_figure

    from .figures import spec_figures

    written = []
    with figure_context():
        # method sensitivity and BAYES analyses draw their own figure
        figures = ([(an.plot(), tuple(spec.figure_paths()))] if hasattr(an, "plot")
                   else spec_figures(an))
        for ax, paths in figures:
            try:
                for fig_path in paths:
                    if redirect is not None:
                        fig_path = redirect[1] / fig_path.relative_to(redirect[0].resolve())
                    save_figure(ax.figure, stage.path(fig_path), dpi=spec.dpi)
                    written.append(fig_path)
            finally:
                plt.close(ax.figure)
    return written


def _run_line(spec, an, written) -> str:
    """The console line of one run."""
    import numpy as np

    files = ", ".join(str(p) for p in written)
    if spec.kind == "evidence-map":
        return f"{spec.name}: evidence map of {len(an.rows)} studies; wrote {files}"
    if hasattr(an, "describe"):
        return f"{spec.name}: {an.describe()}; wrote {files}"
    if not spec.overall:
        return (f"{spec.name}: {len(an.subgroups)} subgroups by {spec.subgroup} (no overall "
                f"estimate); excluded {len(an.excluded)}; wrote {files}")
    r = an.result
    nat = r.natural
    model = r.conventions.tau2_estimator if r.model == "GLMM" else r.method
    if nat and not np.isfinite(nat.estimate if nat.estimate is not None else np.nan) \
            and np.isfinite(nat.ci_ub if nat.ci_ub is not None else np.nan):
        val = f"no model identifiable; exact one-sided bound [{nat.ci_lb:.4f}, {nat.ci_ub:.4f}]"
    else:
        val = (f"{nat.estimate:.4f} [{nat.ci_lb:.4f}, {nat.ci_ub:.4f}]" if nat else
               f"{r.estimate:.4f} [{r.ci_lb:.4f}, {r.ci_ub:.4f}]")
    return (f"{spec.name}: k = {r.k}, {r.measure}/{model}/{r.test}: {val}; "
            f"excluded {len(an.excluded)}; wrote {files}")


def check_out_dir(out: str | None) -> Path | None:
    """``--out``: a folder (made if missing), never an existing file."""
    if out is None:
        return None
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise OutputError(None, f"--out {out}: is a file, not a folder; give a folder for the "
                                f"results")
    return p


def spec_inputs(spec) -> list[str]:
    """The files an analysis reads: its spec and its data (bundled outcomes join studies)."""
    if spec.data in datasets.BUNDLED:
        names = {"outcomes": ("outcomes", "studies")}.get(spec.data, (spec.data,))
        data = [str(datasets.DATA_DIR / f"{n}.csv") for n in names]
    else:
        data = [str(spec.data_path())]
    return [str(spec.path)] + data


def validate_bundled(specs) -> None:
    """The curated data must pass ``metamsc validate`` before any analysis of it is run."""
    from ..validate import validate

    if not any(load_spec(p).data in datasets.BUNDLED for p in specs):
        return
    rep = validate(datasets.DATA_DIR)
    if not rep.ok:
        for line in [p.line() for p in rep.errors]:
            print(line, file=sys.stderr)
        raise ValidationError(rep.path, f"the curated data fail validation ({len(rep.errors)} "
                                        f"error(s) above, as `metamsc validate` reports); nothing "
                                        f"was written", errors=len(rep.errors))


def reproduce(root: Path, target: Path, *, quiet: bool = False) -> list[str]:
    """Validate the curated data, run every spec of ``root/analyses`` writing into ``target``
    (results/, figures/), then the manuscript table (results/summary.csv, summary.md) and
    results/manifest.json. Every output is staged and renamed into place only when all were
    made: a failure leaves the earlier outputs as they were.

    Returns the outputs' paths relative to ``target``.
    """
    from .. import report
    from .._version import __version__
    from ..progress import progress

    specs = sorted((root / "analyses").glob("*.toml"))
    if not specs:
        raise SpecError(root / "analyses", "no analysis specs (*.toml) found")
    for p in specs:  # every output must live in the project, so that check can compare it
        for f in load_spec(p).figure_paths():
            if not f.is_relative_to(root.resolve()):
                raise OutputError(p, f"key 'figure': {f} is outside the project folder {root}",
                                  key="figure")
    validate_bundled(specs)
    outputs: dict[str, list[str]] = {}
    rows = []
    tgt = target.resolve()
    with report.Staging() as stage:
        for i, p in enumerate(progress(specs, "reproduce") if quiet else specs, 1):  # else [i/n]
            lines: list[str] = []
            written = run_one(p, target / "results", stage=stage, allowed=(root,), say=lines,
                              redirect=None if tgt == root.resolve() else (root, target))
            if not quiet:
                print(f"[{i}/{len(specs)}] " + "\n".join(lines), flush=True)
            spec = load_spec(p)
            for w in written:
                outputs[str(Path(w).resolve().relative_to(tgt))] = spec_inputs(spec)
            staged_json = next(tmp for tmp, final in stage.pending if final == written[0])
            rows.append(summary_row(spec.name, json.loads(staged_json.read_text())))
        all_inputs = sorted({i for ins in outputs.values() for i in ins})
        res = target / "results"
        stage.write(res / "summary.csv", summary_csv(rows))
        stage.write(res / "summary.md", summary_markdown(rows))
        outputs["results/summary.csv"] = all_inputs
        outputs["results/summary.md"] = all_inputs
        # the manifest hashes the staged files, which the commit renames unchanged
        staged = {final.resolve(): tmp for tmp, final in stage.pending}
        man = manifest(outputs, root, target, __version__,
                              staged=lambda out: staged[(target / out).resolve()])
        report.write_json(man, res / "manifest.json", stage)
    return sorted(outputs) + ["results/manifest.json"]


def outputs_of(root: Path) -> set[Path]:
    return {p.relative_to(root) for d in ("results", "figures") if (root / d).is_dir()
            for p in (root / d).rglob("*") if p.is_file()}


def changed_inputs(old: Path, new: Path) -> list[str]:
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


def run_specs(paths, out: Path | None) -> list[str]:
    """Run several specs with every output staged together (all or nothing); the console lines."""
    from .. import report

    lines: list[str] = []
    with report.Staging() as stage:  # every spec of the command, or nothing
        for p in paths:
            run_one(Path(p), out, stage=stage, allowed=(out,) if out is not None else (), say=lines)
    return lines


def explain(paths) -> str:
    """The resolved specs and their selected rows (``metamsc run --explain``); nothing computed."""
    from .. import report

    text = []
    for p in paths:
        spec = load_spec(p)
        sel = select(spec)
        text.append(f"# {spec.path}\n")
        text.append(report.dumps({"resolved_spec": spec.resolved(), "data_file": sel.file,
                                  "rows_selected": [dict(row=n, **r) for n, r in
                                                    zip(sel.row_numbers, sel.rows)],
                                  "excluded": [vars(e) for e in sel.excluded]}))
    return "".join(text)


@dataclass(frozen=True)
class CheckReport:
    """``metamsc check``: outputs that differ, are not committed, are stale (no spec makes them),
    and inputs changed since the committed manifest."""

    checked: int
    differ: tuple[str, ...]
    missing: tuple[str, ...]
    stale: tuple[str, ...]
    changed_inputs: tuple[str, ...]

    @property
    def bad(self) -> int:
        return len(self.differ) + len(self.missing) + len(self.stale)

    def lines(self) -> list[str]:
        out = ([f"differs: {p}" for p in self.differ] + [f"not committed: {p}" for p in self.missing]
               + [f"stale (no spec makes it): {p}" for p in self.stale]
               + [f"input changed since the committed outputs: {p}" for p in self.changed_inputs])
        out.append(f"checked {self.checked} outputs: " + (
            "all current" if not self.bad else
            f"{self.bad} out of date; run `metamsc reproduce` and commit results/ and figures/"))
        return out


def check(root: Path) -> CheckReport:
    """Re-run every spec of ``root`` into a temporary folder and compare with its outputs."""
    import filecmp
    import tempfile

    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="metamsc-check-") as tmp:
        tmp = Path(tmp)
        reproduce(root, tmp, quiet=True)
        fresh, committed = outputs_of(tmp), outputs_of(root)
        differ = sorted(str(p) for p in fresh & committed
                        if not filecmp.cmp(tmp / p, root / p, shallow=False))
        missing = sorted(str(p) for p in fresh - committed)
        stale = sorted(str(p) for p in committed - fresh if p.suffix != ".png")
        changed = changed_inputs(root / "results" / "manifest.json",
                                 tmp / "results" / "manifest.json")
    return CheckReport(len(fresh), tuple(differ), tuple(missing), tuple(stale), tuple(changed))
