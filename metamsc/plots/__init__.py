"""Figures. Every function draws on an ``ax`` it is given (or a new one) and returns it.

matplotlib is imported lazily, only when a figure is drawn; the plotting modules themselves are
light and imported here, so that ``from metamsc.plots import forest`` is always the function
(importing a submodule would otherwise rebind the package attribute to the module).
"""

from __future__ import annotations

from pathlib import Path

from .evidence import evidence_map_plot
from .forest import forest
from .baujat import baujat
from .bubble import bubble
from .funnel import funnel
from .influence import influence_plot
from .sensitivity import sensitivity_forest

__all__ = ["forest", "funnel", "sensitivity_forest", "bubble", "baujat", "influence_plot", "evidence_map_plot", "save_figure",
           "figure_context", "spec_figures", "FORMATS"]

#: settings every figure is drawn and saved with, whatever the user's matplotlibrc says
_PINNED = {"svg.hashsalt": "metamsc", "svg.fonttype": "path", "pdf.fonttype": 42}
#: file formats a figure is saved in, and the metadata keys blanked in each (no dates, no versions)
FORMATS = {"svg": {"Date": None, "Creator": None},
           "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
           "png": {"Software": None}}


def figure_context():
    """matplotlib's defaults plus the pinned keys: figures do not depend on a matplotlibrc."""
    import matplotlib

    params = {k: v for k, v in matplotlib.rcParamsDefault.items() if k != "backend"}
    params.update(_PINNED)
    return matplotlib.rc_context(params)


def spec_figures(an) -> list[tuple[object, tuple[Path, ...]]]:
    """The figures of a spec's analysis, each with the files it goes to: the forest (or the
    evidence map) to ``figure``, and the ``plots`` (leave-one-out, cumulative, funnel, bubble, Baujat, influence)."""
    from ..spec import EvidenceMap, SpecError

    try:
        return _spec_figures(an)
    except ValueError as e:
        raise SpecError(f"{an.spec.path}: figure: {e}") from None


def _spec_figures(an):
    from ..spec import EvidenceMap

    spec = an.spec
    base = spec.path.parent
    out = []
    if spec.figures:
        ax = evidence_map_plot(an) if isinstance(an, EvidenceMap) else forest(an)
        out.append((ax, tuple((base / f).resolve() for f in spec.figures)))
    for kind, files in getattr(spec, "plots", {}).items():
        paths = tuple((base / f).resolve() for f in files)
        res = an.result
        if kind == "funnel":
            ax = funnel(res, contours=(0.90, 0.95, 0.99), egger=res.k >= 3,
                        trimfill=res.k >= 3, title=spec.title)
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            ax.figure.set_size_inches(7.5, 4.2)
            ax.figure.subplots_adjust(left=0.1, right=0.68, bottom=0.13, top=0.9)
        elif kind == "bubble":
            from ..metareg import spec_meta_regression_fit

            reg = spec_meta_regression_fit(an.selection.rows, res, spec.moderators, spec.categorical)
            ax = bubble(reg)
            ax.set_title(_wrap(spec.title), fontsize=10)
        elif kind == "baujat":
            ax = baujat(res, title=_wrap(spec.title))
        elif kind == "influence":
            ax = influence_plot(res)[0]
            ax.figure.suptitle(_wrap(spec.title, 90), fontsize=10)
            ax.figure.subplots_adjust(top=0.92)
        else:
            from .. import sensitivity as sens

            table = (sens.leave_one_out if kind == "leave_one_out" else sens.cumulative)(res)
            ax = sensitivity_forest(table, result=res, title=spec.title)
        out.append((ax, paths))
    return out


def _wrap(title: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(title, width)[:2])


def save_figure(fig, path: str | Path, *, dpi: int = 200) -> Path:
    """Save deterministically: fixed SVG hash salt, no dates or software stamps in metadata;
    ``dpi`` applies to PNG (vector formats keep the figure's own)."""
    import matplotlib

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown figure format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 1200:
        raise ValueError(f"dpi must be an integer between 10 and 1200, got {dpi!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(_PINNED):
        fig.savefig(path, format=fmt, metadata=FORMATS[fmt], dpi=dpi if fmt == "png" else "figure")
    return path
