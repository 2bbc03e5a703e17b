"""Figures. Every function draws on an ``ax`` it is given (or a new one) and returns it.

matplotlib is imported here lazily, only when a figure is drawn.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["forest", "funnel", "bubble", "baujat", "save_figure", "figure_context"]

#: settings every figure is drawn and saved with, whatever the user's matplotlibrc says
_PINNED = {"svg.hashsalt": "metamsc", "svg.fonttype": "path", "pdf.fonttype": 42}


def figure_context():
    """matplotlib's defaults plus the pinned keys: figures do not depend on a matplotlibrc."""
    import matplotlib

    params = {k: v for k, v in matplotlib.rcParamsDefault.items() if k != "backend"}
    params.update(_PINNED)
    return matplotlib.rc_context(params)


def forest(*args, **kwargs):
    from .forest import forest as _forest

    return _forest(*args, **kwargs)


def funnel(*args, **kwargs):
    from .funnel import funnel as _funnel

    return _funnel(*args, **kwargs)


def bubble(*args, **kwargs):
    from .bubble import bubble as _bubble

    return _bubble(*args, **kwargs)


def baujat(*args, **kwargs):
    from .baujat import baujat as _baujat

    return _baujat(*args, **kwargs)


def save_figure(fig, path: str | Path) -> Path:
    """Save deterministically: fixed SVG hash salt, no dates or software stamps in metadata."""
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lower().lstrip(".")
    meta = {"svg": {"Date": None, "Creator": None},
            "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
            "png": {"Software": None}}[fmt]
    with matplotlib.rc_context(_PINNED):
        fig.savefig(path, format=fmt, metadata=meta, dpi=200 if fmt == "png" else "figure")
    return path
