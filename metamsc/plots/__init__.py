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
           "figure_context", "FORMATS"]

#: settings every figure is drawn and saved with, whatever the user's matplotlibrc says
_PINNED = {"svg.hashsalt": "metamsc", "svg.fonttype": "path", "pdf.fonttype": 42}
#: file formats a figure is saved in, and the metadata keys blanked in each (no dates, no versions)
FORMATS = {"svg": {"Date": None, "Creator": None},
           "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
           "png": {"Software": None}}


def figure_context():
    """matplotlib's defaults plus the pinned keys: figures do not depend on a matplotlibrc.

    Parameters
    ----------
    None

    Returns
    -------
    contextlib.AbstractContextManager
        A :func:`matplotlib.rc_context` with matplotlib's default settings (the backend kept),
        a fixed SVG hash salt, text as paths in SVG and TrueType fonts in PDF.

    References
    ----------
    Hunter JD (2007). Matplotlib: a 2D graphics environment. Comput Sci Eng 9(3):90-95.
    Sandve GK, Nekrutenko A, Taylor J, Hovig E (2013). Ten simple rules for reproducible
    computational research. PLoS Comput Biol 9:e1003285.

    Examples
    --------
    >>> import matplotlib
    >>> from metamsc.plots import figure_context
    >>> with figure_context():
    ...     matplotlib.rcParams["svg.hashsalt"], matplotlib.rcParams["font.size"]
    ('metamsc', 10.0)
    """
    import matplotlib

    params = {k: v for k, v in matplotlib.rcParamsDefault.items() if k != "backend"}
    params.update(_PINNED)
    return matplotlib.rc_context(params)


def save_figure(fig, path: str | Path, *, dpi: int = 200) -> Path:
    """Save deterministically: fixed SVG hash salt, no dates or software stamps in metadata;
    ``dpi`` applies to PNG (vector formats keep the figure's own).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or pathlib.Path
        Where to write it; the suffix (.svg, .pdf or .png) is the format. Missing parent
        directories are created.
    dpi : int
        Resolution of a PNG, between 10 and 1200 (default 200).

    Returns
    -------
    pathlib.Path
        The path written.

    References
    ----------
    Sandve GK, Nekrutenko A, Taylor J, Hovig E (2013). Ten simple rules for reproducible
    computational research. PLoS Comput Biol 9:e1003285.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import matplotlib.pyplot as plt
    >>> from metamsc.plots import save_figure
    >>> fig, ax = plt.subplots()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     a = save_figure(fig, Path(tmp) / "a.svg").read_bytes()
    ...     b = save_figure(fig, Path(tmp) / "b.svg").read_bytes()
    >>> a == b, b"<dc:date>" in a
    (True, False)
    >>> plt.close(fig)
    """
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
