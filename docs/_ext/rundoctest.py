"""Run the ``>>>`` examples of every page under ``guide/`` while the site builds.

Each page is one doctest (a fresh namespace, examples run top to bottom, options ELLIPSIS and
NORMALIZE_WHITESPACE, in a temporary working folder). A failing example is reported as a Sphinx
warning naming the page and the line, so ``sphinx-build -W`` fails on a broken example.
``tests/test_doctests.py`` runs the same pages under pytest.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import tempfile

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_text(text: str, name: str) -> tuple[int, int, str]:
    """Run the examples of ``text``; return (failed, attempted, report)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = doctest.DocTestParser().get_doctest(text, {"__name__": name}, name, name, 0)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            runner.run(test, out=out.write)
        finally:
            os.chdir(cwd)
            plt.close("all")
    with contextlib.redirect_stdout(io.StringIO()):
        res = runner.summarize(verbose=False)
    return res.failed, res.attempted, out.getvalue()


def _source_read(app, docname, source):
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    if not docname.startswith("guide/"):
        return
    failed, attempted, report = run_text(source[0], docname)
    if failed:
        logger.warning("%d of %d examples failed in %s:\n%s", failed, attempted, docname, report,
                       location=docname)
    else:
        logger.info("%s: %d examples ran", docname, attempted)


def _always_rerun(app, env, added, changed, removed):
    """Read the guide again on every build, so that its examples run against the current code."""
    return [d for d in env.found_docs if d.startswith("guide/") and d not in added | changed]


def setup(app):
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _always_rerun)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
